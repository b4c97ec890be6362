"""Handheld-style blur from one sharp photo: a camera-shake trajectory rendered as homographies.

A shaking camera sees a static scene through a sequence of homographies (small 3-D rotations,
sideways shifts and forward motion of a pinhole camera looking at a distant plane). Warping
the photo by each pose and averaging in linear light gives spatially varying blur, unlike a
single convolution kernel: roll blurs the corners more than the centre, pitch and yaw add
keystone. The pose at mid-exposure is the identity, so the sharp target is the photo itself,
as the middle frame is in GOPRO.

What else separates synthetic from real blur (Carbajal et al. 2023; Rim et al. 2022,
RSBlur) is a switch each, so that each can be measured alone:

* ``segments``: regions of the photo move along their own paths over the shaking
  background, nearer ones hiding farther ones (``segments.py``);
* ``highlights``: near-white light is boosted above the white point before the blur and
  clipped after, so lamps and reflections smear into bright streaks;
* ``crf``: a measured camera response (e.g. the GoPro HERO6 table REDS used) instead of
  ``gamma``;
* ``noise``: photon (Poisson) and read (Gaussian) noise in linear light before the
  response, ``jpeg`` after it (the blurry image only);
* ``blur_px`` / ``sharp_share``: blur sizes in pixels over a wide log-uniform range, and a
  share of pairs with no camera shake at all, like everyday photos;
* ``code_share``: a share of pairs averaged in code values (gamma 1), as GOPRO_Large's
  ``blur/`` and many GOPRO-style sets are made. Averaging in linear light brightens blurred
  contrast (Jensen's inequality through the concave response: +3 grey levels on average
  for the default blur); code-value averages keep the tone, so this share sets how much
  "blurry means brighter" the network learns.

Moving objects cut from other photos (``objects``) can also be pasted on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields

import cv2
import numpy as np

from .response import Response, load_crf
from .segments import fill_behind, pick_segments, require_skimage

_CONTROL_POINTS = 64  # samples of the raw trajectory, before choosing the render steps
_MAX_STEPS = 97


# What ``deblur train stills:`` renders unless told otherwise (``--synth-opt KEY=VALUE``
# overrides single keys, ``--synth-opt mix=none`` starts from the plain StillOptions).
# Measured by scripts/measure_tone.py on Kodak, 40 patches of 256 px: blur strength like
# the GOPRO-style evaluation pairs (median PSNR blurry vs sharp 27.1 dB, gradient ratio
# 0.61) and a mean tone shift (blurry - sharp) of about +0.4 grey levels, where the plain
# options give 20.8 dB and +3.3 levels.
TRAIN_MIX: dict = {
    "blur_px": (1.0, 60.0),  # everyday photos to GOPRO's largest blur, log-uniform
    "sharp_share": 0.2,  # no shake at all: the network must leave sharp content alone
    "code_share": 0.75,  # tone-neutral code-value averages; the rest in linear light
    "noise": 3.0,  # photon + read noise before the response, up to 3 levels at mid-grey
    "jpeg": (85, 98),  # what phones and cameras save
}


def with_train_mix(options: dict) -> dict:
    """``TRAIN_MIX`` updated by ``options`` (StillOptions fields, plus ``mix``).

    ``mix="none"`` starts from the plain :class:`StillOptions` instead; a ``blur`` range
    (diagonal fractions) given without ``blur_px`` replaces the mix's blur sizes.
    """
    options = dict(options)
    mix = options.pop("mix", "train")
    if mix not in ("train", "none"):
        raise ValueError(f"mix={mix}: use mix=train (the default) or mix=none")
    merged = dict(TRAIN_MIX) if mix == "train" else {}
    if "blur" in options and "blur_px" not in options:
        merged.pop("blur_px", None)
    merged.update(options)
    return merged


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
    # Realistic-synthesis switches (issue 13); the defaults leave each one off.
    crf: str | None = None  # inverse camera response file (load_crf), replaces gamma
    blur_px: tuple[float, float] | None = None  # shake extent, log-uniform px (replaces blur)
    sharp_share: float = 0.0  # share of pairs without camera shake (extent 0)
    highlights: float = 0.0  # max boost of near-white light before the blur (0 = off)
    segments: int = 0  # photo regions moving on their own paths (needs scikit-image)
    code_share: float = 0.0  # share of pairs averaged in code values (gamma 1), tone-neutral

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
        if self.blur_px is not None and not 0 < self.blur_px[0] <= self.blur_px[1]:
            raise ValueError(f"blur_px must satisfy 0 < lo <= hi, got {self.blur_px}")
        if not 0 <= self.sharp_share <= 1:
            raise ValueError(f"sharp_share must be in [0, 1], got {self.sharp_share}")
        if not 0 <= self.code_share <= 1:
            raise ValueError(f"code_share must be in [0, 1], got {self.code_share}")
        if self.highlights != 0 and not self.highlights >= 1:
            raise ValueError(f"highlights is a boost factor >= 1 (0 = off), got {self.highlights}")
        if not 0 <= self.segments <= 16:
            raise ValueError(f"segments must be 0-16, got {self.segments}")
        if self.segments:
            require_skimage()
        if self.crf is not None:
            load_crf(self.crf)  # fail now, with the file's name, not in a worker later

    def response(self) -> Response:
        """The camera response pairs are rendered through."""
        return load_crf(self.crf) if self.crf is not None else Response.from_gamma(self.gamma)

    def draw_extent(self, rng: np.random.Generator, diagonal: float) -> float:
        """Camera-shake extent in pixels for one pair."""
        # Draw only what the options use, so older option sets keep their random streams.
        if self.sharp_share > 0 and rng.random() < self.sharp_share:
            return 0.0
        if self.blur_px is not None:
            lo, hi = np.log(self.blur_px[0]), np.log(self.blur_px[1])
            return float(np.exp(rng.uniform(lo, hi)))
        return float(rng.uniform(*self.blur)) * diagonal


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
    diagonal = float(np.hypot(width, height))
    # The shake is drawn first, so switching the other options on or off keeps it.
    extent = opts.draw_extent(rng, diagonal)
    walk = shake_walk(rng, opts)
    code_values = opts.code_share > 0 and rng.random() < opts.code_share
    response = Response.from_gamma(1.0) if code_values else opts.response()
    linear = response.to_linear(sharp)
    if opts.highlights:
        linear = boost_highlights(rng, linear, sharp, opts.highlights)
    objects = [_make_object(rng, linear, opts, extent, response) for _ in range(opts.objects)]
    background, layers = linear, []
    if opts.segments:
        background, layers = _segment_layers(rng, sharp, linear, opts, diagonal)
    layers += objects  # pasted objects are the nearest
    min_path = max((layer.path_length() for layer in layers), default=0.0)
    homographies = shake_homographies(walk, width, height, extent, opts, min_path)
    steps = len(homographies)
    times = np.linspace(-0.5, 0.5, steps)

    total = np.zeros_like(linear)
    valid = np.full((height, width), 255, np.uint8)
    quad = np.zeros_like(valid)
    # The picture's own pixels, 1 px in from its edge: where every pose has real content.
    inner = np.array(
        [[1, 1, 1], [width - 2, 1, 1], [width - 2, height - 2, 1], [1, height - 2, 1.0]]
    )
    middle = steps // 2
    sharp_linear = linear
    # Cubic, always: bilinear resampling at sub-pixel poses adds a blur of its own, and
    # where the shake barely moves (the centre of a roll) it outweighs the motion; the
    # network would learn to sharpen softly rendered detail, that is, over-sharpen photos.
    interpolation = cv2.INTER_CUBIC
    for k, (h, t) in enumerate(zip(homographies, times, strict=True)):
        if np.allclose(h, np.eye(3), rtol=0, atol=1e-12):  # no shake at this instant
            frame = background.copy()
        else:
            frame = cv2.warpPerspective(
                background, h, (width, height), flags=interpolation, borderMode=cv2.BORDER_CONSTANT
            )
            # Valid = inside the warped picture: a filled quad, far cheaper than warping a mask.
            mapped = inner @ h.T
            corners = np.rint(16 * mapped[:, :2] / mapped[:, 2:3]).astype(np.int32)
            quad[:] = 0
            cv2.fillConvexPoly(quad, corners, 255, lineType=cv2.LINE_8, shift=4)
            np.minimum(valid, quad, out=valid)
        for layer in layers:
            frame = layer.composite(frame, h, t, interpolation)
        total += frame
        if k == middle:
            sharp_linear = frame
    total /= steps

    # Cubic taps reach one pixel further, and the quad's rasterised edge half a pixel: keep
    # a one-pixel margin.
    valid = cv2.erode(valid, np.ones((3, 3), np.uint8))
    x0, y0, x1, y1 = largest_valid_rect(valid == 255)
    if x1 - x0 < 16 or y1 - y0 < 16:
        raise ValueError("the shake leaves less than 16x16 pixels; lower the blur range")
    blurry_linear = total[y0:y1, x0:x1]
    if opts.noise > 0:
        blurry_linear = _add_noise(rng, blurry_linear, opts.noise, response)
    blurry = response.from_linear(blurry_linear)
    if opts.jpeg is not None:
        blurry = jpeg_roundtrip(blurry, int(rng.integers(opts.jpeg[0], opts.jpeg[1] + 1)))
    if layers or opts.highlights:  # the scene at mid-exposure differs from the photo
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


def shake_walk(rng: np.random.Generator, opts: StillOptions) -> np.ndarray:
    """The random part of a shake: (control points, 6) poses, zero at mid-exposure.

    A momentum random walk in the 6 pose parameters (hands drift and jerk), re-centred so
    that mid-exposure is the identity.
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
    return raw - np.array([np.interp(0.5, t, raw[:, j]) for j in range(6)])


