"""What can be told about an image file from its bytes alone, before anything heavy loads.

A missing, empty, truncated or non-image file, or a picture too small or too large, is refused
here from the file's first and last bytes and its header (Pillow reads only the header on
open), without numpy, OpenCV or torch: ``deblur image empty.jpg`` answers in a few tenths of a
second instead of after the model stack has loaded. ``read_image`` makes the same checks on
the bytes it decodes, so the library and the CLI refuse the same files with the same words.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import __version__
from ..errors import InputError
from ..limits import check_min_size

MAX_MEGAPIXELS_ENV = "DEBLUR_MAX_MEGAPIXELS"
DEFAULT_MAX_MEGAPIXELS = 200.0  # admits every camera file short of pixel-shift composites
FORMAT_NAMES = "PNG, JPEG, TIFF, WebP or BMP"
TAIL_BYTES = 1024  # where the end-of-image markers are looked for
# The mark deblur puts on the pictures it writes (ImageInfo.software): the PNG Software text
# chunk or the EXIF Software tag, both near the start of the file (outputs.is_own_output).
SOFTWARE = f"deblur-cli {__version__}"
OUTPUT_FORMATS = {"keep": "", "png": ".png", "jpg": ".jpg", "webp": ".webp", "tif": ".tif"}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


def image_kind(head: bytes) -> str | None:
    """The format the first bytes of a file announce, or None for none we read."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[:2] == b"BM":
        return "BMP"
    return None


def max_megapixels_limit(value: float | None = None) -> float:
    """The size limit in megapixels: ``value`` if given, else $DEBLUR_MAX_MEGAPIXELS, else
    200. 0 means no limit."""
    if value is None:
        text = os.environ.get(MAX_MEGAPIXELS_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_MEGAPIXELS
        try:
            value = float(text)
        except ValueError:
            raise InputError(
                f"{MAX_MEGAPIXELS_ENV}={text!r}: expected a number of megapixels (0 = no limit)"
            ) from None
    if value < 0 or value != value:
        raise InputError(f"the megapixel limit must be >= 0 (0 = no limit), not {value}")
    return float(value)


def check_size(path: Path, width: int, height: int, max_megapixels: float | None = None) -> None:
    """One line saying the size, the limit and how to raise it, for a picture over the limit;
    (the minimum is checked by ``check_min_size``, for the pictures that go to the network)."""
    limit = max_megapixels_limit(max_megapixels)
    megapixels = width * height / 1e6
    if limit and megapixels > limit:
        needed = int(megapixels) + 1
        raise InputError(
            f"{path}: {width}x{height} is {megapixels:.0f} megapixels, over the limit of "
            f"{limit:g}; raise it with --max-megapixels {needed} "
            f"(or {MAX_MEGAPIXELS_ENV}={needed}; 0 = no limit)"
        )


def check_complete(path: Path, head: bytes, tail: bytes) -> None:
    """Refuse a file whose first bytes (``head``) are no image we read, and a cut-off one:
    libjpeg decodes a truncated JPEG into a grey-bottomed picture without failing, so its
    end-of-image marker (a PNG's IEND chunk) is looked for in ``tail``."""
    kind = image_kind(head)
    if kind is None:
        raise InputError(f"{path}: not a {FORMAT_NAMES} image (judged from its first bytes)")
    if kind == "JPEG" and b"\xff\xd9" not in tail.rstrip(b"\x00"):
        raise InputError(f"{path}: truncated or corrupt JPEG (no end-of-image marker)")
    if kind == "PNG" and b"IEND" not in tail[-64:]:
        raise InputError(f"{path}: truncated or corrupt PNG (no IEND chunk)")


def header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header Pillow reads on open; None when it cannot read one
    (the decoder then has the last word)."""
    from PIL import Image

    # Our own limit (check_size) replaces Pillow's decompression-bomb guard, which would
    # refuse a 180 MP camera file (io/images.py does the same).
    Image.MAX_IMAGE_PIXELS = None
    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001 - any damage means "unknown"
        return None


def check_image_file(path: str | os.PathLike, max_megapixels: float | None = None) -> None:
    """Refuse, from its bytes, a file that cannot be a picture to deblur: missing, a folder,
    unreadable, empty, not an image, cut off, or too small or too large. Reads the first and
    last kilobyte and the header only."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image")
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror})") from None
    if not size:
        raise InputError(f"{path}: empty file")
    check_complete(path, head, tail)
    dimensions = header_size(path)
    if dimensions is not None:
        check_min_size(path, *dimensions)
        check_size(path, *dimensions, max_megapixels)
