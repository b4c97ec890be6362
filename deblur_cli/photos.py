"""Deblur image files: output naming, overwrite protection, before/after comparisons.

This is the library behind ``deblur image`` and ``deblur batch``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from .atomic import write_files_together
from .engine import Deblurrer, deblur_array
from .io.images import ImageInfo, encode_image, read_image
from .io.sniff import SOFTWARE
from .limits import check_min_size
from .outputs import (  # noqa: F401 - the output planning, public here as before
    SUFFIX,
    check_not_input,
    check_unique_outputs,
    check_writable,
    default_output,
    plan_outputs,
    with_format,
)


def read_input(
    src: str | os.PathLike, *, max_megapixels: float | None = None
) -> tuple[np.ndarray, ImageInfo]:
    """Decode an input and reject what the network cannot use, before any model work."""
    pixels, info = read_image(src, max_megapixels=max_megapixels)
    check_min_size(src, pixels.shape[1], pixels.shape[0])
    return pixels, info


def deblur_file(
    model: Deblurrer,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    quality: int = 95,
    png_compression: str = "fast",
    overwrite: bool = False,
    compare: str | os.PathLike | None = None,
    max_megapixels: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read, deblur and atomically write one image, keeping depth, alpha and metadata."""
    src, dst = Path(src), Path(dst)
    check_not_input(src, dst, overwrite)
    check_writable([dst] if compare is None else [dst, compare])
    pixels, info = read_input(src, max_megapixels=max_megapixels)
    result = deblur_decoded(
        model,
        pixels,
        info,
        dst,
        quality=quality,
        png_compression=png_compression,
        compare=compare,
    )
    return pixels, result


def deblur_decoded(
    model: Deblurrer,
    pixels: np.ndarray,
    info: ImageInfo,
    dst: str | os.PathLike,
    *,
    quality: int = 95,
    png_compression: str = "fast",
    compare: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """The second half of :func:`deblur_file`, for callers that decode first (so that a bad
    input fails before the model is even loaded). With ``compare``, both pictures are
    written or neither."""
    dst = Path(dst)
    result = deblur_array(model, pixels, progress=progress)
    info = dataclasses.replace(info, software=SOFTWARE)  # 'deblur batch' knows its own files
    files = [(dst, encode_image(result, dst.suffix, info, quality, png_compression))]
    if compare is not None:
        compare = Path(compare)
        picture = side_by_side(pixels, result)
        compare_info = ImageInfo(icc_profile=info.icc_profile, software=SOFTWARE)
        files.append(
            (compare, encode_image(picture, compare.suffix, compare_info, quality, png_compression))
        )
    write_files_together(files)
    return result


def _to_rgb8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint16:
        pixels = (pixels.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return np.ascontiguousarray(pixels[..., :3])


def side_by_side(
    before: np.ndarray, after: np.ndarray, *more: np.ndarray, labels: Sequence[str] = ()
) -> np.ndarray:
    """Panels left to right with labels (default "before", "after"), 8-bit RGB."""
    panels = [_to_rgb8(p) for p in (before, after, *more)]
    labels = list(labels) or ["before", "after"]
    gap = np.full((panels[0].shape[0], max(4, panels[0].shape[1] // 200), 3), 255, np.uint8)
    pieces = [panels[0]]
    for panel in panels[1:]:
        pieces += [gap, panel]
    canvas = np.concatenate(pieces, axis=1)
    starts = np.cumsum([0] + [p.shape[1] + gap.shape[1] for p in panels[:-1]])
    scale = max(0.5, canvas.shape[1] / 1600)
    thickness = max(1, int(round(scale * 2)))
    for text, left in zip(labels, starts, strict=False):
        origin = (int(left) + 10, int(30 * scale) + 5)
        # A darkened box behind the label keeps it readable over white shirts and skies.
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness + 2)
        pad = max(3, thickness * 2)
        y0, y1 = max(0, origin[1] - h - pad), origin[1] + base + pad
        x0, x1 = max(0, origin[0] - pad), min(canvas.shape[1], origin[0] + w + pad)
        canvas[y0:y1, x0:x1] = canvas[y0:y1, x0:x1] // 2
        for colour, width in (((0, 0, 0), thickness + 2), ((255, 255, 255), thickness)):
            font = cv2.FONT_HERSHEY_SIMPLEX
            cv2.putText(canvas, text, origin, font, scale, colour, width, cv2.LINE_AA)
    return canvas
