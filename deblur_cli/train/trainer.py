"""The training loop: one process, or one per GPU/CPU under ``torchrun`` (DDP).

What a run leaves in its folder (``--out``):

* ``checkpoint.pt`` — everything needed to continue bit-identically: G (and D) weights,
  optimisers, schedulers, grad scalers, step, RNG state, the best validation so far. Saved
  every ``checkpoint_every`` steps, at the end, and on Ctrl-C/SIGTERM (at a step boundary,
  so it is always consistent). Running the same command again resumes from it.
* ``best.safetensors`` / ``last.safetensors`` — the generator as a normal weight file.
* ``log.csv`` (+ ``tensorboard/`` when installed) and ``curves.png``.

Data order is a pure function of ``(seed, step)`` (see :mod:`.data`), so resuming, changing
``--workers`` or the number of processes (same global batch) does not change what is seen.
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ..atomic import atomic_path
from ..engine import choose_device
from ..errors import DeblurError, InputError, OutputError
from ..model import CONFIGS, ModelConfig, MultiScaleDeblurNet, build_model
from ..runtime import tune_allocator
from ..weights import load_weight_file, save_weights
from .augment import AugmentConfig
from .curves import CsvLog, plot_curves, read_log
from .data import Source, StepBatches, TrainSet, ValSet, open_source
from .discriminator import Discriminator, min_patch
from .identity import size_identity
from .losses import (
    discriminator_loss,
    generator_adv_loss,
    multiscale_content_loss,
    parse_loss,
)
from .metrics import psnr, ssim

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_VERSION = 1
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


# --------------------------------------------------------------------------- set-up helpers


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> tuple[Dist, torch.device]:
    """Join the ``torchrun`` process group if there is one (nccl on CUDA, gloo on CPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), choose_device(device)
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device not in ("cpu",)
    if use_cuda:
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Dist(rank, world, local), dev


def _single_threaded_worker(_worker_id: int) -> None:
    """Parallelism comes from the workers: OpenCV's own thread pool in each of them (all
    cores by default) would only oversubscribe the CPU that synthesis is bound by."""
    import cv2

    cv2.setNumThreads(1)


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


