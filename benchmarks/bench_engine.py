"""Engine benchmark: megapixels/s of whole-image vs tiled inference, fp32 vs bf16, peak RSS.

Every case runs in a fresh subprocess, so its peak RSS (``ru_maxrss``) belongs to that case
alone. Weights are random (speed and memory do not depend on their values). Also measures
the seams (PSNR of 256-px tiles vs the whole image) and a 24-megapixel photo end to end
(read, deblur with automatic tiles, write) on CPU.

    python benchmarks/bench_engine.py                      # everything (several minutes)
    python benchmarks/bench_engine.py --no-big --repeats 5 # skip the 24 MP cases
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTO = (
    ROOT.parent / "shared/data/eval/gopro_style_train_scenes/blur"
    "/GOPR0374_11_00_st_frame-1195_n_avg-8.png"
)


# --------------------------------------------------------------------------- child process


def _model(config: str, precision: str, tile: int | None):
    import torch

    from deblur_cli.engine import choose_precision, prepare
    from deblur_cli.model import ModelConfig, build_model
    from deblur_cli.runtime import tune_allocator

    tune_allocator()
    torch.manual_seed(0)
    net = build_model(ModelConfig.parse(config))
    for scale in net.body_models:  # residual nets start as the identity: make them compute
        scale.body[-1].reset_parameters()
    cpu = torch.device("cpu")
    return prepare(net, cpu, choose_precision(cpu, precision), tile=tile)


def child(case: dict) -> dict:
    """Run one case and report times, tiles and this process's peak RSS."""
    from deblur_cli.engine import auto_tile
    from deblur_cli.io.images import read_image
    from deblur_cli.photos import deblur_file

    model = _model(case["config"], case["precision"], case["tile"])
    result: dict = {"auto_tile": auto_tile(model)}
    if case["kind"] == "speed":
        pixels, _ = read_image(case["photo"])
        times, cpu_times = [], []
        for i in range(case["repeats"] + 1):
            start, cpu_start = time.perf_counter(), time.process_time()
            model(pixels)
            if i:  # the first run builds oneDNN primitives: a warm-up, not a measurement
                times.append(time.perf_counter() - start)
                cpu_times.append(time.process_time() - cpu_start)
        result["times"], result["cpu_times"] = times, cpu_times
    elif case["kind"] == "seams":
        import numpy as np

        pixels, _ = read_image(case["photo"])
        whole = model(pixels, tile=0).astype(np.float64)
        tiled = model(pixels, tile=case["seam_tile"]).astype(np.float64)
        mse = float(np.mean((whole - tiled) ** 2))
        result["psnr"] = 99.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))
        result["times"] = [0.0]
    elif case["kind"] == "partial":  # the first tiles of a big photo: too slow to finish here
        from deblur_cli.engine import deblur_array

        class Enough(Exception):
            pass

        def stop_after(done: int, total: int) -> None:
            result["tiles_run"] = f"{done} of {total}"
            if done >= case["max_tiles"]:
                raise Enough

        from deblur_cli.engine import plan_tiles

        pixels, _ = read_image(case["photo"])
        plan = plan_tiles(*pixels.shape[:2], auto_tile(model), model.overlap,
                          model.config.size_multiple)  # fmt: skip
        model.stats.update(tile_h=plan.tile_h, tile_w=plan.tile_w)
        start = time.perf_counter()
        try:
            deblur_array(model, pixels, progress=stop_after)
        except Enough:
            pass
        result["times"] = [time.perf_counter() - start]
        result["tiles"] = result["tiles_run"]
    else:  # "file": a big photo end to end, as 'deblur image' runs it
        start = time.perf_counter()
        pixels, _ = deblur_file(model, case["photo"], case["out"])
        result["times"] = [time.perf_counter() - start]
    result["megapixels"] = pixels.shape[0] * pixels.shape[1] / 1e6
    result.setdefault("tiles", model.stats.get("tiles", 1))
    result["tile"] = [model.stats.get("tile_h"), model.stats.get("tile_w")]
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


# --------------------------------------------------------------------------- parent


