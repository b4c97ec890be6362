"""The encoder choice and the checks that it can do the job, made before any work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import OutputError
from .ffmpeg import av, can_hold, container_format, need_av
from .probe import VideoInfo


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


AUTO_PRESET = "auto"
CPU_PRESET = "veryfast"


def resolve_preset(preset: str | None, device: str) -> str | None:
    """``auto``: x264's veryfast when the network runs on the CPU, medium elsewhere.

    On the CPU the encoder takes its cores from the network, and at CRF 18 veryfast costs
    ~2.4x less CPU than medium for ~0.1 dB and the same size (real 720p GOPRO frames,
    ``benchmarks/bench_video.py``); on a GPU the cores are free, so the slower preset's
    better compression costs nothing."""
    if preset != AUTO_PRESET:
        return preset
    return CPU_PRESET if str(device).startswith("cpu") else "medium"


def check_encoder(settings: EncodeSettings, info: VideoInfo, dst: Path) -> None:
    """Fail before any work when the codec, pixel format or container cannot do the job."""
    need_av()
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
    if not can_hold(fmt, settings.codec):
        raise OutputError(f"the {dst.suffix} container cannot hold {codec.name} video")
