"""Image files in and out, keeping what the photographer cares about.

Pixels are decoded by OpenCV (8- and 16-bit, gray, alpha; PNG, JPEG, TIFF, WebP, BMP). EXIF
orientation is applied on read so the network sees the upright picture. EXIF (with the
orientation reset) and the ICC profile are carried to the output through Pillow, which can
write them for 8-bit JPEG/PNG/WebP/TIFF; 16-bit PNG gets its iCCP/eXIf chunks added directly.
All writes are atomic. Arrays are RGB(A) order, never BGR, outside this module.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..atomic import atomic_path
from ..errors import InputError, OutputError

cv2.utils.logging.setLogLevel(
    cv2.utils.logging.LOG_LEVEL_SILENT
)  # OpenCV's own warnings would break the one-line-error promise

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
ORIENTATION_TAG = 0x0112
PIL_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}


@dataclass
class ImageInfo:
    """What must survive the round trip besides the pixels."""

    exif: bytes | None = None  # orientation already reset to 1
    icc_profile: bytes | None = None
    orientation: int = 1
    source_format: str = ""
    extra: dict = field(default_factory=dict)


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    if not data:
        raise InputError(f"{path}: empty file")
    return data


def _check_complete(path: Path, data: bytes) -> None:
    """libjpeg decodes a cut-off JPEG into a grey-bottomed picture without failing: look for
    the end-of-image marker ourselves."""
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-1024:].rstrip(b"\x00"):
        raise InputError(f"{path}: truncated or corrupt JPEG (no end-of-image marker)")
    if data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-64:]:
        raise InputError(f"{path}: truncated or corrupt PNG (no IEND chunk)")


def _apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF orientation 1-8 → upright (the transforms of the EXIF 2.3 spec)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1],
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(pixels)) if op else pixels


def _read_info(data: bytes) -> ImageInfo:
    info = ImageInfo()
    try:
        with Image.open(io.BytesIO(data)) as im:
            info.source_format = im.format or ""
            info.icc_profile = im.info.get("icc_profile") or None
            exif = im.getexif()
            if len(exif):
                info.orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
                if ORIENTATION_TAG in exif:
                    exif[ORIENTATION_TAG] = 1
                info.exif = exif.tobytes()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error):
        pass  # metadata is a bonus; OpenCV decides whether the pixels are readable
    return info


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, ImageInfo]:
    """Decode to RGB/RGBA/gray uint8 or uint16, upright, with the metadata to carry over."""
    path = Path(path)
    data = _read_bytes(path)
    _check_complete(path, data)
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise InputError(f"{path}: not a readable image (corrupt or unsupported format)")
    if pixels.dtype not in (np.uint8, np.uint16):
        if pixels.dtype == np.float32:  # float TIFF/EXR-style: assume 0..1
            pixels = np.clip(pixels, 0, 1)
        else:
            raise InputError(f"{path}: unsupported pixel type {pixels.dtype}")
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGBA)
    elif pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    info = _read_info(data)
    pixels = _apply_orientation(pixels, info.orientation)
    return pixels, info


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _add_png_metadata(png: bytes, info: ImageInfo) -> bytes:
    """Insert iCCP and eXIf right after IHDR (both must precede IDAT)."""
    chunks = b""
    if info.icc_profile:
        chunks += _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(info.icc_profile))
    if info.exif:
        exif = info.exif[6:] if info.exif.startswith(b"Exif\x00\x00") else info.exif
        chunks += _png_chunk(b"eXIf", exif)
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + chunks + png[ihdr_end:]


def encode_image(
    pixels: np.ndarray, suffix: str, info: ImageInfo | None = None, quality: int = 95
) -> bytes:
    """Encode in the format named by ``suffix``, with EXIF/ICC where the format allows."""
    suffix = suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise OutputError(
            f"unsupported output format {suffix!r} (use {', '.join(IMAGE_EXTENSIONS)})"
        )
    info = info or ImageInfo()
    if pixels.dtype == np.uint16 and suffix in (".jpg", ".jpeg", ".webp", ".bmp"):
        pixels = (pixels.astype(np.uint32) * 255 + 32767) // 65535
        pixels = pixels.astype(np.uint8)
    if pixels.dtype == np.uint8 and suffix != ".bmp":
        image = Image.fromarray(pixels)
        if suffix in (".jpg", ".jpeg") and image.mode == "RGBA":
            image = image.convert("RGB")  # JPEG has no alpha
        kwargs: dict = {}
        if info.icc_profile:
            kwargs["icc_profile"] = info.icc_profile
        if info.exif:
            kwargs["exif"] = info.exif
        if suffix in (".jpg", ".jpeg", ".webp"):
            kwargs["quality"] = int(quality)
        if suffix in (".jpg", ".jpeg"):
            kwargs["subsampling"] = 0 if quality >= 90 else 2
        if suffix == ".webp" and quality >= 100:
            kwargs["lossless"] = True
        buffer = io.BytesIO()
        image.save(buffer, format=PIL_FORMATS[suffix], **kwargs)
        return buffer.getvalue()
    bgr = pixels
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        bgr = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        bgr = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
    ok, encoded = cv2.imencode(suffix, bgr)
    if not ok:
        raise OutputError(f"OpenCV cannot encode {pixels.dtype} {suffix}")
    data = encoded.tobytes()
    if suffix == ".png":
        data = _add_png_metadata(data, info)
    return data


def write_image(
    path: str | os.PathLike,
    pixels: np.ndarray,
    info: ImageInfo | None = None,
    *,
    quality: int = 95,
) -> Path:
    """Encode fully in memory, then write atomically: never a half-written file."""
    path = Path(path)
    data = encode_image(pixels, path.suffix or ".png", info, quality)
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror}") from None
    return path
