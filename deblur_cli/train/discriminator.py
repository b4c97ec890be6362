"""The official DeepDeblur-PyTorch discriminator, for the optional adversarial loss.

Ten bias-free 5x5 convolutions (4x4 for the last) with LeakyReLU 0.2 reduce a 256² patch to
1x1, and a 1x1 convolution gives one real/fake logit. Its total stride is 256, so patches
below ~196 px leave nothing for the last 4x4 convolution: :func:`min_patch` says how large.
"""

from __future__ import annotations

import torch
from torch import nn

CHANNELS = (3, 32, 32, 64, 64, 128, 128, 256, 256, 512, 512)
STRIDES = (1, 2, 1, 2, 1, 4, 1, 4, 1, 4)


class Discriminator(nn.Module):
    """Patch in 0..255 → logits (N×1×h×w; 1×1 for 256² inputs), uncentred as official."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, stride in enumerate(STRIDES):
            last = i == len(STRIDES) - 1
            kernel, pad = (4, 0) if last else (5, 2)
            layers.append(nn.Conv2d(CHANNELS[i], CHANNELS[i + 1], kernel, stride, pad, bias=False))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        layers.append(nn.Conv2d(CHANNELS[-1], 1, 1, bias=False))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def min_patch() -> int:
    """Smallest square input the discriminator accepts (the last 4x4 conv needs 4 px)."""
    stride_before_last = 1
    for s in STRIDES[:-1]:
        stride_before_last *= s
    return (4 - 1) * stride_before_last + 1
