"""``export_frames``: processed frames as upright PNG files instead of a video."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import DeblurError, InputError, OutputError
from .decode import decode_frames
from .pipeline import FrameFn, ProgressFn, VideoResult, check_frame
from .probe import VideoInfo, probe
from .threads import Sink, prefetch


def _upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply the display rotation (counter-clockwise degrees) to pixels, for still frames."""
    k = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


def export_frames(
    src: str | os.PathLike,
    folder: str | os.PathLike,
    fn: FrameFn,
    *,
    start: float | None = None,
    end: float | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    info: VideoInfo | None = None,
) -> VideoResult:
    """Write processed frames as upright PNGs ``frame_000000.png``... plus ``timestamps.txt``
    (index and seconds of each frame, for variable frame rate). With ``resume`` frames
    already on disk are skipped (each PNG is written atomically, so any that exists is whole).
    """
    from ..io.images import write_image

    src, folder = Path(src), Path(folder)
    if start is not None and end is not None and end <= start:
        raise DeblurError("--end must be after --start")
    info = info or probe(src)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder}: exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create {folder}: {err.strerror}") from None
    total = info.expected_frames(start, end)
    times: list[str] = []
    sink: Sink[tuple[Path, np.ndarray]] = Sink(lambda job: write_image(job[0], job[1]))
    done = skipped = 0
    offset: int | None = None
    try:
        for frame in prefetch(lambda: decode_frames(info, start, end)):
            if offset is None:
                offset = frame.pts if start else 0
            target = folder / f"frame_{done:06d}.png"
            times.append(f"{done}\t{float((frame.pts - offset) * info.time_base):.6f}")
            if resume and target.is_file():
                skipped += 1
            else:
                out = check_frame(fn(frame.rgb), frame.rgb)
                sink.put((target, _upright(out, info.rotation)))
            done += 1
            if progress:
                progress(done, total)
        sink.close()
    except BaseException:
        sink.abort()
        raise
    if done == 0:
        raise InputError(f"{src}: no frames between the requested --start and --end")
    with atomic_path(folder / "timestamps.txt") as tmp:
        tmp.write_text("frame\tseconds\n" + "\n".join(times) + "\n")
    return VideoResult(folder, done, skipped)
