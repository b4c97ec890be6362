"""Where a teacher is right: its PSNR against the truth on each training family (issue #21).

    python scripts/teacher_by_family.py ../shared/teachers/dmphn_1_2_4_gopro.safetensors \
        frames:../shared/data/frames/GOPR0477_11_00 stills:../shared/data/sharp/kodak24crop_ffdnet \
        --student light-gopro --count 24 --patch 256

Each DATA is a training source (the forms ``deblur train`` takes); ``--family NAME=SPEC`` with
``;``-separated ``KEY=VALUE`` synthesis options (as ``deblur train --synth-opt``) names a
variant of ``stills:`` (e.g.
``--family 'pans=stills:DIR;mix=none;blur_px=[10,40];translation=1;rotation=0.2'``). For each
family the same ``--count`` crops are drawn once and scored: the blurry input, the teacher
and, with ``--student``, a student, all against the truth (PSNR of the mean squared error
over the crops, range 255, clamp + round).
A family where the teacher gains a lot looks like what it learnt (GOPRO blur); one where it
loses is one where only the truth should teach. That is how the mix of ``deblur train
--teacher-share`` and the synthesis a student trains on are chosen, without looking at the
held-out GOPRO test scenes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def squared_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def pooled_psnr(errors: list[float]) -> float:
    """PSNR of the mean squared error over all crops: an untouched crop (identity pairs
    without noise) would make a per-crop mean infinite."""
    return 10 * np.log10(255.0**2 / max(float(np.mean(errors)), 1e-10))


def parse_family(text: str) -> tuple[str, str, dict]:
    """``NAME=SPEC;KEY=VALUE;…`` with the options of ``deblur train --synth-opt``."""
    from deblur_cli.cli.train_cmd import parse_synth_options

    name, _, rest = text.partition("=")
    spec, *options = rest.split(";")
    return name, spec, parse_synth_options(tuple(options))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("teacher", help="teacher file or weights spec")
    parser.add_argument("data", nargs="*", help="training sources, e.g. frames:DIR")
    parser.add_argument("--family", action="append", default=[], help="NAME=stills:DIR;k=v;…")
    parser.add_argument("--student", action="append", default=[], help="weights spec")
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--frames-count", default="7-13")
    parser.add_argument("--frames-gamma", default="2.2")
    parser.add_argument("--frames-crf", default=None)
    args = parser.parse_args()

    from deblur_cli.engine import load_model
    from deblur_cli.train.data import open_source
    from deblur_cli.train.teacher import load_teacher

    teacher = load_teacher(args.teacher, "cpu", args.precision)
    students = [(s, load_model(s, "cpu", args.precision, tile=0)) for s in args.student]
    low, _, high = args.frames_count.partition("-")
    families = [(spec, spec, None) for spec in args.data]
    families += [parse_family(f) for f in args.family]
    header = ["family", "blurry", "teacher", "gain"] + [f"{s} gain" for s, _ in students]
    rows = []
    for name, spec, options in families:
        source = open_source(
            spec,
            synth_options=options,
            gamma=[float(g) for g in args.frames_gamma.split(",")],
            frames_crf=args.frames_crf,
            frames_count=(int(low), int(high or low)),
        )
        start = time.perf_counter()
        scores = {"blurry": [], "teacher": [], **{s: [] for s, _ in students}}
        for blur, sharp in source.fixed_crops(args.count, args.patch, args.seed):
            taught = teacher.restore(blur)
            scores["blurry"].append(squared_error(blur, sharp))
            scores["teacher"].append(squared_error(taught, sharp))
            for s, model in students:
                scores[s].append(squared_error(model(blur), sharp))
        mean = {k: pooled_psnr(v) for k, v in scores.items()}
        row = [name, mean["blurry"], mean["teacher"], mean["teacher"] - mean["blurry"]]
        row += [mean[s] - mean["blurry"] for s, _ in students]
        rows.append(row)
        print(
            f"{name}: "
            + ", ".join(f"{h} {v:.2f}" for h, v in zip(header[1:], row[1:], strict=True))
            + f"  ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )
    print("\n| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print(
            "| "
            + " | ".join(
                [row[0]] + [f"{v:+.2f}" if i > 2 else f"{v:.2f}" for i, v in enumerate(row[1:], 1)]
            )
            + " |"
        )


if __name__ == "__main__":
    main()
