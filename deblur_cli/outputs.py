"""Where outputs go, and what may be written there: the one place that decides it.

Nothing here imports numpy, OpenCV or torch, so a command refuses a bad output (an unknown
extension, a file that exists, a folder it cannot write to) before anything heavy loads.

The rule for every verb: an output that exists is never replaced unless ``--overwrite``
(``overwrite=True``) says so. Files deblur writes carry a mark in their metadata (a PNG
``Software`` text chunk, the EXIF ``Software`` tag in JPEG, WebP and 8-bit TIFF), and default
names end in ``_deblurred``: ``deblur batch`` leaves such files out of its inputs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .errors import InputError, OutputError
from .io.sniff import IMAGE_EXTENSIONS, OUTPUT_FORMATS, SOFTWARE

SUFFIX = "_deblurred"
MARK = SOFTWARE.split()[0].encode() + b" "  # b"deblur-cli ", whatever the version
# Where the mark is looked for: the first and last bytes of a file. PNG, JPEG and TIFF keep
# it near the start (deblur writes the PNG chunk right after IHDR); WebP's EXIF chunk
# follows the pixels.
MARK_BYTES = 16 * 1024


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
            raise InputError(
                f"-o {output}: unknown image extension {output.suffix!r}; use one of "
                f"{', '.join(IMAGE_EXTENSIONS)}"
            )
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
    """The overwrite rule: an existing ``dst`` (the input itself or any other file) is
    replaced only with ``overwrite``."""
    check_replace(dst, overwrite, src)


def check_replace(dst: Path, overwrite: bool, src: Path | None = None) -> None:
    """Refuse to replace an existing output unless ``overwrite``: one line naming the file
    and the flag."""
    if overwrite or not (dst.exists() or dst.is_symlink()):
        return
    if dst.is_dir():
        raise OutputError(f"{dst}: is a folder, not an output file")
    try:
        same = src is not None and os.path.samefile(src, dst)
    except OSError:
        same = False
    what = "is the input" if same else "exists"
    raise OutputError(f"{dst} {what}; add --overwrite to replace it")


def is_own_output(path: str | os.PathLike) -> bool:
    """Whether deblur wrote ``path``: a default name (``*_deblurred.*``) or the mark in its
    metadata, read from the first and last ``MARK_BYTES`` of the file."""
    path = Path(path)
    if path.stem.endswith(SUFFIX):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(MARK_BYTES)
            if MARK in head:
                return True
            f.seek(max(len(head), f.seek(0, os.SEEK_END) - MARK_BYTES))
            return MARK in f.read()
    except OSError:
        return False
