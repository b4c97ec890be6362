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
from .decode import SourceFrame, decode_frames
from .encode import EncodeSettings, check_encoder
from .ffmpeg import container_format
from .mux import mux
from .probe import VideoInfo, probe
from .resume import (
    Manifest,
    parts_folder,
    remove_parts,
    remove_stray_temps,
    resumable_manifest,
    source_key,
)
from .segments import ProcessedFrame, SegmentWriter
from .threads import QUEUE_FRAMES, Sink, prefetch

FrameFn = Callable[[np.ndarray], np.ndarray]
FramesFn = Callable[[list[np.ndarray]], list[np.ndarray]]
ProgressFn = Callable[[int, "int | None"], None]
SEGMENT_SECONDS = 2.0
# A segment also closes after this much work (seconds since its first frame arrived), so
# that a kill on a slow device loses at most this much; Ctrl-C loses nothing finished.
SEGMENT_WORK_SECONDS = 15.0


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


def video_key(
    src: Path,
    dst: Path,
    info: VideoInfo,
    settings: EncodeSettings,
    start: float | None,
    end: float | None,
    segment_seconds: float,
    job: dict[str, Any] | None,
) -> dict[str, Any]:
    """Everything that shapes the output's frames: segments made under another key differ."""
    return {
        "source": source_key(src),
        "encode": settings.__dict__,
        "start": start,
        "end": end,
        "segment_frames": segment_frames(info, segment_seconds),
        "format": container_format(dst),
        "job": job or {},
    }


def segment_frames(info: VideoInfo, segment_seconds: float) -> int:
    return max(1, round(float(info.rate) * segment_seconds))


def unfinished_run(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    settings: EncodeSettings | None = None,
    start: float | None = None,
    end: float | None = None,
    segment_seconds: float = SEGMENT_SECONDS,
    job: dict[str, Any] | None = None,
    info: VideoInfo | None = None,
) -> Manifest | None:
    """The finished segments that ``process_video`` with these arguments would carry on from
    (None: it starts afresh); raises ResumeConflict when an earlier run with other settings
    left segments for ``dst``. Lets a caller say what is reused before any work starts."""
    src, dst = Path(src), Path(dst)
    info = info or probe(src)
    key = video_key(src, dst, info, settings or EncodeSettings(), start, end, segment_seconds, job)
    return resumable_manifest(parts_folder(dst), key)


def finished_output(dst: str | os.PathLike) -> bool:
    """Whether ``dst`` is the whole output of an earlier run (no unfinished parts beside it)."""
    dst = Path(dst)
    return dst.is_file() and not parts_folder(dst).is_dir()


def encode_queue_frames(info: VideoInfo, budget: int = 64 << 20) -> int:
    """How far the encoder may fall behind the network. At the end of each segment x264
    encodes its whole lookahead (40 frames at the medium preset) at once; a queue that
    absorbs that burst keeps the network from waiting on it. Capped at ``budget`` bytes."""
    frame_bytes = max(1, info.width * info.height * 3)
    return max(QUEUE_FRAMES, min(32, budget // frame_bytes))


def process_video(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    fn: FrameFn,
    *,
    settings: EncodeSettings | None = None,
    start: float | None = None,
    end: float | None = None,
    resume: bool = True,
    segment_seconds: float = SEGMENT_SECONDS,
    job: dict[str, Any] | None = None,
    progress: ProgressFn | None = None,
    info: VideoInfo | None = None,
    codec_threads: int = 0,
    frames_fn: FramesFn | None = None,
    frames_per_call: int = 1,
    segment_work_seconds: float | None = SEGMENT_WORK_SECONDS,
) -> VideoResult:
    """Run ``fn`` over every frame of ``src`` in [start, end) and write ``dst``.

    With ``frames_fn``, frames go to it ``frames_per_call`` at a time instead (a GPU kept
    busy by several frames per forward pass: ``engine.deblur_frames``); it returns one
    picture per frame, in order.

    ``codec_threads`` caps the decoder's and encoder's threads (0: one per core, right when
    ``fn`` runs elsewhere, e.g. on a GPU). When ``fn`` itself keeps every CPU core busy, 1
    keeps the codecs beside it instead of preempting its threads; x264 on one thread still
    outpaces a network on the CPU many times over.

    An earlier run for ``dst`` that stopped part-way (Ctrl-C, a crash, a kill) is carried on
    from its finished segments; ``resume=False`` discards them and starts over. A segment
    closes after ``segment_seconds`` of video or ``segment_work_seconds`` of work, whichever
    comes first, so a kill loses at most that much work; on Ctrl-C (KeyboardInterrupt) the
    segment in progress is closed too, keeping every frame already deblurred. ``job``
    identifies whatever ``fn`` does (model, precision...): segments made with other settings,
    another model or another input are never spliced in (ResumeConflict).
    """
    src, dst = Path(src), Path(dst)
    settings = settings or EncodeSettings()
    info = info or probe(src)
    info.check_range(start, end)
    check_output(src, dst)
    check_encoder(settings, info, dst)
    folder = parts_folder(dst)
    key = video_key(src, dst, info, settings, start, end, segment_seconds, job)
    manifest = resumable_manifest(folder, key) if resume else None
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
    writer = SegmentWriter(
        folder,
        manifest,
        info,
        settings,
        key["segment_frames"],
        codec_threads,
        max_seconds=segment_work_seconds,
    )
    sink: Sink[ProcessedFrame] = Sink(writer.add, encode_queue_frames(info))
    if progress:
        progress(done, total)
    per_call = max(1, frames_per_call) if frames_fn else 1
    pending: list[SourceFrame] = []

    def run_pending() -> None:
        nonlocal done
        outs = frames_fn([f.rgb for f in pending]) if frames_fn else [fn(pending[0].rgb)]
        if len(outs) != len(pending):
            raise ValueError(f"{len(pending)} frames in, {len(outs)} out")
        for frame, out in zip(pending, outs, strict=True):
            sink.put(ProcessedFrame(frame.pts, frame.duration, check_frame(out, frame.rgb)))
            done += 1
            if progress:
                progress(done, total)
        pending.clear()

    try:
        decoded = prefetch(
            lambda: decode_frames(info, start, end, after, codec_threads),
            max(QUEUE_FRAMES, 2 * per_call),
        )
        for frame in decoded:
            pending.append(frame)
            if len(pending) >= per_call:
                run_pending()
        if pending:
            run_pending()
        sink.close()
        writer.finish()
    except BaseException as err:
        # Ctrl-C keeps everything already deblurred: the queued frames are encoded and the
        # segment in progress is closed where it stands (every segment starts on a keyframe
        # of its own), so the next run goes on from the last frame done.
        if sink.settle(err):
            with contextlib.suppress(BaseException):  # the first interruption is re-raised
                writer.finish()
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
