"""Video files through any per-frame function, keeping timing, rotation, audio and metadata.

This module knows nothing about the network: ``process_video`` takes a callable that maps an
HxWx3 uint8 RGB frame to another, so the engine, tests and benchmarks plug in alike.

Design, and why:

* Streaming. A decoder thread and an encoder thread run beside the caller's thread, joined by
  small bounded queues, so decoding and encoding overlap the model and memory stays bounded
  (a few frames), whatever the clip's length.
* Timing. Every frame keeps its source timestamp (shifted only by ``--start``) in the source's
  time base, so variable frame rate and odd rates such as 30000/1001 survive exactly.
* Resume. The video is encoded in short segments (a couple of seconds each, every one starting
  on a keyframe) into a parts folder beside the output; a manifest records the finished ones.
  A killed run loses at most the segment in progress, and ``resume=True`` carries on after the
  last finished segment. The final file is muxed from the segments' packets (no re-encode)
  plus the source's audio/subtitle packets, into a temporary file renamed at the very end.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from .atomic import atomic_path
from .errors import DeblurError, InputError, OutputError, ResourceError

try:
    import av
except ImportError as _err:  # a declared dependency, but photos must work without it
    av = None
    _AV_ERROR = str(_err)


def _need_av() -> None:
    """One clear line instead of a traceback when PyAV is missing or broken."""
    if av is None:
        raise ResourceError(f"deblur video needs PyAV: pip install av ({_AV_ERROR})")


FrameFn = Callable[[np.ndarray], np.ndarray]
ProgressFn = Callable[[int, "int | None"], None]
T = TypeVar("T")

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
SEGMENT_SECONDS = 2.0
QUEUE_FRAMES = 4
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
# Container-level tags the muxer writes itself; copying them would lie about the file.
MUXER_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration"}


def _reason(err: BaseException) -> str:
    """FFmpeg's message without the errno and file name PyAV adds around it."""
    text = getattr(err, "strerror", None) or str(err)
    return str(text).splitlines()[0] if text else type(err).__name__


