"""Training-time augmentation of a blurry/sharp pair, as the official DeepDeblur code.

Geometric and colour changes are applied to both images identically (the pair must stay
aligned); noise only to the blurry input (real blurry photos are noisy, sharp targets are
not). Every random draw comes from the ``np.random.Generator`` passed in, so a sample is a
pure function of its seed: that is what makes resumed and multi-process runs reproducible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ..errors import DeblurError


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run; the defaults are the official recipe (reference.md §1.6)."""

    flip: bool = True  # horizontal and vertical flips, p = 0.5 each
    transpose: bool = True  # swap H and W, p = 0.5 (with the flips: all 8 rot90/flip cases)
    channel_shuffle: bool = True  # random RGB permutation
    saturation: float = 0.5  # saturation scaled by U(1 - s, 1 + s) in HSV; 0 = off
    noise: float = 2.0  # blurry-only Gaussian noise, sigma = N(0, 1) * this (0..255 units)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def none(cls) -> AugmentConfig:
        return cls(False, False, False, 0.0, 0.0)


def random_crop(
    blur: np.ndarray, sharp: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The same random ``size``² window from both images (no alignment, as official)."""
    h, w = sharp.shape[:2]
    if blur.shape[:2] != (h, w):
        raise DeblurError(f"blurry {blur.shape[1]}x{blur.shape[0]} and sharp {w}x{h} differ")
    if h < size or w < size:
        raise DeblurError(f"image {w}x{h} is smaller than the {size}px training patch")
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    return blur[y : y + size, x : x + size], sharp[y : y + size, x : x + size]


def center_crop(image: np.ndarray, size: int, multiple: int = 4) -> np.ndarray:
    """Central ``size``² window (0 = whole image), trimmed to a multiple of ``multiple``."""
    h, w = image.shape[:2]
    th = min(h, size) if size else h
    tw = min(w, size) if size else w
    th, tw = th - th % multiple, tw - tw % multiple
    y, x = (h - th) // 2, (w - tw) // 2
    return image[y : y + th, x : x + tw]


def _scale_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)  # float32: H 0..360, S 0..1, V 0..255
    hsv[..., 1] = np.clip(hsv[..., 1] * factor, 0.0, 1.0)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def augment_pair(
    blur: np.ndarray, sharp: np.ndarray, rng: np.random.Generator, config: AugmentConfig
) -> tuple[np.ndarray, np.ndarray]:
    """HxWx3 (any numeric dtype, 0..255) → augmented float32 HxWx3 pair in 0..255."""
    b = blur.astype(np.float32)
    s = sharp.astype(np.float32)
    # Draw every random number unconditionally so switching one augmentation off does not
    # change what the others do.
    hflip, vflip, transpose = rng.random(3) < 0.5
    perm = rng.permutation(3)
    sat = rng.uniform(1.0 - config.saturation, 1.0 + config.saturation)
    sigma = rng.standard_normal() * config.noise
    if config.flip and hflip:
        b, s = b[:, ::-1], s[:, ::-1]
    if config.flip and vflip:
        b, s = b[::-1], s[::-1]
    if config.transpose and transpose:
        b, s = b.transpose(1, 0, 2), s.transpose(1, 0, 2)
    if config.channel_shuffle:
        b, s = b[..., perm], s[..., perm]
    b, s = np.ascontiguousarray(b), np.ascontiguousarray(s)
    if config.saturation > 0:
        b = np.clip(_scale_saturation(b, sat), 0.0, 255.0)
        s = np.clip(_scale_saturation(s, sat), 0.0, 255.0)
    if config.noise > 0:
        noise = rng.standard_normal(b.shape).astype(np.float32) * np.float32(sigma)
        b = np.clip(b + noise, 0.0, 255.0)
    return b, s
