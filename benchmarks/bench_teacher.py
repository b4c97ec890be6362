"""Where the time of distillation goes: the teacher's forward pass against the student's step.

    python benchmarks/bench_teacher.py                       # DMPHN teacher, light student
    python benchmarks/bench_teacher.py --students light 3,9,32,5,res --rounds 5

Per 256 px crop (the bank's crop) and per 720p frame: the DMPHN(1-2-4) teacher's forward pass
in fp32 and bf16, each student's forward pass and its training step (forward + backward +
Adam, batch 8 of 128 px patches, bf16 autocast as ``deblur train --amp bf16``). The ratio
"teacher per taught patch / student step" says whether labelling online (``deblur train
--teacher``) or once, into a bank (``deblur synth teach``), keeps the student's step the
bottleneck. Medians of interleaved rounds, in one process; the CPU kind is printed.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from functools import partial
from pathlib import Path

import torch

from deblur_cli.model import ModelConfig, build_model
from deblur_cli.runtime import tune_allocator
from deblur_cli.train.teacher import load_teacher

TEACHER = (
    Path(__file__).resolve().parents[1].parent / "shared/teachers/dmphn_1_2_4_gopro.safetensors"
)
HD = (720, 1280)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def timed(fn, rounds: int) -> float:
    fn()  # warm-up: oneDNN primitives are created on the first call
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward_time(net, x: torch.Tensor, dtype: torch.dtype, rounds: int) -> float:
    def run() -> None:
        with torch.no_grad(), torch.autocast("cpu", dtype, enabled=dtype != torch.float32):
            net(x)

    return timed(run, rounds)


def step_time(config: ModelConfig, patches: torch.Tensor, rounds: int) -> float:
    """One training step as deblur train --amp bf16 takes it: L1 over the three scales."""
    net = build_model(config).to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    x = patches.contiguous(memory_format=torch.channels_last)
    targets = [torch.nn.functional.avg_pool2d(patches, 2**i) for i in range(config.n_scales)]

    def run() -> None:
        with torch.autocast("cpu", torch.bfloat16):
            outputs = net.forward_all(x)
        loss = sum((o.float() - t).abs().mean() for o, t in zip(outputs, targets, strict=True))
        opt.zero_grad()
        loss.backward()
        opt.step()

    return timed(run, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, default=TEACHER)
    parser.add_argument("--students", nargs="+", default=["light", "3,9,32,5,res"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hd", action="store_true", help="also whole 720p frames (slow)")
    args = parser.parse_args()
    tune_allocator()
    torch.manual_seed(0)
    inputs = {"256 px crop": torch.rand(1, 3, 256, 256) * 255}
    if args.hd:
        inputs["720p frame"] = torch.rand(1, 3, *HD) * 255
    inputs = {k: v.contiguous(memory_format=torch.channels_last) for k, v in inputs.items()}
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    rows: list[tuple[str, str, float]] = []
    teacher_crop: list[float] = []
    for precision in dtypes:
        teacher = load_teacher(args.teacher, "cpu", precision)
        for size, x in inputs.items():
            seconds = timed(partial(teacher, x), args.rounds)
            rows.append((f"teacher DMPHN {precision}", size, seconds))
            if size == "256 px crop":
                teacher_crop.append(seconds)
    patches = torch.rand(8, 3, 128, 128) * 255
    steps: list[tuple[str, float]] = []
    for spec in args.students:
        config = ModelConfig.parse(spec)
        net = build_model(config).to(memory_format=torch.channels_last)
        name = f"student {config.n_resblocks}x{config.n_feats} k{config.kernel_size}"
        for precision, dtype in dtypes.items():
            for size, x in inputs.items():
                seconds = forward_time(net, x, dtype, args.rounds)
                rows.append((f"{name} forward {precision}", size, seconds))
        seconds = step_time(config, patches, args.rounds)
        rows.append((f"{name} train step bf16", "batch 8 x 128 px", seconds))
        steps.append((name, seconds))
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| what | input | median s |")
    print("|---|---|---|")
    for what, size, seconds in rows:
        print(f"| {what} | {size} | {seconds:.3f} |")
    # 8 patches of 128 px are 2 crops of 256 px of teacher work when labelled online.
    teacher_step = 2 * min(teacher_crop)
    for name, seconds in steps:
        print(
            f"online teaching, {name}: the teacher adds {teacher_step:.2f} s to a "
            f"{seconds:.2f} s step ({teacher_step / seconds:.1f}x); a bank pays it once per crop"
        )


if __name__ == "__main__":
    main()
