"""Image files in and out, keeping what the photographer cares about.

Pixels are decoded by OpenCV (8- and 16-bit, gray, alpha; PNG, JPEG, TIFF, WebP, BMP). EXIF
orientation is applied on read so the network sees the upright picture. EXIF (with the
orientation reset) and the ICC profile are carried to the output: PNG of any depth is encoded
by OpenCV (the fastest path) and gets iCCP/eXIf chunks added here; 8-bit JPEG/WebP/TIFF go
through Pillow, which writes both; 16-bit TIFF gets its ICC tag added here (no EXIF).
All writes are atomic. Arrays are RGB(A) order, never BGR, outside this module.

The picture size is read from the file header before anything is decoded, so a 20000x20000
PNG is refused in milliseconds instead of after gigabytes of decoding
(see ``max_megapixels_limit``).
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
from PIL import Image

from ..atomic import atomic_path
from ..errors import InputError, OutputError
from .png import chunk as png_chunk
from .png import decode_png, encode_png
from .png import iter_chunks as iter_png_chunks
from .sniff import (  # noqa: F401 - MAX_MEGAPIXELS_ENV, DEFAULT_MAX_MEGAPIXELS: public here too
    DEFAULT_MAX_MEGAPIXELS,
    FORMAT_NAMES,
    IMAGE_EXTENSIONS,
    MAX_MEGAPIXELS_ENV,
    OUTPUT_FORMATS,
    TAIL_BYTES,
    check_complete,
    check_size,
    image_kind,
    max_megapixels_limit,
)

# Our own limit, checked from the header (``check_size``), replaces Pillow's decompression-bomb
# guard: Pillow would refuse a 180 MP camera file while reading its EXIF, with a traceback.
Image.MAX_IMAGE_PIXELS = None

cv2.utils.logging.setLogLevel(
    cv2.utils.logging.LOG_LEVEL_SILENT
)  # OpenCV's own warnings would break the one-line-error promise

OPENCV_MAX_PIXELS = 1 << 30  # OpenCV's own decoder limit (OPENCV_IO_MAX_IMAGE_PIXELS)
# --png-compression. fast: level 1 with the run-length strategy and the "up" row filter,
# written by io/png.py with zlib-ng (the libpng parameters below give the same file, 1.7x
# slower); 8x+ faster than Pillow's default (level 6, adaptive filters) for files ~6 %
# larger. small: level 9 with libpng's adaptive filters, a few % smaller than Pillow's
# default at ~9x its time (benchmarks/bench_io.py).
_UP_FILTER = (
    [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
    if hasattr(cv2, "IMWRITE_PNG_FILTER")  # OpenCV >= 4.10; older ones pick the filters
    else []
)
PNG_COMPRESSION = {
    "fast": [
        cv2.IMWRITE_PNG_COMPRESSION,
        1,
        cv2.IMWRITE_PNG_STRATEGY,
        cv2.IMWRITE_PNG_STRATEGY_RLE,
        *_UP_FILTER,
    ],
    "small": [cv2.IMWRITE_PNG_COMPRESSION, 9],
}
# From this size up, "fast" PNGs are compressed in strips on every core (io/png.py): 0.41 vs
# 0.84 s for 24 MP on 2 cores. Smaller ones stay on one core: deblur batch and deblur video
# already overlap their writes with the network.
PARALLEL_PNG_PIXELS = 4_000_000
ORIENTATION_TAG = 0x0112
SOFTWARE_TAG = 0x0131
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
    # Written as the PNG "Software" text chunk or the EXIF Software tag: deblur's outputs
    # set it (io.sniff.SOFTWARE), so that 'deblur batch' knows its own files.
    software: str | None = None


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


def _png_metadata(data: bytes) -> tuple[bytes | None, bytes | None] | None:
    """(ICC profile, EXIF) of a PNG from its chunk list, or None to ask Pillow instead.

    Walking the chunk headers costs microseconds; Pillow's ``getexif()`` on a PNG decodes the
    whole picture first (its eXIf chunk may follow the pixels), which doubled the cost of
    reading a 720p frame in ``deblur batch``."""
    icc = exif = None
    for kind, body, _crc in iter_png_chunks(data):
        if kind == b"iCCP":
            name_end = body.find(b"\x00")
            try:
                icc = zlib.decompress(body[name_end + 2 :]) if name_end >= 0 else None
            except zlib.error:
                icc = None  # a damaged profile is dropped, as Pillow drops it
        elif kind == b"eXIf":  # the TIFF block alone; Pillow's loader wants the APP1 prefix
            exif = body if body.startswith(b"Exif") else b"Exif\x00\x00" + body
        elif kind in (b"tEXt", b"zTXt", b"iTXt") and body.startswith(b"Raw profile type exif"):
            return None  # ImageMagick's EXIF-in-text: Pillow knows how to read it
    return icc, exif


def read_header(data: bytes) -> tuple[tuple[int, int] | None, ImageInfo]:
    """(width, height) and the metadata to carry over, from one header read, no decoding:
    Pillow reads only the header on open (PNG, JPEG, TIFF and BigTIFF, WebP, BMP…). The
    size is None when no header can be read, and the decoded picture is then held to the
    same limit; metadata is a bonus, and OpenCV decides whether the pixels are readable."""
    size, info = None, ImageInfo()
    try:
        with Image.open(io.BytesIO(data)) as im:
            size = im.size
            info.source_format = im.format or ""
            png = _png_metadata(data) if im.format == "PNG" else None
            if png is not None:
                info.icc_profile, raw_exif = png
                exif = Image.Exif()
                if raw_exif:
                    exif.load(raw_exif)
            else:
                info.icc_profile = im.info.get("icc_profile") or None
                exif = im.getexif()
        if len(exif):
            info.orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
            if ORIENTATION_TAG in exif:
                exif[ORIENTATION_TAG] = 1
            info.exif = exif.tobytes()
    except Exception:  # noqa: BLE001 - any damage means "unknown", as above
        pass
    return size, info


def read_image(
    path: str | os.PathLike, *, max_megapixels: float | None = None
) -> tuple[np.ndarray, ImageInfo]:
    """Decode to RGB/RGBA/gray uint8 or uint16, upright, with the metadata to carry over.

    Pictures larger than ``max_megapixels`` (default: $DEBLUR_MAX_MEGAPIXELS or 200; 0 = no
    limit) are refused from their header, before any decoding."""
    path = Path(path)
    data = _read_bytes(path)
    size, info = read_header(data)
    if size is not None:
        check_size(path, *size, max_megapixels)
    check_complete(path, data[:64], data[-TAIL_BYTES:])
    pixels = decode_png(data)  # RGB(A) already, or None: a PNG numpy cannot undo quickly
    if pixels is not None:
        return _apply_orientation(pixels, info.orientation), info
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        if size is not None and size[0] * size[1] > OPENCV_MAX_PIXELS:
            raise InputError(
                f"{path}: {size[0]}x{size[1]} is more than OpenCV decodes "
                f"({OPENCV_MAX_PIXELS / 1e6:.0f} megapixels at most)"
            )
        raise InputError(f"{path}: not a readable image (corrupt or unsupported format)")
    if size is None:  # a header we could not read: hold the decoded picture to the same limit
        check_size(path, pixels.shape[1], pixels.shape[0], max_megapixels)
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
    pixels = _apply_orientation(pixels, info.orientation)
    return pixels, info


def _add_png_metadata(png: bytes, info: ImageInfo) -> bytes:
    """Insert iCCP, eXIf and the Software text right after IHDR (before IDAT)."""
    chunks = b""
    if info.software:
        chunks += png_chunk(b"tEXt", b"Software\x00" + info.software.encode("latin-1"))
    if info.icc_profile:
        chunks += png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(info.icc_profile))
    if info.exif:
        exif = info.exif[6:] if info.exif.startswith(b"Exif\x00\x00") else info.exif
        chunks += png_chunk(b"eXIf", exif)
    ihdr_end = 8 + 8 + 13 + 4
    return png[:ihdr_end] + chunks + png[ihdr_end:]


def _exif_with_software(info: ImageInfo) -> bytes:
    """The EXIF to write: the input's, with the Software tag set when ``info.software``."""
    if not info.software:
        return info.exif or b""
    exif = Image.Exif()
    if info.exif:
        exif.load(info.exif)
    exif[SOFTWARE_TAG] = info.software
    return exif.tobytes()