def run_case(case: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(case)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": tail}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_big(photo: Path, folder: Path, size: tuple[int, int]) -> Path:
    """A real photo upscaled to ``size`` (24 MP for 6000x4000), written as PNG."""
    import cv2

    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    big = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    path = folder / f"big_{size[0]}x{size[1]}.png"
    cv2.imwrite(str(path), big, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per case")
    parser.add_argument(
        "--configs",
        nargs="+",
        default=["light", "paper"],
        metavar="CONFIG",
        help="names (light, paper) or S,B,F,K[,res] specs, e.g. --configs light 3,4,32,3,res",
    )
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--big", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--only-big", action="store_true", help="just the 24 MP cases")
    parser.add_argument(
        "--big-max-tiles",
        default="",
        metavar="CONFIG=N,...",
        help="stop these configs' 24 MP runs after N tiles (peak RSS is reached in the first "
        "tiles; for slow CPUs), e.g. paper=2",
    )
    parser.add_argument("--seam-tile", type=int, default=256)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return

    from rich.console import Console
    from rich.table import Table

    if not args.photo.exists():
        sys.exit(f"photo not found: {args.photo} (pass --photo)")
    console = Console(width=150)
    rows = []
    configs = args.configs
    for config in [] if args.only_big else configs:
        for precision in args.precisions.split(","):
            for label, tile in (("whole", 0), ("auto tiles", None)):
                case = dict(kind="speed", config=config, precision=precision, tile=tile,
                            photo=str(args.photo), repeats=args.repeats)  # fmt: skip
                console.print(f"[dim]{config} {precision} {label}…[/dim]")
                rows.append((case, label, run_case(case)))
    seams = []
    for config in [] if args.only_big else configs:
        case = dict(kind="seams", config=config, precision="auto", tile=None,
                    photo=str(args.photo), seam_tile=args.seam_tile)  # fmt: skip
        console.print(f"[dim]{config} seams at --tile {args.seam_tile}…[/dim]")
        seams.append((config, run_case(case)))
    if args.big:
        with tempfile.TemporaryDirectory() as tmp:
            big = make_big(args.photo, Path(tmp), (6000, 4000))
            limits = dict(item.split("=") for item in args.big_max_tiles.split(",") if item)
            for config in configs:
                case = dict(kind="file", config=config, precision="auto", tile=None,
                            photo=str(big), out=str(Path(tmp) / f"out_{config}.png"))  # fmt: skip
                label = "24 MP file, auto tiles"
                if config in limits:
                    case.update(kind="partial", max_tiles=int(limits[config]))
                    label = f"24 MP, auto tiles, first {limits[config]} only"
                console.print(f"[dim]{config} 24 MP auto tiles…[/dim]")
                rows.append((case, label, run_case(case)))

    table = Table(title=f"deblur engine on CPU: {args.photo.name} (medians, warm-up excluded)")
    for name in ("config", "precision", "image", "mode", "tiles", "wall s", "MP/s", "CPU s",
                 "vs whole (CPU)", "peak RSS"):  # fmt: skip
        table.add_column(name, justify="right" if name not in ("config", "mode") else "left")
    whole_time: dict[tuple[str, str], float] = {}
    for case, label, result in rows:
        if "error" in result:
            table.add_row(case["config"], case["precision"], "", label, "", "error",
                          result["error"][:40], "", "", "")  # fmt: skip
            continue
        median = statistics.median(result["times"])
        # CPU seconds of this process: on a shared machine they track the work done far
        # better than wall time, so the tiling overhead is judged on them.
        cpu = statistics.median(result["cpu_times"]) if result.get("cpu_times") else None
        key = (case["config"], case["precision"])
        if case["kind"] == "speed" and case["tile"] == 0 and cpu:
            whole_time[key] = cpu
        ratio = ""
        if case["kind"] == "speed" and case["tile"] is None and key in whole_time and cpu:
            ratio = f"{cpu / whole_time[key] - 1:+.0%}"
        tile_h, tile_w = result["tile"]
        if tile_h is None:  # stopped before the engine recorded its plan
            tile_h = tile_w = result["auto_tile"]
        tiles = f"{result['tiles']} × {tile_h}x{tile_w}"
        precision = case["precision"]
        rate = "" if case["kind"] == "partial" else f"{result['megapixels'] / median:.2f}"
        table.add_row(case["config"], precision, f"{result['megapixels']:.1f} MP", label, tiles,
                      f"{median:.2f}", rate, f"{cpu:.2f}" if cpu else "", ratio,
                      f"{result['peak_rss_mb'] / 1024:.2f} GB")  # fmt: skip
    console.print(table)
    for config, result in seams:
        if "error" in result:
            console.print(f"seams {config}: error {result['error']}")
        else:
            console.print(
                f"seams, {config} config, --tile {args.seam_tile} ({result['tiles']} tiles) vs "
                f"whole image: PSNR {result['psnr']:.1f} dB"
            )


if __name__ == "__main__":
    main()
