"""Scores on aligned blurry/sharp pairs: what ``deblur eval`` measures, callable from Python."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import InputError
from .data import PairSource, decode_rgb
from .metrics import psnr, ssim


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
            if blur.dtype == np.uint8:
                out = model(blur)
            else:  # 16-bit sources: run at float precision, measure in 0..255
                out = model(blur / np.float32(255.0)) * np.float32(255.0)
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


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.inf
