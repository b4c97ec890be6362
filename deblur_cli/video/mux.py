"""The final file: the segments' video packets plus the source's audio, subtitle and data
streams, merged in time order without re-encoding the video, written atomically."""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..atomic import atomic_path
from ..errors import OutputError
from .ffmpeg import av, container_format, null_output, reason
from .probe import VideoInfo, open_input, video_stream
from .resume import Manifest

# Container-level tags the muxer writes itself; copying them would lie about the file.
MUXER_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration"}


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
                warnings.append(f"{label} not kept: {reason(err)}")
        else:
            warnings.append(f"{label} not kept: the output container cannot hold it")
    return plan


def _can_copy(fmt: str, stream: av.stream.Stream) -> bool:
    """Whether FFmpeg accepts this stream, as is, in a header of format ``fmt``."""
    with null_output(fmt.split(",")[0]) as out:
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
            open_input(info.path) as src,
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
                main = video_stream(info.path, src)
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
        raise OutputError(f"{dst}: cannot write video ({reason(err)})") from None
    return warnings
