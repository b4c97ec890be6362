"""Tone statistics of training pairs: does the blurry input differ in brightness from its target?

A network learns whatever the pairs teach. If synthetic blurry patches are on average
brighter than their sharp targets, the network learns "darken what you get" and applies it
to sharp photos too. This prints, for each training source and synthesis setting, the mean
of (blurry - sharp) in grey levels over random training patches (mean, spread and standard
error over the patches), how blurred the patches are (PSNR blurry vs sharp, ratio of mean
gradient magnitude) and the blur size in pixels where it is known (stills: the rendered
worst-point extent; frames: optical flow from first to last frame of the window).

Samples come from the loader's own ``Source.sample`` (the path training takes).

    python scripts/measure_tone.py                       # every row, 40 patches each
    python scripts/measure_tone.py --only stills --n 80  # rows whose name contains "stills"
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from deblur_cli.synth import stills as stills_module
from deblur_cli.train.augment import AugmentConfig, augment_pair
from deblur_cli.train.data import FRAMES_MAX, FRAMES_MIN, load_rgb, open_source
from deblur_cli.train.metrics import psnr

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CRF = DATA / "crf" / "gopro_hero6_inverse_crf.npy"


def rows() -> list[tuple[str, str, dict, dict]]:
    """(name, source spec, open_source kwargs, flags) for every measured setting."""
    kodak = f"stills:{DATA / 'sharp' / 'kodak24crop_ffdnet'}"
    frames = f"frames:{DATA / 'frames'}"
    out: list[tuple[str, str, dict, dict]] = []

    def still(name: str, **opts) -> None:
        """A row of plain StillOptions plus ``opts``: each switch measured alone."""
        out.append((f"stills {name}", kodak, {"synth_options": {"mix": "none", **opts}}, {}))

    out.append(("stills train mix (stills: default)", kodak, {}, {}))
    out.append(("stills train mix + augment", kodak, {}, {"augment": True}))
    still("plain (before: mix=none)")
    still("gamma 1", gamma=1.0)
    still("almost no blur", blur=(0.0005, 0.001))
    still("jpeg 70-95", jpeg=(70, 95))
    still("objects 2", objects=2)
    for spec_name, extra in _new_still_rows():
        still(spec_name, **extra)
    out.append(("frames gamma 1", frames, {"gamma": (1.0,)}, {}))
    out.append(("frames gamma 2.2", frames, {"gamma": (2.2,)}, {}))
    out.append(("frames gamma 1,2.2 (--frames-gamma 1,2.2)", frames, {"gamma": (1.0, 2.2)}, {}))
    if _frames_take_crf():
        out.append(("frames GoPro CRF", frames, {"gamma": (2.2,), "frames_crf": CRF}, {}))
        both = {"gamma": (1.0, 2.2), "frames_crf": CRF}
        out.append(("frames gamma 1 or GoPro CRF", frames, both, {}))
    out.append(("frames gamma 2.2 + augment", frames, {"gamma": (2.2,)}, {"augment": True}))
    out.append(("pairs reds_x4", f"pairs:{DATA / 'pairs' / 'reds_x4'}", {}, {}))
    out.append(("eval gopro_style", f"pairs:{DATA / 'eval' / 'gopro_style_train_scenes'}", {}, {}))
    return out


def _new_still_rows() -> list[tuple[str, dict]]:
    """Rows for the realistic-synthesis switches that exist in this version of the code."""
    fields = set(stills_module.StillOptions.__dataclass_fields__)
    crf = str(CRF)
    wanted = [
        ("GoPro CRF", {"crf": crf}, "crf"),
        ("blur_px 1-60", {"blur_px": (1.0, 60.0)}, "blur_px"),
        ("blur_px 1-60 sharp_share 0.2", {"blur_px": (1.0, 60.0), "sharp_share": 0.2}, "blur_px"),
        ("highlights 8", {"highlights": 8.0}, "highlights"),
        ("segments 3", {"segments": 3}, "segments"),
        ("segments 3, no shake", {"segments": 3, "sharp_share": 1.0}, "segments"),
        ("noise 4 (Poisson)", {"noise": 4.0}, "noise"),
    ]
    for name, opts in EXTRA_STILLS:
        wanted.append((name, opts, "blur_px"))
    return [(name, opts) for name, opts, field in wanted if field in fields]


EXTRA_STILLS: list[tuple[str, dict]] = []  # filled from --still NAME=JSON


def _frames_take_crf() -> bool:
    import inspect

    return "frames_crf" in inspect.signature(open_source).parameters


def grad_mean(image: np.ndarray) -> float:
    g = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    g = g.astype(np.float32)
    return float(np.abs(np.diff(g, axis=0)).mean() + np.abs(np.diff(g, axis=1)).mean())


def frames_flow(source, index: int, rng: np.random.Generator, patch: int) -> float:
    """Mean flow magnitude (px) from the first to the last frame of the sample's window."""
    n = int(rng.integers(FRAMES_MIN, FRAMES_MAX + 1))
    paths = source._window(index, n)
    h, w = load_rgb(paths[0]).shape[:2]
    y, x = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))

    def grey(p: Path) -> np.ndarray:
        im = np.ascontiguousarray(load_rgb(p)[y : y + patch, x : x + patch])
        return cv2.cvtColor(im, cv2.COLOR_RGB2GRAY)

    flow = cv2.calcOpticalFlowFarneback(
        grey(paths[0]), grey(paths[-1]), None, 0.5, 4, 21, 3, 5, 1.1, 0
    )
    return float(np.linalg.norm(flow, axis=2).mean())


