"""Refit the finest scale's last convolution by least squares: a fine-tune in minutes on a CPU.

In the residual configuration the finest output is ``input + tail(features)``, where
``tail`` is one 3x3 convolution (32 → 3 channels) and ``features`` do not depend on it.
So for fixed features the best tail under an L2 loss (the loss PSNR measures) is a ridge
regression: accumulate the normal equations ``XᵀX`` and ``XᵀY`` over patches (X: the 3x3x32
feature neighbourhood of a pixel plus 1, Y: sharp minus input at that pixel), one set per
data group, then solve for any mix of the groups at once. Shrinking toward the current
weights (``ridge``) keeps what the network already does well.

Why: on a shared 2-core machine SGD fine-tuning of the whole network ran at 0.02-0.3 steps
per second; one pass of forward-only feature collection over ~1,000 patches costs about as
much as 40 SGD steps, and every mix of identity pairs / frames / REDS / stills can then be
solved and measured in a second. It cannot change what the features see, only how they are
turned into the correction — which is where a systematic tone shift lives.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..model import MultiScaleDeblurNet
from .data import TrainSet


@dataclass
class NormalEquations:
    """Sums over the sampled pixels of one data group: XᵀX, XᵀY, and the row count."""

    xtx: torch.Tensor  # (K+1, K+1) float64
    xty: torch.Tensor  # (K+1, 3) float64
    rows: int

    def mean(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.xtx / self.rows, self.xty / self.rows


def tail_of(net: MultiScaleDeblurNet) -> torch.nn.Conv2d:
    """The finest scale's last convolution (features → RGB correction)."""
    return net.body_models[0].body[-1]


@torch.no_grad()
def collect(
    net: MultiScaleDeblurNet,
    data: TrainSet,
    count: int,
    *,
    pixels_per_patch: int = 4096,
    margin: int = 16,
    batch: int = 4,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> NormalEquations:
    """Normal equations over ``count`` training patches of ``data`` (fp32 forward)."""
    if not net.config.residual:
        raise ValueError("the tail refit needs a residual network (output = input + tail)")
    tail = tail_of(net)
    captured: list[torch.Tensor] = []
    hook = tail.register_forward_hook(lambda mod, args, out: captured.append(args[0].float()))
    k = tail.in_channels * tail.kernel_size[0] * tail.kernel_size[1]
    xtx = torch.zeros(k + 1, k + 1, dtype=torch.float64)
    xty = torch.zeros(k + 1, 3, dtype=torch.float64)
    rows = 0
    rng = np.random.default_rng([seed, 7])
    net.eval()
    try:
        for start in range(0, count, batch):
            ids = range(start, min(start + batch, count))
            pairs = [data[i] for i in ids]
            blur = torch.stack([b for b, _ in pairs])
            sharp = torch.stack([s for _, s in pairs])
            captured.clear()
            net(blur)
            features = captured[-1]  # (N, 32, H, W), aligned with the input (no padding)
            h, w = blur.shape[-2:]
            if features.shape[-2:] != (h, w):
                raise ValueError(f"patch side must be a multiple of {net.config.size_multiple}")
            columns = F.unfold(features, tail.kernel_size, padding=tail.padding)  # N,K,HW
            target = (sharp - blur).flatten(2)  # N,3,HW: the residual the tail must add
            ys, xs = np.mgrid[margin : h - margin, margin : w - margin]
            inner = (ys * w + xs).ravel()
            for n in range(blur.shape[0]):
                pick = torch.from_numpy(
                    rng.choice(inner, min(pixels_per_patch, inner.size), replace=False)
                )
                x = columns[n][:, pick].T.double()  # P,K
                x = torch.cat([x, torch.ones(len(pick), 1, dtype=torch.float64)], 1)
                y = target[n][:, pick].T.double()
                xtx += x.T @ x
                xty += x.T @ y
                rows += len(pick)
            if progress:
                progress(min(start + batch, count), count)
    finally:
        hook.remove()
    return NormalEquations(xtx, xty, rows)


def solve(
    groups: Mapping[str, NormalEquations],
    shares: Mapping[str, float],
    current: tuple[torch.Tensor, torch.Tensor],
    ridge: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tail weight and bias minimising the share-weighted mean squared error of the groups
    plus ``ridge`` x the squared distance to the ``current`` (weight, bias), each column
    scaled by its mean square."""
    total = sum(shares.values())
    if total <= 0:
        raise ValueError("shares must add up to more than 0")
    a = sum(groups[g].mean()[0] * (s / total) for g, s in shares.items() if s)
    b = sum(groups[g].mean()[1] * (s / total) for g, s in shares.items() if s)
    weight, bias = current
    w0 = torch.cat([weight.reshape(3, -1), bias[:, None]], 1).T.double()  # K+1,3
    # Ridge on standardised columns: each weight is pulled back in proportion to its own
    # input's energy, so the bias (a column of ones) is as free as any feature.
    penalty = torch.diag(ridge * torch.diagonal(a))
    solution = torch.linalg.solve(a + penalty, b + penalty @ w0)  # K+1,3
    new_weight = solution[:-1].T.reshape(weight.shape).to(weight.dtype)
    new_bias = solution[-1].to(bias.dtype)
    return new_weight, new_bias


def refit(
    net: MultiScaleDeblurNet,
    groups: Mapping[str, NormalEquations],
    shares: Mapping[str, float],
    ridge: float = 1e-3,
) -> MultiScaleDeblurNet:
    """Write the solved tail into ``net`` (in place) and return it."""
    tail = tail_of(net)
    weight, bias = solve(groups, shares, (tail.weight.detach(), tail.bias.detach()), ridge)
    with torch.no_grad():
        tail.weight.copy_(weight)
        tail.bias.copy_(bias)
    return net


def parse_shares(text: str, known: Sequence[str]) -> dict[str, float]:
    """``identity=0.3,frames=0.4`` → {"identity": 0.3, "frames": 0.4} (names checked)."""
    shares: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name not in known:
            raise ValueError(f"unknown group {name!r}; groups: {', '.join(known)}")
        shares[name] = float(value)
    return shares
