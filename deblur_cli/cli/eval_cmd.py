"""``deblur eval``: PSNR/SSIM on blurry/sharp pairs, measured as the published numbers were."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..atomic import atomic_path
from ..errors import InputError
from .common import console, describe, model_options, open_model

# deblur_cli.train.metrics.SSIM_MODES (tests/test_cli.py checks they agree): the metrics
# module imports torch, which --help must not pay for.
SSIM_MODES = ("official", "skimage")


def _render(result: dict[str, Any], with_model: bool) -> Table:
    table = Table(title="PSNR (dB) / SSIM", title_justify="left")
    table.add_column("image", overflow="fold")
    table.add_column("size", justify="right")
    table.add_column("blurry PSNR", justify="right")
    table.add_column("blurry SSIM", justify="right")
    if with_model:
        table.add_column("model PSNR", justify="right", style="bold")
        table.add_column("model SSIM", justify="right", style="bold")
        table.add_column("gain", justify="right")

    def cells(entry: dict[str, Any], identity: dict[str, float]) -> list[str]:
        out = [f"{identity['psnr']:.2f}", f"{identity['ssim']:.4f}"]
        if with_model:
            m = entry["model"]
            out += [f"{m['psnr']:.2f}", f"{m['ssim']:.4f}", f"{m['psnr'] - identity['psnr']:+.2f}"]
        return out

    for row in result["images"]:
        size = f"{row['width']}x{row['height']}"
        table.add_row(row["name"], size, *cells(row, row["identity"]))
    mean = result["mean"]
    table.add_section()
    table.add_row(
        f"mean of {len(result['images'])}", "", *cells(mean, mean["identity"]), style="bold"
    )
    return table


def _write_json(path: Path, result: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")


def _write_csv(path: Path, result: dict[str, Any]) -> None:
    with_model = "model" in result["mean"]
    columns = ["name", "width", "height", "identity_psnr", "identity_ssim"]
    columns += ["psnr", "ssim"] if with_model else []
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        rows = result["images"] + [{"name": "MEAN", "width": "", "height": "", **result["mean"]}]
        for row in rows:
            line = [row["name"], row["width"], row["height"]]
            line += [f"{row['identity']['psnr']:.4f}", f"{row['identity']['ssim']:.5f}"]
            if with_model:
                line += [f"{row['model']['psnr']:.4f}", f"{row['model']['ssim']:.5f}"]
            writer.writerow(line)


@click.command("eval")
@click.argument("data", type=str)
@model_options
@click.option(
    "--blur-dir",
    type=click.Choice(["auto", "blur_gamma", "blur"]),
    default="auto",
    show_default=True,
    help="GOPRO scenes: which blurry folder (auto prefers blur_gamma).",
)
@click.option(
    "--ssim",
    "ssim_mode",
    type=click.Choice(SSIM_MODES),
    default="official",
    show_default=True,
    help="official = Gaussian 11x11 window (DeepDeblur); skimage = scikit-image defaults "
    "(7x7 uniform window, sample covariance).",
)
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N pairs.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write every score and the conventions used to this JSON file.",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the per-image scores and the mean to this CSV file.",
)
def eval_(
    data: str,
    weights: str | None,
    device: str,
    precision: str,
    tile: int | None,
    overlap: int | None,
    blur_dir: str,
    ssim_mode: str,
    limit: int | None,
    json_path: Path | None,
    csv_path: Path | None,
) -> None:
    """PSNR/SSIM per image and mean, beside the blurry-input (identity) baseline.

    \b
    DATA: a folder with blur/ + sharp/ matched by name, or GOPRO scenes
    (DIR/<scene>/{blur_gamma|blur}/ + sharp/). Without --weights only the identity
    baseline (blurry vs sharp) is measured.

    \b
    Conventions of the official DeepDeblur-PyTorch code, used for its published
    numbers: outputs clamped to 0..255 and rounded before measuring; PSNR with data
    range 255 over all RGB pixels; SSIM with a Gaussian window (sigma 1.5, truncate
    3.5, 11x11), K1 0.01, K2 0.03, population covariance, per RGB channel, no padding
    (= skimage structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255)). The model runs in fp32 on whole
    images unless --precision/--tile say otherwise.

    \b
    Examples:
      deblur eval GOPRO_Large/test                       # identity baseline only
      deblur eval GOPRO_Large/test -w gopro.safetensors --json scores.json
      deblur eval pairs/ -w light --csv scores.csv --ssim skimage
    """
    from ..train.data import PairSource, open_source, parse_spec
    from ..train.evaluate import evaluate_pairs

    kind, root = parse_spec(data)
    source = open_source(data, blur_dir)
    if not isinstance(source, PairSource):
        raise InputError(
            f"{root}: eval needs aligned pairs (blur/ + sharp/ or GOPRO scenes), "
            f"found {source.kind}"
        )
    model = None
    if weights is not None:
        precision = "fp32" if precision == "auto" else precision
        model = open_model(weights, device, precision, 0 if tile is None else tile, overlap)
        console.print(f"[dim]{describe(model)}[/dim]")
    with console.status("measuring…") as status:

        def progress(i: int, n: int, name: str) -> None:
            status.update(f"measuring {i + 1}/{n}: {name}")

        result = evaluate_pairs(source, model, ssim_mode=ssim_mode, limit=limit, progress=progress)
    result["data"] = str(root)
    result["weights"] = weights
    result["conventions"] = {
        "clamp_round": True,
        "data_range": 255,
        "ssim": ssim_mode,
        "precision": model.precision if model else None,
    }
    Console().print(_render(result, model is not None))
    ident = result["mean"]["identity"]
    line = f"mean over {len(result['images'])} pairs: blurry input {ident['psnr']:.2f} dB / "
    line += f"SSIM {ident['ssim']:.3f}"
    if model is not None:
        m = result["mean"]["model"]
        line += f"; model {m['psnr']:.2f} dB / SSIM {m['ssim']:.3f}"
    if ssim_mode != "skimage":
        line += f" (scikit-image default SSIM: blurry {ident['ssim_skimage']:.3f}"
        line += f", model {result['mean']['model']['ssim_skimage']:.3f})" if model else ")"
    click.echo(line)
    if json_path:
        _write_json(json_path, result)
        console.print(f"wrote {json_path}")
    if csv_path:
        _write_csv(csv_path, result)
        console.print(f"wrote {csv_path}")


COMMANDS = [eval_]
