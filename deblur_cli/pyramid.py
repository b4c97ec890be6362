"""Gaussian input pyramid with the semantics of ``skimage.transform.pyramid_gaussian``.

The official DeepDeblur code builds its pyramid with scikit-image (sigma = 2/3, scipy's
half-sample-symmetric 'reflect' border, truncate 4.0, then pixel-centre bilinear resize to
ceil(h/2)). Reproducing that exactly in torch keeps converted checkpoints bit-faithful
without a scikit-image dependency at run time.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SIGMA = 2 * 2 / 6  # skimage: 2 * downscale / 6
TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter default


def gaussian_kernel1d(sigma: float = SIGMA, truncate: float = TRUNCATE) -> torch.Tensor:
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).float()


def _symmetric_index(n: int, radius: int, device: torch.device) -> torch.Tensor:
    """Indices for scipy 'reflect' padding (d c b a | a b c d | d c b a), any n >= 1."""
    idx = torch.arange(-radius, n + radius, device=device) % (2 * n)
    return torch.where(idx >= n, 2 * n - 1 - idx, idx)


def gaussian_blur(x: torch.Tensor, sigma: float = SIGMA) -> torch.Tensor:
    """Separable Gaussian blur of an N×C×H×W tensor with scipy's 'reflect' border."""
    kernel = gaussian_kernel1d(sigma).to(x.device, x.dtype)
    radius = kernel.numel() // 2
    n, c, h, w = x.shape
    x = x.index_select(2, _symmetric_index(h, radius, x.device))
    x = x.index_select(3, _symmetric_index(w, radius, x.device))
    weight_v = kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    weight_h = kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    x = F.conv2d(x, weight_v, groups=c)
    return F.conv2d(x, weight_h, groups=c)


def pyramid_reduce(x: torch.Tensor) -> torch.Tensor:
    """One level down: blur, then bilinear (pixel centres) to ceil(h/2) × ceil(w/2)."""
    h, w = x.shape[-2:]
    smoothed = gaussian_blur(x)
    size = (math.ceil(h / 2), math.ceil(w / 2))
    return F.interpolate(smoothed, size=size, mode="bilinear", align_corners=False)


def gaussian_pyramid(x: torch.Tensor, n_scales: int) -> list[torch.Tensor]:
    """[full, 1/2, 1/4, ...] — level 0 is the input itself, as in skimage."""
    levels = [x]
    for _ in range(n_scales - 1):
        levels.append(pyramid_reduce(levels[-1]))
    return levels


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Edge-pad bottom/right so H and W divide by ``multiple`` (official demo: np.pad 'edge')."""
    h, w = x.shape[-2:]
    pad_h = (-h) % multiple
    pad_w = (-w) % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
    return x, (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return x[..., : size[0], : size[1]]
