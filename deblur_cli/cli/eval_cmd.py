"""``deblur eval``: PSNR/SSIM on blurry/sharp pairs, measured as the published numbers were."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table

from ..atomic import atomic_path
from ..errors import InputError
from .common import console, describe, middle_ellipsis, model_options, open_model

# deblur_cli.train.metrics.SSIM_MODES (tests/test_cli.py checks they agree): the metrics
# module imports torch, which --help must not pay for.
SSIM_MODES = ("official", "skimage")


WIDE = 110  # below this many columns the tables drop the size column and stack headers


def _box(wide: bool) -> box.Box:
    # Without vertical rules a narrow table keeps 2 columns per cell for the names.
    return box.HEAVY_HEAD if wide else box.SIMPLE_HEAD


def _model_label(model: Any) -> str:
    path = model.weights.path if model.weights else None
    return Path(path).stem if path else "model"


def _image_table(title: str, rows: list[dict[str, Any]], wide: bool) -> Table:
    """A table starting with the image name and, when ``wide``, its size."""
    table = Table(title=title, title_justify="left", box=_box(wide))
    # A file name too long for the room left is shortened in its middle (_add_rows), never
    # broken across lines.
    table.add_column("image", no_wrap=True, overflow="ellipsis")
    if wide:
        table.add_column("size", justify="right")
    return table


def _add_rows(
    table: Table,
    rows: list[dict[str, Any]],
    mean: dict[str, Any],
    cells: Callable[[dict[str, Any]], list[str]],
    wide: bool,
    width: int,
) -> Table:
    """One line per image, then a bold mean line in its own section. Names longer than the
    room the other columns leave in ``width`` lose their middle."""
    blank = [""] if wide else []
    lines = [[f"{r['width']}x{r['height']}"] * wide + cells(r) for r in rows]
    lines.append(blank + cells(mean))
    others = 0
    for i, column in enumerate(table.columns[1:]):
        header = max(len(part) for part in str(column.header).split("\n"))
        others += max([header, *(len(line[i]) for line in lines)]) + 3  # padding, rule
    room = max(12, width - others - 4, len(f"mean of {len(rows)}"))
    for row, line in zip(rows, lines, strict=False):
        table.add_row(middle_ellipsis(row["name"], room), *line)
    table.add_section()
    table.add_row(f"mean of {len(rows)}", *lines[-1], style="bold")
    return table


def _render(result: dict[str, Any], label: str | None, width: int) -> Table:
    """Pairs table. ``label`` names the model column (None: identity only)."""
    wide = width >= WIDE
    sep = " " if wide else "\n"
    table = _image_table("PSNR (dB) / SSIM", result["images"], wide)
    table.add_column(f"identity{sep}PSNR", justify="right")
    table.add_column(f"identity{sep}SSIM", justify="right")
    if label:
        table.add_column(f"{label}{sep}PSNR", justify="right", style="bold")
        table.add_column(f"{label}{sep}SSIM", justify="right", style="bold")
        table.add_column("gain", justify="right")

    def cells(entry: dict[str, Any]) -> list[str]:
        identity = entry["identity"]
        out = [f"{identity['psnr']:.2f}", f"{identity['ssim']:.4f}"]
        if label:
            m = entry["model"]
            out += [f"{m['psnr']:.2f}", f"{m['ssim']:.4f}", f"{m['psnr'] - identity['psnr']:+.2f}"]
        return out

    return _add_rows(table, result["images"], result["mean"], cells, wide, width)


def _fmt_shift(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _render_sharp(check: dict[str, Any], label: str, width: int) -> Table:
    """Do-no-harm table: how much the model changes sharp photos."""
    from ..train.metrics import TONE_BANDS

    wide = width >= WIDE
    sep = " " if wide else "\n"
    limits = check["limits"]
    title = (
        f"do no harm: {label} on sharp photos (output vs input; tone shift in grey "
        f"levels, pass: |shift| <= {limits['max_shift']:g} and PSNR >= {limits['min_psnr']:g})"
    )
    table = _image_table(title, check["images"], wide)
    table.add_column(f"PSNR{sep}vs input", justify="right", style="bold")
    table.add_column(f"SSIM{sep}vs input", justify="right")
    table.add_column(f"tone{sep}shift", justify="right", style="bold")
    table.add_column("shadows", justify="right")
    table.add_column(f"mid-{sep}tones" if not wide else "mid-tones", justify="right")
    table.add_column(f"high-{sep}lights" if not wide else "highlights", justify="right")

    def cells(entry: dict[str, Any]) -> list[str]:
        shift = entry["shift"]
        return [
            f"{entry['psnr']:.2f}",
            f"{entry['ssim']:.4f}",
            _fmt_shift(shift["all"]),
            *(_fmt_shift(shift[b]) for b in TONE_BANDS),
        ]

    return _add_rows(table, check["images"], check["mean"], cells, wide, width)


def _sharp_summary(check: dict[str, Any], label: str) -> str:
    mean = check["mean"]
    line = (
        f"do no harm ({len(check['images'])} sharp images): {label} changes them by "
        f"{mean['shift']['all']:+.2f} grey levels on average (mid-tones "
        f"{_fmt_shift(mean['shift']['midtones'])}), {mean['psnr']:.2f} dB against the input: "
    )
    if check["passes"]:
        return line + "passes"
    return line + "HARM: " + "; ".join(check["problems"])


def _write_json(path: Path, result: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")


def _write_csv(path: Path, result: dict[str, Any]) -> None:
    """One row per pair (and MEAN); with a sharp check, its rows follow (kind = sharp)."""
    from ..train.metrics import TONE_BANDS

    pairs = result.get("images", [])
    with_model = "model" in result.get("mean", {})
    check = result.get("sharp_check")
    columns = ["name", "width", "height", "identity_psnr", "identity_ssim"]
    columns += ["psnr", "ssim"] if with_model else []
    if check:
        columns += ["kind", "psnr_vs_input", "ssim_vs_input", "tone_shift"]
        columns += [f"shift_{band}" for band in TONE_BANDS]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        rows = pairs + (
            [{"name": "MEAN", "width": "", "height": "", **result["mean"]}] if pairs else []
        )
        for row in rows:
            line = [row["name"], row["width"], row["height"]]
            line += [f"{row['identity']['psnr']:.4f}", f"{row['identity']['ssim']:.5f}"]
            if with_model:
                line += [f"{row['model']['psnr']:.4f}", f"{row['model']['ssim']:.5f}"]
            writer.writerow(line + (["pair"] if check else []))
        if check:
            mean_row = {"name": "MEAN sharp", "width": "", "height": "", **check["mean"]}
            for row in check["images"] + [mean_row]:
                line = [row["name"], row["width"], row["height"], "", ""]
                line += ["", ""] if with_model else []
                line += ["sharp", f"{row['psnr']:.4f}", f"{row['ssim']:.5f}"]
                line += [
                    "" if row["shift"][b] is None else f"{row['shift'][b]:.4f}"
                    for b in ("all", *TONE_BANDS)
                ]
                writer.writerow(line)


@click.command("eval")
@click.argument("data", type=str, required=False)
@model_options
@click.option(
    "--identity-only",
    is_flag=True,
    help="Score only the blurry input against the sharp image (no model is loaded).",
)
@click.option(
    "--sharp-check",
    is_flag=True,
    help="Do no harm: also run the model on the sharp/ images of DATA and report how much "
    "it changes them (PSNR vs input, tone shift in grey levels).",
)
@click.option(
    "--sharp",
    "sharp_dirs",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Do no harm on a folder of sharp photos (repeatable; DATA may then be left out).",
)
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
    data: str | None,
    weights: str | None,
    device: str,
    precision: str,
    tile: int | None,
    overlap: int | None,
    identity_only: bool,
    sharp_check: bool,
    sharp_dirs: tuple[Path, ...],
    blur_dir: str,
    ssim_mode: str,
    limit: int | None,
    json_path: Path | None,
    csv_path: Path | None,
) -> None:
    """PSNR/SSIM per image and mean, of the model beside the blurry input (identity).

    \b
    DATA: a folder with blur/ + sharp/ matched by name, or GOPRO scenes
    (DIR/<scene>/{blur_gamma|blur}/ + sharp/). The model is the bundled
    default unless --weights names another; --identity-only scores the
    blurry input alone.

    \b
    Do no harm (--sharp-check, --sharp DIR): a sharp photo must come back
    unchanged. The check runs the model on sharp images and reports PSNR/SSIM
    of the output against the input and the tone shift (mean output - mean
    input, grey levels; overall and for shadows / mid-tones / highlights). It
    passes at |mean shift| <= 0.5 levels and mean PSNR >= 34 dB; otherwise
    the summary line says HARM.

    \b
    Conventions of the official DeepDeblur-PyTorch code, used for its
    published numbers: outputs clamped to 0..255 and rounded before
    measuring; PSNR with data range 255 over all RGB pixels; SSIM with a
    Gaussian window (sigma 1.5, truncate 3.5, 11x11), K1 0.01, K2 0.03,
    population covariance, per RGB channel, no padding (= skimage
    structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=255)). The model runs in fp32 on
    whole images unless --precision/--tile say otherwise.

    \b
    Examples:
      deblur eval GOPRO_Large/test                  # bundled model vs identity
      deblur eval GOPRO_Large/test --identity-only  # the blurry input alone
      deblur eval pairs/ -w gopro.safetensors --sharp-check --json scores.json
      deblur eval --sharp holiday_photos/ --precision bf16
    """
    if data is None and not sharp_dirs:
        raise click.UsageError("give DATA (pairs) and/or --sharp DIR")
    if identity_only and (sharp_check or sharp_dirs):
        raise click.UsageError("--identity-only runs no model, so it cannot check sharp photos")
    if weights is not None and identity_only:
        raise click.UsageError("--identity-only runs no model: leave out --weights")
    if sharp_check and data is None:
        raise click.UsageError("--sharp-check uses the sharp/ images of DATA: give DATA")
    from ..train.data import PairSource, open_source, parse_spec
    from ..train.evaluate import check_sharp, evaluate_pairs

    # Inputs first: a bad folder should fail before the model loads.
    source = None
    root = None
    if data is not None:
        kind, root = parse_spec(data)
        source = open_source(data, blur_dir)
        if not isinstance(source, PairSource):
            raise InputError(
                f"{root}: eval needs aligned pairs (blur/ + sharp/ or GOPRO scenes), "
                f"found {source.kind}; for sharp photos use --sharp {root}"
            )
    sharp_paths: list[Path] = []
    if sharp_check and source is not None:
        sharp_paths += [sharp for _, sharp in (source.pairs[:limit] if limit else source.pairs)]
    for folder in sharp_dirs:
        sharp_paths += _sharp_photos(folder)

    model = None
    label = None
    if not identity_only:
        precision = "fp32" if precision == "auto" else precision
        model = open_model(weights, device, precision, 0 if tile is None else tile, overlap)
        label = _model_label(model)
        console.print(f"[dim]{describe(model)}[/dim]")
    out = Console()
    result: dict[str, Any] = {}
    if source is not None:
        with console.status("measuring…") as status:

            def progress(i: int, n: int, name: str) -> None:
                status.update(f"measuring {i + 1}/{n}: {name}")

            result = evaluate_pairs(
                source, model, ssim_mode=ssim_mode, limit=limit, progress=progress
            )
        result["data"] = str(root)
    result["weights"] = label if model is not None and weights is None else weights
    result["conventions"] = {
        "clamp_round": True,
        "data_range": 255,
        "ssim": ssim_mode,
        "precision": model.precision if model else None,
    }
    if source is not None:
        out.print(_render(result, label, out.width))
        ident = result["mean"]["identity"]
        line = f"mean over {len(result['images'])} pairs: identity (blurry input) "
        line += f"{ident['psnr']:.2f} dB / SSIM {ident['ssim']:.3f}"
        if model is not None:
            m = result["mean"]["model"]
            line += f"; {label} {m['psnr']:.2f} dB / SSIM {m['ssim']:.3f}"
            line += f" ({m['psnr'] - ident['psnr']:+.2f} dB)"
        if ssim_mode != "skimage":
            line += f" (scikit-image default SSIM: identity {ident['ssim_skimage']:.3f}"
            line += f", {label} {result['mean']['model']['ssim_skimage']:.3f})" if model else ")"
        click.echo(line)
    if sharp_paths and model is not None:
        with console.status("checking sharp photos…") as status:

            def progress_sharp(i: int, n: int, name: str) -> None:
                status.update(f"do no harm {i + 1}/{n}: {name}")

            check = check_sharp(sharp_paths, model, progress=progress_sharp)
        check["data"] = [str(p) for p in ([root] if sharp_check else []) + list(sharp_dirs)]
        result["sharp_check"] = check
        out.print(_render_sharp(check, label or "model", out.width))
        click.echo(_sharp_summary(check, label or "model"))
    if json_path:
        _write_json(json_path, result)
        console.print(f"wrote {json_path}")
    if csv_path:
        _write_csv(csv_path, result)
        console.print(f"wrote {csv_path}")


def _sharp_photos(folder: Path) -> list[Path]:
    """The images of a --sharp folder (or of its sharp/ subfolder), as ``identity:DIR``."""
    from ..train.identity import identity_photos

    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    photos = identity_photos(folder)
    if not photos:
        raise InputError(f"{folder}: no images found")
    return photos


COMMANDS = [eval_]