def _to_8bit(pixels: np.ndarray) -> np.ndarray:
    return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _flatten_on_white(rgba: np.ndarray) -> np.ndarray:
    """JPEG has no alpha: composite onto white, as a viewer shows a transparent picture,
    rather than expose whatever colour the transparent pixels happen to hold."""
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    rgb = rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
    return np.rint(rgb).astype(np.uint8)


def _encode_png(pixels: np.ndarray, info: ImageInfo, compression: str) -> bytes:
    """fast: our zlib-ng writer (io/png.py; on every core from PARALLEL_PNG_PIXELS up);
    small: OpenCV's libpng at level 9 with adaptive filters. The ICC profile and EXIF are
    added as chunks."""
    if compression not in PNG_COMPRESSION:
        raise OutputError(
            f"unknown PNG compression {compression!r} (use {', '.join(PNG_COMPRESSION)})"
        )
    if compression == "fast":
        big = pixels.shape[0] * pixels.shape[1] >= PARALLEL_PNG_PIXELS
        return _add_png_metadata(encode_png(pixels, threads=None if big else 1), info)
    ok, encoded = cv2.imencode(".png", _to_bgr(pixels), PNG_COMPRESSION[compression])
    if not ok:
        raise OutputError(f"OpenCV cannot encode {pixels.dtype} PNG")
    return _add_png_metadata(encoded.tobytes(), info)


