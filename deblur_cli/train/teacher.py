"""Teachers for knowledge distillation: networks whose outputs become training targets.

Function matching (Beyer et al., "Knowledge distillation: a good teacher is patient and
consistent", CVPR 2022): the student learns to reproduce the teacher's output on many varied
inputs, so a teacher trained on data we do not have (the 22 GOPRO training scenes) can pass
on what it learned. A teacher is a training-time tool only: ``deblur image/video/batch``
never import this module.

Two kinds of network can teach:

* **DMPHN(1-2-4)** (Zhang et al., CVPR 2019), written here from the description in
  ``../shared/teachers/README.md``; recognised by its ``encoder_lv1.*`` tensor names.
* anything ``deblur`` can load (:func:`deblur_cli.weights.load_weight_file`): a registry
  name, a local safetensors file, an ``hf://`` URL, a converted official checkpoint.

Every teacher takes and returns N×3×H×W tensors in 0..255 (the training pipeline's range).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import WeightsError

DMPHN_ARCHITECTURE = "DMPHN(1-2-4)"
DMPHN_MULTIPLE = 8  # quarters of the image go through two stride-2 convs


# --------------------------------------------------------------------------- DMPHN(1-2-4)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class _ResPair(nn.Sequential):
    """conv → ReLU → conv, added to its input (no ReLU after the sum)."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            _conv(channels, channels), nn.ReLU(inplace=True), _conv(channels, channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + super().forward(x)


