"""GOPRO-style blur from consecutive high-frame-rate frames (Nah et al. 2017, §3).

A long exposure integrates light over time, so a blurry frame is the mean, in linear light,
of the sharp instants a fast camera saw during that time; the middle instant is the sharp
target. Windows of N consecutive frames (N drawn per window, 7–13 by default at 240 fps)
are taken back to back, without overlap, so every source frame is used once.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io.images import IMAGE_EXTENSIONS, read_image
from .response import Response

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v", ".mts", ".mpg", ".mpeg")


def average_frames(
    frames: Sequence[np.ndarray], gamma: float = 2.2, *, response: Response | None = None
) -> np.ndarray:
    """Blur = mean of the frames in linear light, re-encoded to uint8 code values.

    ``frames`` are uint8 HxWx3 RGB. ``gamma`` models the camera response (1.0 gives GOPRO's
    plain ``blur`` variant); a measured ``response`` (e.g. ``load_crf`` of the GoPro HERO6
    table REDS was made with, per channel) overrides it.
    """
    if len(frames) == 0:
        raise ValueError("average_frames needs at least one frame")
    response = response or Response.from_gamma(gamma)
    shape = frames[0].shape
    total = np.zeros(shape, np.float32)
    for frame in frames:
        if frame.dtype != np.uint8 or frame.shape != shape:
            raise ValueError(f"frames must all be uint8 {shape}; got {frame.dtype} {frame.shape}")
        total += response.to_linear(frame)
    total /= len(frames)
    return response.from_linear(total)


def to_rgb8(pixels: np.ndarray) -> np.ndarray:
    """Any decoded image (gray, alpha, 16-bit) → uint8 RGB, which the recipe works on."""
    if pixels.dtype == np.uint16:
        pixels = ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif pixels.dtype != np.uint8:  # float 0..1
        pixels = np.clip(np.rint(pixels * 255.0), 0, 255).astype(np.uint8)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    return np.ascontiguousarray(pixels[..., :3])


def natural_key(name: str) -> list:
    """frame2 before frame10, as a camera numbers them."""
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part.lower())
        for part in re.split(r"(\d+)", name)
    ]


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files of a folder in natural order (hidden and temporary files skipped)."""
    pattern = "**/*" if recursive else "*"
    files = [
        p
        for p in folder.glob(pattern)
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    ]
    return sorted(files, key=lambda p: [natural_key(part) for part in p.relative_to(folder).parts])


@dataclass(frozen=True)
class Window:
    """Frames ``start .. start+size-1`` (0-based) make one pair; ``middle`` is the sharp one."""

    start: int
    size: int

    @property
    def middle(self) -> int:
        return self.start + self.size // 2  # upper middle for even sizes

    @property
    def stop(self) -> int:
        return self.start + self.size

    @property
    def name(self) -> str:
        """Pairs are named after their sharp frame (1-based), as in GOPRO_Large."""
        return f"{self.middle + 1:06d}"


def plan_windows(
    sizes: tuple[int, int], seed: int, gap: int = 0, limit: int | None = None
) -> Iterator[Window]:
    """Back-to-back windows with sizes drawn from ``sizes`` (inclusive), reproducibly.

    The draws depend only on the seed, never on what was already written, so a resumed run
    plans exactly the same pairs.
    """
    lo, hi = sizes
    if not 1 <= lo <= hi:
        raise ValueError(f"bad window size range {lo}-{hi}")
    rng = np.random.default_rng(seed)
    start = 0
    while limit is None or start < limit:
        size = int(rng.integers(lo, hi + 1))
        yield Window(start, size)
        start += size + gap


class FrameSource:
    """Consecutive frames from a folder of images or a video file, as uint8 RGB."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.files: list[Path] | None = None
        if self.path.is_dir():
            self.files = list_images(self.path)
            if not self.files:
                raise InputError(f"{self.path}: no image frames in this folder")
        elif self.path.is_file():
            if self.path.suffix.lower() not in VIDEO_EXTENSIONS:
                raise InputError(
                    f"{self.path}: not a folder of frames or a video "
                    f"({', '.join(VIDEO_EXTENSIONS)})"
                )
            self._probe_video()
        else:
            raise InputError(f"{self.path}: no such file or folder")
        self._shape: tuple[int, ...] | None = None

    @property
    def name(self) -> str:
        return self.path.name if self.files is not None else self.path.stem

    @property
    def count(self) -> int | None:
        """Number of frames, when known without decoding everything."""
        if self.files is not None:
            return len(self.files)
        return self._video_frames or None

    def frame_name(self, index: int) -> str:
        return self.files[index].name if self.files is not None else f"frame {index + 1}"

    def _probe_video(self) -> None:
        import av

        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise InputError(f"{self.path}: has no video stream")
                self._video_frames = int(container.streams.video[0].frames or 0)
        except av.FFmpegError as err:
            raise InputError(f"{self.path}: not a readable video ({_av_reason(err)})") from None

    def _check(self, frame: np.ndarray, index: int) -> np.ndarray:
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            h, w = self._shape[:2]
            raise InputError(
                f"{self.frame_name(index)}: size {frame.shape[1]}x{frame.shape[0]} differs "
                f"from the first frame's {w}x{h}"
            )
        return frame

    def read(self, index: int) -> np.ndarray:
        """Random access (folders only)."""
        assert self.files is not None
        pixels, _ = read_image(self.files[index])
        return self._check(to_rgb8(pixels), index)

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.files is not None:
            for index in range(len(self.files)):
                yield self.read(index)
            return
        import av

        index = 0
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    yield self._check(frame.to_ndarray(format="rgb24"), index)
                    index += 1
        except av.FFmpegError as err:
            raise InputError(
                f"{self.path}: video stops being readable at frame {index + 1} ({_av_reason(err)})"
            ) from None
        if index == 0:
            raise InputError(f"{self.path}: no decodable video frames")


def _av_reason(err: Exception) -> str:
    return str(getattr(err, "strerror", None) or err).splitlines()[0]


def frame_windows(
    source: FrameSource,
    windows: Iterator[Window],
    skip: Callable[[str], bool] = lambda name: False,
) -> Iterator[tuple[Window, list[np.ndarray] | None]]:
    """Pair each planned window with its frames; ``None`` for windows ``skip`` approves.

    Folders are read only where needed (a resumed run costs nothing for finished pairs);
    videos are decoded straight through, as they must be. Stops at the last full window.
    """
    if source.files is not None:
        total = len(source.files)
        for window in windows:
            if window.stop > total:
                return
            if skip(window.name):
                yield window, None
            else:
                yield window, [source.read(i) for i in range(window.start, window.stop)]
        return
    frames = iter(source)
    position = 0
    for window in windows:
        wanted = not skip(window.name)
        batch: list[np.ndarray] = []
        for frame in frames:
            if position >= window.start:
                if wanted:
                    batch.append(frame)
                if position + 1 == window.stop:
                    position += 1
                    break
            position += 1
        else:
            return  # video ended inside this window
        yield window, batch if wanted else None