class _AllScales(nn.Module):
    """DDP only syncs through ``forward``; the loss needs every scale, so forward = all."""

    def __init__(self, net: MultiScaleDeblurNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.forward_all(x)


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


def _one_line(err: BaseException) -> str:
    """DataLoader workers wrap errors in a traceback; users need its last line."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else type(err).__name__
    head, sep, tail = last.partition(": ")
    return tail if sep and "." in head and " " not in head else last


class _StopFlag:
    """Ctrl-C / SIGTERM ask for a stop at the next step boundary; a second Ctrl-C is hard."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def request(self) -> None:
        self.requested = True

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------- the trainer


class Trainer:
    """Build everything from a :class:`TrainConfig`, then :meth:`run`.

    ``on_step(trainer, step)`` is called after every step (tests use it to interrupt);
    ``reporter`` receives progress events for a live view (the CLI draws them with rich).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        *,
        on_step: Callable[[Trainer, int], None] | None = None,
        reporter: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        tune_allocator()
        self.on_step = on_step
        self.report = reporter or (lambda event, info: None)
        self.stop = _StopFlag()
        self.dist, self.device = init_distributed(cfg.device)
        self.out = Path(cfg.out)
        checkpoint = self.out / CHECKPOINT
        self._resume_state = (
            self._read_checkpoint(checkpoint) if cfg.resume and checkpoint.is_file() else None
        )
        init_file = load_weight_file(cfg.init) if cfg.init else None
        cfg, self.chosen = resolve_defaults(
            cfg,
            self.device,
            init_config=init_file.config if init_file else None,
            resumed=self._resume_state,
        )
        self.cfg = cfg
        if self.device.type == "cuda":
            # Every training batch has the same shape: let cuDNN time its algorithms once.
            torch.backends.cudnn.benchmark = True
        self.amp_dtype = resolve_amp(cfg.amp, self.device)
        self.loss_spec = parse_loss(cfg.loss)
        self._check_sizes()

        # Data first: bad paths should fail before minutes of model set-up.
        self.train_sources, self.val_sources = self._open_data()
        self.train_set = TrainSet(self.train_sources, cfg.patch, cfg.augment, cfg.seed)
        self.val_set = ValSet(self.val_sources, cfg.val_crop, cfg.seed)

        # Model: the same seed on every rank, so all start identical (DDP also broadcasts).
        torch.manual_seed(cfg.seed)
        config = cfg.model
        assert config is not None  # resolve_defaults filled it
        if init_file and init_file.config != config:
            raise DeblurError(
                f"--init {cfg.init} holds {init_file.config}, not the requested {config}"
            )
        self.model_config = config
        self.net = build_model(config)
        if init_file:
            self.net.load_state_dict(init_file.state_dict)
        self.net.to(self.device, memory_format=torch.channels_last)
        self.g = self._wrap(_AllScales(self.net))
        self.d_net = Discriminator().to(self.device) if self.loss_spec.adv_weight else None
        self.d = self._wrap(self.d_net) if self.d_net is not None else None

        self.opt_g = self._adam(self.net)
        self.sched_g = make_scheduler(cfg, self.opt_g)
        self.opt_d = self._adam(self.d_net) if self.d_net is not None else None
        self.sched_d = make_scheduler(cfg, self.opt_d) if self.opt_d is not None else None
        use_scaler = self.amp_dtype == torch.float16 and self.device.type == "cuda"
        self.scaler_g = torch.amp.GradScaler("cuda", init_scale=1024, enabled=use_scaler)
        self.scaler_d = torch.amp.GradScaler("cuda", init_scale=1024, enabled=use_scaler)

        self.step = 0
        self.best: dict[str, float] = {}
        self.identity: dict[str, float] = {}
        self.last_val: dict[str, float] = {}
        self._saved_step = -1
        self._mid_step = False
        self.resumed_from: int | None = None
        if self._resume_state is not None:
            self._load_checkpoint(checkpoint, self._resume_state)
            self._resume_state = None  # the tensors now live in the model and optimizers

    # ----------------------------------------------------------------- construction

    def _check_sizes(self) -> None:
        cfg = self.cfg
        if cfg.patch <= 0 or cfg.patch % 4:
            raise DeblurError(f"--patch must be a positive multiple of 4 (got {cfg.patch})")
        if cfg.val_crop < 0 or (cfg.val_crop and cfg.val_crop < 16):
            raise DeblurError("--val-crop must be 0 (whole image) or at least 16")
        if cfg.steps <= 0:
            raise DeblurError("--steps must be positive")
        if cfg.batch <= 0 or cfg.batch % self.dist.world:
            raise DeblurError(
                f"--batch {cfg.batch} must be a positive multiple of the {self.dist.world} "
                "process(es)"
            )
        if self.loss_spec.adv_weight and cfg.patch < min_patch():
            raise DeblurError(
                f"the ADV loss needs --patch of at least {min_patch()} px (256 is official)"
            )

    def _open_data(self) -> tuple[list[Source], list[Source]]:
        cfg = self.cfg
        if not cfg.data:
            raise InputError("no training data given")

        def open_all(specs: list[str]) -> list[Source]:
            return [
                open_source(
                    s,
                    cfg.blur_dir,
                    cfg.synth_options,
                    cfg.gamma_frames,
                    cfg.frames_crf,
                    tuple(cfg.frames_count),
                )
                for s in specs
            ]

        train = open_all(cfg.data)
        self.val_note = ""
        if cfg.val:
            val = open_all(cfg.val)
        else:
            val = []
            if cfg.val_count > 0:
                per_source = -(-cfg.val_count // len(train))
                counts = [min(per_source, int(len(s) * VAL_FRACTION)) for s in train]
                if sum(counts) < cfg.val_count:
                    cap = f"at most {VAL_FRACTION:.0%} of each source is held back"
                    self.val_note = (
                        f"validation: {sum(counts)} of --val-count {cfg.val_count} items ({cap})"
                        if sum(counts)
                        else f"no validation: too few training items to hold any back ({cap}); "
                        "give --val DATA"
                    )
                split = [s.split(n) if n else (s, None) for s, n in zip(train, counts, strict=True)]
                train = [t for t, _ in split]
                val = [v for _, v in split if v is not None and len(v)]
        size_identity(train, cfg.identity_fraction)
        return train, val

    def _wrap(self, module: nn.Module) -> nn.Module:
        if self.dist.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def _adam(self, module: nn.Module) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            module.parameters(), lr=self.cfg.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0
        )

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # ----------------------------------------------------------------- checkpoints

    def checkpoint_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "version": CHECKPOINT_VERSION,
            "step": self.step,
            "model_config": self.model_config.to_dict(),
            "train_config": _jsonable(self.cfg.to_dict()),
            "G": self.net.state_dict(),
            "opt_G": self.opt_g.state_dict(),
            "sched_G": self.sched_g.state_dict(),
            "scaler_G": self.scaler_g.state_dict(),
            "rng_cpu": torch.get_rng_state(),
            "best": dict(self.best),
            "identity": dict(self.identity),
            "last_val": dict(self.last_val),
        }
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        if self.d_net is not None:
            state.update(
                D=self.d_net.state_dict(),
                opt_D=self.opt_d.state_dict(),
                sched_D=self.sched_d.state_dict(),
                scaler_D=self.scaler_d.state_dict(),
            )
        return state

    def save_checkpoint(self) -> Path | None:
        """Rank 0 writes ``checkpoint.pt`` atomically (a crash mid-write keeps the old one)."""
        if not self.dist.main or self._saved_step == self.step:
            return None
        path = self.out / CHECKPOINT
        with atomic_path(path) as tmp:
            torch.save(self.checkpoint_state(), tmp)
        self._saved_step = self.step
        self.report("checkpoint", {"step": self.step, "path": str(path)})
        return path

    def _read_checkpoint(self, path: Path) -> dict[str, Any]:
        try:
            return torch.load(path, map_location=self.device, weights_only=True)
        except Exception as err:
            raise InputError(
                f"{path}: cannot read the checkpoint ({_one_line(err)}); delete it or use --restart"
            ) from None

    def _load_checkpoint(self, path: Path, state: dict[str, Any]) -> None:
        stored = ModelConfig.from_dict(state.get("model_config", {}))
        if stored != self.model_config:
            raise InputError(
                f"{path} is a run of {stored}, not {self.model_config}: use another --out "
                "or --restart"
            )
        if ("D" in state) != (self.d_net is not None):
            raise InputError(f"{path}: the ADV loss was switched on or off; use --restart")
        self.net.load_state_dict(state["G"])
        self.opt_g.load_state_dict(state["opt_G"])
        self.sched_g.load_state_dict(state["sched_G"])
        self.scaler_g.load_state_dict(state["scaler_G"])
        if self.d_net is not None:
            self.d_net.load_state_dict(state["D"])
            self.opt_d.load_state_dict(state["opt_D"])
            self.sched_d.load_state_dict(state["sched_D"])
            self.scaler_d.load_state_dict(state["scaler_D"])
        torch.set_rng_state(state["rng_cpu"].cpu())
        if "rng_cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"].cpu(), self.device)
        self.step = int(state["step"])
        self.best = dict(state.get("best", {}))
        self.identity = dict(state.get("identity", {}))
        self.last_val = dict(state.get("last_val", {}))
        self._saved_step = self.step
        self.resumed_from = self.step

    # ----------------------------------------------------------------- validation

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """PSNR/SSIM (official conventions, fp32) of the finest output on the val pairs."""
        if not len(self.val_set):
            return {}
        was_training = self.net.training
        self.net.eval()
        scores: list[tuple[float, float]] = []
        identity: list[tuple[float, float]] = []
        for i in range(len(self.val_set)):
            blur, sharp = self.val_set[i]
            x = blur[None].to(self.device).contiguous(memory_format=torch.channels_last)
            out = self.net(x)[0].cpu()
            scores.append((psnr(out, sharp), ssim(out, sharp)))
            if not self.identity:
                identity.append((psnr(blur, sharp), ssim(blur, sharp)))
        self.net.train(was_training)
        if identity:
            self.identity = {
                "psnr": _mean([p for p, _ in identity]),
                "ssim": _mean([s for _, s in identity]),
            }
        result = {"psnr": _mean([p for p, _ in scores]), "ssim": _mean([s for _, s in scores])}
        self.last_val = {**result, "step": float(self.step)}
        if not self.best or result["psnr"] > self.best.get("psnr", -math.inf):
            self.best = {**result, "step": float(self.step)}
            self._save_weights(self.out / "best.safetensors")
        return result

    # ----------------------------------------------------------------- weights out

    def _metadata(self) -> dict[str, Any]:
        cfg = self.cfg
        described = [s.describe() for s in self.train_sources]
        metrics: dict[str, Any] = {}
        if self.best:
            metrics["val"] = {
                "psnr": round(self.best["psnr"], 4),
                "ssim": round(self.best["ssim"], 5),
                "step": int(self.best["step"]),
            }
        if self.last_val.get("step", -1) not in (-1, self.best.get("step")):
            metrics["val_last"] = {
                "psnr": round(self.last_val["psnr"], 4),
                "ssim": round(self.last_val["ssim"], 5),
                "step": int(self.last_val["step"]),
            }
        if self.identity:
            metrics["val_identity"] = {
                "psnr": round(self.identity["psnr"], 4),
                "ssim": round(self.identity["ssim"], 5),
            }
        if metrics:
            metrics["val_pairs"] = len(self.val_set)
            metrics["val_crop"] = cfg.val_crop
            metrics["conventions"] = "clamp+round, range 255, SSIM gaussian 11x11 (official)"
        return {
            "source": "deblur train",
            "training_data": "; ".join(described),
            "steps": self.step,
            "metrics": metrics,
            "training": {
                "loss": str(self.loss_spec),
                "batch": cfg.batch,
                "patch": cfg.patch,
                "lr": cfg.lr,
                "schedule": cfg.schedule,
                "amp": cfg.amp,
                "seed": cfg.seed,
                "init": cfg.init,
                "augment": cfg.augment.to_dict(),
                "processes": self.dist.world,
            },
        }

    def _save_weights(self, path: Path) -> Path | None:
        if not self.dist.main:
            return None
        return save_weights(path, self.net.state_dict(), self.model_config, **self._metadata())

    def export(self, target: str | os.PathLike) -> Path | None:
        """Best-validated weights (else the last) as a safetensors file with metadata."""
        if not self.dist.main:
            return None
        target = Path(target)
        if self.cfg.export_best and self.best and (self.out / "best.safetensors").is_file():
            data = (self.out / "best.safetensors").read_bytes()
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
            return target
        return self._save_weights(target)

    # ----------------------------------------------------------------- the loop

    def train_step(self, blur: torch.Tensor, sharp: torch.Tensor) -> dict[str, torch.Tensor]:
        """One optimisation step of G (and D first, as the official ``Adversarial`` loss)."""
        spec = self.loss_spec
        blur = blur.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        sharp = sharp.to(self.device, non_blocking=True)
        with self._autocast():
            outputs = self.g(blur)
        content, terms = multiscale_content_loss(outputs, sharp, spec.content)
        total = spec.content_weight * content
        stats = {"loss": total, **{f"loss_s{i}": t for i, t in enumerate(terms)}}
        if self.d is not None:
            self.opt_d.zero_grad(set_to_none=True)
            with self._autocast():
                logits = self.d(torch.cat([outputs[0].detach(), sharp]))
            fake, real = logits.chunk(2)
            loss_d = discriminator_loss(fake, real)
            self.scaler_d.scale(loss_d).backward()
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            with self._autocast():
                adv = generator_adv_loss(self.d(outputs[0]))
            total = total + spec.adv_weight * adv
            stats.update(loss=total, adv_g=adv, loss_d=loss_d)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(total).backward()
        if self.cfg.clip_grad > 0:
            self.scaler_g.unscale_(self.opt_g)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.cfg.clip_grad)
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.sched_g.step()
        if self.sched_d is not None:
            self.sched_d.step()
        return {k: v.detach() for k, v in stats.items()}

    def _loader(self) -> DataLoader:
        per_rank = self.cfg.batch // self.dist.world
        sampler = StepBatches(self.step, self.cfg.steps, per_rank, self.dist.rank, self.dist.world)
        workers = max(0, self.cfg.workers)
        return DataLoader(
            self.train_set,
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None,
            worker_init_fn=_single_threaded_worker,
        )

    def _stop_everywhere(self) -> bool:
        """All ranks must stop at the same step, or the others wait forever in all-reduce."""
        if self.dist.world == 1:
            return self.stop.requested
        flag = torch.tensor([1.0 if self.stop.requested else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def _reduce_stats(self, sums: dict[str, torch.Tensor], count: int) -> dict[str, float]:
        keys = sorted(sums)
        vec = torch.stack([sums[k].float() for k in keys]) / max(count, 1)
        if self.dist.world > 1:
            dist.all_reduce(vec)
            vec /= self.dist.world
        return dict(zip(keys, vec.tolist(), strict=True))

    def run(self) -> TrainResult:
        """Train to ``cfg.steps``; raise KeyboardInterrupt after checkpointing on a stop."""
        cfg = self.cfg
        if self.dist.main:
            try:
                self.out.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise OutputError(f"cannot create {self.out}: {err.strerror}") from None
        n_scales = self.model_config.n_scales
        columns = ["step", "lr", "loss"] + [f"loss_s{i}" for i in range(n_scales)]
        columns += ["adv_g", "loss_d", "val_psnr", "val_ssim", "identity_psnr"]
        columns += ["identity_ssim", "steps_per_s", "data_s", "data_share", "elapsed_s"]
        log = CsvLog(self.out / "log.csv", columns, self.step) if self.dist.main else None
        start_step = self.step
        self.report(
            "start",
            {
                "start": start_step,
                "total": cfg.steps,
                "resumed": self.resumed_from is not None,
                "device": str(self.device),
                "world": self.dist.world,
                "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "fp32",
                "train_items": len(self.train_set),
                "val_items": len(self.val_set),
                "config": self.model_config,
                "sources": [s.describe() for s in self.train_sources],
                "chosen": dict(self.chosen),
                "batch": cfg.batch,
                "patch": cfg.patch,
                "val_note": self.val_note,
            },
        )
        sums: dict[str, torch.Tensor] = {}
        count = 0
        train_time = 0.0
        # Time blocked on the loader: if it is a large share, synthesis (not the network)
        # sets the pace; more --workers or a pair bank (deblur synth stills) is the cure.
        data_time = data_window = 0.0
        t_window = time.perf_counter()
        steps_window = 0
        rate = 0.0
        self.g.train()
        interrupted = False
        try:
            with self.stop:
                t_step = time.perf_counter()
                for blur, sharp in _guard(self._loader()):
                    waited = time.perf_counter() - t_step
                    data_time += waited
                    data_window += waited
                    self._mid_step = True
                    stats = self.train_step(blur, sharp)
                    self.step += 1
                    self._mid_step = False
                    count += 1
                    steps_window += 1
                    for k, v in stats.items():
                        sums[k] = sums.get(k, 0) + v
                    if self.on_step is not None:
                        self.on_step(self, self.step)
                    now = time.perf_counter()
                    train_time += now - t_step
                    at_end = self.step >= cfg.steps
                    if self.step % cfg.log_every == 0 or at_end:
                        means = self._reduce_stats(sums, count)
                        sums, count = {}, 0
                        window = max(now - t_window, 1e-9)
                        rate = steps_window / window
                        data_s = data_window / max(steps_window, 1)
                        data_share = data_window / window
                        t_window, steps_window, data_window = now, 0, 0.0
                        if not all(math.isfinite(v) for k, v in means.items() if k != "adv_g"):
                            if self.amp_dtype != torch.float16:
                                raise DeblurError(
                                    f"the loss became NaN/inf at step {self.step}: "
                                    "lower --lr or use --clip-grad"
                                )
                        row = {"step": self.step, "lr": self.opt_g.param_groups[0]["lr"], **means}
                        row.update(
                            steps_per_s=rate,
                            data_s=data_s,
                            data_share=data_share,
                            elapsed_s=train_time,
                        )
                        if log:
                            log.write(row)
                        self.report("log", row)
                    if self.dist.main and (self.step % cfg.val_every == 0 or at_end):
                        val = self.validate()
                        if val and log:
                            log.write(
                                {
                                    "step": self.step,
                                    "val_psnr": val["psnr"],
                                    "val_ssim": val["ssim"],
                                    "identity_psnr": self.identity.get("psnr"),
                                    "identity_ssim": self.identity.get("ssim"),
                                }
                            )
                        if val:
                            self.report("val", {"step": self.step, **val, "best": self.best})
                    if self.step % cfg.checkpoint_every == 0 or at_end:
                        self.save_checkpoint()
                    self.report("step", {"step": self.step, "rate": rate})
                    if self._stop_everywhere():
                        interrupted = True
                        break
                    t_step = time.perf_counter()
        except KeyboardInterrupt:
            interrupted = True  # second Ctrl-C mid-step: the last checkpoint stays valid
            raise
        finally:
            if interrupted and self._saved_step != self.step and self._consistent():
                self.save_checkpoint()
            if log:
                log.close()
                rows = read_log(self.out / "log.csv")
                if rows:
                    plot_curves(rows, self.out / "curves.png", n_scales)
        if interrupted:
            raise KeyboardInterrupt
        last = self._save_weights(self.out / "last.safetensors")
        exported = self.export(cfg.export) if cfg.export else None
        done = self.step - start_step
        result = TrainResult(
            step=self.step,
            start_step=start_step,
            steps_per_s=done / train_time if train_time > 0 else 0.0,
            best=dict(self.best),
            data_share=data_time / train_time if train_time > 0 else 0.0,
            out=self.out,
            last_weights=last,
            exported=exported,
        )
        self.report("end", asdict(result))
        if self.dist.world > 1:
            dist.barrier()
        return result

    def _consistent(self) -> bool:
        """Between steps the state is whole; a hard interrupt inside a step may not be."""
        return not self._mid_step


def _guard(loader: DataLoader):
    """Re-raise errors from DataLoader workers as one-line DeblurErrors."""
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except DeblurError as err:
            if "Traceback" in str(err):  # raised in a worker: keep only the message
                raise type(err)(_one_line(err)) from None
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:
            text = str(err)
            if "DeblurError" in text or "InputError" in text:
                raise InputError(_one_line(err)) from None
            raise
        yield batch


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.inf


def _jsonable(value: Any) -> Any:
    """Primitive types only, so ``torch.load(weights_only=True)`` accepts the checkpoint."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def finish_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