def shake_homographies(
    raw: np.ndarray,
    width: int,
    height: int,
    extent: float,
    opts: StillOptions,
    min_path: float = 0.0,
) -> np.ndarray:
    """A :func:`shake_walk` scaled so its worst point travels ``extent`` pixels, sampled into
    homographies finely enough that no point jumps more than ``step_px`` between poses (nor
    along ``min_path``, the longest path of a moving segment)."""
    t = np.linspace(0.0, 1.0, _CONTROL_POINTS)
    identity = np.zeros((1, 6))
    if extent <= 0:
        if min_path <= 0:
            return np.eye(3)[None]
        steps = min(max(int(np.ceil(min_path / opts.step_px)) + 1 | 1, 9), _MAX_STEPS)
        return np.repeat(np.eye(3)[None], steps, axis=0)
    # A small trial scale keeps the homographies in their near-linear range.
    trial = 1e-3 / max(np.abs(raw).max(), 1e-12)
    moved = _displacements(raw * trial, width, height, opts.focal)
    still = _displacements(identity, width, height, opts.focal)[0]
    worst = np.linalg.norm(moved - still, axis=2).max()
    poses = raw * trial * (extent / max(worst, 1e-12))
    path = np.linalg.norm(np.diff(_displacements(poses, width, height, opts.focal), axis=0), axis=2)
    steps = int(np.ceil(max(path.sum(axis=0).max(), min_path) / opts.step_px)) + 1
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
    bend: np.ndarray | None = None  # constant acceleration: a curved path (px per exposure²)

    def path_length(self) -> float:
        """About the farthest any of its pixels travels: for choosing the render steps."""
        radius = float(np.hypot(*self.patch.shape[:2])) / 2
        bend = 0.0 if self.bend is None else float(np.linalg.norm(self.bend)) / 8
        return float(np.linalg.norm(self.travel)) + bend + abs(self.spin) * radius

    def motion(self, t: float) -> np.ndarray:
        ph, pw = self.patch.shape[:2]
        angle = self.spin * t
        c, s = np.cos(angle), np.sin(angle)
        pos = self.centre + self.travel * t
        if self.bend is not None:
            pos = pos + self.bend * (t * t / 2)
        to_origin = np.array([[1, 0, -(pw - 1) / 2], [0, 1, -(ph - 1) / 2], [0, 0, 1]])
        place = np.array([[c, -s, pos[0]], [s, c, pos[1]], [0, 0, 1]])
        return place @ to_origin

    def composite(
        self, frame: np.ndarray, camera: np.ndarray, t: float, interpolation: int = cv2.INTER_CUBIC
    ) -> np.ndarray:
        """``frame`` with the layer drawn over it at time ``t`` (in place; also returned)."""
        m = camera @ self.motion(t)
        # Work only in the box the moved patch covers: most layers are small.
        ph, pw = self.patch.shape[:2]
        corners = np.array([[0, 0, 1], [pw - 1, 0, 1], [0, ph - 1, 1], [pw - 1, ph - 1, 1.0]])
        mapped = corners @ m.T
        xy = mapped[:, :2] / mapped[:, 2:3]
        width, height = self.shape
        x0, y0 = (max(int(np.floor(v)) - 2, 0) for v in xy.min(axis=0))
        x1, y1 = (
            min(int(np.ceil(xy[:, 0].max())) + 3, width),
            min(int(np.ceil(xy[:, 1].max())) + 3, height),
        )
        if x1 <= x0 or y1 <= y0:
            return frame
        shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1.0]]) @ m
        box = (x1 - x0, y1 - y0)
        obj = cv2.warpPerspective(self.patch, shift, box, flags=interpolation)
        alpha = cv2.warpPerspective(self.alpha, shift, box, flags=cv2.INTER_LINEAR)[..., None]
        region = frame[y0:y1, x0:x1]
        region += alpha * (obj - region)
        return frame