def parse_time(text: str | float | None) -> float | None:
    """Seconds from ``12.5``, ``1:02.5`` or ``0:01:02.5``; None stays None."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    m = re.fullmatch(r"\s*(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)\s*", text)
    if not m:
        raise DeblurError(f"cannot read time {text!r} (use seconds, MM:SS or HH:MM:SS)")
    hours, minutes, seconds = m.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)


# --------------------------------------------------------------------------- probing


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


def _open_input(path: Path) -> av.container.InputContainer:
    _need_av()
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a video")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file")
    try:
        return av.open(str(path), "r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable video ({_reason(err)})") from None


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


def _video_stream(path: Path, container: av.container.InputContainer) -> av.VideoStream:
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
    with _open_input(path) as container:
        stream = _video_stream(path, container)
        _check_complete(path, container)
        try:
            first = next(container.decode(stream), None)
        except (av.FFmpegError, OSError) as err:
            raise InputError(f"{path}: cannot decode video ({_reason(err)})") from None
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


# --------------------------------------------------------------------------- decoding


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
) -> Iterator[SourceFrame]:
    """Frames with start <= time < end in presentation order; with ``after_pts`` only those
    after it (resume), seeking to the keyframe before it rather than decoding from the top."""
    path = info.path
    default_dur = max(1, round(1 / (info.rate * info.time_base))) if info.rate else 1
    with _open_input(path) as container:
        stream = _video_stream(path, container)
        stream.thread_type = "AUTO"
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
            raise InputError(f"{path}: corrupt or truncated video ({_reason(err)})") from None


# --------------------------------------------------------------------------- threads


class _Failure:
    def __init__(self, err: BaseException) -> None:
        self.err = err


_DONE = object()


def _put(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def prefetch(make: Callable[[], Iterable[T]], maxsize: int = QUEUE_FRAMES) -> Iterator[T]:
    """Run an iterator in a thread, a few items ahead; its errors re-raise here."""
    q: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()

    def run() -> None:
        it = iter(make())
        try:
            for item in it:
                if not _put(q, item, stop):
                    return
            _put(q, _DONE, stop)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            _put(q, _Failure(err), stop)
        finally:
            close = getattr(it, "close", None)
            if close:
                close()

    thread = threading.Thread(target=run, name="deblur-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.err
            yield item
    finally:
        stop.set()
        thread.join()


class Sink(Generic[T]):
    """Hand items to ``handle`` on a worker thread through a bounded queue."""

    def __init__(self, handle: Callable[[T], None], maxsize: int = QUEUE_FRAMES) -> None:
        self._handle = handle
        self._q: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="deblur-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                item = self._q.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if item is _DONE or self._stop.is_set():
                return
            try:
                self._handle(item)
            except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
                self._error = err
                self._stop.set()
                return

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        self._raise()
        if not _put(self._q, item, self._stop):
            self._raise()

    def close(self) -> None:
        """Wait for everything queued to be handled."""
        _put(self._q, _DONE, self._stop)
        self._thread.join()
        self._raise()

    def abort(self) -> None:
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class EncodeSettings:
    """Encoder choice for the video stream; crf/preset go only to encoders that take them."""

    codec: str = "libx264"
    crf: int | None = 18
    preset: str | None = "medium"
    pix_fmt: str = "yuv420p"

    def options(self) -> dict[str, str]:
        opts: dict[str, str] = {}
        if self.crf is not None and self.codec in (
            "libx264",
            "libx265",
            "libvpx",
            "libvpx-vp9",
            "libaom-av1",
            "libsvtav1",
        ):
            opts["crf"] = str(self.crf)
            if self.codec.startswith("libvpx"):
                opts["b"] = "0"  # constant quality mode
        if self.preset and self.codec in ("libx264", "libx265"):
            opts["preset"] = self.preset
        return opts


def container_format(path: Path) -> str:
    fmt = CONTAINERS.get(path.suffix.lower())
    if fmt is None:
        raise OutputError(
            f"{path}: unsupported video container {path.suffix!r} "
            f"(use {', '.join(VIDEO_EXTENSIONS)})"
        )
    return fmt


def check_encoder(settings: EncodeSettings, info: VideoInfo, dst: Path) -> None:
    """Fail before any work when the codec, pixel format or container cannot do the job."""
    _need_av()
    fmt = container_format(dst)
    try:
        codec = av.Codec(settings.codec, "w")
    except (av.FFmpegError, ValueError):
        raise OutputError(f"unknown video encoder {settings.codec!r}") from None
    if codec.type != "video":
        raise OutputError(f"{settings.codec!r} is not a video encoder")
    formats = {f.name for f in (codec.video_formats or ())}
    if formats and settings.pix_fmt not in formats:
        raise OutputError(
            f"{settings.codec} cannot encode pixel format {settings.pix_fmt!r} "
            f"(it takes {', '.join(sorted(formats))})"
        )
    subsampled = av.VideoFormat(settings.pix_fmt)
    if subsampled.name.startswith(("yuv420", "nv12", "yuvj420")) and (
        info.width % 2 or info.height % 2
    ):
        raise OutputError(
            f"{info.width}x{info.height} has an odd side, which {settings.pix_fmt} cannot hold: "
            "use --pix-fmt yuv444p"
        )
    if not _can_hold(fmt, settings.codec):
        raise OutputError(f"the {dst.suffix} container cannot hold {codec.name} video")


def _can_hold(fmt: str, codec: str) -> bool:
    """Ask FFmpeg itself: write a header for a tiny stream into memory."""
    with _null_output(fmt) as out:
        try:
            stream = out.add_stream(codec, rate=30)
            stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
            out.start_encoding()
        except (av.FFmpegError, ValueError):
            return False
    return True


@contextlib.contextmanager
def _null_output(fmt: str) -> Iterator[av.container.OutputContainer]:
    import io

    out = av.open(io.BytesIO(), "w", format=fmt)
    try:
        yield out
    finally:
        with contextlib.suppress(Exception):
            out.close()


@dataclass
class ProcessedFrame:
    pts: int  # source time base, source timeline
    duration: int | None
    rgb: np.ndarray


@dataclass
class Manifest:
    """The parts folder's record: what job it belongs to and which segments are finished."""

    key: dict[str, Any]
    offset_pts: int | None = None
    segments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(s["frames"] for s in self.segments)

    def save(self, folder: Path) -> None:
        data = {
            "version": MANIFEST_VERSION,
            "key": self.key,
            "offset_pts": self.offset_pts,
            "segments": self.segments,
        }
        with atomic_path(folder / MANIFEST) as tmp:
            tmp.write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, folder: Path) -> Manifest | None:
        try:
            data = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        if data.get("version") != MANIFEST_VERSION:
            return None
        segments = [s for s in data.get("segments", []) if (folder / s["file"]).is_file()]
        if len(segments) != len(data.get("segments", [])):
            return None  # a part went missing: its successors cannot be trusted either
        return cls(data["key"], data.get("offset_pts"), segments)


