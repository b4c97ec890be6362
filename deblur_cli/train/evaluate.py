"""Scores on aligned blurry/sharp pairs, and the do-no-harm check on sharp photos: what
``deblur eval`` measures, callable from Python."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .data import PairSource, decode_rgb
from .metrics import TONE_BANDS, psnr, ssim, tone_shift

# Do no harm: a sharp photo must come back looking the same (issue 13's bar). A shift of
# half a grey level is invisible; 34 dB against the input is a change nobody sees at 100 %.
HARM_TONE_LEVELS = 0.5
HARM_MIN_PSNR = 34.0


def _scores(image: np.ndarray, sharp: np.ndarray, ssim_mode: str) -> dict[str, float]:
    """PSNR, SSIM in the chosen convention, and SSIM in scikit-image's default convention
    (the number most other tools and dataset notes quote) so both can be compared."""
    return {
        "psnr": psnr(image, sharp),
        "ssim": ssim(image, sharp, ssim_mode),
        "ssim_skimage": ssim(image, sharp, "skimage"),
    }


def evaluate_pairs(
    source: PairSource,
    model: Any = None,
    *,
    ssim_mode: str = "official",
    limit: int | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Per-image and mean PSNR/SSIM of the blurry input (identity) and, if given, the model."""
    rows: list[dict[str, Any]] = []
    pairs = source.pairs[:limit] if limit else source.pairs
    for i, (blur_path, sharp_path) in enumerate(pairs):
        if progress:
            progress(i, len(pairs), blur_path.name)
        blur, sharp = decode_rgb(blur_path), decode_rgb(sharp_path)
        if blur.shape != sharp.shape:
            raise InputError(
                f"{blur_path.name}: blurry {blur.shape[1]}x{blur.shape[0]} and sharp "
                f"{sharp.shape[1]}x{sharp.shape[0]} differ in size"
            )
        row: dict[str, Any] = {
            "name": blur_path.name,
            "width": int(blur.shape[1]),
            "height": int(blur.shape[0]),
            "identity": _scores(blur, sharp, ssim_mode),
        }
        if model is not None:
            out = _run(model, blur)
            row["model"] = _scores(out, sharp, ssim_mode)
        rows.append(row)
    keys = ["identity"] + (["model"] if model is not None else [])
    mean = {
        key: {
            metric: _mean([r[key][metric] for r in rows])
            for metric in ("psnr", "ssim", "ssim_skimage")
        }
        for key in keys
    }
    return {"images": rows, "mean": mean}


def _run(model: Any, pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return model(pixels)
    # 16-bit sources: run at float precision, measure in 0..255
    return model(pixels / np.float32(255.0)) * np.float32(255.0)


def check_sharp(
    paths: Sequence[Path],
    model: Any,
    *,
    limit: int | None = None,
    progress: Any = None,
    max_shift: float = HARM_TONE_LEVELS,
    min_psnr: float = HARM_MIN_PSNR,
) -> dict[str, Any]:
    """Do no harm: run the model on sharp photos and measure how much it changes them.

    Per image: PSNR and SSIM of the output against the input, and the tone shift (mean
    output minus mean input, grey levels; overall and per tone band). The check passes when
    the mean shift is within ``±max_shift`` levels and the mean PSNR at least ``min_psnr``.
    """
    rows: list[dict[str, Any]] = []
    paths = list(paths)[:limit] if limit else list(paths)
    if not paths:
        raise InputError("no sharp images to check")
    for i, path in enumerate(paths):
        if progress:
            progress(i, len(paths), path.name)
        sharp = decode_rgb(path)
        out = _run(model, sharp)
        rows.append(
            {
                "name": path.name,
                "width": int(sharp.shape[1]),
                "height": int(sharp.shape[0]),
                "psnr": psnr(out, sharp),
                "ssim": ssim(out, sharp),
                "shift": tone_shift(out, sharp),
            }
        )
    mean_shift: dict[str, float | None] = {}
    for band in ("all", *TONE_BANDS):
        values = [r["shift"][band] for r in rows if r["shift"][band] is not None]
        mean_shift[band] = float(np.mean(values)) if values else None
    mean = {
        "psnr": _mean([r["psnr"] for r in rows]),
        "ssim": _mean([r["ssim"] for r in rows]),
        "shift": mean_shift,
    }
    worst = max(rows, key=lambda r: abs(r["shift"]["all"]))
    problems = []
    if abs(mean_shift["all"] or 0.0) > max_shift:
        way = "darkens" if (mean_shift["all"] or 0.0) < 0 else "brightens"
        problems.append(f"{way} sharp photos by {abs(mean_shift['all']):.2f} grey levels")
    if mean["psnr"] < min_psnr:
        problems.append(f"changes them: {mean['psnr']:.2f} dB against the input")
    return {
        "images": rows,
        "mean": mean,
        "worst_shift": {"name": worst["name"], "shift": worst["shift"]["all"]},
        "limits": {"max_shift": max_shift, "min_psnr": min_psnr},
        "passes": not problems,
        "problems": problems,
    }


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.inf
