"""What a training run depends on, and the defaults filled in for what the user left unset.

Kept apart from the loop (``trainer.py``) so that the recipe can be read, and tested, alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ..errors import DeblurError
from ..model import CONFIGS, ModelConfig
from .augment import AugmentConfig
from .distil import TEACH_KINDS

SCHEDULES = ("multistep", "cosine", "constant")
AMP_MODES = ("off", "auto", "bf16", "fp16")

# What an unset --config/--steps/--batch/--patch becomes. The paper's recipe where it is
# feasible (CUDA: ~1000 official epochs of GOPRO_Large at batch 16); elsewhere the light
# network at the scale of the bundled model's CPU stage (scripts/train_default.sh), which
# finishes in hours where the paper's would take weeks.
PAPER_DEFAULTS: dict[str, Any] = {"model": "paper", "steps": 131_400, "batch": 16, "patch": 256}
CPU_DEFAULTS: dict[str, Any] = {"model": "light", "steps": 7_000, "batch": 8, "patch": 128}
# Held-back validation never takes more than this fraction of a training source.
VAL_FRACTION = 0.1


@dataclass
class TrainConfig:
    """Everything a run depends on; defaults are the official GOPRO recipe (reference §1.6).

    ``model``, ``steps``, ``batch`` and ``patch`` left at None are chosen by the device
    (:func:`device_defaults`), or taken from the run being resumed.
    """

    data: list[str]
    out: str = "runs/deblur"
    model: ModelConfig | None = None  # None: the --init file's, the resumed run's, or by device
    init: str | None = None
    steps: int | None = None  # None: 131,400 on CUDA (paper), 7,000 elsewhere
    batch: int | None = None  # global batch, split across processes; None: 16 / 8
    patch: int | None = None  # None: 256 / 128
    lr: float = 1e-4
    schedule: str = "multistep"
    milestones: tuple[float, ...] = (0.5, 0.75, 0.9)  # fractions of steps (or absolute > 1)
    gamma: float = 0.5
    min_lr: float = 0.0  # cosine floor
    clip_grad: float = 0.0  # max global grad norm; 0 = off
    loss: str = "1*L1"
    amp: str = "off"
    device: str = "auto"
    seed: int = 0
    workers: int = 2
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    blur_dir: str = "auto"
    synth_options: dict[str, Any] = field(default_factory=dict)
    gamma_frames: tuple[float, ...] = (2.2,)  # frames: camera gamma(s); each pair draws one
    frames_crf: str | None = None  # frames: camera response file, replaces gamma_frames
    frames_count: tuple[int, int] = (7, 13)  # frames: frames per average (GOPRO: 7-13)
    identity_fraction: float = 0.0  # share of identity:DIR samples (0 = one per photo)
    teacher: str | None = None  # online distillation: a network that labels the inputs
    teacher_share: float = 1.0  # of samples with ground truth (in teacher_on / bank:)
    teacher_on: tuple[str, ...] = TEACH_KINDS  # kinds whose truth the online teacher replaces
    mixup: float = 0.0  # share of taught samples blended with another (online only)
    val: list[str] = field(default_factory=list)  # separate validation data; else held back
    val_count: int = 8
    val_every: int = 1000
    val_crop: int = 512  # central crop side for validation, 0 = whole image
    checkpoint_every: int = 1000
    log_every: int = 20
    export: str | None = None
    export_best: bool = True  # False: export the last weights even when validation ran
    resume: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model.to_dict() if self.model else None
        d["milestones"] = list(self.milestones)
        d["gamma_frames"] = list(self.gamma_frames)
        d["frames_count"] = list(self.frames_count)
        d["teacher_on"] = list(self.teacher_on)
        return d


@dataclass
class TrainResult:
    step: int
    start_step: int
    steps_per_s: float
    best: dict[str, float]
    data_share: float  # of the training time spent waiting for the DataLoader
    out: Path
    last_weights: Path | None
    exported: Path | None


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """off → None; auto → bf16 on CPU, fp16 on CUDA/MPS. fp16 on CPU is refused (~1000x slow)."""
    if mode not in AMP_MODES:
        raise DeblurError(f"unknown --amp {mode!r} (use {', '.join(AMP_MODES)})")
    if mode == "off":
        return None
    if mode == "auto":
        return torch.bfloat16 if device.type == "cpu" else torch.float16
    if mode == "fp16" and device.type == "cpu":
        raise DeblurError("fp16 on CPU is ~1000x slower than fp32; use --amp bf16")
    return torch.bfloat16 if mode == "bf16" else torch.float16


def device_defaults(device: torch.device) -> dict[str, Any]:
    """The paper's recipe on CUDA, the light CPU one elsewhere (CPU, MPS)."""
    return dict(PAPER_DEFAULTS if device.type == "cuda" else CPU_DEFAULTS)


def resolve_defaults(
    cfg: TrainConfig,
    device: torch.device,
    *,
    init_config: ModelConfig | None = None,
    resumed: dict[str, Any] | None = None,
) -> tuple[TrainConfig, dict[str, Any]]:
    """Fill what the user left unset: from the run being resumed (so that re-running the same
    command continues it on any machine), else the --init file's config, else by device.

    Returns the complete config and what was chosen on the user's behalf (for the report).
    """
    chosen: dict[str, Any] = {}
    by_device = device_defaults(device)
    stored = (resumed or {}).get("train_config") or {}
    for name in ("steps", "batch", "patch"):
        if getattr(cfg, name) is None:
            chosen[name] = int(stored.get(name) or by_device[name])
    if cfg.model is None:
        if resumed and resumed.get("model_config"):
            chosen["model"] = ModelConfig.from_dict(resumed["model_config"])
        elif init_config is not None:
            return replace(cfg, model=init_config, **chosen), chosen
        else:
            chosen["model"] = CONFIGS[by_device["model"]]
    return replace(cfg, **chosen), chosen


def _milestones(cfg: TrainConfig) -> list[int]:
    steps = [int(round(m * cfg.steps)) if m <= 1 else int(m) for m in cfg.milestones]
    return sorted({s for s in steps if s > 0})


def make_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer):
    """Stepped once per training step (official: per epoch; milestones are fractions)."""
    if cfg.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, _milestones(cfg), cfg.gamma)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.steps, cfg.min_lr)
    if cfg.schedule == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    raise DeblurError(f"unknown schedule {cfg.schedule!r} (use {', '.join(SCHEDULES)})")
