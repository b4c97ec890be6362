"""Handheld-style blur from one sharp photo: a camera-shake trajectory rendered as homographies.

A shaking camera sees a static scene through a sequence of homographies (small 3-D rotations,
sideways shifts and forward motion of a pinhole camera looking at a distant plane). Warping
the photo by each pose and averaging in linear light gives spatially varying blur, unlike a
single convolution kernel: roll blurs the corners more than the centre, pitch and yaw add
keystone. The pose at mid-exposure is the identity, so the sharp target is the photo itself,
as the middle frame is in GOPRO. Moving objects cut from other photos can be pasted on top
with their own motion; sensor noise and JPEG are applied to the blurry image only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import cv2
import numpy as np

from .response import Response

_CONTROL_POINTS = 64  # samples of the raw trajectory, before choosing the render steps
_MAX_STEPS = 97


@dataclass
class StillOptions:
    """Knobs of :func:`synth_still`; the defaults give GOPRO-like blur sizes."""

    gamma: float = 2.2  # camera response used for the linear-light average
    blur: tuple[float, float] = (0.01, 0.04)  # worst-point blur extent, fraction of diagonal
    rotation: float = 1.0  # weight of pitch/yaw (mostly a shift, plus keystone)
    roll: float = 0.5  # weight of rotation about the optical axis (blur grows outwards)
    translation: float = 0.2  # weight of sideways camera motion
    zoom: float = 0.1  # weight of forward/backward motion (radial blur)
    focal: float = 1.0  # focal length in image diagonals (1.0 ≈ a 50 mm-ish view)
    smoothness: float = 0.8  # momentum of the shake: 0 = jittery, 0.95 = sweeping
    step_px: float = 1.0  # the most any point moves between rendered poses
    objects: int = 0  # independently moving layers pasted on top
    object_sources: Sequence[np.ndarray] = field(default=(), repr=False)  # uint8 RGB photos
    object_speed: tuple[float, float] = (1.0, 3.0)  # object travel, in multiples of the shake
    noise: float = 0.0  # max sensor noise std, in grey levels at mid-grey (0 = none)
    jpeg: tuple[int, int] | None = None  # JPEG quality range for the blurry image

    def __post_init__(self) -> None:
        lo, hi = self.blur
        if not 0 <= lo <= hi < 0.5:
            raise ValueError(f"blur range must satisfy 0 <= lo <= hi < 0.5, got {lo}-{hi}")
        if not self.gamma > 0 or not self.focal > 0 or not self.step_px > 0:
            raise ValueError("gamma, focal and step_px must be positive")
        weights = (self.rotation, self.roll, self.translation, self.zoom)
        if min(weights) < 0 or max(weights) == 0:
            raise ValueError("motion weights must be >= 0 and not all zero")
        if not 0 <= self.smoothness < 1:
            raise ValueError("smoothness must be in [0, 1)")
        if self.objects < 0 or self.noise < 0:
            raise ValueError("objects and noise must be >= 0")
        if self.jpeg is not None and not 1 <= self.jpeg[0] <= self.jpeg[1] <= 100:
            raise ValueError(f"JPEG quality range must be within 1-100, got {self.jpeg}")


@dataclass
class StillPair:
    """A rendered pair and how it was made (for manifests and tests)."""

    blurry: np.ndarray
    sharp: np.ndarray
    crop: tuple[int, int, int, int]  # x0, y0, x1, y1 in the input photo
    homographies: np.ndarray  # (steps, 3, 3), camera pose per rendered instant
    extent_px: float  # largest displacement of any image point from its mid-exposure place


def synth_still(
    sharp: np.ndarray, rng: np.random.Generator, **options
) -> tuple[np.ndarray, np.ndarray]:
    """One uint8 RGB photo → (blurry, sharp) uint8 of the same border-cropped size.

    ``options`` are the fields of :class:`StillOptions`; the result depends only on the
    photo, the options and the state of ``rng``.
    """
    pair = render_still(sharp, rng, make_options(**options))
    return pair.blurry, pair.sharp


def make_options(**options) -> StillOptions:
    known = {f.name for f in fields(StillOptions)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown synth_still option(s): {', '.join(unknown)}")
    return StillOptions(**options)


def render_still(sharp: np.ndarray, rng: np.random.Generator, opts: StillOptions) -> StillPair:
    """The work behind :func:`synth_still`, returning the trajectory too."""
    if sharp.dtype != np.uint8 or sharp.ndim != 3 or sharp.shape[2] != 3:
        raise ValueError(f"expected a uint8 HxWx3 RGB photo, got {sharp.dtype} {sharp.shape}")
    height, width = sharp.shape[:2]
    if min(height, width) < 32:
        raise ValueError(f"photo too small ({width}x{height}); need at least 32x32")
    response = Response.from_gamma(opts.gamma)
    linear = response.to_linear(sharp)
    diagonal = float(np.hypot(width, height))

    extent = float(rng.uniform(*opts.blur)) * diagonal
    homographies = camera_trajectory(rng, width, height, extent, opts)
    layers = [_make_object(rng, linear, opts, extent) for _ in range(opts.objects)]
    steps = len(homographies)
    times = np.linspace(-0.5, 0.5, steps)

    total = np.zeros_like(linear)
    valid = np.full((height, width), 255, np.uint8)
    ones = np.full((height, width), 255, np.uint8)
    middle = steps // 2
    sharp_linear = linear
    for k, (h, t) in enumerate(zip(homographies, times, strict=True)):
        # Cubic: bilinear resampling at sub-pixel poses would add blur of its own.
        frame = cv2.warpPerspective(
            linear, h, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT
        )
        mask = cv2.warpPerspective(ones, h, (width, height), flags=cv2.INTER_LINEAR)
        np.minimum(valid, mask, out=valid)
        for layer in layers:
            frame = layer.composite(frame, h, t)
        total += frame
        if k == middle:
            sharp_linear = frame
    total /= steps

    # Cubic taps reach one pixel further than the bilinear mask: keep a one-pixel margin.
    valid = cv2.erode(valid, np.ones((3, 3), np.uint8))
    x0, y0, x1, y1 = largest_valid_rect(valid == 255)
    if x1 - x0 < 16 or y1 - y0 < 16:
        raise ValueError("the shake leaves less than 16x16 pixels; lower the blur range")
    blurry_linear = total[y0:y1, x0:x1]
    if opts.noise > 0:
        blurry_linear = _add_noise(rng, blurry_linear, opts)
    blurry = response.from_linear(blurry_linear)
    if opts.jpeg is not None:
        blurry = _jpeg(blurry, int(rng.integers(opts.jpeg[0], opts.jpeg[1] + 1)))
    if layers:
        sharp_out = response.from_linear(sharp_linear[y0:y1, x0:x1])
    else:
        sharp_out = np.ascontiguousarray(sharp[y0:y1, x0:x1])  # exact, no round trip
    return StillPair(blurry, sharp_out, (x0, y0, x1, y1), homographies, extent)


def _rotation(rx: float, ry: float, rz: float) -> np.ndarray:
    matrix, _ = cv2.Rodrigues(np.array([rx, ry, rz], np.float64))
    return matrix


def pose_homography(pose: np.ndarray, width: int, height: int, focal: float) -> np.ndarray:
    """(pitch, yaw, roll, tx, ty, zoom) in diagonal-fraction units → image homography.

    Units are chosen so that 1e-3 of any component moves the image by about 1e-3 of its
    diagonal: rotations are divided by the focal length (pitch/yaw) or half the diagonal
    (roll), shifts are in diagonals, zoom is the log-scale times two.
    """
    diagonal = float(np.hypot(width, height))
    f = focal * diagonal
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    k = np.array([[f, 0, cx], [0, f, cy], [0, 0, 1]], np.float64)
    pitch, yaw, roll, tx, ty, zoom = pose
    r = _rotation(pitch * diagonal / f, yaw * diagonal / f, 2.0 * roll)
    h = k @ r @ np.linalg.inv(k)
    s = float(np.exp(2.0 * zoom))
    zoom_shift = np.array(
        [[s, 0, (1 - s) * cx + tx * diagonal], [0, s, (1 - s) * cy + ty * diagonal], [0, 0, 1]]
    )
    h = zoom_shift @ h
    return h / h[2, 2]


def _points(width: int, height: int) -> np.ndarray:
    """Corners, edge midpoints and centre: where a homography's motion is largest."""
    xs, ys = (0.0, (width - 1) / 2.0, width - 1.0), (0.0, (height - 1) / 2.0, height - 1.0)
    return np.array([[x, y, 1.0] for x in xs for y in ys])


