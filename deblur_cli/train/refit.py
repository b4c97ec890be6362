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
from ..pyramid import gaussian_pyramid
from .data import TrainSet


@dataclass
class NormalEquations:
    """Sums over the sampled pixels of one data group: XᵀX, XᵀY, and the row count."""

    xtx: torch.Tensor  # (K+1, K+1) float64
    xty: torch.Tensor  # (K+1, 3) float64
    rows: int

    def mean(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.xtx / self.rows, self.xty / self.rows


def tail_of(net: MultiScaleDeblurNet, scale: int = 0) -> torch.nn.Conv2d:
    """The last convolution of a scale (features → RGB correction); 0 is the finest."""
    return net.body_models[scale].body[-1]


class _Captured(Exception):
    """Raised by the hook once the scale of interest has run: the finer scales need not."""


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
    scale: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> NormalEquations:
    """Normal equations of scale ``scale``'s tail over ``count`` training patches of
    ``data`` (fp32 forward). A coarser scale's target is the same pyramid level of the
    sharp image, as in training (the loss is summed over scales)."""
    if not net.config.residual:
        raise ValueError("the tail refit needs a residual network (output = input + tail)")
    tail = tail_of(net, scale)
    captured: list[torch.Tensor] = []

    def grab(module, args, out):
        captured.append(args[0].float())
        if scale > 0:
            raise _Captured

    hook = tail.register_forward_hook(grab)
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
            if (
                blur.shape[-1] % net.config.size_multiple
                or blur.shape[-2] % net.config.size_multiple
            ):
                raise ValueError(f"patch side must be a multiple of {net.config.size_multiple}")
            blur_levels = gaussian_pyramid(blur, net.config.n_scales)
            try:
                net.forward_pyramid(blur_levels)
            except _Captured:
                pass
            features = captured[-1]  # (N, 32, h, w), aligned with this scale's input
            blur_s = blur_levels[scale]
            sharp_s = gaussian_pyramid(sharp, net.config.n_scales)[scale]
            h, w = blur_s.shape[-2:]
            margin_s = max(1, margin >> scale)
            columns = F.unfold(features, tail.kernel_size, padding=tail.padding)  # N,K,HW
            target = (sharp_s - blur_s).flatten(2)  # N,3,HW: the residual the tail must add
            ys, xs = np.mgrid[margin_s : h - margin_s, margin_s : w - margin_s]
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
    neutral: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tail weight and bias minimising the share-weighted mean squared error of the groups
    plus ``ridge`` x the squared distance to the ``current`` (weight, bias), each column
    scaled by its mean square. With ``neutral`` (a group of sharp photos) the fit is
    constrained to add nothing on average over that group's pixels."""
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
    if neutral is None:
        solution = torch.linalg.solve(a + penalty, b + penalty @ w0)  # K+1,3
    else:
        # Do no harm as a constraint: the mean correction over the ``neutral`` group's
        # pixels (sharp photos) is exactly zero, whatever the blurry groups pull toward.
        # Its mean feature vector is the ones-column of its XᵀX.
        eq = groups[neutral]
        m = (eq.xtx[:, -1] / eq.rows)[:, None]  # K+1,1
        kkt = torch.cat([torch.cat([a + penalty, m], 1), torch.cat([m.T, m.new_zeros(1, 1)], 1)])
        rhs = torch.cat([b + penalty @ w0, b.new_zeros(1, 3)])
        solution = torch.linalg.solve(kkt, rhs)[:-1]
    new_weight = solution[:-1].T.reshape(weight.shape).to(weight.dtype)
    new_bias = solution[-1].to(bias.dtype)
    return new_weight, new_bias


def refit(
    net: MultiScaleDeblurNet,
    groups: Mapping[str, NormalEquations],
    shares: Mapping[str, float],
    ridge: float = 1e-3,
    scale: int = 0,
    neutral: str | None = None,
) -> MultiScaleDeblurNet:
    """Write the solved tail of ``scale`` into ``net`` (in place) and return it.

    Refitting coarse to fine (scale n-1, then its finer neighbour on the new outputs, ...)
    removes a shift where it starts: a coarse scale's correction is upsampled into every
    finer one, and the finest tail alone only partly undoes it."""
    tail = tail_of(net, scale)
    current = (tail.weight.detach(), tail.bias.detach())
    weight, bias = solve(groups, shares, current, ridge, neutral)
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
