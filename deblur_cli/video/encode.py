"""The encoder choice and the checks that it can do the job, made before any work."""

from __future__ import annotations

from dataclasses import dataclass, replace
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
    # Encoder-specific settings on top of the preset, "key=value:key=value" (x264-params).
    params: str | None = None

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
        if self.params and self.codec in ("libx264", "libx265"):
            opts[f"{self.codec[3:]}-params"] = self.params
        return opts

    def describe(self) -> str:
        """``libx264 preset veryfast (subme=1)`` for the run's summary line."""
        if not self.preset or self.codec not in ("libx264", "libx265"):
            return self.codec
        return f"{self.codec} preset {self.preset}" + (f" ({self.params})" if self.params else "")


AUTO_PRESET = "auto"
CPU_PRESET = "veryfast"
# On top of veryfast, one sub-pixel refinement pass instead of two: x264's largest cost
# at this preset, and the cheapest to give up (real 720p GOPRO frames, CRF 18, one thread:
# 15.0 vs 22.9 ms of CPU per frame, +3 % bytes, -0.02 dB).
CPU_X264_PARAMS = "subme=1"


def resolve_auto(settings: EncodeSettings, device: str) -> EncodeSettings:
    """``--preset auto``: cheap x264 settings when the network runs on the CPU, medium elsewhere.

    On the CPU the encoder takes its cores from the network, and every millisecond it spends
    stalls both of the network's threads, so ``deblur video`` costs the engine's time plus
    the codecs'. At CRF 18 on real 720p frames veryfast with ``subme=1`` costs 4.3x less
    encoder CPU than medium for the same size and PSNR (15.5 vs 66.3 ms, 848 vs 846 kB,
    41.32 vs 41.31 dB); on a GPU the cores are free, so medium costs nothing."""
    if settings.preset != AUTO_PRESET:
        return settings
    if not str(device).startswith("cpu"):
        return replace(settings, preset="medium")
    params = CPU_X264_PARAMS if settings.codec == "libx264" else None
    return replace(settings, preset=CPU_PRESET, params=params)


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
