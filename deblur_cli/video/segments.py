"""Processed frames encoded into short numbered segment files, each recorded in the
manifest only once it is complete on disk."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_path
from ..errors import OutputError
from .encode import EncodeSettings
from .ffmpeg import av, can_hold, reason
from .probe import VideoInfo
from .resume import Manifest


@dataclass
class ProcessedFrame:
    pts: int  # source time base, source timeline
    duration: int | None
    rgb: np.ndarray


def _segment_format(codec: str) -> tuple[str, str]:
    """MP4 for segments whenever it can hold the codec: exact time bases (Matroska rounds to
    milliseconds), a global header to copy, and a frame rate read back from its index."""
    return (".mp4", "mp4") if can_hold("mp4", codec) else (".mkv", "matroska")


class SegmentWriter:
    """Encodes frames into numbered segment files; each is renamed into place when complete
    and only then recorded in the manifest, so the manifest never lists half a segment."""

    def __init__(
        self,
        folder: Path,
        manifest: Manifest,
        info: VideoInfo,
        settings: EncodeSettings,
        segment_frames: int,
        threads: int = 0,
        max_seconds: float | None = None,
    ) -> None:
        """``threads``: encoder threads, 0 for the codec's own choice (one per core).

        A segment closes after ``segment_frames`` frames or, when ``max_seconds`` is given,
        once that much time has passed since its first frame arrived, whichever comes first:
        frames arrive as fast as the network makes them, so on a slow device a kill loses at
        most ``max_seconds`` of its work, however few frames that is."""
        self.max_seconds = max_seconds
        self.folder = folder
        self.threads = threads
        self.manifest = manifest
        self.info = info
        self.settings = settings
        self.suffix, self.fmt = _segment_format(settings.codec)
        self.segment_frames = segment_frames
        self._stack: contextlib.ExitStack | None = None
        self._out: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._count = 0
        self._first_pts = 0
        self._last_src = 0
        last = manifest.segments[-1]["last_out"] if manifest.segments else None
        self._last_out: int | None = last

    def _open(self, first_pts: int) -> None:
        name = f"seg_{len(self.manifest.segments):05d}{self.suffix}"
        stack = contextlib.ExitStack()
        tmp = stack.enter_context(atomic_path(self.folder / name))
        self._name = name
        try:
            out = av.open(str(tmp), "w", format=self.fmt)
            stack.callback(out.close)
            info, s = self.info, self.settings
            stream = out.add_stream(s.codec, rate=info.rate)
            stream.width, stream.height, stream.pix_fmt = info.width, info.height, s.pix_fmt
            cc = stream.codec_context
            cc.time_base = info.time_base
            cc.framerate = info.rate
            stream.time_base = info.time_base
            for attr in ("colorspace", "color_range", "color_primaries", "color_trc"):
                value = getattr(info, attr)
                if value:
                    with contextlib.suppress(Exception):
                        setattr(cc, attr, value)
            stream.options = s.options()
            cc.thread_count = self.threads
        except BaseException:
            stack.__exit__(OutputError, OutputError("open"), None)
            raise
        self._stack, self._out, self._stream = stack, out, stream
        self._count, self._first_pts = 0, first_pts
        self._base: int | None = None
        self._opened = time.monotonic()

    def add(self, frame: ProcessedFrame) -> None:
        if self.manifest.offset_pts is None:
            self.manifest.offset_pts = frame.pts
        if self._out is None:
            self._open(frame.pts)
        assert self._stream is not None and self._out is not None
        out_pts = frame.pts - self.manifest.offset_pts
        if self._last_out is not None and out_pts <= self._last_out:
            out_pts = self._last_out + 1  # encoders reject repeated timestamps
        self._last_out = out_pts
        if self._base is None:
            # Each segment starts at 0: MP4 stores a non-zero start in an edit list at only
            # millisecond precision, which would nudge every later frame. mux() adds it back.
            self._base = out_pts
        video = av.VideoFrame.from_ndarray(frame.rgb, format="rgb24")
        kwargs: dict[str, Any] = {"format": self.settings.pix_fmt}
        if self.info.colorspace not in (0, 2):
            kwargs["dst_colorspace"] = self.info.colorspace
        if self.info.color_range:
            kwargs["dst_color_range"] = self.info.color_range
        video = video.reformat(**kwargs)
        video.pts = out_pts - self._base
        video.time_base = self.info.time_base
        if frame.duration:
            with contextlib.suppress(AttributeError):
                video.duration = frame.duration
        try:
            for packet in self._stream.encode(video):
                self._out.mux(packet)
        except av.FFmpegError as err:
            raise OutputError(f"encoding failed ({reason(err)})") from None
        self._count += 1
        self._last_src = frame.pts
        if self._count >= self.segment_frames or (
            self.max_seconds is not None and time.monotonic() - self._opened >= self.max_seconds
        ):
            self.finish()

    def finish(self) -> None:
        """Flush the segment in progress, rename it into place and record it."""
        if self._out is None:
            return
        assert self._stack is not None and self._stream is not None
        try:
            for packet in self._stream.encode(None):
                self._out.mux(packet)
        except av.FFmpegError as err:
            self.abort()
            raise OutputError(f"encoding failed ({reason(err)})") from None
        self._stack.close()  # closes the container, then renames the temporary file
        self.manifest.segments.append(
            {
                "file": self._name,
                "frames": self._count,
                "first_pts": self._first_pts,
                "last_pts": self._last_src,
                "last_out": self._last_out,
                "base_out": self._base,
            }
        )
        self.manifest.save(self.folder)
        self._out = self._stream = self._stack = None

    def abort(self) -> None:
        """Drop the segment in progress (its temporary file is deleted)."""
        if self._stack is not None:
            with contextlib.suppress(Exception):
                self._stack.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None)
        self._out = self._stream = self._stack = None
