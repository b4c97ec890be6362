"""Camera response: code values ↔ linear light.

Real blur is the average of light over the exposure, but pixel values are light passed
through the camera's non-linear response. Averaging must therefore happen after undoing
the response (Nah et al. 2017 approximate it by gamma 2.2); averaging code values directly
gives the darker, harder-edged ``blur`` variant of GOPRO_Large.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

_CODES = np.arange(256, dtype=np.float64)


@dataclass(frozen=True)
class Response:
    """A monotonic response: ``table[v]`` is the linear light (0..1) behind code value v."""

    table: np.ndarray  # float64, 256 entries, increasing, table[0] = 0, table[255] = 1
    gamma: float | None = None  # exact power law when set (faster and exact inverse)

    @classmethod
    def from_gamma(cls, gamma: float) -> Response:
        if not gamma > 0:
            raise ValueError(f"gamma must be positive, got {gamma}")
        return cls(table=(_CODES / 255.0) ** gamma, gamma=float(gamma))

    @classmethod
    def from_table(cls, values: np.ndarray) -> Response:
        """A measured CRF: 256 increasing values, rescaled to 0..1."""
        table = np.asarray(values, dtype=np.float64).reshape(-1)
        if table.size != 256 or not np.all(np.isfinite(table)):
            raise ValueError("a CRF table needs 256 finite values, one per 8-bit code value")
        if np.any(np.diff(table) <= 0):
            raise ValueError("a CRF table must be strictly increasing")
        table = (table - table[0]) / (table[-1] - table[0])
        return cls(table=table)

    def lut(self) -> np.ndarray:
        """float32 look-up table for ``lut[uint8_image]``."""
        return self.table.astype(np.float32)

    def to_linear(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.dtype != np.uint8:
            raise ValueError(f"expected uint8 pixels, got {pixels.dtype}")
        return self.lut()[pixels]

    def from_linear(self, linear: np.ndarray) -> np.ndarray:
        """Linear light (0..1) → rounded uint8 code values."""
        linear = np.clip(linear, 0.0, 1.0)
        if self.gamma is not None:
            codes = np.power(linear, 1.0 / self.gamma, dtype=np.float32) * 255.0
        else:
            codes = np.interp(linear, self.table, _CODES).astype(np.float32)
        return np.clip(np.rint(codes), 0, 255).astype(np.uint8)


def load_crf(path: str | os.PathLike) -> Response:
    """Read a CRF table: .npy, or text with 256 numbers (whitespace/comma separated)."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            values = np.load(path, allow_pickle=False)
        else:
            lines = path.read_text(encoding="utf-8").splitlines()
            text = " ".join(line.split("#")[0] for line in lines).replace(",", " ")
            values = np.array([float(tok) for tok in text.split()])
    except FileNotFoundError:
        raise InputError(f"{path}: no such CRF file") from None
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: not a readable CRF table ({err})") from None
    try:
        return Response.from_table(values)
    except ValueError as err:
        raise InputError(f"{path}: {err}") from None