def _segment_format(codec: str) -> tuple[str, str]:
    """MP4 for segments whenever it can hold the codec: exact time bases (Matroska rounds to
    milliseconds), a global header to copy, and a frame rate read back from its index."""
    return (".mp4", "mp4") if _can_hold("mp4", codec) else (".mkv", "matroska")


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
    ) -> None:
        self.folder = folder
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
        except BaseException:
            stack.__exit__(OutputError, OutputError("open"), None)
            raise
        self._stack, self._out, self._stream = stack, out, stream
        self._count, self._first_pts = 0, first_pts
        self._base: int | None = None

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
            raise OutputError(f"encoding failed ({_reason(err)})") from None
        self._count += 1
        self._last_src = frame.pts
        if self._count >= self.segment_frames:
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
            raise OutputError(f"encoding failed ({_reason(err)})") from None
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


# --------------------------------------------------------------------------- muxing


def _packet_time(packet: av.Packet) -> float:
    ts = packet.dts if packet.dts is not None else packet.pts
    if ts is None or packet.time_base is None:
        return float("-inf")
    return float(ts * packet.time_base)


def _segment_packets(
    folder: Path, manifest: Manifest, stream: av.stream.Stream, time_base: Fraction
) -> Iterator[av.Packet]:
    """The segments' packets in order, moved back to their place on the output timeline."""
    for seg in manifest.segments:
        with av.open(str(folder / seg["file"]), "r") as part:
            for packet in part.demux(part.streams.video[0]):
                if packet.size == 0:
                    continue
                shift = round(seg["base_out"] * time_base / packet.time_base)
                if packet.pts is not None:
                    packet.pts += shift
                if packet.dts is not None:
                    packet.dts += shift
                packet.stream = stream
                yield packet


def _copy_plan(
    src: av.container.InputContainer,
    out: av.container.OutputContainer,
    video_index: int,
    warnings: list[str],
) -> dict[int, tuple[str, Any]]:
    """Per source stream: ('copy', out_stream) or ('encode', out_stream); absent = dropped."""
    plan: dict[int, tuple[str, Any]] = {}
    for s in src.streams:
        if s.index == video_index:
            continue
        name = s.codec_context.name if s.codec_context else None
        label = f"stream #{s.index} ({s.type} {name or 'unknown'})"
        if s.type == "video":
            warnings.append(f"{label} not kept: only the main video stream is processed")
            continue
        if _can_copy(out.format.name, s):
            o = out.add_stream_from_template(s)
            o.metadata.update(s.metadata)
            plan[s.index] = ("copy", o)
        elif s.type == "audio" and name:
            try:
                codec = out.default_audio_codec
                o = out.add_stream(codec, rate=s.codec_context.sample_rate)
                o.layout = s.codec_context.layout
                o.metadata.update(s.metadata)
                plan[s.index] = ("encode", o)
                warnings.append(f"{label} re-encoded to {codec}: the container cannot hold {name}")
            except (av.FFmpegError, ValueError, TypeError) as err:
                warnings.append(f"{label} not kept: {_reason(err)}")
        else:
            warnings.append(f"{label} not kept: the output container cannot hold it")
    return plan


def _can_copy(fmt: str, stream: av.stream.Stream) -> bool:
    """Whether FFmpeg accepts this stream, as is, in a header of format ``fmt``."""
    with _null_output(fmt.split(",")[0]) as out:
        try:
            out.add_stream_from_template(stream)
            out.start_encoding()
        except (av.FFmpegError, ValueError, TypeError):
            return False
    return True


def _source_packets(
    src: av.container.InputContainer,
    plan: dict[int, tuple[str, Any]],
    offset: float,
    start: float | None,
    end: float | None,
) -> Iterator[av.Packet]:
    """Audio/subtitle/data packets of the kept time range, shifted like the video."""
    streams = [src.streams[i] for i in plan]
    if not streams:
        return
    if start:
        with contextlib.suppress(av.FFmpegError):
            src.seek(int(max(0.0, start - 1.0) * av.time_base), backward=True)
    for packet in src.demux(*streams):
        mode, out_stream = plan[packet.stream.index]
        tb = packet.time_base
        if mode == "encode":
            for frame in packet.decode():
                if frame.pts is not None and frame.time_base is not None:
                    t = float(frame.pts * frame.time_base)
                    if (start is not None and t < offset - 1e-6) or (end is not None and t >= end):
                        continue
                    frame.pts -= round(offset / frame.time_base)
                yield from out_stream.encode(frame)
            continue
        if packet.size == 0:
            continue
        if packet.pts is not None and tb is not None:
            t = float(packet.pts * tb)
            if (start is not None and t < offset - 1e-6) or (end is not None and t >= end):
                continue
        if offset and tb is not None:
            shift = round(offset / tb)
            if packet.pts is not None:
                packet.pts -= shift
            if packet.dts is not None:
                packet.dts -= shift
        packet.stream = out_stream
        yield packet
    for mode, out_stream in plan.values():
        if mode == "encode":
            yield from out_stream.encode(None)


