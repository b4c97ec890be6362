"""PNG writing and reading at the speed of the fastest deflate libraries, on every core.

Writing (``--png-compression fast``): ISA-L (Intel's deflate, x86 and ARM) at level 1
compresses 2.1x faster than zlib-ng's run-length strategy for ~8 % larger files and ~4x
faster than the zlib inside libpng/OpenCV; zlib-ng, then stdlib zlib, are the fallbacks.
libpng also compresses on one core: a 24 MP photo's encode left one of two cores idle at
the end of ``deblur image``. A PNG's pixels are one zlib stream, but a deflate stream can be
cut into pieces that are compressed independently and concatenated when each piece but the
last ends on a byte boundary (a sync flush); each piece only loses the matches that would
reach back into the previous one. Each horizontal strip is filtered ("up", numpy) and
compressed on its own thread — both release the GIL — and its Adler-32 checksum is combined
into the stream's.

Reading: see :func:`decode_png` — libdeflate's inflate and numpy for the common filters.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

try:  # same API and stream format as zlib, ~1.7x faster at level 1 (benchmarks/bench_io.py)
    from zlib_ng import zlib_ng as deflate_lib
except ImportError:  # pragma: no cover - zlib-ng is a dependency; a missing wheel still works
    deflate_lib = zlib
try:  # ISA-L: level 1 compresses 2.1x faster than zlib-ng's run-length strategy, ~8 % larger
    from isal import isal_zlib as compress_lib
except ImportError:  # pragma: no cover - a dependency; zlib-ng (or zlib) then compresses
    compress_lib = None
try:  # libdeflate: whole-buffer inflate ~1.9x faster than zlib-ng's (benchmarks/bench_io.py)
    import deflate as libdeflate
except ImportError:  # pragma: no cover - a dependency; zlib-ng then inflates
    libdeflate = None

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ADLER_BASE = 65521
_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels → gray, gray+alpha, RGB, RGBA
_FILTER_UP = 2


def iter_chunks(data: bytes) -> Iterator[tuple[bytes, bytes, int]]:
    """(type, body, stored CRC) of each complete chunk after the signature, up to IEND."""
    at = len(SIGNATURE)
    while at + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, at)
        end = at + 8 + length
        if end + 4 > len(data):
            return
        yield kind, data[at + 8 : end], struct.unpack_from(">I", data, end)[0]
        if kind == b"IEND":
            return
        at = end + 4


def chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(body, zlib.crc32(kind))
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def adler32_combine(first: int, second: int, second_length: int) -> int:
    """The Adler-32 of A+B from those of A and B: s1 sums the bytes (plus one), s2 sums
    the running s1s, so B's s2 shifts by len(B) times A's s1 less the one counted twice."""
    s1 = ((first & 0xFFFF) + (second & 0xFFFF) - 1) % _ADLER_BASE
    s2 = (first >> 16) + (second >> 16) + second_length * ((first & 0xFFFF) - 1)
    return s1 | (s2 % _ADLER_BASE) << 16


def _scanlines(rows: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """``rows`` (H x rowbytes, uint8) with the "up" filter: each row minus the one above it
    (mod 256), behind the filter-type byte."""
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0] = _FILTER_UP
    out[0, 1:] = rows[0] if previous is None else rows[0] - previous
    np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])
    return out


def _compress_strip(
    rows: np.ndarray, previous: np.ndarray | None, level: int, last: bool
) -> tuple[bytes, int, int]:
    data = _scanlines(rows, previous)
    if compress_lib is not None:
        lib, deflate = compress_lib, compress_lib.compressobj(level, compress_lib.DEFLATED, -15)
    else:
        lib = deflate_lib
        deflate = lib.compressobj(level, lib.DEFLATED, -15, 9, lib.Z_RLE)
    body = deflate.compress(data) + deflate.flush(lib.Z_FINISH if last else lib.Z_SYNC_FLUSH)
    return body, lib.adler32(data), data.size


def encode_png(
    pixels: np.ndarray, *, level: int = 1, threads: int | None = None, strips: int | None = None
) -> bytes:
    """PNG bytes of an RGB(A) or gray, uint8 or uint16 array (no metadata chunks), "up"
    filter, ISA-L at ``level`` (0-3), else zlib-ng's run-length strategy.

    ``threads``: default one per core; ``strips``: default four per thread, so a slow strip
    does not hold the others up. ``threads=1`` compresses in the calling thread."""
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"PNG holds uint8 or uint16 samples, not {pixels.dtype}")
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels not in _COLOUR_TYPES:
        raise ValueError(f"PNG holds 1-4 channels, not {channels}")
    depth = 8 if pixels.dtype == np.uint8 else 16
    samples = pixels.astype(">u2", copy=False) if depth == 16 else pixels
    rows = np.ascontiguousarray(samples).view(np.uint8).reshape(height, -1)
    threads = threads or os.cpu_count() or 1
    strips = max(1, min(height, strips or (1 if threads == 1 else 4 * threads)))
    bounds = np.linspace(0, height, strips + 1).astype(int)

    def strip(k: int) -> tuple[bytes, int, int]:
        previous = rows[bounds[k] - 1] if k else None
        return _compress_strip(rows[bounds[k] : bounds[k + 1]], previous, level, k == strips - 1)

    if threads == 1:
        parts = [strip(k) for k in range(strips)]
    else:
        with ThreadPoolExecutor(threads, thread_name_prefix="deblur-png") as pool:
            parts = list(pool.map(strip, range(strips)))
    checksum = 1  # the Adler-32 of nothing
    for _body, adler, length in parts:
        checksum = adler32_combine(checksum, adler, length)
    header = struct.pack(">IIBBBBB", width, height, depth, _COLOUR_TYPES[channels], 0, 0, 0)
    stream = [body for body, _adler, _length in parts]  # one IDAT chunk per strip
    stream[0] = b"\x78\x01" + stream[0]  # zlib header: deflate, 32 KiB window, no dictionary
    stream[-1] += struct.pack(">I", checksum)
    idat = [chunk(b"IDAT", part) for part in stream]
    return b"".join([SIGNATURE, chunk(b"IHDR", header), *idat, chunk(b"IEND", b"")])


# --------------------------------------------------------------------------- reading

# Filter types whose undoing is vectorisable: None, Sub (a running sum along the row), Up (a
# running sum down the rows, one numpy add per row). Average and Paeth depend on the pixel
# just undone to the left, pixel by pixel: those files go to OpenCV's libpng.
_FILTER_NONE, _FILTER_SUB = 0, 1
_CHANNELS = {0: 1, 2: 3, 6: 4}  # colour type → channels, for the types read here
_PEEK_ROWS = 16


def decode_png(data: bytes) -> np.ndarray | None:
    """The pixels of a PNG as OpenCV would give them, but RGB(A) order, or None for OpenCV.

    Why: reading a 720p frame with OpenCV costs more CPU than writing it (17 vs 13 ms) and
    it runs beside a network that already fills every core. PNGs written with the filters
    None/Sub/Up — OpenCV's default (Sub), FFmpeg's (None) and ours (Up) — decode here with
    libdeflate's inflate (1.9x zlib-ng's) and numpy, in about half the time. Anything
    else (palette, < 8 bits, gray+alpha, transparency keys, interlacing, Average/Paeth rows,
    a bad checksum) returns None before the bulk of the work, so that libpng decides."""
    if not data.startswith(SIGNATURE):
        return None
    header, idat = None, []
    for kind, body, crc in iter_chunks(data):
        if kind in (b"IHDR", b"IDAT") and deflate_lib.crc32(body, zlib.crc32(kind)) != crc:
            return None
        if kind == b"IHDR" and len(body) == 13:
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"tRNS" or kind[0] < ord("a") and kind != b"IEND":  # unknown critical
            return None
    if header is None or not idat:
        return None
    width, height, depth, colour, method, row_filter, interlace = header
    if depth not in (8, 16) or colour not in _CHANNELS or method or row_filter or interlace:
        return None
    pixel_bytes = _CHANNELS[colour] * depth // 8
    stride = 1 + width * pixel_bytes
    if not width or not height:
        return None
    stream, size = b"".join(idat), height * stride
    try:  # a look at the first rows' filters first: no full inflate for a Paeth file
        head = deflate_lib.decompressobj().decompress(stream, min(height, _PEEK_ROWS) * stride)
    except deflate_lib.error:
        return None
    if max(head[::stride], default=0) > _FILTER_UP:
        return None  # Average/Paeth rows (libpng's adaptive choice): OpenCV
    raw = _inflate(stream, size)
    if raw is None or len(raw) != size:
        return None
    scanlines = np.frombuffer(raw, np.uint8).reshape(height, stride)
    if scanlines[:, 0].max() > _FILTER_UP:
        return None
    out = _unfilter(scanlines[:, 0], scanlines[:, 1:], pixel_bytes)
    shape = (height, width) if colour == 0 else (height, width, _CHANNELS[colour])
    if depth == 16:
        return out.view(">u2").astype(np.uint16).reshape(shape)
    return out.reshape(shape)


def _unfilter(filters: np.ndarray, pixels: np.ndarray, pixel_bytes: int) -> np.ndarray:
    """The raw bytes of None/Sub/Up-filtered rows (H x rowbytes, uint8)."""
    height = pixels.shape[0]
    by_pixel = (height, -1, pixel_bytes)
    out = np.empty_like(pixels)
    if (filters == _FILTER_SUB).all():  # one kind for all rows: no gathering
        np.cumsum(pixels.reshape(by_pixel), axis=1, dtype=np.uint8, out=out.reshape(by_pixel))
        return out
    plain = np.flatnonzero(filters == _FILTER_NONE)
    out[plain] = pixels[plain]
    sub = np.flatnonzero(filters == _FILTER_SUB)
    if sub.size:  # each byte plus the same byte of the pixel to its left, mod 256
        rows = pixels[sub].reshape(sub.size, -1, pixel_bytes)
        out[sub] = np.cumsum(rows, axis=1, dtype=np.uint8).reshape(sub.size, -1)
    for row in np.flatnonzero(filters == _FILTER_UP).tolist():  # plus the row above
        if row:
            np.add(out[row - 1], pixels[row], out=out[row])
        else:
            out[0] = pixels[0]
    return out


def _inflate(stream: bytes, size: int) -> bytes | None:
    """The zlib stream's bytes (checksum verified), at most ``size`` of them; None if damaged."""
    if libdeflate is not None:
        try:
            return libdeflate.zlib_decompress(stream, size)
        except libdeflate.DeflateError:
            return None
    inflater = deflate_lib.decompressobj()
    try:
        raw = inflater.decompress(stream, size)
    except deflate_lib.error:
        return None
    return raw if inflater.eof else None
