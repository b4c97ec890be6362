"""PyAV behind one import guard, and the questions put to FFmpeg itself: which container
a file suffix means, whether a container can hold a codec, and its messages made readable."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError, ResourceError

try:
    import av
except ImportError as _err:  # a declared dependency, but photos must work without it
    av = None
    _AV_ERROR = str(_err)


def need_av() -> None:
    """One clear line instead of a traceback when PyAV is missing or broken."""
    if av is None:
        raise ResourceError(f"deblur video needs PyAV: pip install av ({_AV_ERROR})")


# Output formats by file suffix: explicit, so temporary names and odd suffixes never guess.
CONTAINERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".ts": "mpegts",
    ".mts": "mpegts",
    ".m2ts": "mpegts",
}
VIDEO_EXTENSIONS = tuple(CONTAINERS)


def reason(err: BaseException) -> str:
    """FFmpeg's message without the errno and file name PyAV adds around it."""
    text = getattr(err, "strerror", None) or str(err)
    return str(text).splitlines()[0] if text else type(err).__name__


def container_format(path: Path) -> str:
    fmt = CONTAINERS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(  # a usage error (exit 2), like an unknown image extension
            f"{path}: unknown video extension {path.suffix!r}; use one of "
            f"{', '.join(VIDEO_EXTENSIONS)}"
        )
    return fmt


def can_hold(fmt: str, codec: str) -> bool:
    """Ask FFmpeg itself: write a header for a tiny stream into memory."""
    with null_output(fmt) as out:
        try:
            stream = out.add_stream(codec, rate=30)
            stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
            out.start_encoding()
        except (av.FFmpegError, ValueError):
            return False
    return True


@contextlib.contextmanager
def null_output(fmt: str) -> Iterator[av.container.OutputContainer]:
    out = av.open(io.BytesIO(), "w", format=fmt)
    try:
        yield out
    finally:
        with contextlib.suppress(Exception):
            out.close()
