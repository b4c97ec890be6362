"""Deblur image files: output naming, overwrite protection, before/after comparisons.

This is the library behind ``deblur image`` and ``deblur batch``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from .atomic import write_files_together
from .engine import Deblurrer, deblur_array
from .errors import InputError, OutputError
from .io.images import (
    IMAGE_EXTENSIONS,
    OUTPUT_FORMATS,
    ImageInfo,
    encode_image,
    read_image,
)

SUFFIX = "_deblurred"


def with_format(path: Path, output_format: str = "keep") -> Path:
    """``path`` with the suffix of ``output_format`` (keep | png | jpg | webp | tif)."""
    if output_format not in OUTPUT_FORMATS:
        raise InputError(
            f"unknown output format {output_format!r} (use {', '.join(OUTPUT_FORMATS)})"
        )
    suffix = OUTPUT_FORMATS[output_format]
    return path.with_suffix(suffix) if suffix else path


def default_output(path: Path, output_format: str = "keep") -> Path:
    """``photo.jpg`` → ``photo_deblurred.jpg`` beside it (videos too: same container)."""
    return with_format(path.with_name(f"{path.stem}{SUFFIX}{path.suffix}"), output_format)


def check_unique_outputs(pairs: Iterable[tuple[Path, Path]]) -> None:
    """Two inputs must not write the same output (``a.jpg`` and ``a.png`` with --format png)."""
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        if dst in seen:
            raise OutputError(
                f"{seen[dst]} and {src} would both be written to {dst}: give them separate "
                "folders, or keep their formats (--format keep)"
            )
        seen[dst] = src


def plan_outputs(
    inputs: list[Path], output: Path | None, output_format: str = "keep"
) -> list[tuple[Path, Path]]:
    """One place decides output paths: a file for one input, a folder for several."""
    if output is None:
        pairs = [(p, default_output(p, output_format)) for p in inputs]
        check_unique_outputs(pairs)
        return pairs
    is_folder = output.is_dir() or len(inputs) > 1 or not output.suffix
    if not is_folder:
        if output.suffix.lower() not in IMAGE_EXTENSIONS:
            raise OutputError(f"{output}: unsupported output format {output.suffix!r}")
        suffix = {".jpeg": ".jpg", ".tiff": ".tif"}.get(
            output.suffix.lower(), output.suffix.lower()
        )
        if output_format != "keep" and OUTPUT_FORMATS.get(output_format) != suffix:
            raise InputError(
                f"-o {output} names a {output.suffix} file but --format is "
                f"{output_format}: drop one of them"
            )
        return [(inputs[0], output)]
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: exists and is not a folder")
    pairs = [(p, with_format(output / p.name, output_format)) for p in inputs]
    check_unique_outputs(pairs)
    return pairs


def check_writable(
    destinations: Iterable[str | os.PathLike], checked: set[Path] | None = None
) -> None:
    """Fail before any work when an output cannot be written: each destination's folder (or
    the nearest one that exists, as the folders are made on the way) must take a new file.

    ``checked`` holds the folders already found writable; pass the same set to calls made
    file by file so that a shared folder is probed once, not once per file."""
    checked = set() if checked is None else checked
    for destination in destinations:
        destination = Path(destination)
        if destination.is_dir():
            raise OutputError(f"{destination}: is a folder, not an output file")
        folder = destination.parent if str(destination.parent) else Path(".")
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if folder in checked:
            continue
        if not folder.is_dir():
            raise OutputError(f"cannot write {destination}: {folder} is not a folder")
        try:
            fd, probe = tempfile.mkstemp(prefix=".deblur-write-check.", dir=folder)
        except OSError as err:
            raise OutputError(f"cannot write to {folder}: {err.strerror}") from None
        os.close(fd)
        os.unlink(probe)
        checked.add(folder)  # only once it took a file: a refused folder is refused every time


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
    files = [(dst, encode_image(result, dst.suffix, info, quality, png_compression))]
    if compare is not None:
        compare = Path(compare)
        picture = side_by_side(pixels, result)
        compare_info = ImageInfo(icc_profile=info.icc_profile)
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
