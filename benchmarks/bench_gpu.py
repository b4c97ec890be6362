"""GPU speed of the engine on a 720p frame: paper and light nets, per precision and path,
and how many frames per forward pass keep the GPU busy.

    python benchmarks/bench_gpu.py --photo frame_720p.png            # needs CUDA

Everything is timed end to end through the public API (uint8 frame in, uint8 frame out,
host-device copies included), whole frame (no tiles), after warm-up, variants interleaved
within each round; medians and min-max over rounds. ``cudnn.benchmark`` lets cuDNN time its
convolution algorithms for each new shape once; it is measured on and off.
The paper net (19 ResBlocks of 64 features, 5x5 kernels, 3 scales) runs on random weights:
speed does not depend on the values.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from bench_engine import _net as bench_engine_net  # benchmarks/ is on sys.path as a script

from deblur_cli.engine import choose_precision, deblur_array, deblur_frames, prepare
from deblur_cli.io.images import read_image

DEFAULT_PHOTO = Path(__file__).resolve().parents[1] / "deblur_cli" / "examples" / "blurry.png"


def _net(config: str) -> torch.nn.Module:
    """bench_engine's choice: the bundled weights for ``light``, seeded random ones else."""
    return bench_engine_net(config)[0]


def _frame(photo: Path, height: int = 720, width: int = 1280) -> np.ndarray:
    pixels, _ = read_image(photo)
    reps = (-(-height // pixels.shape[0]), -(-width // pixels.shape[1]), 1)
    return np.ascontiguousarray(np.tile(pixels[..., :3], reps)[:height, :width])


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _time(variants: dict, rounds: int) -> dict[str, list[float]]:
    for flag, run in variants.values():  # warm-up: cuDNN's autotuning happens here
        torch.backends.cudnn.benchmark = flag
        run()
        run()
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            flag, run = variants[name]
            torch.backends.cudnn.benchmark = flag
            _sync()
            start = time.perf_counter()
            run()
            _sync()
            times[name].append(time.perf_counter() - start)
    return times


def _row(name: str, seconds: list[float], frames: int = 1) -> str:
    per = [s / frames for s in seconds]
    med = statistics.median(per)
    return (
        f"| {name} | {1000 * med:.1f} ms | {1000 * min(per):.1f}-{1000 * max(per):.1f} "
        f"| {1 / med:.0f} fps |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--configs", nargs="+", default=["paper", "light"])
    parser.add_argument("--precisions", default="fp16,bf16,fp32")
    parser.add_argument("--batches", default="1,2,4,8,16", help="frames per forward pass")
    parser.add_argument("--size", default="1280x720", help="frame WIDTHxHEIGHT")
    parser.add_argument("--device", default="cuda", help="cuda (cpu only to try the script)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device")
    width, height = (int(v) for v in args.size.split("x"))
    frame = _frame(args.photo, height, width)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(
        f"{name}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
        f"frame {frame.shape[1]}x{frame.shape[0]}"
    )
    print("\n| config / precision / path / cudnn.benchmark | median per frame | min-max | rate |")
    print("|---|---|---|---|")
    outputs: dict[str, np.ndarray] = {}
    for config in args.configs:
        net = _net(config)
        for precision in args.precisions.split(","):
            dtype = choose_precision(device, precision)
            variants = {}
            for fused in (False, True):
                model = prepare(copy.deepcopy(net), device, dtype, tile=0, fused=fused)
                path = "fused" if fused else "eager"
                for flag in (False, True):
                    name = f"{config} {precision} {path} {'on' if flag else 'off'}"
                    variants[name] = (flag, lambda m=model: deblur_array(m, frame))
            times = _time(variants, args.rounds)
            for name, seconds in times.items():
                print(_row(name, seconds), flush=True)
            outputs[f"{config} {precision}"] = variants[name][1]()
            del variants
            if device.type == "cuda":
                torch.cuda.empty_cache()
        ref = outputs.get(f"{config} fp32")
        if ref is not None:
            for key, out in outputs.items():
                if key.startswith(config + " ") and out is not ref:
                    diff = int(np.abs(out.astype(np.int16) - ref.astype(np.int16)).max())
                    print(f"|   {key} vs fp32: max {diff} grey levels | | | |")

    print("\n| frames per pass (deblur_frames), cudnn.benchmark on | per frame | min-max | rate |")
    print("|---|---|---|---|")
    torch.backends.cudnn.benchmark = True
    for config in args.configs:
        precision = "fp16" if device.type == "cuda" else "bf16"
        model = prepare(_net(config), device, choose_precision(device, precision), tile=0)
        variants = {}
        for n in (int(b) for b in args.batches.split(",")):
            frames = [frame] * n
            run = lambda f=frames, m=model: deblur_frames(m, f)  # noqa: E731
            variants[f"{config} {precision} x{n}"] = (True, run)
        times = _time(variants, max(5, args.rounds // 2))
        for name, seconds in times.items():
            print(_row(name, seconds, int(name.rsplit("x", 1)[1])), flush=True)
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated() / 2**30
            print(f"|   peak GPU memory so far: {peak:.1f} GiB | | | |")
            torch.cuda.empty_cache()
        del model, variants


if __name__ == "__main__":
    main()
