"""Atomic file writes: write beside the target, fsync, then rename over it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from .errors import OutputError

_UMASK = os.umask(0)  # read once at import (umask can only be read by setting it)
os.umask(_UMASK)


def _temporary_beside(target: Path) -> Path:
    """An empty temporary in ``target``'s folder, named ``.STEM.RANDOM.tmpSUFFIX``: the
    suffix keeps encoders that choose a format by extension working, and the name lets
    ``deblur batch`` recognise one a crash left behind."""
    folder = target.parent if str(target.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=folder
    )
    os.close(fd)
    return Path(name)


def _seal(tmp: Path) -> None:
    """Flush to disk, and give the file the permissions a plain open() would (mkstemp
    creates 0600)."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto the target on success.

    On any exception the temporary file is removed, so no half-written output is left.
    """
    target = Path(target)
    try:
        tmp = _temporary_beside(target)
    except OSError as err:
        raise OutputError(f"cannot write to {target.parent}: {err.strerror}") from None
    try:
        yield tmp
        _seal(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _staged(target: Path, data: bytes) -> Path:
    """``data`` in a sealed temporary beside ``target``, ready to be renamed onto it."""
    tmp = _temporary_beside(target)
    try:
        tmp.write_bytes(data)
        _seal(tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def write_files_together(files: Sequence[tuple[str | os.PathLike, bytes]]) -> None:
    """Write every file or none: all are staged as temporaries first, then renamed into
    place; if a rename fails, the files already renamed are put back as they were."""
    staged: list[tuple[Path, Path]] = []
    moved: list[tuple[Path, Path | None]] = []  # (target, the previous file's backup)
    try:
        for target, data in files:
            staged.append((Path(target), _staged(Path(target), data)))
        for target, tmp in staged:
            backup = None
            if target.exists():
                backup = _staged(target, b"")  # a free name beside it
                try:
                    os.replace(target, backup)
                except OSError:
                    backup.unlink()
                    raise
            moved.append((target, backup))
            os.replace(tmp, target)
    except BaseException as err:
        for target, backup in reversed(moved):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, target)
                elif target.exists():
                    target.unlink()
        for _target, tmp in staged:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(err, OSError):
            where = err.filename or (staged[-1][0] if staged else "output")
            raise OutputError(f"cannot write {where}: {err.strerror}") from None
        raise
    for _target, backup in moved:
        if backup is not None:
            with contextlib.suppress(OSError):
                backup.unlink()
