"""Engine benchmark: fused vs eager network, tiling overhead, seams, and a 24 MP photo.

Variants that are compared run in the SAME process, interleaved (A B, B A, A B, ...), so a
busy machine slows them alike; each comparison reports the medians, the median of the
per-pair ratios and their spread (min–max). Absolute times on a shared machine are noisy:
quote the ratios. Every section runs in a fresh subprocess, so peak RSS belongs to it.

    python benchmarks/bench_engine.py                          # everything (several minutes)
    python benchmarks/bench_engine.py --sections fused --configs light --precisions bf16
    python benchmarks/bench_engine.py --sections big --big-format png
    python benchmarks/bench_engine.py --sections fused --compile   # + torch.compile variant
    python benchmarks/bench_engine.py --sections fused,batch --configs light --precisions int8
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/bench_engine.py ...
        # emulates an AVX2-only CPU (no VNNI, no native bf16) on a newer one: the header
        # names the CPU kind oneDNN then uses

Sections
- ``fused``: the engine's fused path (deblur_cli/fused.py) against eager PyTorch, whole
  720p frame, with the largest uint8 difference between their outputs (and against eager
  fp32). ``light`` uses the bundled default weights; other configs random weights.
  ``int8`` rows compare the int8 runner (deblur_cli/quantize.py, the bundled calibration
  for ``light``, one made on the example photos otherwise) with eager **fp32**, and add the
  PSNR of its output against eager fp32.
- ``batch``: ``deblur batch`` (the CLI, a fresh process, ``--precision`` each of
  ``--precisions``) on 10 720p frames against the eager fp32 forward of one frame: seconds
  per frame and their ratio (issue #23 asks <= 0.75x for int8 where there is no bf16).
- ``tiles``: whole image against a forced ``--tile`` on the same frame (overhead of the
  re-computed overlaps). A plan that is one tile has no overhead and gets no figure.
- ``seams``: PSNR of ``--tile 256`` against whole-image inference, per precision.
- ``big``: a real photo upscaled to 6000x4000 (24 MP), read → deblur (automatic tiles) →
  written as JPEG or PNG, as ``deblur image`` does it: time per phase, peak RSS and cores
  used (user+sys CPU / wall, per phase and over the run). Run it on an idle machine: other
  processes taking turns on the cores lower CPU / wall. (An earlier CPU / main-thread column
  is gone: the PNG encode now runs on worker threads, which that ratio cannot see.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
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
DEFAULT_FRAMES = ROOT.parent / "shared/data/frames/GOPR0477_11_00"
BATCH_FRAMES = 10
GIB = 2**30


# --------------------------------------------------------------------------- child process


def _net(config: str):
    """The bundled default's trained weights for ``light``, seeded random ones otherwise;
    the weight file's path (None for random weights: its int8 calibration is made on first
    use)."""
    import torch

    from deblur_cli.model import CONFIGS, ModelConfig, build_model
    from deblur_cli.weights import load_weight_file

    parsed = ModelConfig.parse(config)
    if parsed == CONFIGS["light"]:
        default = load_weight_file(None)
        if default.config == parsed:
            net = build_model(parsed)
            net.load_state_dict(default.state_dict)
            return net, "bundled weights", default.path
    torch.manual_seed(0)
    net = build_model(parsed)
    for scale in net.body_models:  # residual nets start as the identity: make them compute
        scale.body[-1].reset_parameters()
    return net, "random weights", None


def _model(config: str, precision: str, fused: bool, tile: int | None = None):
    """The engine at ``precision``; unfused, int8 means eager fp32 (what int8 replaces)."""
    import copy

    import torch

    from deblur_cli.engine import choose_precision, prepare
    from deblur_cli.quantize import ensure_calibration
    from deblur_cli.runtime import tune_allocator

    tune_allocator()
    net, source, path = _net(config)
    cpu = torch.device("cpu")
    dtype = choose_precision(cpu, precision)
    int8 = ensure_calibration(net, path) if precision == "int8" and fused else None
    model = prepare(copy.deepcopy(net), cpu, dtype, tile=tile, fused=fused, int8=int8)
    return model, source


def _interleave(variants: dict, repeats: int) -> dict[str, list[float]]:
    """Time each callable ``repeats`` times, alternating the order every round; one warm-up
    call each first (oneDNN builds its primitives on the first call)."""
    for run in variants.values():
        run()
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - start)
    return times


def _max_diff(a, b) -> int:
    import numpy as np

    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def child_fused(case: dict) -> dict:
    from deblur_cli.io.images import read_image

    pixels, _ = read_image(case["photo"])
    eager, source = _model(case["config"], case["precision"], fused=False, tile=0)
    fused, _ = _model(case["config"], case["precision"], fused=True, tile=0)
    variants = {"eager": lambda: eager(pixels), "fused": lambda: fused(pixels)}
    if case.get("compile"):
        variants["compiled"] = _compiled(eager, pixels)
    times = _interleave(variants, case["repeats"])
    out = {name: run() for name, run in variants.items()}
    result = {"times": times, "source": source, "backend": fused.backend}
    result["diff"] = {name: _max_diff(out[name], out["eager"]) for name in out}
    if case["precision"] == "int8":  # eager is fp32 here
        result["psnr_fp32"] = _psnr(out["fused"], out["eager"])
    elif case["precision"] != "fp32":
        reference, _ = _model(case["config"], "fp32", fused=False, tile=0)
        result["diff_fp32"] = {name: _max_diff(out[name], reference(pixels)) for name in out}
    result["megapixels"] = pixels.shape[0] * pixels.shape[1] / 1e6
    return result


def _psnr(a, b) -> float:
    from deblur_cli.quantize import psnr

    return psnr(a, b)


def _compiled(model, pixels):
    """torch.compile (inductor, freezing) of the eager network, for comparison only."""
    import copy

    import torch
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    twin = copy.copy(model)
    twin.stats = {}
    twin.runner = torch.compile(model.net)
    start = time.perf_counter()
    twin(pixels)
    print(f"compile: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return lambda: twin(pixels)


def child_tiles(case: dict) -> dict:
    from deblur_cli.engine import plan_tiles
    from deblur_cli.io.images import read_image

    pixels, _ = read_image(case["photo"])
    model, source = _model(case["config"], case["precision"], fused=True)
    plan = plan_tiles(*pixels.shape[:2], case["tile"], model.overlap, model.config.size_multiple)
    result = {"source": source, "tiles": f"{len(plan)} × {plan.tile_h}x{plan.tile_w}"}
    if len(plan) == 1:
        result["times"] = {}
        return result
    variants = {
        "whole": lambda: model(pixels, tile=0),
        "tiled": lambda: model(pixels, tile=case["tile"]),
    }
    result["times"] = _interleave(variants, case["repeats"])
    return result


def child_seams(case: dict) -> dict:

    from deblur_cli.io.images import read_image

    pixels, _ = read_image(case["photo"])
    model, _ = _model(case["config"], case["precision"], fused=True)
    whole = model(pixels, tile=0)
    tiled = model(pixels, tile=case["tile"])
    return {"psnr": _psnr(whole, tiled), "tiles": model.stats["tiles"], "ran": model.precision}


def child_batch(case: dict) -> dict:
    """Eager fp32 forward of one frame (median of ``repeats``), then ``deblur batch`` on
    ``frames`` copies of frames as a fresh CLI process: wall time per frame, model load
    included (it is part of what a user waits for)."""
    import os
    import shutil

    from deblur_cli.io.images import read_image

    pixels, _ = read_image(case["frames"][0])
    eager, source = _model(case["config"], "fp32", fused=False, tile=0)
    eager(pixels)
    times: list[float] = []

    def time_eager(rounds: int) -> None:
        for _ in range(rounds):
            start = time.perf_counter()
            eager(pixels)
            times.append(time.perf_counter() - start)

    time_eager((case["repeats"] + 1) // 2)  # half before the batch, half after: same load
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        for path in case["frames"]:
            shutil.copy(path, src / Path(path).name)
        command = [sys.executable, "-m", "deblur_cli", "batch", str(src), "-o", str(dst),
                   "--precision", case["precision"], "--device", "cpu"]  # fmt: skip
        env = dict(os.environ, DEBLUR_COMPILE="0")
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1])
        ran = next((line for line in proc.stderr.splitlines() if " on cpu " in line), "?")
        time_eager(case["repeats"] // 2)
        # The summary's own clock (first file to last, model loaded): the figure compared.
        seconds = re.search(r"\btime\s*\S*\s*([0-9.]+) s", proc.stderr)
    return {
        "source": source,
        "eager": statistics.median(times),
        "eager_times": times,
        "batch": float(seconds.group(1)) / len(case["frames"]) if seconds else float("nan"),
        "wall": wall / len(case["frames"]),
        "frames": len(case["frames"]),
        "ran": ran.split(" on cpu ", 1)[-1].strip(),
        "megapixels": pixels.shape[0] * pixels.shape[1] / 1e6,
    }


def child_big(case: dict) -> dict:
    """One 24 MP photo as 'deblur image' runs it, with CPU accounting per phase."""
    from deblur_cli.engine import deblur_array
    from deblur_cli.io.images import write_image
    from deblur_cli.photos import read_input

    model, source = _model(case["config"], case["precision"], fused=True)
    phases: dict[str, dict[str, float]] = {}
    clock = {"wall": time.perf_counter(), "cpu": time.process_time(), "main": time.thread_time()}

    def mark(name: str) -> None:
        now = {"wall": time.perf_counter(), "cpu": time.process_time(), "main": time.thread_time()}
        phases[name] = {key: now[key] - clock[key] for key in now}
        clock.update(now)

    tile_starts: list[float] = []
    start = time.perf_counter()
    pixels, info = read_input(case["photo"])
    mark("decode")
    result = deblur_array(
        model, pixels, progress=lambda d, t: tile_starts.append(time.perf_counter())
    )
    mark("deblur")
    write_image(case["out"], result, info)
    mark("encode")
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "source": source,
        "phases": phases,
        "wall": wall,
        "cpu": sum(p["cpu"] for p in phases.values()),
        "main": sum(p["main"] for p in phases.values()),
        "peak_rss": usage.ru_maxrss * 1024,
        "tiles": f"{model.stats['tiles']} × {model.stats['tile_h']}x{model.stats['tile_w']}",
        "megapixels": pixels.shape[0] * pixels.shape[1] / 1e6,
    }


CHILDREN = {
    "fused": child_fused,
    "tiles": child_tiles,
    "seams": child_seams,
    "big": child_big,
    "batch": child_batch,
}


# --------------------------------------------------------------------------- parent


def run_case(case: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(case)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def processor() -> str:
    """The CPU's name and the features that decide bf16 speed, from lscpu, and the CPU kind
    oneDNN uses (lower than the hardware's under ``ONEDNN_MAX_CPU_ISA``)."""
    from deblur_cli.quantize import cpu_isa, cpu_kind

    kind = f"oneDNN ISA {cpu_isa()}: {cpu_kind()}"
    if cpu_isa() != cpu_isa(env={}):
        kind += f" (emulated: ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA')})"
    return f"{_lscpu()}; {kind}"


def _lscpu() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor() or "unknown CPU"
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    name = fields.get("Model name", "?").strip()
    family, model = fields.get("CPU family", "").strip(), fields.get("Model", "").strip()
    if family and model:
        name += f" (family {family} model {model})"
    flags = fields.get("Flags", "").split()
    isa = [f for f in ("amx_bf16", "avx512_bf16", "avx512f", "avx2") if f in flags]
    cpus = fields.get("CPU(s)", "?").strip()
    return f"{name}, {cpus} CPUs, {'/'.join(isa[:2]) or 'no AVX-512'}"


def spread(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}–{max(ratios):.2f})"