def _make_object(
    rng: np.random.Generator,
    linear: np.ndarray,
    opts: StillOptions,
    extent: float,
    response: Response,
) -> _Layer:
    height, width = linear.shape[:2]
    if opts.object_sources:
        source = opts.object_sources[int(rng.integers(len(opts.object_sources)))]
        if source.dtype != np.uint8 or source.ndim != 3 or source.shape[2] != 3:
            raise ValueError("object sources must be uint8 HxWx3 RGB photos")
        source = response.to_linear(source)
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


def _segment_layers(
    rng: np.random.Generator,
    sharp: np.ndarray,
    linear: np.ndarray,
    opts: StillOptions,
    diagonal: float,
) -> tuple[np.ndarray, list[_Layer]]:
    """The background with the moving segments taken out, and one layer per segment.

    Each segment keeps its exact pixels and outline at mid-exposure (so the sharp target
    is still the photo) and moves along its own curved path, with a speed drawn over the
    same range as the camera shake: people and cars move whether or not the hand shakes.
    Layers are stacked in a random depth order; the first is the farthest.
    """
    height, width = linear.shape[:2]
    masks = pick_segments(sharp, opts.segments, rng)
    if not masks:
        return linear, []
    union = np.any(masks, axis=0)
    # Estimate the hidden background away from the segments' edges (their colour bleeds
    # there), but replace only the segments' own pixels.
    hole = cv2.dilate(union.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    background = linear.copy()
    background[union] = fill_behind(linear, hole)[union]
    lo, hi = opts.blur_px if opts.blur_px is not None else np.array(opts.blur) * diagonal
    lo = max(lo, 2.0)
    hi = max(hi, lo)
    layers = []
    for mask in masks:
        ys, xs = np.nonzero(mask)
        y0, y1 = max(int(ys.min()) - 2, 0), min(int(ys.max()) + 3, height)
        x0, x1 = max(int(xs.min()) - 2, 0), min(int(xs.max()) + 3, width)
        patch = np.ascontiguousarray(linear[y0:y1, x0:x1])
        alpha = mask[y0:y1, x0:x1].astype(np.float32)
        centre = np.array([x0 + (x1 - x0 - 1) / 2, y0 + (y1 - y0 - 1) / 2])
        speed = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        direction = rng.uniform(0, 2 * np.pi)
        travel = speed * np.array([np.cos(direction), np.sin(direction)])
        bend = rng.normal(size=2) * speed * 0.5
        radius = max(float(np.hypot(x1 - x0, y1 - y0)) / 2, 1.0)
        spin = float(rng.uniform(-0.2, 0.2)) * speed / radius
        layers.append(_Layer(patch, alpha, centre, travel, spin, (width, height), bend))
    return background, layers


def boost_highlights(
    rng: np.random.Generator, linear: np.ndarray, sharp: np.ndarray, max_boost: float
) -> np.ndarray:
    """Light behind near-white pixels, pushed above the white point before the blur.

    A lamp or a sunlit reflection is far brighter than the white the photo clipped it to;
    blurred, it smears into a bright streak instead of a grey smudge. Pixels whose
    brightest channel is 240-252 ramp up to the full boost, drawn log-uniform in
    [1, max_boost] per pair.
    """
    boost = float(np.exp(rng.uniform(0.0, np.log(max_boost))))
    level = sharp.max(axis=2).astype(np.float32)
    weight = np.clip((level - 240.0) / 12.0, 0.0, 1.0)
    return linear * (1.0 + (boost - 1.0) * weight)[..., None]


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


_POISSON_EXACT_BELOW = 20.0  # photon counts above this: Gaussian with the Poisson variance


def _add_noise(
    rng: np.random.Generator, linear: np.ndarray, max_level: float, response: Response
) -> np.ndarray:
    """Sensor noise in linear light: photon counts (Poisson) plus read noise (Gaussian).

    Sized by its std in grey levels at mid-grey, drawn in [0, max_level] per pair, of
    which 50-90 % of the variance is photon noise: its variance grows with the light, as
    on a real sensor, instead of being the same everywhere.
    """
    level = rng.uniform(0, max_level)
    mid = float(response.table[128].mean())
    sigma_mid = level / response.levels_per_linear(128)
    read_share = rng.uniform(0.1, 0.5)
    read_std = np.float32(np.sqrt(read_share) * sigma_mid)
    gain = (1 - read_share) * sigma_mid**2 / mid  # linear light per photon
    if gain <= 0:
        return linear
    expected = np.clip(linear, 0, None) / np.float32(gain)  # mean photon count per pixel
    # From 20 photons on, Poisson(λ) is close to a Gaussian of variance λ (skew <= 0.22);
    # exact draws for every pixel cost 60 ms per training patch, so only the darkest get them.
    photons = expected + np.sqrt(expected) * rng.standard_normal(linear.shape, dtype=np.float32)
    dark = expected < _POISSON_EXACT_BELOW
    if dark.any():
        photons[dark] = rng.poisson(expected[dark].astype(np.float64))
    noisy = photons * np.float32(gain)
    return noisy + read_std * rng.standard_normal(linear.shape, dtype=np.float32)


def jpeg_roundtrip(rgb: np.ndarray, quality: int) -> np.ndarray:
    """``rgb`` (uint8 RGB) saved as a JPEG of ``quality`` and read back."""
    ok, data = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].copy()