def _displacements(poses: np.ndarray, width: int, height: int, focal: float) -> np.ndarray:
    """(n, points, 2) image positions of the probe points under each pose."""
    pts = _points(width, height)
    out = []
    for pose in poses:
        mapped = pts @ pose_homography(pose, width, height, focal).T
        out.append(mapped[:, :2] / mapped[:, 2:3])
    return np.array(out)


def camera_trajectory(
    rng: np.random.Generator, width: int, height: int, extent: float, opts: StillOptions
) -> np.ndarray:
    """Homographies of a random handheld shake whose worst point travels ``extent`` pixels.

    The shake is a momentum random walk in the 6 pose parameters (hands drift and jerk);
    it is re-centred so mid-exposure is the identity, scaled to the drawn extent, then
    sampled finely enough that no point jumps more than ``step_px`` between poses.
    """
    weights = np.array(
        [opts.rotation, opts.rotation, opts.roll, opts.translation, opts.translation, opts.zoom]
    )
    velocity = rng.normal(size=6)
    raw = np.zeros((_CONTROL_POINTS, 6))
    for i in range(1, _CONTROL_POINTS):
        velocity = opts.smoothness * velocity + np.sqrt(1 - opts.smoothness**2) * rng.normal(size=6)
        raw[i] = raw[i - 1] + velocity
    raw *= weights
    t = np.linspace(0.0, 1.0, _CONTROL_POINTS)
    raw -= np.array([np.interp(0.5, t, raw[:, j]) for j in range(6)])
    identity = np.zeros((1, 6))
    if extent <= 0:
        return np.eye(3)[None]
    # A small trial scale keeps the homographies in their near-linear range.
    trial = 1e-3 / max(np.abs(raw).max(), 1e-12)
    moved = _displacements(raw * trial, width, height, opts.focal)
    still = _displacements(identity, width, height, opts.focal)[0]
    worst = np.linalg.norm(moved - still, axis=2).max()
    poses = raw * trial * (extent / max(worst, 1e-12))
    path = np.linalg.norm(np.diff(_displacements(poses, width, height, opts.focal), axis=0), axis=2)
    steps = int(np.ceil(path.sum(axis=0).max() / opts.step_px)) + 1
    steps = min(max(steps | 1, 9), _MAX_STEPS)  # odd, so one step sits at mid-exposure
    ts = np.linspace(0.0, 1.0, steps)
    sampled = np.stack([np.interp(ts, t, poses[:, j]) for j in range(6)], axis=1)
    sampled[steps // 2] = 0.0
    return np.array([pose_homography(p, width, height, opts.focal) for p in sampled])


@dataclass
class _Layer:
    """A moving object: a linear-light patch, a soft mask and a 2-D similarity motion."""

    patch: np.ndarray
    alpha: np.ndarray
    centre: np.ndarray  # image position at mid-exposure
    travel: np.ndarray  # displacement over the whole exposure
    spin: float  # rotation over the whole exposure, radians
    shape: tuple[int, int]  # output (width, height)

    def motion(self, t: float) -> np.ndarray:
        ph, pw = self.patch.shape[:2]
        angle = self.spin * t
        c, s = np.cos(angle), np.sin(angle)
        pos = self.centre + self.travel * t
        to_origin = np.array([[1, 0, -(pw - 1) / 2], [0, 1, -(ph - 1) / 2], [0, 0, 1]])
        place = np.array([[c, -s, pos[0]], [s, c, pos[1]], [0, 0, 1]])
        return place @ to_origin

    def composite(self, frame: np.ndarray, camera: np.ndarray, t: float) -> np.ndarray:
        m = camera @ self.motion(t)
        obj = cv2.warpPerspective(self.patch, m, self.shape, flags=cv2.INTER_CUBIC)
        alpha = cv2.warpPerspective(self.alpha, m, self.shape, flags=cv2.INTER_LINEAR)
        alpha = alpha[..., None]
        return frame * (1.0 - alpha) + obj * alpha


def _make_object(
    rng: np.random.Generator, linear: np.ndarray, opts: StillOptions, extent: float
) -> _Layer:
    height, width = linear.shape[:2]
    if opts.object_sources:
        source = opts.object_sources[int(rng.integers(len(opts.object_sources)))]
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3:
            raise ValueError("object sources must be uint8 HxWx3 RGB photos")
        source = Response.from_gamma(opts.gamma).to_linear(source)
    else:
        source = linear[:, ::-1]  # a mirrored part of the same photo
    side = int(rng.uniform(0.2, 0.4) * min(height, width))
    ph = min(side, source.shape[0])
    pw = min(int(side * rng.uniform(0.7, 1.4)), source.shape[1])
    y = int(rng.integers(0, source.shape[0] - ph + 1))
    x = int(rng.integers(0, source.shape[1] - pw + 1))
    patch = np.ascontiguousarray(source[y : y + ph, x : x + pw], dtype=np.float32)
    alpha = np.zeros((ph, pw), np.float32)
    axes = (max(2, int(pw * rng.uniform(0.3, 0.48))), max(2, int(ph * rng.uniform(0.3, 0.48))))
    cv2.ellipse(
        alpha, ((pw - 1) // 2, (ph - 1) // 2), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1
    )
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.2)
    centre = np.array([rng.uniform(0.25, 0.75) * width, rng.uniform(0.25, 0.75) * height])
    direction = rng.uniform(0, 2 * np.pi)
    distance = rng.uniform(*opts.object_speed) * max(extent, 2.0)
    travel = distance * np.array([np.cos(direction), np.sin(direction)])
    return _Layer(patch, alpha, centre, travel, float(rng.uniform(-0.15, 0.15)), (width, height))


def largest_valid_rect(valid: np.ndarray) -> tuple[int, int, int, int]:
    """An axis-aligned rectangle of valid pixels, found by peeling the worst border line.

    Warps leave empty wedges along the borders; peeling the side with the most empty pixels
    first keeps nearly all of the picture for the shifts and small rotations of a shake.
    """
    invalid = ~valid
    y0, y1, x0, x1 = 0, valid.shape[0], 0, valid.shape[1]
    while y1 - y0 > 0 and x1 - x0 > 0:
        counts = (
            int(invalid[y0, x0:x1].sum()),
            int(invalid[y1 - 1, x0:x1].sum()),
            int(invalid[y0:y1, x0].sum()),
            int(invalid[y0:y1, x1 - 1].sum()),
        )
        worst = int(np.argmax(counts))
        if counts[worst] == 0:
            break
        if worst == 0:
            y0 += 1
        elif worst == 1:
            y1 -= 1
        elif worst == 2:
            x0 += 1
        else:
            x1 -= 1
    return x0, y0, x1, y1


def _add_noise(rng: np.random.Generator, linear: np.ndarray, opts: StillOptions) -> np.ndarray:
    """Poisson-Gaussian sensor noise in linear light, sized by its grey-level std at mid-grey."""
    level = rng.uniform(0, opts.noise)
    mid = (128 / 255) ** opts.gamma
    slope = 255.0 / opts.gamma * mid ** (1.0 / opts.gamma - 1.0)  # grey levels per linear unit
    sigma_mid = level / slope
    read_share = rng.uniform(0.1, 0.5)
    read_var = read_share * sigma_mid**2
    shot_gain = (1 - read_share) * sigma_mid**2 / mid
    std = np.sqrt(shot_gain * np.clip(linear, 0, 1) + read_var).astype(np.float32)
    return linear + std * rng.standard_normal(linear.shape, dtype=np.float32)


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()
