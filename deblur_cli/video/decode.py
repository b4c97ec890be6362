"""Decoded source frames as RGB arrays with their source timestamps."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .ffmpeg import av, reason
from .probe import VideoInfo, open_input, video_stream


@dataclass
class SourceFrame:
    """One decoded frame: RGB pixels plus its source timestamp (stream time base)."""

    pts: int
    duration: int | None
    rgb: np.ndarray


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    # Convert with the source's own matrix and range so colours survive the round trip.
    kwargs: dict[str, Any] = {}
    if frame.colorspace not in (0, 2):  # RGB / unspecified: let swscale pick its default
        kwargs["src_colorspace"] = frame.colorspace
    if frame.color_range:
        kwargs["src_color_range"] = frame.color_range
    return frame.reformat(format="rgb24", **kwargs).to_ndarray()


def decode_frames(
    info: VideoInfo,
    start: float | None = None,
    end: float | None = None,
    after_pts: int | None = None,
    threads: int = 0,
) -> Iterator[SourceFrame]:
    """Frames with start <= time < end in presentation order; with ``after_pts`` only those
    after it (resume), seeking to the keyframe before it rather than decoding from the top.
    ``threads``: decoder threads, 0 for the codec's own choice."""
    path = info.path
    default_dur = max(1, round(1 / (info.rate * info.time_base))) if info.rate else 1
    with open_input(path) as container:
        stream = video_stream(path, container)
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = threads
        target = None
        if after_pts is not None:
            target = after_pts
        elif start:
            target = int(start / info.time_base)
        if target is not None:
            with contextlib.suppress(av.FFmpegError):
                container.seek(target, stream=stream, backward=True)
        last = None
        try:
            for frame in container.decode(stream):
                pts = frame.pts
                if pts is None:
                    pts = 0 if last is None else last + default_dur
                last = pts
                if after_pts is not None and pts <= after_pts:
                    continue
                t = pts * info.time_base
                if start is not None and t < start - 1e-6:
                    continue
                if end is not None and t >= end - 1e-9:
                    break
                yield SourceFrame(pts, frame.duration or None, _rgb(frame))
        except (av.FFmpegError, OSError) as err:
            raise InputError(f"{path}: corrupt or truncated video ({reason(err)})") from None
