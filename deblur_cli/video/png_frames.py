"""``export_frames``: processed frames as upright PNG files instead of a video."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path
from ..errors import InputError, OutputError
from .decode import decode_frames
from .pipeline import FrameFn, ProgressFn, VideoResult, check_frame
from .probe import VideoInfo, probe
from .resume import remove_frames, resumable_frames, save_frames_key, source_key
from .threads import Sink, prefetch


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply the display rotation (counter-clockwise degrees) to pixels, for still frames."""
    k = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def frames_key(
    src: Path, start: float | None, end: float | None, job: dict[str, Any] | None
) -> dict[str, Any]:
    """Everything that decides which picture lands in ``frame_000123.png``."""
    return {"source": source_key(src), "start": start, "end": end, "job": job or {}}


def unfinished_export(
    src: str | os.PathLike,
    folder: str | os.PathLike,
    *,
    start: float | None = None,
    end: float | None = None,
    job: dict[str, Any] | None = None,
) -> int:
    """How many frames ``export_frames`` with these arguments would find already written;
    raises ResumeConflict when ``folder`` holds frames made with other settings."""
    return resumable_frames(Path(folder), frames_key(Path(src), start, end, job))


def finished_export(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a whole export (its timestamps are written last)."""
    return (Path(folder) / "timestamps.txt").is_file()


def export_frames(
    src: str | os.PathLike,
    folder: str | os.PathLike,
    fn: FrameFn,
    *,
    start: float | None = None,
    end: float | None = None,
    resume: bool = True,
    job: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    info: VideoInfo | None = None,
) -> VideoResult:
    """Write processed frames as upright PNGs ``frame_000000.png``... plus ``timestamps.txt``
    (index and seconds of each frame, for variable frame rate).

    Frames an earlier export with the same input, range and ``job`` left are skipped (each
    PNG is written atomically, so any that exists is whole); frames of an export with other
    settings raise ResumeConflict; ``resume=False`` deletes them and starts over.
    """
    from ..io.images import ImageInfo, write_image
    from ..io.sniff import SOFTWARE

    src, folder = Path(src), Path(folder)
    info = info or probe(src)
    info.check_range(start, end)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create {folder}: {err.strerror}") from None
    key = frames_key(src, start, end, job)
    if resume:
        resumable_frames(folder, key)
    else:
        remove_frames(folder)
    save_frames_key(folder, key)
    total = info.expected_frames(start, end)
    times: list[str] = []
    mark = ImageInfo(software=SOFTWARE)  # deblurred frames: 'deblur batch' leaves them out
    sink: Sink[tuple[Path, np.ndarray]] = Sink(lambda job: write_image(job[0], job[1], mark))
    done = skipped = 0
    offset: int | None = None
    try:
        for frame in prefetch(lambda: decode_frames(info, start, end)):
            if offset is None:
                offset = frame.pts if start else 0
            target = folder / f"frame_{done:06d}.png"
            times.append(f"{done}\t{float((frame.pts - offset) * info.time_base):.6f}")
            if target.is_file():
                skipped += 1
            else:
                out = check_frame(fn(frame.rgb), frame.rgb)
                sink.put((target, _upright(out, info.rotation)))
            done += 1
            if progress:
                progress(done, total)
        sink.close()
    except BaseException as err:
        sink.settle(err)  # Ctrl-C: the frames already deblurred are written, for the re-run
        raise
    if done == 0:
        raise InputError(f"{src}: no frames between the requested --start and --end")
    with atomic_path(folder / "timestamps.txt") as tmp:
        tmp.write_text("frame\tseconds\n" + "\n".join(times) + "\n")
    return VideoResult(folder, done, skipped)
