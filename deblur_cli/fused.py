"""A fused inference path for :class:`~deblur_cli.model.MultiScaleDeblurNet`.

The light default network is overhead-bound on CPU: in eager PyTorch each ResBlock writes
and re-reads its activations three times more than the convolutions need (a separate ReLU,
a separate residual add), and the Gaussian pyramid gathers rows with ``index_select``.
:class:`FusedNet` runs the same weights with

- oneDNN's fused convolutions (the ops ``torch.compile`` emits on CPU, called directly, so
  there is no compile time, no C++ compiler and no cache): conv+ReLU in one pass, and the
  ResBlock's second conv accumulating straight into its input (conv+add, in place); the
  finest scale's residual skip is fused into its fp32 tail conv the same way;
- weights re-ordered once into oneDNN's blocked layout instead of on every call;
- a pyramid that pads by flipping slices (contiguous copies) instead of gathering rows.

Other devices (CUDA, MPS) or a PyTorch without oneDNN get the portable part only: in-place
ReLU and residual adds and the gather-free pyramid, which is plain PyTorch.

Numerics: the same operations in the same dtypes, except that a fused add rounds once
instead of twice and a residual net's finest tail conv (which only computes a correction)
runs in bf16 like the rest of a bf16 net, its skip add staying in fp32. fp32 agrees with
eager to ~1e-4 (identical 8-bit output on a real frame, the official fixture to 3e-5);
bf16 differs from eager bf16 by at most 0.76 before rounding, 1 grey level after
(tests/test_engine.py and benchmarks/bench_engine.py check this on real photos).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .model import PIXEL_MEAN, ModelConfig, MultiScaleDeblurNet
from .pyramid import crop_to, gaussian_kernel1d, gaussian_pyramid, pad_to_multiple

log = logging.getLogger(__name__)

# A representative input size for choosing oneDNN's weight layout: the layout depends on the
# channel counts and the ISA, not on the picture size, so one choice serves every tile.
_PACK_SIZE = 128


def onednn_usable(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether this PyTorch build has the fused oneDNN convolutions for this device/dtype."""
    if device.type != "cpu" or dtype not in (torch.float32, torch.bfloat16):
        return False
    if not torch.backends.mkldnn.is_available():
        return False
    return hasattr(torch.ops.mkldnn, "_convolution_pointwise") and hasattr(
        torch.ops.mkldnn, "_convolution_pointwise_"
    )


class _Conv:
    """One convolution's weights prepared for a fused call (oneDNN) or for ``F.conv2d``."""

    def __init__(self, conv: nn.Conv2d, onednn: bool) -> None:
        self.padding = [conv.padding[0], conv.padding[1]]
        self.bias = conv.bias
        self.weight = conv.weight
        self.onednn = onednn
        if onednn:
            size = [1, conv.in_channels, _PACK_SIZE, _PACK_SIZE]
            self.weight = torch.ops.mkldnn._reorder_convolution_weight(
                conv.weight, self.padding, [1, 1], [1, 1], 1, size
            )

    @property
    def dtype(self) -> torch.dtype:
        return self.bias.dtype

    def __call__(self, x: torch.Tensor, relu: bool = False) -> torch.Tensor:
        if self.onednn:
            return torch.ops.mkldnn._convolution_pointwise(
                x, self.weight, self.bias, self.padding, [1, 1], [1, 1], 1,
                "relu" if relu else "none", [], "",
            )  # fmt: skip
        out = F.conv2d(x, self.weight, self.bias, padding=self.padding)
        return out.relu_() if relu else out

    def add_into(self, x: torch.Tensor, accumulator: torch.Tensor) -> torch.Tensor:
        """``accumulator += conv(x)`` in one pass; returns ``accumulator``."""
        if self.onednn:
            return torch.ops.mkldnn._convolution_pointwise_.binary(
                accumulator, x, self.weight, self.bias, self.padding, [1, 1], [1, 1], 1,
                "add", 1.0, None, [], None,
            )  # fmt: skip
        return accumulator.add_(F.conv2d(x, self.weight, self.bias, padding=self.padding))


