"""What each piece of still synthesis buys: one fine-tune per switch, side by side, then eval.

    python scripts/ablate_synthesis.py train DATA_DIR RUNS_DIR --minutes 6.5   # one GPU
    python scripts/ablate_synthesis.py eval DATA_DIR RUNS_DIR                  # any machine

Every variant starts from the same weights (``--init``, default the bundled model) and is
fine-tuned for the same number of steps, same seed, on camera shake synthesised on the same
sharp stills (Kodak24, McMaster18, Urban100, Sun-Hays80; ``stills:`` only, no identity pairs,
so that what a switch teaches about tone shows). ``plain`` is ``--synth-opt mix=none``
(homography shake of 1-4 % of the diagonal, averaged in gamma-2.2 light); each other variant
adds one switch of ``deblur_cli.synth.StillOptions`` to it; ``train-mix`` is what
``deblur train stills:`` renders by default (``TRAIN_MIX``), ``all`` is that plus
per-segment motion, highlights and the GoPro response.

A small network leaves a GPU mostly idle, so all variants train at once, each with its own
DataLoader workers; synthesis, on the CPU, is what limits the pace. A run still going at the
deadline is stopped (it checkpoints) and exported at its last checkpoint, and the step each
reached is printed and kept in ``RUNS_DIR/NAME.steps``. ``eval`` runs ``deblur eval`` on the
real-blur sets and the sharp photos for the start weights and every variant and prints the
table (``RUNS_DIR/ablation.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

from train_candidates import last_step_and_rate, start, stop_all  # noqa: E402

STILLS = ("kodak24crop_ffdnet", "mcmaster18_ffdnet", "urban100_selfexsr", "sunhays80_selfexsr")
CRF = "crf/gopro_hero6_inverse_crf.npy"


@dataclass
class Variant:
    name: str
    options: tuple[str, ...]  # --synth-opt KEY=VALUE; {crf} is the response file's path
    what: str
    heavy: bool = False  # per-segment motion: ~2.3x the synthesis time, so more workers


VARIANTS = [
    Variant("plain", ("mix=none",), "homography shake 1-4 % of the diagonal, gamma 2.2"),
    Variant("sizes", ("mix=none", "blur_px=[1,60]", "sharp_share=0.2"),
            "+ blur 1-60 px log-uniform, a fifth unblurred"),
    Variant("code", ("mix=none", "code_share=0.75"), "+ 3 in 4 averaged in code values"),
    Variant("crf", ("mix=none", "crf={crf}"), "+ GoPro HERO6 response instead of gamma 2.2"),
    Variant("noise", ("mix=none", "noise=3", "jpeg=[85,98]"),
            "+ photon/read noise (3 levels), JPEG 85-98"),
    Variant("highlights", ("mix=none", "highlights=8"), "+ highlights up to 8x before the blur"),
    Variant("segments", ("mix=none", "segments=3"), "+ 3 segments moving on their own", True),
    Variant("train-mix", (), "TRAIN_MIX: sizes + code + noise/JPEG (the default)"),
    Variant("all", ("segments=3", "highlights=8", "crf={crf}"),
            "TRAIN_MIX + segments + highlights + GoPro response", True),
]  # fmt: skip


def train_command(args: argparse.Namespace, v: Variant, steps: int) -> list[str]:
    data = [f"stills:{args.data / 'sharp' / name}" for name in STILLS]
    crf = str(args.data / CRF)
    options = [x for opt in v.options for x in ("--synth-opt", opt.format(crf=crf))]
    workers = args.heavy_workers if v.heavy else args.workers
    return [
        sys.executable, "-m", "deblur_cli", "train", *data, *options,
        "--init", args.init, "--steps", str(steps), "--batch", str(args.batch),
        "--patch", str(args.patch), "--lr", str(args.lr), "--schedule", "cosine",
        "--min-lr", "1e-6", "--amp", args.amp, "--workers", str(workers),
        "--seed", "0", "--val-count", "0", "--checkpoint-every", str(args.checkpoint_every),
        "--log-every", "50", "--out", str(args.runs / v.name),
        "--export", str(args.runs / f"{v.name}.safetensors"), "--export-last",
    ]  # fmt: skip


def train(args: argparse.Namespace, variants: list[Variant]) -> None:
    import torch

    deadline = time.time() + args.minutes * 60
    args.runs.mkdir(parents=True, exist_ok=True)
    procs = []
    for v in variants:
        cmd = train_command(args, v, args.steps)
        (args.runs / f"{v.name}.cmd").write_text(" ".join(cmd) + "\n")
        procs.append(start(cmd, args.runs / f"{v.name}.log"))
    while any(p.poll() is None for p in procs) and time.time() < deadline - args.reserve:
        time.sleep(2)
    stop_all(procs, grace=30)
    steps, exports = {}, []
    for v in variants:
        checkpoint = args.runs / v.name / "checkpoint.pt"
        state = torch.load(checkpoint, weights_only=True) if checkpoint.is_file() else {}
        steps[v.name] = int(state.get("step", 0))
        if not (args.runs / f"{v.name}.safetensors").is_file() and steps[v.name]:
            # Stopped by the deadline: a run with --steps at its checkpoint trains nothing
            # and exports like a finished one.
            cmd = train_command(args, v, steps[v.name])
            exports.append(start(cmd, args.runs / f"{v.name}.log"))
    for p in exports:
        p.wait()
    for v, p in zip(variants, procs, strict=True):
        _, rate = last_step_and_rate(args.runs / v.name / "log.csv", 100)
        exported = (args.runs / f"{v.name}.safetensors").is_file()
        (args.runs / f"{v.name}.steps").write_text(f"{steps[v.name]}\n")
        print(
            f"{v.name}: exit {p.returncode}, exported step {steps[v.name]}/{args.steps}, "
            f"{rate or 0:.2f} steps/s, {'ok' if exported else 'NOT EXPORTED'}",
            flush=True,
        )


def _eval_sets(data: Path, reds_val: Path) -> dict[str, list[str]]:
    return {
        "gopro": [str(data / "eval/gopro_style_train_scenes")],
        "levin": [str(data / "eval/levin2009")],
        "reds": [str(reds_val)],
        "sharp": ["--sharp", str(data / "eval/gopro_style_train_scenes/sharp"),
                  "--sharp", str(data / "sharp/bsds300_dcscn/bsd100"),
                  "--sharp", str(data / "sharp/div2k_valid6_wolberg")],
    }  # fmt: skip


def _evaluate(weights: str, folder: Path, sets: dict[str, list[str]]) -> dict[str, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, target in sets.items():
        out = folder / f"{name}.json"
        if not out.is_file():
            cmd = [sys.executable, "-m", "deblur_cli", "eval", *target, "-w", weights,
                   "--precision", "bf16", "--json", str(out)]  # fmt: skip
            subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        results[name] = json.loads(out.read_text())
    return results


def _shift_and_psnr(report: dict) -> tuple[float, float]:
    images = report["sharp_check"]["images"]
    shift = sum(i["shift"]["all"] for i in images) / len(images)
    return shift, sum(i["psnr"] for i in images) / len(images)


def evaluate(args: argparse.Namespace, variants: list[Variant]) -> None:
    sets = _eval_sets(args.data, args.reds_val)
    rows = [("start", args.init, "the weights every variant starts from", "")]
    for v in variants:
        weights = args.runs / f"{v.name}.safetensors"
        if weights.is_file():
            steps = (args.runs / f"{v.name}.steps").read_text().strip()
            rows.append((v.name, str(weights), v.what, steps))
    lines = [
        "| variant | what | steps | gopro_style | Levin | REDS val | sharp: shift / PSNR |",
        "|---|---|---|---|---|---|---|",
    ]
    first = True
    for name, weights, what, steps in rows:
        r = _evaluate(weights, args.runs / "eval" / name, sets)
        if first:
            ident = [r[s]["mean"]["identity"]["psnr"] for s in ("gopro", "levin", "reds")]
            lines.append("| identity | blurry input | | " + " | ".join(f"{x:.2f}" for x in ident)
                         + " | 0 / ∞ |")  # fmt: skip
            first = False
        psnrs = [r[s]["mean"]["model"]["psnr"] for s in ("gopro", "levin", "reds")]
        shift, psnr = _shift_and_psnr(r["sharp"])
        lines.append(f"| {name} | {what} | {steps} | " + " | ".join(f"{x:.2f}" for x in psnrs)
                     + f" | {shift:+.2f} / {psnr:.2f} |")  # fmt: skip
        print(lines[-1], flush=True)
    table = "\n".join(lines) + "\n"
    (args.runs / "ablation.md").write_text(table)
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["train", "eval"])
    parser.add_argument("data", type=Path, help="folder with sharp/, crf/ and eval/")
    parser.add_argument("runs", type=Path, help="where the run folders go")
    parser.add_argument("--init", default="light-gopro", help="weights every variant starts from")
    parser.add_argument("--only", nargs="*", help="variant names (default: all)")
    parser.add_argument("--minutes", type=float, default=6.5, help="training deadline")
    parser.add_argument("--reserve", type=float, default=40.0, help="seconds kept for exports")
    parser.add_argument("--steps", type=int, default=2000, help="cosine schedule length")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=176)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--amp", default="bf16")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--heavy-workers", type=int, default=3, help="for per-segment motion")
    parser.add_argument("--checkpoint-every", type=int, default=200)
    parser.add_argument(
        "--reds-val", type=Path, default=None,
        help="REDS pairs held out for validation (blur/ + sharp/); default: DATA/pairs/reds_x4",
    )  # fmt: skip
    args = parser.parse_args()
    args.data = args.data.resolve()
    args.runs = args.runs.resolve()
    args.reds_val = (args.reds_val or args.data / "pairs/reds_x4").resolve()
    variants = [v for v in VARIANTS if not args.only or v.name in args.only]
    if args.action == "train":
        train(args, variants)
    else:
        evaluate(args, variants)


if __name__ == "__main__":
    main()