def pair_ratios(slow: list[float], fast: list[float]) -> list[float]:
    return [s / f for s, f in zip(slow, fast, strict=True)]


def make_big(photo: Path, folder: Path, size: tuple[int, int], suffix: str) -> Path:
    """A real photo upscaled to ``size`` (24 MP for 6000x4000)."""
    import cv2

    image = cv2.imread(str(photo), cv2.IMREAD_COLOR)
    big = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    path = folder / f"big_{size[0]}x{size[1]}{suffix}"
    params = (
        [cv2.IMWRITE_PNG_COMPRESSION, 1] if suffix == ".png" else [cv2.IMWRITE_JPEG_QUALITY, 92]
    )
    cv2.imwrite(str(path), big, params)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per comparison")
    parser.add_argument("--configs", nargs="+", default=["light", "paper"], metavar="CONFIG",
                        help="names (light, paper) or S,B,F,K[,res] specs")  # fmt: skip
    parser.add_argument("--precisions", default="bf16,fp32")
    parser.add_argument("--sections", default="fused,tiles,seams,big")
    parser.add_argument(
        "--frames",
        type=Path,
        default=DEFAULT_FRAMES,
        help="folder of 720p frames for 'batch' (the first 10 are used)",
    )
    parser.add_argument("--tile", type=int, default=512, help="forced tile of 'tiles'")
    parser.add_argument("--seam-tile", type=int, default=256)
    parser.add_argument("--big-format", choices=["jpg", "png"], default="jpg")
    parser.add_argument("--big-configs", nargs="+", default=["light"], metavar="CONFIG")
    parser.add_argument(
        "--compile", action="store_true", help="add a torch.compile variant to 'fused'"
    )
    args = parser.parse_args()
    if args.child:
        case = json.loads(args.child)
        print(json.dumps(CHILDREN[case["kind"]](case)))
        return

    import torch
    from rich.console import Console
    from rich.table import Table

    if not args.photo.exists():
        sys.exit(f"photo not found: {args.photo} (pass --photo)")
    console = Console(width=160)
    sections = args.sections.split(",")
    precisions = args.precisions.split(",")
    console.print(
        f"[bold]{processor()}[/bold]; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; photo {args.photo.name}"
    )
    base = dict(photo=str(args.photo), repeats=args.repeats)

    if "fused" in sections:
        table = Table(title="fused vs eager engine, whole frame (interleaved, medians)")
        columns = ("config", "precision", "weights", "eager s", "fused s", "fused vs eager",
                   "compiled s", "compiled vs eager", "max |Δ| vs eager",
                   "vs eager fp32")  # fmt: skip
        for name in columns:
            table.add_column(name, justify="left" if name in ("config", "weights") else "right")
        for config in args.configs:
            for precision in precisions:
                console.print(f"[dim]fused: {config} {precision}…[/dim]")
                case = dict(base, kind="fused", config=config, precision=precision,
                            compile=args.compile)  # fmt: skip
                r = run_case(case)
                if "error" in r:
                    table.add_row(config, precision, "error: " + r["error"][:60])
                    continue
                t = r["times"]
                compiled = ("", "")
                if "compiled" in t:
                    compiled = (f"{statistics.median(t['compiled']):.3f}",
                                spread(pair_ratios(t["eager"], t["compiled"])))  # fmt: skip
                diffs = ", ".join(f"{k} {v}" for k, v in r["diff"].items() if k != "eager")
                if "psnr_fp32" in r:
                    diffs += f" ({r['psnr_fp32']:.1f} dB)"
                diff32 = ", ".join(f"{k} {v}" for k, v in r.get("diff_fp32", {}).items())
                table.add_row(config, precision, r["source"],
                              f"{statistics.median(t['eager']):.3f}",
                              f"{statistics.median(t['fused']):.3f}",
                              spread(pair_ratios(t["eager"], t["fused"])), *compiled,
                              diffs, diff32 or "(eager is fp32)")  # fmt: skip
        console.print(table)

    if "tiles" in sections:
        table = Table(title=f"tiling overhead: --tile {args.tile} vs whole frame (fused)")
        for name in ("config", "precision", "tiles", "whole s", "tiled s", "tiled / whole"):
            table.add_column(name, justify="left" if name == "config" else "right")
        for config in args.configs:
            for precision in precisions:
                console.print(f"[dim]tiles: {config} {precision}…[/dim]")
                r = run_case(dict(base, kind="tiles", config=config, precision=precision,
                                  tile=args.tile))  # fmt: skip
                if "error" in r:
                    table.add_row(config, precision, "error: " + r["error"][:60])
                elif not r["times"]:  # one tile is the whole image: nothing to compare
                    table.add_row(config, precision, r["tiles"], "", "", "one tile: none")
                else:
                    t = r["times"]
                    table.add_row(config, precision, r["tiles"],
                                  f"{statistics.median(t['whole']):.3f}",
                                  f"{statistics.median(t['tiled']):.3f}",
                                  spread(pair_ratios(t["tiled"], t["whole"])))  # fmt: skip
        console.print(table)

    if "seams" in sections:
        for config in args.configs:
            for precision in precisions:
                r = run_case(dict(base, kind="seams", config=config, precision=precision,
                                  tile=args.seam_tile))  # fmt: skip
                if "error" in r:
                    console.print(f"seams {config} {precision}: error {r['error']}")
                else:
                    console.print(f"seams, {config} {r['ran']}: --tile {args.seam_tile} "
                                  f"({r['tiles']} tiles) vs whole image: "
                                  f"PSNR {r['psnr']:.1f} dB")  # fmt: skip

    if "batch" in sections:
        frames = sorted(args.frames.glob("*.jpg")) + sorted(args.frames.glob("*.png"))
        frames = [str(p) for p in frames[:BATCH_FRAMES]]
        table = Table(title=f"deblur batch on {len(frames)} frames of {args.frames.name} vs the "
                      "eager fp32 forward of one frame (model load included)")  # fmt: skip
        for name in ("config", "--precision", "ran as", "eager fp32 s/frame", "batch s/frame",
                     "batch / eager fp32", "s/frame incl. start-up"):  # fmt: skip
            table.add_column(name, justify="left" if name in ("config", "ran as") else "right")
        for config in args.configs:
            for precision in precisions:
                console.print(f"[dim]batch: {config} {precision}…[/dim]")
                r = run_case(dict(base, kind="batch", config=config, precision=precision,
                                  frames=frames))  # fmt: skip
                if "error" in r:
                    table.add_row(config, precision, "error: " + r["error"][:60])
                    continue
                table.add_row(config, precision, r["ran"], f"{r['eager']:.3f}",
                              f"{r['batch']:.3f}", f"{r['batch'] / r['eager']:.2f}x",
                              f"{r['wall']:.3f}")  # fmt: skip
        console.print(table)

    if "big" in sections:
        table = Table(title=f"24 MP photo end to end ({args.big_format.upper()} in and out, "
                      "automatic tiles, fused, precision auto)")  # fmt: skip
        columns = ("config", "tiles", "wall s", "decode s", "deblur s", "encode s", "peak RSS",
                   "cores used (CPU/wall)")  # fmt: skip
        for name in columns:
            table.add_column(name, justify="left" if name == "config" else "right")
        with tempfile.TemporaryDirectory() as tmp:
            big = make_big(args.photo, Path(tmp), (6000, 4000), f".{args.big_format}")
            for config in args.big_configs:
                console.print(f"[dim]big: {config}…[/dim]")
                out = Path(tmp) / f"out.{args.big_format}"
                r = run_case(dict(base, kind="big", config=config, precision="auto",
                                  photo=str(big), out=str(out)))  # fmt: skip
                if "error" in r:
                    table.add_row(config, "error: " + r["error"][:60])
                    continue
                p = r["phases"]
                cells = [f"{p[k]['wall']:.2f} ({p[k]['cpu'] / p[k]['wall']:.1f} cores)"
                         for k in ("decode", "deblur", "encode")]  # fmt: skip
                table.add_row(config, r["tiles"], f"{r['wall']:.1f}", *cells,
                              f"{r['peak_rss'] / GIB:.2f} GiB",
                              f"{r['cpu'] / r['wall']:.2f}")  # fmt: skip
        console.print(table)


if __name__ == "__main__":
    main()
