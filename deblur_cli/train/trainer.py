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
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ..atomic import atomic_path
from ..errors import DeblurError, InputError, OutputError
from ..model import ModelConfig, MultiScaleDeblurNet, build_model
from ..runtime import tune_allocator
from ..weights import load_weight_file, save_weights
from .config import (
    AMP_MODES,
    CPU_DEFAULTS,
    PAPER_DEFAULTS,
    SCHEDULES,
    VAL_FRACTION,
    TrainConfig,
    TrainResult,
    device_defaults,
    make_scheduler,
    resolve_amp,
    resolve_defaults,
)
from .curves import CsvLog, plot_curves, read_log
from .data import Source, StepBatches, TrainSet, ValSet, guard_loader, one_line, open_source
from .discriminator import Discriminator, min_patch
from .distil import Teaching, check_truth, distilled_from
from .distributed import (
    Dist,
    StopFlag,
    finish_distributed,
    init_distributed,
    single_threaded_worker,
)
from .identity import size_identity
from .losses import (
    discriminator_loss,
    generator_adv_loss,
    multiscale_content_loss,
    parse_loss,
)
from .metrics import psnr, ssim

# Re-exported: scripts and tests import the recipe from here, where the loop is.
__all__ = [
    "AMP_MODES",
    "CPU_DEFAULTS",
    "PAPER_DEFAULTS",
    "SCHEDULES",
    "Dist",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "device_defaults",
    "finish_distributed",
    "make_scheduler",
    "resolve_amp",
    "resolve_defaults",
]

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_VERSION = 1


class _AllScales(nn.Module):
    """DDP only syncs through ``forward``; the loss needs every scale, so forward = all."""

    def __init__(self, net: MultiScaleDeblurNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.forward_all(x)


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
        self.stop = StopFlag()
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
        self.teaching = self._teaching()
        check_truth(self.train_sources, self.teaching)
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
        self.teacher_time = 0.0
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
                    cfg.teacher_share,
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

    def _teaching(self) -> Teaching | None:
        cfg = self.cfg
        if not 0.0 <= cfg.teacher_share <= 1.0 or not 0.0 <= cfg.mixup <= 1.0:
            raise DeblurError("--teacher-share and --mixup must be in [0, 1]")
        if not cfg.teacher:
            if cfg.mixup:
                raise DeblurError("--mixup needs --teacher: only a teacher can label a blend")
            return None
        from .teacher import load_teacher

        teacher = load_teacher(cfg.teacher, self.device)
        return Teaching(teacher, cfg.teacher_share, tuple(cfg.teacher_on), cfg.mixup, cfg.seed)

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
                f"{path}: cannot read the checkpoint ({one_line(err)}); delete it or use --restart"
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
        training = {
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
        }
        if self.teaching is not None:
            training.update(
                teacher_share=cfg.teacher_share,
                teacher_on=list(cfg.teacher_on),
                mixup=cfg.mixup,
            )
        return {
            "source": "deblur train",
            "training_data": "; ".join(described),
            "steps": self.step,
            "metrics": metrics,
            "training": training,
            # Whose outputs were targets: the teacher's provenance, licence note included.
            "distilled_from": distilled_from(self.train_sources, self.teaching) or None,
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
        blur = blur.to(self.device, non_blocking=True)
        sharp = sharp.to(self.device, non_blocking=True)
        if self.teaching is not None:
            t0 = time.perf_counter()
            mask = self.teaching.mask(self.train_set, self._sampler().ids(self.step))
            blur, sharp = self.teaching.label(blur, sharp, mask, self.step)
            self.teacher_time += time.perf_counter() - t0
        blur = blur.contiguous(memory_format=torch.channels_last)
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

    def _sampler(self) -> StepBatches:
        """Which sample ids each step takes: the loader iterates it, the teacher asks it."""
        per_rank = self.cfg.batch // self.dist.world
        return StepBatches(self.step, self.cfg.steps, per_rank, self.dist.rank, self.dist.world)

    def _loader(self) -> DataLoader:
        sampler = self._sampler()
        workers = max(0, self.cfg.workers)
        return DataLoader(
            self.train_set,
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None,
            worker_init_fn=single_threaded_worker,
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
        columns += ["teacher_share_time"]
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
                "teacher": self.teaching.teacher.name if self.teaching else None,
            },
        )
        sums: dict[str, torch.Tensor] = {}
        count = 0
        train_time = 0.0
        # Time blocked on the loader: if it is a large share, synthesis (not the network)
        # sets the pace; more --workers or a pair bank (deblur synth stills) is the cure.
        data_time = data_window = 0.0
        # Time the online teacher takes inside the steps: large = build a bank instead.
        teacher_window = self.teacher_time = 0.0
        t_window = time.perf_counter()
        steps_window = 0
        rate = 0.0
        self.g.train()
        interrupted = False
        try:
            with self.stop:
                t_step = time.perf_counter()
                for blur, sharp in guard_loader(self._loader()):
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
                        teacher_share_time = (self.teacher_time - teacher_window) / window
                        teacher_window = self.teacher_time
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
                        if self.teaching is not None:
                            row["teacher_share_time"] = teacher_share_time
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
