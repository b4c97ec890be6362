"""How fast each training source makes patches, per CPU core: can the loader feed a GPU?

    python benchmarks/bench_loader.py                  # ../shared/data, 176 and 256 px
    python benchmarks/bench_loader.py --patches 176 --n 60

One process, OpenCV single-threaded (as in a DataLoader worker), so a rate here times the
cores given to workers is what the loader can deliver. Sources: synthetic stills rendered
on the fly (``stills:``, TRAIN_MIX, and with per-segment motion), the same stills rendered
once into a pair bank (``deblur synth stills --mix train``; the bank's one-off cost is shown
too) and read back as ``gopro:``, GOPRO-style frame averages (``frames:``), the REDS pairs and
identity pairs. Rates are medians of interleaved rounds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from deblur_cli.train.data import load_rgb, open_source

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STILLS = ("kodak24crop_ffdnet", "mcmaster18_ffdnet")


def _sources(data: Path, bank: Path) -> dict[str, tuple[str, dict]]:
    sharp = data / "sharp"
    frames = data / "frames" / "GOPR0477_11_00"
    return {
        "stills on the fly (TRAIN_MIX)": (f"stills:{sharp / STILLS[0]}", {}),
        "stills on the fly + segments 3": (
            f"stills:{sharp / STILLS[0]}", {"synth_options": {"segments": 3}}
        ),
        "stills from a bank (gopro:)": (f"gopro:{bank.parent}", {}),
        "frames (gamma 1 or 2.2)": (f"frames:{frames}", {"gamma": (1.0, 2.2)}),
        "REDS x4 pairs (320x180)": (f"pairs:{data / 'pairs' / 'reds_x4'}", {}),
        "identity (Kodak)": (f"identity:{sharp / STILLS[0]}", {}),
    }  # fmt: skip


def _make_bank(data: Path, out: Path, per_image: int) -> tuple[float, int]:
    """The stills rendered once, as training pairs; returns (seconds, pairs)."""
    inputs = [str(data / "sharp" / name) for name in STILLS[:1]]
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "deblur_cli", "synth", "stills", *inputs, "-o", str(out),
         "--mix", "train", "--per-image", str(per_image), "--scene", "bank", "--workers", "1"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pairs = len(list((out / "bank" / "sharp").glob("*.png")))
    return time.perf_counter() - start, pairs


def _sample(source, index: int, rng: np.random.Generator, patch: int) -> None:
    size = patch
    if getattr(source, "pairs", None):  # REDS x4 is 320x180: clamp the patch to the image
        h, w = load_rgb(source.pairs[index][1]).shape[:2]
        size = min(patch, h - h % 4, w - w % 4)
    source.sample(index, rng, size)


def _rate(source, patch: int, n: int, seed: int) -> float:
    """Patches per second over ``n`` random samples."""
    start = time.perf_counter()
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        _sample(source, int(rng.integers(len(source))), rng, patch)
    return n / (time.perf_counter() - start)


def _first_pass(source, patch: int) -> float:
    """ms per item for one pass over every item: decoding included (the decoded-image cache,
    1 GiB per worker by default, then holds them; on-the-fly synthesis renders anew)."""
    start = time.perf_counter()
    for index in range(len(source)):
        _sample(source, index, np.random.default_rng([7, index]), patch)
    return 1000 * (time.perf_counter() - start) / len(source)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--patches", default="176,256", help="patch sides")
    parser.add_argument("--n", type=int, default=40, help="patches per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per-image", type=int, default=4, help="bank pairs per photo")
    args = parser.parse_args()
    if not (args.data / "sharp").is_dir():
        raise SystemExit(f"error: {args.data}/sharp not found")
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        seconds, pairs = _make_bank(args.data, Path(tmp), args.per_image)
        shapes = [cv2.imread(str(p)).shape for p in (Path(tmp) / "bank" / "sharp").glob("*.png")]
        bank_pixels = sum(h * w for h, w, _ in shapes)
        print(
            f"pair bank: {pairs} pairs of Kodak24 ({bank_pixels / pairs / 1e6:.2f} MP each) "
            f"rendered in {seconds:.1f} s on one core: {seconds / pairs * 1000:.0f} ms per pair"
        )
        specs = _sources(args.data, Path(tmp) / "bank")
        sources = {name: open_source(spec, **kw) for name, (spec, kw) in specs.items()}
        for patch in (int(p) for p in args.patches.split(",")):
            rates: dict[str, list[float]] = {name: [] for name in sources}
            first = {name: _first_pass(source, patch) for name, source in sources.items()}
            for r in range(args.rounds):
                names = list(sources) if r % 2 == 0 else list(sources)[::-1]
                for name in names:
                    rates[name].append(_rate(sources[name], patch, args.n, r))
            print(f"\n| source, {patch} px patches | items | first pass, ms/item "
                  "| then: patches/s per core (min-max) | ms/patch |")  # fmt: skip
            print("|---|---|---|---|---|")
            for name, values in rates.items():
                med = statistics.median(values)
                spread = f"{min(values):.0f}-{max(values):.0f}"
                print(f"| {name} | {len(sources[name])} | {first[name]:.1f} "
                      f"| {med:.0f} ({spread}) | {1000 / med:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
