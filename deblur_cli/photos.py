"""Deblur image files: output naming, overwrite protection, before/after comparisons.

This is the library behind ``deblur image`` and ``deblur batch``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from .engine import Deblurrer, deblur_array
from .errors import InputError, OutputError
from .io.images import IMAGE_EXTENSIONS, ImageInfo, read_image, write_image

SUFFIX = "_deblurred"


def default_output(path: Path) -> Path:
    """``photo.jpg`` → ``photo_deblurred.jpg`` beside it (videos too: same container)."""
    return path.with_name(f"{path.stem}{SUFFIX}{path.suffix}")


def plan_outputs(inputs: list[Path], output: Path | None) -> list[tuple[Path, Path]]:
    """One place decides output paths: a file for one input, a folder for several."""
    if output is None:
        return [(p, default_output(p)) for p in inputs]
    is_folder = output.is_dir() or len(inputs) > 1 or not output.suffix
    if not is_folder:
        if output.suffix.lower() not in IMAGE_EXTENSIONS:
            raise OutputError(f"{output}: unsupported output format {output.suffix!r}")
        return [(inputs[0], output)]
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: exists and is not a folder")
    names = [p.name for p in inputs]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise OutputError(
            f"several inputs are named {sorted(dupes)[0]}: give them separate folders"
        )
    return [(p, output / p.name) for p in inputs]


def check_not_input(src: Path, dst: Path, overwrite: bool) -> None:
    try:
        same = dst.exists() and os.path.samefile(src, dst)
    except OSError:
        same = False
    if same and not overwrite:
        raise OutputError(f"{dst} is the input; pass --overwrite to replace it on purpose")


def read_input(
    src: str | os.PathLike, *, max_megapixels: float | None = None
) -> tuple[np.ndarray, ImageInfo]:
    """Decode an input and reject what the network cannot use, before any model work."""
    pixels, info = read_image(src, max_megapixels=max_megapixels)
    if min(pixels.shape[:2]) < 8:
        raise InputError(f"{src}: image is too small ({pixels.shape[1]}x{pixels.shape[0]})")
    return pixels, info


def deblur_file(
    model: Deblurrer,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    quality: int = 95,
    overwrite: bool = False,
    compare: str | os.PathLike | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read, deblur and atomically write one image, keeping depth, alpha and metadata."""
    src, dst = Path(src), Path(dst)
    check_not_input(src, dst, overwrite)
    pixels, info = read_input(src)
    result = deblur_decoded(model, pixels, info, dst, quality=quality, compare=compare)
    return pixels, result


def deblur_decoded(
    model: Deblurrer,
    pixels: np.ndarray,
    info: ImageInfo,
    dst: str | os.PathLike,
    *,
    quality: int = 95,
    compare: str | os.PathLike | None = None,
) -> np.ndarray:
    """The second half of :func:`deblur_file`, for callers that decode first (so that a bad
    input fails before the model is even loaded)."""
    result = deblur_array(model, pixels)
    write_image(dst, result, info, quality=quality)
    if compare is not None:
        write_image(compare, side_by_side(pixels, result), ImageInfo(icc_profile=info.icc_profile))
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
        for colour, width in (((0, 0, 0), thickness + 2), ((255, 255, 255), thickness)):
            font = cv2.FONT_HERSHEY_SIMPLEX
            cv2.putText(canvas, text, origin, font, scale, colour, width, cv2.LINE_AA)
    return canvas