def measure(spec: str, kwargs: dict, flags: dict, n: int, patch: int, seed: int) -> dict:
    source = open_source(spec, **kwargs)
    extents: list[float] = []
    original = stills_module.render_still

    def spy(*args, **kw):
        pair = original(*args, **kw)
        extents.append(pair.extent_px)
        return pair

    stills_module.render_still = spy
    shifts, psnrs, grads, sizes = [], [], [], []
    start = time.perf_counter()
    try:
        for k in range(n):
            rng = np.random.default_rng([seed, k])
            index = int(rng.integers(len(source)))
            size = patch
            probe = getattr(source, "pairs", None)
            if probe:  # pairs smaller than the patch (REDS x4 is 320x180)
                h, w = load_rgb(probe[index][1]).shape[:2]
                size = min(patch, h - h % 4, w - w % 4)
            if source.kind == "frames":
                sizes.append(frames_flow(source, index, copy.deepcopy(rng), size))
            blur, sharp = source.sample(index, rng, size)
            if flags.get("augment"):
                blur, sharp = augment_pair(blur, sharp, rng, AugmentConfig())
            b, s = blur.astype(np.float64), sharp.astype(np.float64)
            shifts.append(float((b - s).mean()))
            psnrs.append(psnr(b, s))
            grads.append(grad_mean(b) / max(grad_mean(s), 1e-6))
    finally:
        stills_module.render_still = original
    seconds = time.perf_counter() - start
    sizes = sizes or extents
    shifts_a = np.array(shifts)
    return {
        "mean": shifts_a.mean(),
        "std": shifts_a.std(),
        "sem": shifts_a.std() / np.sqrt(len(shifts_a)),
        "psnr": float(np.median(psnrs)),
        "grad": float(np.mean(grads)),
        "blur_px": float(np.mean(sizes)) if sizes else float("nan"),
        "ms": 1000 * seconds / n,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="random patches per row")
    parser.add_argument("--patch", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None, help="rows whose name contains this")
    parser.add_argument(
        "--still",
        action="append",
        default=[],
        metavar="JSON",
        help="an extra stills row: StillOptions as JSON, e.g. '{\"blur_px\": [1, 20]}'",
    )
    args = parser.parse_args()
    for text in args.still:
        opts = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(text).items()}
        EXTRA_STILLS.append((" ".join(f"{k}={v}" for k, v in opts.items()), opts))
    if not DATA.is_dir():
        print(f"error: {DATA} not found", file=sys.stderr)
        return 2
    header = (
        f"{'source / setting':44s} {'Δtone':>7s} {'±sd':>6s} {'±sem':>6s} "
        f"{'PSNR':>6s} {'grad':>5s} {'blur px':>7s} {'ms/patch':>8s}"
    )
    print(f"mean(blurry - sharp) in grey levels over {args.n} random {args.patch}px patches")
    print(header, flush=True)
    print("-" * len(header))
    for name, spec, kwargs, flags in rows():
        if args.only and args.only not in name:
            continue
        r = measure(spec, kwargs, flags, args.n, args.patch, args.seed)
        print(
            f"{name:44s} {r['mean']:+7.2f} {r['std']:6.2f} {r['sem']:6.2f} "
            f"{r['psnr']:6.2f} {r['grad']:5.2f} {r['blur_px']:7.1f} {r['ms']:8.0f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
