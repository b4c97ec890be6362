"""On-the-fly synthesis speed: training patches per second from ``stills:`` and ``frames:``.

Training on a 2-core CPU must be bound by the network, not by the loader, so each synthesis
switch is timed through the loader's own ``Source.sample`` (what a DataLoader worker runs,
decode cache warm). Variants are interleaved round by round so that load from other
processes hits them alike; the table gives the median ms per patch, the spread (IQR) and
the ratio to the first row.

    python benchmarks/bench_synth.py --rounds 8 --patch 256
    python benchmarks/bench_synth.py --only stills --network light

``--network CONFIG`` adds a row for one training step of that model (forward + backward of
the multi-scale L1 loss, batch ``--batch``, fp32, all threads), per patch, interleaved with
the rest: a loader row well below it leaves the network the bottleneck.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from deblur_cli.train.data import load_rgb, open_source

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CRF = str(DATA / "crf" / "gopro_hero6_inverse_crf.npy")
REALISTIC = {
    "blur_px": (1.0, 60.0),
    "sharp_share": 0.2,
    "crf": CRF,
    "highlights": 8.0,
    "segments": 3,
    "noise": 3.0,
    "jpeg": (80, 98),
}


def variants() -> list[tuple[str, str, dict]]:
    kodak = f"stills:{DATA / 'sharp' / 'kodak24crop_ffdnet'}"
    frames = f"frames:{DATA / 'frames'}"

    def still(name: str, **opts) -> tuple[str, str, dict]:
        """Options over TRAIN_MIX (``mix="none"``: over the plain StillOptions)."""
        return (f"stills {name}", kodak, {"synth_options": opts})

    return [
        still("plain (mix=none)", mix="none"),
        still("train mix (default)"),
        still("GoPro CRF", mix="none", crf=CRF),
        still("highlights 8", mix="none", highlights=8.0),
        still("segments 3", mix="none", segments=3),
        still("noise 3 (Poisson)", mix="none", noise=3.0),
        still("train mix + segments 3", segments=3),
        still("all switches", **REALISTIC),
        ("frames gamma 2.2", frames, {"gamma": (2.2,)}),
        ("frames GoPro CRF", frames, {"frames_crf": CRF}),
    ]


def network_step(config: str, batch: int, patch: int):
    """A closure running one training step of ``config`` on a random batch."""
    import torch

    from deblur_cli.model import ModelConfig, build_model
    from deblur_cli.train.losses import multiscale_content_loss

    net = build_model(ModelConfig.parse(config))
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-4)
    blurry = torch.rand(batch, 3, patch, patch) * 255
    sharp = torch.rand(batch, 3, patch, patch) * 255

    def step() -> None:
        loss, _ = multiscale_content_loss(net.forward_all(blurry), sharp)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="patches per variant")
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--only", default=None, help="variants whose name contains this")
    parser.add_argument("--network", default=None, metavar="CONFIG", help="e.g. light")
    parser.add_argument("--batch", type=int, default=4, help="batch of the --network step")
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"error: {DATA} not found", file=sys.stderr)
        return 2
    chosen = [v for v in variants() if not args.only or args.only in v[0]]
    sources = [open_source(spec, **kwargs) for _, spec, kwargs in chosen]
    for source in sources:  # warm the decode cache and lazy imports (scikit-image)
        source.sample(0, np.random.default_rng(0), args.patch)
        files = getattr(source, "paths", None) or [p for q in source.sequences for p in q]
        for path in files:  # training workers keep these decoded (DecodedCache)
            load_rgb(path)
    step = network_step(args.network, args.batch, args.patch) if args.network else None
    if step:
        chosen.append((f"network {args.network} step", "", {}))
        step()  # warm-up
    times: list[list[float]] = [[] for _ in chosen]
    for k in range(args.rounds):
        for i, source in enumerate(sources):
            rng = np.random.default_rng([7, k])
            index = int(rng.integers(len(source)))
            start = time.perf_counter()
            source.sample(index, rng, args.patch)
            times[i].append(1000 * (time.perf_counter() - start))
        if step:
            start = time.perf_counter()
            step()
            times[-1].append(1000 * (time.perf_counter() - start) / args.batch)
    base = statistics.median(times[0])
    print(f"{args.patch}px patches, {args.rounds} rounds interleaved; one process, one thread")
    print(f"{'variant':28s} {'ms/patch':>9s} {'IQR':>13s} {'patches/s':>9s} {'ratio':>6s}")
    for (name, _, _), samples in zip(chosen, times, strict=True):
        q1, median, q3 = np.percentile(samples, [25, 50, 75])
        print(
            f"{name:28s} {median:9.0f} {f'{q1:.0f}-{q3:.0f}':>13s} "
            f"{1000 / median:9.2f} {median / base:6.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
