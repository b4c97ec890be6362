"""Camera response: code values ↔ linear light.

Real blur is the average of light over the exposure, but pixel values are light passed
through the camera's non-linear response. Averaging must therefore happen after undoing
the response (Nah et al. 2017 approximate it by gamma 2.2; REDS used the measured inverse
response of a GoPro HERO6); averaging code values directly gives the darker, harder-edged
``blur`` variant of GOPRO_Large.

A response is a table per colour channel (or one for all three): ``table[v]`` is the
linear light behind code value ``v``, 0 at code 0 and 1 at code 255. Linear values above 1
(saturated highlights) clip to 255 on the way back, as a sensor does.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

_CODES = np.arange(256, dtype=np.float64)
OPENCV_KNEE = 250  # codes above this are extrapolated in OpenCV-calibrated tables (as REDS)


@dataclass(frozen=True, eq=False)
class Response:
    """A monotonic response: ``table[v]`` (or ``table[v, c]`` per RGB channel) is linear light."""

    table: np.ndarray  # float64, (256,) or (256, 3) RGB; increasing, 0 at code 0, 1 at 255
    gamma: float | None = None  # exact power law when set (faster and exact inverse)

    @classmethod
    def from_gamma(cls, gamma: float) -> Response:
        if not gamma > 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
        return cls(table=(_CODES / 255.0) ** gamma, gamma=float(gamma))

    @classmethod
    def from_table(cls, values: np.ndarray) -> Response:
        """A measured inverse CRF: 256 increasing values, or 256 x 3 (RGB), rescaled to 0..1."""
        table = np.asarray(values, dtype=np.float64)
        if table.ndim == 2 and table.shape[1] == 1:
            table = table[:, 0]
        if table.shape not in ((256,), (256, 3)) or not np.all(np.isfinite(table)):
            raise ValueError(
                "a CRF table needs 256 finite values (or 256 x 3, one column per channel), "
                f"one per 8-bit code value; got shape {table.shape}"
            )
        if np.any(np.diff(table, axis=0) <= 0):
            raise ValueError("a CRF table must be strictly increasing")
        table = (table - table[0]) / (table[-1] - table[0])
        return cls(table=table)

    @property
    def channels(self) -> int:
        return 1 if self.table.ndim == 1 else 3

    def lut(self) -> np.ndarray:
        """float32 look-up table: (256,) for ``lut[uint8_image]`` or (256, 3) per channel."""
        return _lut(self)

    def to_linear(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 HxWx3 RGB code values → float32 linear light (0..1)."""
        if pixels.dtype != np.uint8:
            raise ValueError(f"expected uint8 pixels, got {pixels.dtype}")
        lut = self.lut()
        if lut.ndim == 2 and pixels.shape[-1] != 3:
            raise ValueError("a per-channel response needs HxWx3 RGB pixels")
        if pixels.ndim == 3 and pixels.shape[-1] <= 4:
            # cv2.LUT: one pass, a quarter of numpy's fancy indexing (a frames: window
            # converts 7-13 cropped frames per training patch).
            return cv2.LUT(np.ascontiguousarray(pixels), lut.reshape(1, 256, -1))
        return lut[pixels] if lut.ndim == 1 else lut[pixels, np.arange(3)]

    def from_linear(self, linear: np.ndarray) -> np.ndarray:
        """Linear light → uint8 code values, rounded to the nearest code (clipped at 0 and 1)."""
        linear = np.clip(linear, 0.0, 1.0)
        if self.gamma is not None:
            codes = np.power(linear, 1.0 / self.gamma, dtype=np.float32) * 255.0
            return np.clip(np.rint(codes), 0, 255).astype(np.uint8)
        # Boundaries halfway between neighbouring table entries: rounding the interpolated
        # code value, and an exact inverse of to_linear. code = number of boundaries below
        # the value, found with a dense table over [0, 1] plus a few exact comparisons
        # (np.searchsorted per channel took 30 ms for a 256-px patch).
        inverse = _inverse(self)
        channels = inverse.edges.shape[1]
        if channels == 3 and linear.shape[-1] != 3:
            raise ValueError("a per-channel response needs HxWx3 linear light")
        channel = np.arange(channels) if channels == 3 else 0
        linear = linear.astype(np.float32, copy=False)
        # One bin lower than the product says, so that rounding can never start too high.
        bins = np.multiply(linear, _INVERSE_BINS - 1, dtype=np.float32).astype(np.int32)
        np.maximum(bins - 1, 0, out=bins)
        code = inverse.start.ravel()[bins * channels + channel].astype(np.int32)
        for _ in range(inverse.passes):
            code += inverse.edges.ravel()[code * channels + channel] < linear
        return code.astype(np.uint8)

    def levels_per_linear(self, code: int = 128) -> float:
        """Slope of the response at ``code``: grey levels per unit of linear light."""
        table = self.table.reshape(256, -1).mean(axis=1)
        return 2.0 / float(table[code + 1] - table[code - 1])


