"""PSNR and SSIM with the conventions of the official DeepDeblur-PyTorch code.

Published GOPRO numbers (30.40 dB / 0.9018) were measured this way (its ``loss/metric.py``),
so ours must match it:

* the restored image is clamped to 0..255 and rounded to integers first (what a saved 8-bit
  PNG would hold);
* PSNR uses data range 255 over all pixels and channels;
* SSIM (``official``) equals scikit-image's ``structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1)``: an 11x11
  Gaussian window (sigma 1.5, truncate 3.5), K1 0.01, K2 0.03, population covariance,
  computed per RGB channel over the "valid" region only (no padding) and averaged.

``skimage`` SSIM is scikit-image's *default* instead (7x7 uniform window, sample covariance),
which many papers and data-set notes use; it reads ~0.02 lower on GOPRO-like images.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

DATA_RANGE = 255.0
K1, K2 = 0.01, 0.03
SSIM_MODES = ("official", "skimage")


def to_hwc(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """numpy HxW/HxWxC or torch CxHxW (one image) → float64 HxWxC numpy."""
    if isinstance(image, torch.Tensor):
        t = image.detach().to("cpu", torch.float64)
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise ValueError("pass one image at a time")
            t = t[0]
        arr = t.permute(1, 2, 0).numpy() if t.ndim == 3 else t.numpy()
    else:
        arr = np.asarray(image, dtype=np.float64)
    return arr[..., None] if arr.ndim == 2 else arr


def quantize(image: np.ndarray | torch.Tensor) -> np.ndarray:
    """Clamp to 0..255 and round half-to-even, as the official code before measuring."""
    return np.round(np.clip(to_hwc(image), 0.0, DATA_RANGE))


def _pair(output: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor):
    a, b = quantize(output), quantize(target)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    return a, b


def psnr(output: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> float:
    """PSNR in dB of the quantized output against the target (inf when identical)."""
    a, b = _pair(output, target)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(DATA_RANGE**2 / mse)


def _window(mode: str) -> tuple[np.ndarray, float]:
    """1-D window and covariance normalisation for each SSIM convention."""
    if mode == "official":
        sigma, truncate = 1.5, 3.5
        radius = int(truncate * sigma + 0.5)  # 5 → 11 taps, as scipy.ndimage
        x = np.arange(-radius, radius + 1, dtype=np.float64)
        w = np.exp(-0.5 * (x / sigma) ** 2)
        return w / w.sum(), 1.0
    if mode == "skimage":
        n = 7
        return np.full(n, 1.0 / n), n * n / (n * n - 1.0)
    raise ValueError(f"unknown SSIM mode {mode!r} (use {', '.join(SSIM_MODES)})")


def ssim(
    output: np.ndarray | torch.Tensor,
    target: np.ndarray | torch.Tensor,
    mode: str = "official",
) -> float:
    """Mean SSIM of the quantized output against the target (see the module docstring)."""
    a, b = _pair(output, target)
    window, cov_norm = _window(mode)
    r = window.size // 2
    if min(a.shape[:2]) < window.size:
        raise ValueError(f"images must be at least {window.size} px on each side for SSIM")

    def filt(x: np.ndarray) -> np.ndarray:
        # Any border works: the crop below keeps only pixels whose window lies inside.
        y = cv2.sepFilter2D(x, cv2.CV_64F, window, window, borderType=cv2.BORDER_REFLECT)
        return y.reshape(x.shape)[r:-r, r:-r]

    mu_a, mu_b = filt(a), filt(b)
    var_a = cov_norm * (filt(a * a) - mu_a * mu_a)
    var_b = cov_norm * (filt(b * b) - mu_b * mu_b)
    cov = cov_norm * (filt(a * b) - mu_a * mu_b)
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


TONE_BANDS = {"shadows": (0, 64), "midtones": (64, 192), "highlights": (192, 256)}


def tone_shift(
    output: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor
) -> dict[str, float | None]:
    """Mean grey-level change of the quantized output against the reference, overall and
    per tone band (bands by the reference's luma: shadows < 64 <= mid-tones < 192 <=
    highlights). A model that darkens sharp photos shows a negative shift, most often in
    the mid-tones; a band the picture does not have is ``None``."""
    a, b = _pair(output, reference)
    diff = (a - b).mean(axis=2)
    luma = b.mean(axis=2) if b.shape[2] != 3 else b @ np.array([0.299, 0.587, 0.114])
    shifts: dict[str, float | None] = {"all": float(diff.mean())}
    for band, (low, high) in TONE_BANDS.items():
        inside = (luma >= low) & (luma < high)
        shifts[band] = float(diff[inside].mean()) if inside.any() else None
    return shifts
