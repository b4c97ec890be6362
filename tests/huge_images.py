"""Files whose header declares a huge picture, made in milliseconds and a few MB of memory."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def huge_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A complete, valid 1-bit grayscale PNG (all black), compressed row by row: 50 MB of
    zlib input for 20000x20000 instead of gigabytes of pixels."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter type 0, then the packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )
    return path


def _small(fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def huge_header(path: Path, width: int, height: int) -> Path:
    """A small picture in the format of ``path``'s suffix whose header claims width x height
    (the pixel data stays 16x16: only a decoder that trusted the header would blow up)."""
    suffix = path.suffix.lower()
    if suffix == ".png":
        data = bytearray(_small("PNG"))
        data[16:24] = struct.pack(">II", width, height)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    elif suffix in (".jpg", ".jpeg"):
        data = bytearray(_small("JPEG"))
        sof = data.index(b"\xff\xc0")
        data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    elif path.name.endswith(".big.tif"):  # BigTIFF: 64-bit offsets and counts, 20-byte entries
        entries = [
            (256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1),
            (273, 16, 200), (277, 3, 1), (278, 4, height), (279, 16, width * height),
        ]  # fmt: skip
        ifd = struct.pack("<Q", len(entries))
        ifd += b"".join(struct.pack("<HHQQ", tag, kind, 1, value) for tag, kind, value in entries)
        data = b"II" + struct.pack("<HHHQ", 43, 8, 0, 16) + ifd + struct.pack("<Q", 0) + bytes(64)
    elif suffix in (".tif", ".tiff"):
        data = bytearray(_small("TIFF"))
        offset = struct.unpack("<I", data[4:8])[0]
        for k in range(struct.unpack("<H", data[offset : offset + 2])[0]):
            at = offset + 2 + 12 * k
            tag = struct.unpack("<H", data[at : at + 2])[0]
            if tag in (256, 257):
                data[at + 2 : at + 12] = struct.pack("<HII", 4, 1, width if tag == 256 else height)
    elif suffix == ".webp":  # lossy VP8: 14-bit sizes, so at most 16383x16383
        data = bytearray(_small("WEBP"))
        at = data.index(b"\x9d\x01\x2a") + 3
        data[at : at + 4] = struct.pack("<HH", width, height)
    elif suffix == ".bmp":
        data = bytearray(_small("BMP"))
        data[18:26] = struct.pack("<ii", width, height)
    else:
        raise ValueError(suffix)
    path.write_bytes(bytes(data))
    return path