class _Encoder(nn.Module):
    """3 → 128 channels at 1/4 resolution. Attribute names are the checkpoint's keys."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1, self.layer2, self.layer3 = _conv(3, 32), _ResPair(32), _ResPair(32)
        self.layer5, self.layer6, self.layer7 = _conv(32, 64, 2), _ResPair(64), _ResPair(64)
        self.layer9, self.layer10, self.layer11 = _conv(64, 128, 2), _ResPair(128), _ResPair(128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.layer7(self.layer6(self.layer5(x)))
        return self.layer11(self.layer10(self.layer9(x)))


class _Decoder(nn.Module):
    """128 channels at 1/4 resolution → 3 channels at full resolution."""

    def __init__(self) -> None:
        super().__init__()
        self.layer13, self.layer14 = _ResPair(128), _ResPair(128)
        self.layer16 = nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1)
        self.layer17, self.layer18 = _ResPair(64), _ResPair(64)
        self.layer20 = nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1)
        self.layer21, self.layer22 = _ResPair(32), _ResPair(32)
        self.layer24 = _conv(32, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer16(self.layer14(self.layer13(x)))
        x = self.layer20(self.layer18(self.layer17(x)))
        return self.layer24(self.layer22(self.layer21(x)))


class DMPHN(nn.Module):
    """Deep Multi-Patch Hierarchical Network, 1-2-4 patches (level 1 = the whole image).

    ``forward`` takes RGB in [0, 1] minus 0.5, sides multiples of 8, and returns the
    picture minus 0.5 (the last decoder's output is the picture, not a residual on x).
    """

    def __init__(self) -> None:
        super().__init__()
        for level in (1, 2, 3):
            setattr(self, f"encoder_lv{level}", _Encoder())
            setattr(self, f"decoder_lv{level}", _Decoder())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        top, bottom = x[:, :, : h // 2], x[:, :, h // 2 :]
        # Level 3: four quarters through one encoder call (stacked on the batch axis).
        quarters = torch.cat(
            [top[..., : w // 2], top[..., w // 2 :], bottom[..., : w // 2], bottom[..., w // 2 :]]
        )
        tl, tr, bl, br = self.encoder_lv3(quarters).split(n)
        f3_top, f3_bottom = torch.cat((tl, tr), dim=3), torch.cat((bl, br), dim=3)
        r3_top, r3_bottom = self.decoder_lv3(torch.cat((f3_top, f3_bottom))).split(n)
        # Level 2: each half plus its level-3 residual; features joined, plus level 3's.
        e2_top, e2_bottom = self.encoder_lv2(torch.cat((top + r3_top, bottom + r3_bottom))).split(n)
        f2 = torch.cat((e2_top, e2_bottom), dim=2) + torch.cat((f3_top, f3_bottom), dim=2)
        r2 = self.decoder_lv2(f2)
        # Level 1: the whole image plus level 2's residual.
        return self.decoder_lv1(self.encoder_lv1(x + r2) + f2)


def is_dmphn(state_dict: dict) -> bool:
    return any(key.startswith("encoder_lv1.") for key in state_dict)


# --------------------------------------------------------------------------- the teacher


@dataclass
class Teacher:
    """A network that gives targets: ``teacher(blur)`` → its restoration, both in 0..255.

    ``provenance`` is what a distilled weight file's metadata records about it.
    """

    net: nn.Module
    kind: str  # "dmphn" or "deblur"
    multiple: int
    device: torch.device
    dtype: torch.dtype
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.provenance.get("architecture", self.kind))

    @torch.no_grad()
    def __call__(self, blur: torch.Tensor) -> torch.Tensor:
        """Restore a batch (N×3×H×W, 0..255, any size); the result is clamped to 0..255."""
        h, w = blur.shape[-2:]
        x = blur.to(self.device, torch.float32)
        pad_h, pad_w = -h % self.multiple, -w % self.multiple
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        autocast = torch.autocast(self.device.type, dtype=self.dtype, enabled=self._autocast)
        with autocast:
            if self.kind == "dmphn":
                out = (self.net(x / 255.0 - 0.5).float() + 0.5) * 255.0
            else:
                out = self.net(x).float()
        return out[..., :h, :w].clamp_(0, 255).to(blur.device)

    def restore(self, pixels: np.ndarray) -> np.ndarray:
        """One picture, H×W×3 uint8 in and out: the calling convention of deblur's own models
        (``engine.load_model``), so scoring code treats a teacher like any model."""
        x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None].float()
        return self(x)[0].permute(1, 2, 0).round().to(torch.uint8).numpy()

    @property
    def _autocast(self) -> bool:
        return self.dtype != torch.float32


def load_teacher(
    spec: str | os.PathLike, device: torch.device | str = "cpu", precision: str = "auto"
) -> Teacher:
    """A DMPHN safetensors file, or anything ``--weights`` accepts, as a :class:`Teacher`."""
    from ..engine import choose_device, choose_precision
    from ..weights import load_weight_file

    dev = choose_device(str(device)) if isinstance(device, str) else device
    # auto: fp16 on CUDA, bf16 on CPUs that have it natively, else fp32 (never fp16 on CPU)
    dtype = choose_precision(dev, precision)
    path = Path(spec)
    dmphn = _read_dmphn(path) if path.is_file() else None
    if dmphn is not None:
        state, metadata = dmphn
        try:
            net = DMPHN()
            net.load_state_dict(state)
        except RuntimeError as err:
            raise WeightsError(f"{path}: not a DMPHN(1-2-4) weight file ({err})") from None
        provenance = {
            "architecture": metadata.get("architecture", DMPHN_ARCHITECTURE),
            "file": path.name,
            **{k: v for k, v in metadata.items() if k != "architecture"},
        }
        multiple, kind = DMPHN_MULTIPLE, "dmphn"
    else:
        from ..model import build_model

        weights = load_weight_file(spec)
        net = build_model(weights.config)
        net.load_state_dict(weights.state_dict)
        name = weights.path.name if weights.path else str(spec)
        provenance = {
            "architecture": f"deblur MSResNet ({weights.config.summary()})",
            "file": name,
            "source": str(weights.metadata.get("source", spec)),
        }
        multiple, kind = weights.config.size_multiple, "deblur"
    net.eval().to(dev, memory_format=torch.channels_last)
    for p in net.parameters():
        p.requires_grad_(False)
    return Teacher(net, kind, multiple, dev, dtype, provenance)


def _read_dmphn(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]] | None:
    """Tensors and metadata of a DMPHN safetensors file in one read; None for anything else
    (``load_weight_file`` then says what it is)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            if not is_dmphn(dict.fromkeys(f.keys())):
                return None
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError):
        return None