class _FusedScale:
    """One scale: head conv, ResBlocks as (conv+ReLU, conv+add in place), tail conv."""

    def __init__(self, scale: nn.Module, onednn: bool) -> None:
        layers = list(scale.body)
        self.head = _Conv(layers[0], onednn)
        self.blocks = [(_Conv(b.body[0], onednn), _Conv(b.body[2], onednn)) for b in layers[1:-1]]
        self.tail = _Conv(layers[-1], onednn)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x.to(self.head.dtype))
        for first, second in self.blocks:
            h = second.add_into(first(h, relu=True), h)
        return h

    def run(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        """The scale's fp32 output: tail(features(x)), plus ``skip`` (fp32, not changed)
        where the net is residual; an fp32 tail adds it in the same pass."""
        features = self.features(x).to(self.tail.dtype)
        if skip is not None and self.tail.dtype == torch.float32:
            return self.tail.add_into(features, skip.clone())
        out = self.tail(features).float()
        return out if skip is None else out.add_(skip)


def _symmetric_pad(x: torch.Tensor, radius: int) -> torch.Tensor:
    """scipy's 'reflect' border (d c b a | a b c d | d c b a) by flipped slices, no gather."""
    top, bottom = x[..., :radius, :].flip(-2), x[..., -radius:, :].flip(-2)
    x = torch.cat((top, x, bottom), dim=-2)
    left, right = x[..., :radius].flip(-1), x[..., -radius:].flip(-1)
    return torch.cat((left, x, right), dim=-1)


def fast_gaussian_pyramid(x: torch.Tensor, n_scales: int) -> list[torch.Tensor]:
    """:func:`~deblur_cli.pyramid.gaussian_pyramid` with sliced padding (same values)."""
    kernel = gaussian_kernel1d().to(x.device, x.dtype)
    radius = kernel.numel() // 2
    channels = x.shape[1]
    weight_v = kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    weight_h = kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    levels = [x]
    for _ in range(n_scales - 1):
        level = levels[-1]
        h, w = level.shape[-2:]
        if min(h, w) <= radius:  # a border wider than the image: the general code wraps it
            return gaussian_pyramid(x, n_scales)
        smoothed = F.conv2d(_symmetric_pad(level, radius), weight_v, groups=channels)
        smoothed = F.conv2d(smoothed, weight_h, groups=channels)
        size = (math.ceil(h / 2), math.ceil(w / 2))
        levels.append(F.interpolate(smoothed, size=size, mode="bilinear", align_corners=False))
    return levels


def _bf16_tail_suffices(config: ModelConfig, finest: _FusedScale) -> bool:
    return (
        config.residual
        and finest.head.dtype == torch.bfloat16
        and finest.tail.dtype == torch.float32
    )


class FusedNet(nn.Module):
    """Inference-only twin of a prepared :class:`MultiScaleDeblurNet` (same call signature).

    Shares the network's parameters (no copy except oneDNN's re-ordered weights); build it
    after the network has its final device, dtype and memory format.
    """

    def __init__(
        self,
        net: MultiScaleDeblurNet,
        onednn: bool,
        make_scale: Callable[[int, nn.Module], _FusedScale] | None = None,
    ) -> None:
        """``make_scale(index, scale)`` builds each scale's runner (quantize.py's int8 one);
        by default the fused convolutions at the network's own dtype."""
        super().__init__()
        self.net = net
        self.config = net.config
        self.onednn = onednn
        if make_scale is not None:
            self.scales = [make_scale(s, scale) for s, scale in enumerate(net.body_models)]
        else:
            self.scales = self._fused_scales(net, onednn)
        self.up = [None] + [_Conv(m.uppath[0], onednn) for m in list(net.conv_end_models)[1:]]

    @staticmethod
    def _fused_scales(net: MultiScaleDeblurNet, onednn: bool) -> list[_FusedScale]:
        scales = [_FusedScale(scale, onednn) for scale in net.body_models]
        finest = scales[0]
        if _bf16_tail_suffices(net.config, finest):
            # A residual net's tail computes only a correction (tens of grey levels), which
            # bf16 holds to ~0.1; the fp32 tail cost as much as two ResBlocks (it first had
            # to widen 32 feature channels to fp32). The skip add itself stays in fp32.
            tail = copy.deepcopy(net.body_models[0].body[-1]).to(finest.head.dtype)
            finest.tail = _Conv(tail, onednn)
        return scales

    @property
    def kind(self) -> str:
        return "oneDNN fused" if self.onednn else "in-place"

    @torch.inference_mode()
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        config = self.config
        memory_format = (
            torch.channels_last if image.is_contiguous(memory_format=torch.channels_last)
            else torch.contiguous_format
        )  # fmt: skip
        padded, size = pad_to_multiple(image.float(), config.size_multiple)
        padded = padded.contiguous(memory_format=memory_format)
        levels = fast_gaussian_pyramid(padded, config.n_scales)
        n = config.n_scales
        centred = levels[n - 1] - PIXEL_MEAN
        x = centred
        for s in range(n - 1, -1, -1):
            # The finest scale's skip is the uncentred input: its output is then the image.
            skip = (levels[0] if s == 0 else centred) if config.residual else None
            out = self.scales[s].run(x, skip)
            if s == 0:
                return crop_to(out if config.residual else out.add_(PIXEL_MEAN), size)
            up = self.up[s]
            upsampled = F.pixel_shuffle(up(out.to(up.dtype)), 2)
            centred = levels[s - 1] - PIXEL_MEAN
            x = torch.cat((centred.to(upsampled.dtype), upsampled), dim=1)
            x = x.contiguous(memory_format=memory_format)
        raise AssertionError("unreachable")


def fuse(net: MultiScaleDeblurNet) -> FusedNet:
    """The fastest inference twin this PyTorch and device allow; never fails (logs why)."""
    param = net.body_models[0].body[0].weight
    onednn = onednn_usable(param.device, param.dtype)
    if onednn:
        try:
            return FusedNet(net, onednn=True)
        except (RuntimeError, TypeError) as err:  # an old or odd oneDNN build
            log.info("oneDNN fusion unavailable (%s); using the in-place path", err)
    return FusedNet(net, onednn=False)


# --------------------------------------------------------------------------- torch.compile


def compiler_available() -> bool:
    """Inductor's CPU code needs a C++ compiler; without one torch.compile fails late."""
    names = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
    return any(name and shutil.which(name) for name in names)


def compile_cache_dir() -> Path:
    """A persistent inductor cache (``$XDG_CACHE_HOME/deblur/inductor``): the second run of
    the same model and frame size loads compiled code instead of compiling for a minute."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deblur" / "inductor"


class CompiledNet(nn.Module):
    """``torch.compile`` (inductor, frozen weights) of the network, with a fallback.

    Opt-in (``DEBLUR_COMPILE=1`` or ``load_model(..., compile=True)``): it compiles for each
    new input size (about a minute on a 2-core CPU), so it pays off on a video or a batch of
    same-size frames, not on one photo. Any failure at compile or run time (no compiler, an
    unsupported op) logs one warning and hands the work to ``fallback`` for good.
    """

    def __init__(self, net: MultiScaleDeblurNet, fallback: nn.Module) -> None:
        super().__init__()
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(compile_cache_dir()))
        self.fallback = fallback
        self.compiled = torch.compile(net, options={"freezing": True}, dynamic=False)
        self.failed: str | None = None

    @property
    def kind(self) -> str:
        return "torch.compile" if self.failed is None else getattr(self.fallback, "kind", "eager")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.failed is None:
            try:
                return self.compiled(image)
            except Exception as err:  # noqa: BLE001 - compile errors come in many types
                self.failed = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
                log.warning("torch.compile failed (%s); using the fused path", self.failed)
        return self.fallback(image)


def compile_net(net: MultiScaleDeblurNet, fallback: nn.Module) -> nn.Module:
    """:class:`CompiledNet`, or ``fallback`` where torch.compile cannot work here."""
    if not compiler_available():
        log.info("no C++ compiler found: torch.compile skipped, using the fused path")
        return fallback
    try:
        return CompiledNet(net, fallback)
    except Exception as err:  # noqa: BLE001
        log.info("torch.compile unavailable (%s); using the fused path", err)
        return fallback