@functools.lru_cache(maxsize=16)
def _lut(response: Response) -> np.ndarray:
    return response.table.astype(np.float32)


_INVERSE_BINS = 1 << 16


@dataclass(frozen=True)
class _Inverse:
    edges: np.ndarray  # (256, C) float32: boundary below code k+1, +inf last
    start: np.ndarray  # (bins, C) uint8: boundaries below each bin's lower end
    passes: int  # most boundaries inside one bin


@functools.lru_cache(maxsize=16)
def _inverse(response: Response) -> _Inverse:
    table = response.table.reshape(256, -1)
    edges = ((table[1:] + table[:-1]) / 2).astype(np.float32)
    lows = (np.arange(_INVERSE_BINS, dtype=np.float64) / (_INVERSE_BINS - 1)).astype(np.float32)
    start = np.stack([np.searchsorted(e, lows, side="left") for e in edges.T], axis=1)
    ends = np.stack([np.searchsorted(e, np.append(lows[1:], 2.0), side="left") for e in edges.T], 1)
    padded = np.concatenate([edges, np.full((1, edges.shape[1]), np.inf, np.float32)])
    passes = 2 * int((ends - start).max()) + 1  # the value lies in this bin or the next
    return _Inverse(padded, start.astype(np.uint8), passes)


def regularise_top(table: np.ndarray, knee: int = OPENCV_KNEE) -> np.ndarray:
    """Repair a calibrated table: straight line above ``knee``, ties nudged apart.

    Calibration sees few pixels near white, so the last codes of an OpenCV Robertson table
    jump wildly (the GoPro HERO6 table goes 10 → 46 over codes 251-255); REDS replaced codes
    above 250 by a first-order extrapolation from codes 249-251, and so do we. Tiny dips
    from calibration noise (G at code 236) become the smallest strict increase.
    """
    table = np.array(table, dtype=np.float64)
    slope = (table[knee + 1] - table[knee - 1]) / 2.0
    column = (-1, *([1] * (table.ndim - 1)))  # broadcast codes over channels
    table[knee + 1 :] = table[knee] + slope * (_CODES[knee + 1 :] - knee).reshape(column)
    table = np.maximum.accumulate(table, axis=0)
    return table + 1e-6 * (table[-1] - table[0]) * _CODES.reshape(column)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> Response:
    return _load(Path(path))


def load_crf(path: str | os.PathLike) -> Response:
    """Read an inverse camera response (code value → linear light).

    * ``.npy`` of shape (256, 1, 3): OpenCV's ``createCalibrateRobertson/Debevec`` layout,
      channels in **BGR** order (turned into RGB here), codes above 250 regularised as REDS
      did (:func:`regularise_top`) — e.g. ``gopro_hero6_inverse_crf.npy`` of REDS;
    * ``.npy`` of shape (256,) or (256, 3): one curve, or one per channel in RGB order;
    * text: 256 lines of 1 or 3 numbers (R G B), whitespace or comma separated, ``#`` comments.

    Loaded tables are cached by path and modification time.
    """
    path = Path(path)
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        raise InputError(f"{path}: no such CRF file") from None
    except OSError as err:
        raise InputError(f"{path}: not a readable CRF table ({err.strerror})") from None
    return _load_cached(os.fspath(path.resolve()), mtime)


def _load(path: Path) -> Response:
    try:
        if path.suffix.lower() == ".npy":
            values = np.load(path, allow_pickle=False)
        else:
            rows = []
            for line in path.read_text(encoding="utf-8").splitlines():
                tokens = line.split("#")[0].replace(",", " ").split()
                if tokens:
                    rows.append([float(tok) for tok in tokens])
            widths = {len(r) for r in rows}
            if len(widths) == 1 and len(rows) == 256:
                values = np.array(rows)
            else:  # a free list of numbers
                values = np.array([v for r in rows for v in r])
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable CRF table ({err})") from None
    try:
        values = np.asarray(values, dtype=np.float64)
        if values.shape == (256, 1, 3):  # OpenCV layout: BGR
            values = regularise_top(values[:, 0, ::-1])
        return Response.from_table(values)
    except (TypeError, ValueError) as err:
        raise InputError(f"{path}: {err}") from None
