"""Capacity or generalisation? Train a student on a few fixed crops and watch both gains (#21).

    python scripts/memorisation_check.py frames:../shared/data/frames/GOPR0477_11_00 \
        --student light-gopro --count 16 --patch 128 --steps 600 --lr 5e-4 \
        --teacher ../shared/teachers/dmphn_1_2_4_gopro.safetensors

``--count`` crops are drawn once from the first part of the source (``--split``, a share of
its items; for ``frames:`` the earlier frames) and ``--count`` others from the rest, a
window of the most frames averaged apart. The student (a weights spec, or ``--config`` for
a fresh network) trains on the first set only, with the multi-scale loss of ``deblur
train`` and no augmentation, and both sets are scored as it goes: PSNR gain over the
blurry input, pooled over the crops. The teacher, if given, is scored once on both.

If the train gain climbs past the teacher's while the held gain does not move, the network
is big enough to fit GOPRO blur crop by crop and what it lacks is breadth of data and
steps; if the train gain stalls too, it lacks capacity.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from deblur_cli.model import build_model
from deblur_cli.model_config import ModelConfig
from deblur_cli.train.data import open_source
from deblur_cli.train.losses import multiscale_content_loss


def stacked(crops: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(blurry, sharp) crops as two N×3×H×W float tensors."""
    blurry, sharp = (np.stack(images) for images in zip(*crops, strict=True))
    return tuple(torch.from_numpy(a).permute(0, 3, 1, 2).float() for a in (blurry, sharp))


def gain_db(restored: torch.Tensor, blurry: torch.Tensor, sharp: torch.Tensor) -> float:
    """PSNR gain over the input, MSE pooled over the crops, output clamped and rounded."""
    restored = restored.clamp(0, 255).round()
    before, after = ((blurry - sharp) ** 2).mean(), ((restored - sharp) ** 2).mean()
    return float(10 * torch.log10(before / after))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="one training source, e.g. frames:DIR")
    parser.add_argument("--student", default=None, help="weights spec (default: bundled)")
    parser.add_argument("--config", default=None, help="fresh network, e.g. light or 3,8,40,3,res")
    parser.add_argument("--teacher", default=None, help="teacher file, scored for reference")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--split", type=float, default=0.83, help="share of items to train on")
    parser.add_argument("--evals", type=int, default=6, help="how many times to score")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--frames-count", default="7-13")
    parser.add_argument("--frames-gamma", default="1")
    args = parser.parse_args()

    low, _, high = args.frames_count.partition("-")
    frames_count = (int(low), int(high or low))
    source = open_source(
        args.data,
        gamma=[float(g) for g in args.frames_gamma.split(",")],
        frames_count=frames_count,
    )
    cut = int(len(source) * args.split)
    train = stacked(source.fixed_crops(args.count, args.patch, seed=1, stop=cut))
    held_from = min(cut + frames_count[1], len(source) - 1)
    held = stacked(source.fixed_crops(args.count, args.patch, seed=2, first=held_from))

    torch.manual_seed(0)
    if args.config:
        model = build_model(ModelConfig.parse(args.config))
    else:
        from deblur_cli.weights import load_weight_file

        weights = load_weight_file(args.student)
        model = build_model(weights.config)
        model.load_state_dict(weights.state_dict)
    autocast = torch.autocast("cpu", torch.bfloat16, enabled=args.precision == "bf16")

    def score(crops) -> float:
        blurry, sharp = crops
        with torch.no_grad(), autocast:
            restored = torch.cat([model(blurry[i : i + 4]) for i in range(0, len(blurry), 4)])
        return gain_db(restored, blurry, sharp)

    if args.teacher:
        from deblur_cli.train.teacher import load_teacher

        teacher = load_teacher(args.teacher, "cpu", args.precision)
        on_train, on_held = (gain_db(teacher(crops[0]), *crops) for crops in (train, held))
        print(f"teacher: train {on_train:+.2f} held {on_held:+.2f}")

    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"student {model.config.summary()} ({params:.2f} M parameters), lr {args.lr}")
    print(f"step 0: train {score(train):+.2f} held {score(held):+.2f}", flush=True)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, args.steps, 1e-6)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    every = max(args.steps // args.evals, 1)
    for step in range(1, args.steps + 1):
        pick = rng.choice(args.count, min(args.batch, args.count), replace=False)
        with autocast:
            outputs = model.forward_all(train[0][pick])
        loss, _ = multiscale_content_loss(outputs, train[1][pick])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        if step % every == 0 or step == args.steps:
            print(
                f"step {step}: loss {loss.item():.2f} train {score(train):+.2f} "
                f"held {score(held):+.2f} ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
