"""``process_video``: decode, run a per-frame function and encode segments, then mux."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DeblurError, InputError, OutputError
from .decode import decode_frames
from .encode import EncodeSettings, check_encoder
from .ffmpeg import container_format
from .mux import mux
from .probe import VideoInfo, probe
from .resume import Manifest, parts_folder, remove_parts, remove_stray_temps, source_key
from .segments import ProcessedFrame, SegmentWriter
from .threads import Sink, prefetch

FrameFn = Callable[[np.ndarray], np.ndarray]
ProgressFn = Callable[[int, "int | None"], None]
SEGMENT_SECONDS = 2.0


@dataclass
class VideoResult:
    output: Path
    frames: int
    resumed_frames: int = 0
    warnings: list[str] = field(default_factory=list)


def check_output(src: Path, dst: Path) -> None:
    container_format(dst)
    with contextlib.suppress(OSError):
        if dst.exists() and os.path.samefile(src, dst):
            raise OutputError(f"{dst}: is the input; choose another output name")
    if dst.is_dir():
        raise OutputError(f"{dst}: is a folder; give a file name")


def check_frame(out: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    if out.shape != rgb.shape or out.dtype != np.uint8:
        raise DeblurError(
            f"the frame function returned {out.dtype} {out.shape}, expected uint8 {rgb.shape}"
        )
    return np.ascontiguousarray(out)


def process_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    fn: FrameFn,
    *,
    settings: EncodeSettings | None = None,
    start: float | None = None,
    end: float | None = None,
    resume: bool = False,
    segment_seconds: float = SEGMENT_SECONDS,
    job: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    info: VideoInfo | None = None,
) -> VideoResult:
    """Run ``fn`` over every frame of ``src`` in [start, end) and write ``dst``.

    ``job`` identifies whatever ``fn`` does (model, precision...) so that ``resume`` never
    splices segments made by a different model into one file.
    """
    src, dst = Path(src), Path(dst)
    settings = settings or EncodeSettings()
    if start is not None and end is not None and end <= start:
        raise DeblurError("--end must be after --start")
    info = info or probe(src)
    check_output(src, dst)
    check_encoder(settings, info, dst)
    folder = parts_folder(dst)
    seg_frames = max(1, round(float(info.rate) * segment_seconds))
    key = {
        "source": source_key(src),
        "encode": settings.__dict__,
        "start": start,
        "end": end,
        "segment_frames": seg_frames,
        "format": container_format(dst),
        "job": job or {},
    }
    manifest = Manifest.load(folder) if resume else None
    if manifest is not None and manifest.key != key:
        raise DeblurError(
            f"{folder} holds parts of a run with other settings or another input: "
            "run without --resume to start over"
        )
    if manifest is None:
        remove_parts(folder)
        manifest = Manifest(key)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot write to {folder.parent}: {err.strerror}") from None
    remove_stray_temps(folder)
    manifest.save(folder)
    resumed = done = manifest.frames
    total = info.expected_frames(start, end)
    if total is not None and total < done:
        total = None
    after = manifest.segments[-1]["last_pts"] if manifest.segments else None
    writer = SegmentWriter(folder, manifest, info, settings, seg_frames)
    sink: Sink[ProcessedFrame] = Sink(writer.add)
    if progress:
        progress(done, total)
    try:
        for frame in prefetch(lambda: decode_frames(info, start, end, after)):
            out = check_frame(fn(frame.rgb), frame.rgb)
            sink.put(ProcessedFrame(frame.pts, frame.duration, out))
            done += 1
            if progress:
                progress(done, total)
        sink.close()
        writer.finish()
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):
            # Keep what was already deblurred: the few queued frames are encoded, so every
            # segment they complete is kept for --resume. A second Ctrl-C skips this.
            try:
                sink.close()
            except BaseException:  # noqa: BLE001 - the first interruption is re-raised below
                sink.abort()
        else:
            sink.abort()
        writer.abort()
        if isinstance(err, InputError):
            remove_parts(folder)  # the source is broken: its parts are of no use
        raise
    if done == 0:
        remove_parts(folder)
        raise InputError(f"{src}: no frames between the requested --start and --end")
    warnings = mux(info, folder, manifest, dst, start, end)
    remove_parts(folder)
    return VideoResult(dst, done, resumed, warnings)
