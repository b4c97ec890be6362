"""Regions of a photo that move on their own: the objects of per-segment motion blur.

In real photos the camera shakes *and* things move: a walker, a car, a branch, each with
its own path, nearer ones hiding farther ones. Carbajal et al. (2023) found that blurring
each segment of a sharp photo with its own motion over a camera-shake background is what
makes synthetic training data generalise to real blur. Segments come from scikit-image's
Felzenszwalb graph segmentation (an optional dependency: ``pip install 'deblur-cli[train]'``);
the background behind a moving segment, which the photo never saw, is filled smoothly from
its surroundings (it only shows, blurred, where the segment uncovers it during exposure).
"""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np

_WORK_SIDE = 160  # segmentation runs on a copy this small: fast, and objects stay whole
_MIN_AREA, _MAX_AREA = 0.01, 0.25  # usable segment sizes, as fractions of the picture


def require_skimage() -> None:
    """Raise a one-line ValueError when scikit-image (the ``train`` extra) is missing."""
    if importlib.util.find_spec("skimage") is None:
        raise ValueError(
            "per-segment motion needs scikit-image: pip install 'deblur-cli[train]' "
            "(or pip install 'scikit-image>=0.22')"
        )


def pick_segments(rgb: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Up to ``count`` object-sized regions of a uint8 photo, as bool HxW masks.

    Regions between 1 % and 25 % of the picture are eligible; fewer are returned when the
    photo has fewer (a clear sky, a flat wall).
    """
    require_skimage()
    from skimage.segmentation import felzenszwalb

    height, width = rgb.shape[:2]
    scale = min(1.0, _WORK_SIDE / max(height, width))
    small_size = (max(8, round(width * scale)), max(8, round(height * scale)))
    small = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA)
    area = small.shape[0] * small.shape[1]
    labels = felzenszwalb(
        small, scale=float(rng.uniform(150, 400)), sigma=0.8, min_size=int(_MIN_AREA * area)
    )
    sizes = np.bincount(labels.ravel()) / area
    eligible = np.flatnonzero((sizes >= _MIN_AREA) & (sizes <= _MAX_AREA))
    if eligible.size == 0:
        return []
    chosen = rng.choice(eligible, size=min(count, eligible.size), replace=False)
    masks = []
    for label in chosen:
        # Upscale the soft mask and threshold it: smooth outlines, not blocky ones.
        soft = cv2.resize(
            (labels == label).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR
        )
        masks.append(soft >= 0.5)
    return masks


def fill_behind(linear: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """``linear`` with the ``hole`` pixels replaced by a smooth guess from around them.

    Normalised convolution, coarse to fine: nearby colours where the hole is narrow, a
    broad average deep inside big holes. Wide blurs run on a shrunken copy (fast). It is
    only ever seen blurred, where a moving segment uncovers it.
    """
    known = (~hole).astype(np.float32)
    if not known.any():
        return linear.copy()
    height, width = hole.shape
    out = linear.copy()
    todo = hole.copy()
    for sigma in (3.0, 12.0, max(height, width) / 4):
        shrink = max(1, int(sigma // 3))
        small = (max(1, width // shrink), max(1, height // shrink))
        k = cv2.resize(known, small, interpolation=cv2.INTER_AREA)
        v = cv2.resize(linear * known[..., None], small, interpolation=cv2.INTER_AREA)
        s = sigma / shrink
        weight = cv2.resize(cv2.GaussianBlur(k, (0, 0), s), (width, height))
        total = cv2.resize(cv2.GaussianBlur(v, (0, 0), s), (width, height))
        ready = todo & (weight > 1e-3)
        out[ready] = total[ready] / weight[ready, None]
        todo &= ~ready
        if not todo.any():
            return out
    out[todo] = linear[~hole].mean(axis=0)
    return out
