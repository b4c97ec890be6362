"""The multi-scale deblurring network of Nah, Kim and Lee (CVPR 2017).

Module and parameter names follow the official DeepDeblur-PyTorch ``MSResNet`` so that its
checkpoints load without renaming. Index 0 of ``body_models`` is the finest scale.
"""

from __future__ import annotations

import torch
from torch import nn

from .model_config import ARCHITECTURE, CONFIGS, ModelConfig
from .pyramid import crop_to, gaussian_pyramid, pad_to_multiple

__all__ = [
    "ARCHITECTURE",
    "CONFIGS",
    "PIXEL_MEAN",
    "ModelConfig",
    "MultiScaleDeblurNet",
    "build_model",
    "infer_config",
]

PIXEL_MEAN = 127.5  # rgb_range / 2: inputs and outputs live in 0..255 shifted by this


def conv(in_ch: int, out_ch: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=True)


class ResBlock(nn.Module):
    """conv-ReLU-conv plus identity; no batch norm, no residual scaling."""

    def __init__(self, n_feats: int, kernel_size: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(n_feats, n_feats, kernel_size),
            nn.ReLU(inplace=True),
            conv(n_feats, n_feats, kernel_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ScaleNet(nn.Module):
    """One scale: head conv, ResBlocks, conv back to RGB (the official ``ResNet``)."""

    def __init__(self, in_channels: int, config: ModelConfig) -> None:
        super().__init__()
        f, k = config.n_feats, config.kernel_size
        layers: list[nn.Module] = [conv(in_channels, f, k)]
        layers += [ResBlock(f, k) for _ in range(config.n_resblocks)]
        layers.append(conv(f, 3, k))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Each part runs in its own weights' dtype: inference may keep the tail in fp32.
        features = self.body[:-1](x.to(self.body[0].weight.dtype))
        tail = self.body[-1]
        return tail(features.to(tail.weight.dtype))


class UpConv(nn.Module):
    """Coarse result to the next finer scale: conv to 12 channels + PixelShuffle(2)."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.uppath = nn.Sequential(conv(3, 12, kernel_size), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.uppath(x.to(self.uppath[0].weight.dtype))


class MultiScaleDeblurNet(nn.Module):
    """Coarse-to-fine deblurring; no blur kernel is ever estimated.

    ``forward_pyramid`` takes the official input (a list [full, 1/2, 1/4] in 0..255) and
    returns [finest, ..., coarsest]; ``forward`` takes one N×3×H×W tensor in 0..255 of any
    size, builds the pyramid, pads and crops, and returns the finest result.
    """

    def __init__(self, config: ModelConfig = CONFIGS["paper"]) -> None:
        super().__init__()
        self.config = config
        n = config.n_scales
        # Index 0 finest (6 input channels), index n-1 coarsest (3 channels).
        self.body_models = nn.ModuleList(
            [ScaleNet(6 if s < n - 1 else 3, config) for s in range(n)]
        )
        # Slot 0 has no up-path (official: None); Identity keeps indices and key names intact.
        self.conv_end_models = nn.ModuleList(
            [nn.Identity()] + [UpConv(config.kernel_size) for _ in range(n - 1)]
        )
        if config.residual:
            # Start as the exact identity: training then only ever adds corrections.
            for scale in self.body_models:
                nn.init.zeros_(scale.body[-1].weight)
                nn.init.zeros_(scale.body[-1].bias)

    def forward_pyramid(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        centred = [level.float() - PIXEL_MEAN for level in levels]
        n = self.config.n_scales
        outputs: list[torch.Tensor] = [torch.empty(0)] * n
        x = centred[n - 1]
        for s in range(n - 1, -1, -1):
            out = self.body_models[s](x)
            if self.config.residual:
                # In fp32: under bf16 the sum would be quantised to ~1 grey level.
                out = out.float() + centred[s]
            outputs[s] = out
            if s > 0:
                up = self.conv_end_models[s](out)
                x = torch.cat((centred[s - 1].to(up.dtype), up), dim=1)
        return [out.float() + PIXEL_MEAN for out in outputs]

    def forward_all(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Pad, build the pyramid, run, and crop the finest output back; for training too."""
        padded, size = pad_to_multiple(image.float(), self.config.size_multiple)
        levels = gaussian_pyramid(padded, self.config.n_scales)
        outputs = self.forward_pyramid(levels)
        outputs[0] = crop_to(outputs[0], size)
        return outputs

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.forward_all(image)[0]


def build_model(config: ModelConfig) -> MultiScaleDeblurNet:
    return MultiScaleDeblurNet(config)


def infer_config(state_dict: dict[str, torch.Tensor]) -> ModelConfig:
    """Recognise the architecture from key names and shapes (spandrel-style).

    Raises ``KeyError``/``ValueError`` when the dict is not a DeepDeblur MSResNet.
    ``residual`` leaves no trace in the tensors: it comes from a weight file's metadata.
    """
    scales = {int(k.split(".")[1]) for k in state_dict if k.startswith("body_models.")}
    if not scales or scales != set(range(len(scales))):
        raise ValueError("no body_models.{0..n} keys")
    head = state_dict["body_models.0.body.0.weight"]
    n_feats, _, k, _ = head.shape
    body_indices = {
        int(key.split(".")[3])
        for key in state_dict
        if key.startswith("body_models.0.body.") and key.count(".") >= 4
    }
    tail_index = max(body_indices)
    config = ModelConfig(
        n_scales=len(scales), n_resblocks=tail_index - 1, n_feats=int(n_feats), kernel_size=int(k)
    )
    expected = MultiScaleDeblurNet(config).state_dict()
    if set(expected) != set(state_dict):
        missing = sorted(set(expected) - set(state_dict))[:3]
        extra = sorted(set(state_dict) - set(expected))[:3]
        raise ValueError(f"key mismatch (missing {missing}, unexpected {extra})")
    for key, tensor in expected.items():
        if tuple(state_dict[key].shape) != tuple(tensor.shape):
            raise ValueError(f"shape mismatch at {key}")
    return config