def _to_bgr(pixels: np.ndarray) -> np.ndarray:
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA)
    return pixels


def _add_tiff_icc(tiff: bytes, icc: bytes) -> bytes:
    """Give a classic TIFF an ICC profile (tag 34675): a copy of its first IFD with the tag
    added is appended and the header pointed at it (OpenCV's TIFF writer has no metadata)."""
    order = "<" if tiff[:2] == b"II" else ">"
    if struct.unpack(order + "H", tiff[2:4])[0] != 42:
        return tiff  # BigTIFF: left as written
    offset = struct.unpack(order + "I", tiff[4:8])[0]
    count = struct.unpack(order + "H", tiff[offset : offset + 2])[0]
    entries = [tiff[offset + 2 + 12 * k : offset + 14 + 12 * k] for k in range(count)]
    next_ifd = tiff[offset + 2 + 12 * count : offset + 6 + 12 * count]
    body = tiff + b"\x00" * (len(tiff) % 2)  # TIFF offsets are word-aligned
    icc_at = len(body)
    body += icc + b"\x00" * (len(icc) % 2)
    icc_entry = struct.pack(order + "HHII", 34675, 7, len(icc), icc_at)  # 7 = UNDEFINED
    entries = [e for e in entries if struct.unpack(order + "H", e[:2])[0] != 34675]
    entries = sorted([*entries, icc_entry], key=lambda e: struct.unpack(order + "H", e[:2])[0])
    ifd_at = len(body)
    body += struct.pack(order + "H", len(entries)) + b"".join(entries) + next_ifd
    return body[:4] + struct.pack(order + "I", ifd_at) + body[8:]


def encode_image(
    pixels: np.ndarray,
    suffix: str,
    info: ImageInfo | None = None,
    quality: int = 95,
    png_compression: str = "fast",
) -> bytes:
    """Encode in the format named by ``suffix``, with EXIF/ICC where the format allows.

    PNG and TIFF keep 16 bits and alpha; JPEG, WebP and BMP are 8-bit (16-bit is rounded);
    JPEG has no alpha, so a transparent picture is composited onto white.
    ``png_compression``: "fast" (zlib level 1, run-length strategy, "up" filter) or "small"
    (level 9, adaptive filters: ~10 % smaller, ~70x slower); see PNG_COMPRESSION.
    """
    suffix = suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise OutputError(
            f"unsupported output format {suffix!r} (use {', '.join(IMAGE_EXTENSIONS)})"
        )
    info = info or ImageInfo()
    if suffix == ".png":
        return _encode_png(pixels, info, png_compression)
    if pixels.dtype == np.uint16 and suffix in (".jpg", ".jpeg", ".webp", ".bmp"):
        pixels = _to_8bit(pixels)
    if suffix in (".jpg", ".jpeg") and pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = _flatten_on_white(pixels)
    if pixels.dtype == np.uint8 and suffix != ".bmp":
        image = Image.fromarray(pixels)
        kwargs: dict = {}
        if info.icc_profile:
            kwargs["icc_profile"] = info.icc_profile
        if info.exif or info.software:
            kwargs["exif"] = _exif_with_software(info)
        if suffix in (".jpg", ".jpeg", ".webp"):
            kwargs["quality"] = int(quality)
        if suffix in (".jpg", ".jpeg"):
            kwargs["subsampling"] = 0 if quality >= 90 else 2
        if suffix == ".webp" and quality >= 100:
            kwargs["lossless"] = True
        buffer = io.BytesIO()
        image.save(buffer, format=PIL_FORMATS[suffix], **kwargs)
        return buffer.getvalue()
    ok, encoded = cv2.imencode(suffix, _to_bgr(pixels))
    if not ok:
        raise OutputError(f"OpenCV cannot encode {pixels.dtype} {suffix}")
    if suffix in (".tif", ".tiff") and info.icc_profile:
        return _add_tiff_icc(encoded.tobytes(), info.icc_profile)
    return encoded.tobytes()


def write_image(
    path: str | os.PathLike,
    pixels: np.ndarray,
    info: ImageInfo | None = None,
    *,
    quality: int = 95,
    png_compression: str = "fast",
) -> Path:
    """Encode fully in memory, then write atomically: never a half-written file."""
    path = Path(path)
    data = encode_image(pixels, path.suffix or ".png", info, quality, png_compression)
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror}") from None
    return path