def mux(
    info: VideoInfo,
    folder: Path,
    manifest: Manifest,
    dst: Path,
    start: float | None,
    end: float | None,
) -> list[str]:
    """Final file = segment video packets + the source's other streams, written atomically."""
    warnings: list[str] = []
    offset = float((manifest.offset_pts or 0) * info.time_base) if start else 0.0
    try:
        with (
            atomic_path(dst) as tmp,
            _open_input(info.path) as src,
            av.open(str(folder / manifest.segments[0]["file"]), "r") as first,
        ):
            with av.open(str(tmp), "w", format=container_format(dst)) as out:
                template = first.streams.video[0]
                video = out.add_stream_from_template(template)
                if container_format(dst) in ("matroska", "webm"):
                    # Matroska's frame-rate hint comes from the codec parameters, where x264
                    # put 1/time base; its timestamps are milliseconds whatever we choose.
                    video.time_base = 1 / info.rate
                    if video.codec_context is not None:
                        video.codec_context.framerate = info.rate
                if info.rotation:
                    video.set_display_rotation(info.rotation)
                main = _video_stream(info.path, src)
                video.metadata.update(main.metadata)
                out.metadata.update(
                    {k: v for k, v in src.metadata.items() if k.lower() not in MUXER_TAGS}
                )
                plan = _copy_plan(src, out, main.index, warnings)
                packets = heapq.merge(
                    _segment_packets(folder, manifest, video, info.time_base),
                    _source_packets(src, plan, offset, start, end),
                    key=_packet_time,
                )
                for packet in packets:
                    out.mux(packet)
    except av.FFmpegError as err:
        raise OutputError(f"{dst}: cannot write video ({_reason(err)})") from None
    return warnings


# --------------------------------------------------------------------------- the pipeline


@dataclass
class VideoResult:
    output: Path
    frames: int
    resumed_frames: int = 0
    warnings: list[str] = field(default_factory=list)


def parts_folder(dst: Path) -> Path:
    """Where segments of an unfinished run live: beside the output, hidden."""
    return dst.with_name(f".{dst.name}.parts")


def _remove_parts(folder: Path) -> None:
    """Delete only what this module writes there, then the folder if it is empty."""
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.name == MANIFEST or child.name.startswith(("seg_", ".seg_", f".{MANIFEST}")):
            with contextlib.suppress(OSError):
                child.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


def _remove_stray_temps(folder: Path) -> None:
    """Temporary files of a run that was killed (SIGKILL skips every clean-up)."""
    for child in folder.glob(".seg_*.tmp*"):
        with contextlib.suppress(OSError):
            child.unlink()


def check_output(src: Path, dst: Path) -> None:
    container_format(dst)
    with contextlib.suppress(OSError):
        if dst.exists() and os.path.samefile(src, dst):
            raise OutputError(f"{dst}: is the input; choose another output name")
    if dst.is_dir():
        raise OutputError(f"{dst}: is a folder; give a file name")


def _source_key(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _check_frame(out: np.ndarray, rgb: np.ndarray) -> np.ndarray:
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
        "source": _source_key(src),
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
        _remove_parts(folder)
        manifest = Manifest(key)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot write to {folder.parent}: {err.strerror}") from None
    _remove_stray_temps(folder)
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
            out = _check_frame(fn(frame.rgb), frame.rgb)
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
            _remove_parts(folder)  # the source is broken: its parts are of no use
        raise
    if done == 0:
        _remove_parts(folder)
        raise InputError(f"{src}: no frames between the requested --start and --end")
    warnings = mux(info, folder, manifest, dst, start, end)
    _remove_parts(folder)
    return VideoResult(dst, done, resumed, warnings)


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
    from .io.images import write_image

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
                out = _check_frame(fn(frame.rgb), frame.rgb)
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
