"""Open, check and describe a source video before any frame is processed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import InputError
from .ffmpeg import av, need_av, reason


@dataclass(frozen=True)
class VideoInfo:
    """What the pipeline needs to know about the source before decoding it."""

    path: Path
    width: int
    height: int
    codec: str
    time_base: Fraction
    rate: Fraction
    frames: int | None  # from the container's index; None when unknown
    duration: float | None  # seconds, of the video stream
    start_time: float
    rotation: int  # counter-clockwise degrees from the display matrix
    colorspace: int
    color_range: int
    color_primaries: int
    color_trc: int
    other_streams: tuple[str, ...] = ()

    def expected_frames(self, start: float | None, end: float | None) -> int | None:
        """Frames in [start, end) for the progress bar: exact for a whole clip, else a guess."""
        if start is None and end is None and self.frames:
            return self.frames
        if self.duration is None and end is None:
            return None
        last = self.start_time + (self.duration or float("inf"))
        hi = min(end, last) if end is not None else last
        lo = max(start or 0.0, self.start_time)
        return max(0, round((hi - lo) * float(self.rate)))

    def check_range(self, start: float | None, end: float | None) -> None:
        """Fail before any work (the model, a progress bar) when [start, end) cannot hold a
        frame of this clip."""
        if start is not None and end is not None and end <= start:
            raise InputError("--end must be after --start")
        last = self.start_time + self.duration if self.duration is not None else None
        if start is not None and last is not None and start >= last:
            raise InputError(
                f"--start {start:g} s is past the end of {self.path.name} (it ends at {last:.3f} s)"
            )
        if end is not None and end <= self.start_time:
            raise InputError(
                f"--end {end:g} s is not after the first frame of {self.path.name} "
                f"(at {self.start_time:.3f} s)"
            )


def open_input(path: Path) -> av.container.InputContainer:
    need_av()
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a video")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    try:
        return av.open(str(path), "r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable video ({reason(err)})") from None


def _check_complete(path: Path, container: av.container.InputContainer) -> None:
    """A cut-off MP4/MOV whose index sits at the front decodes 'fine' and just stops early:
    compare the index with the file size instead."""
    size = path.stat().st_size
    for stream in container.streams:
        entries = stream.index_entries
        if entries is None:
            continue
        for i in range(len(entries) - 1, -1, -1):  # the last entries are the likely culprits
            entry = entries[i]
            if entry.pos >= 0 and entry.pos + entry.size > size:
                raise InputError(
                    f"{path}: truncated or corrupt video (data stops at byte {size}, "
                    f"the index points up to {entry.pos + entry.size})"
                )
            if len(entries) - i > 64:
                break


def video_stream(path: Path, container: av.container.InputContainer) -> av.VideoStream:
    streams = [s for s in container.streams.video if not s.disposition & 0x0400]  # not cover art
    if not streams:
        raise InputError(f"{path}: no video stream")
    stream = streams[0]
    if stream.codec_context is None:
        raise InputError(f"{path}: no decoder for the video codec in this build of FFmpeg")
    return stream


def probe(path: str | os.PathLike) -> VideoInfo:
    """Open, check and describe a video; decodes the first frame so errors surface early."""
    path = Path(path)
    with open_input(path) as container:
        stream = video_stream(path, container)
        _check_complete(path, container)
        try:
            first = next(container.decode(stream), None)
        except (av.FFmpegError, OSError) as err:
            raise InputError(f"{path}: cannot decode video ({reason(err)})") from None
        if first is None:
            raise InputError(f"{path}: the video stream holds no decodable frames")
        cc = stream.codec_context
        tb = stream.time_base or Fraction(1, 90000)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(30)
        duration = float(stream.duration * tb) if stream.duration else None
        if duration is None and container.duration:
            duration = container.duration / av.time_base
        start = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        others = tuple(
            f"{s.type}:{s.codec_context.name if s.codec_context else '?'}"
            for s in container.streams
            if s.index != stream.index
        )
        return VideoInfo(
            path=path,
            width=first.width,
            height=first.height,
            codec=cc.name,
            time_base=Fraction(tb),
            rate=Fraction(rate),
            frames=stream.frames or None,
            duration=duration,
            start_time=start,
            rotation=int(first.rotation or 0),
            colorspace=int(first.colorspace),
            color_range=int(first.color_range),
            color_primaries=int(first.color_primaries),
            color_trc=int(first.color_trc),
            other_streams=others,
        )
