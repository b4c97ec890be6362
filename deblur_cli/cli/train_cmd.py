"""``deblur train``: the paper's training recipe on one CPU, one GPU, or many via torchrun."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..model import ModelConfig
from ..train.augment import AugmentConfig
from ..train.trainer import AMP_MODES, SCHEDULES, TrainConfig, Trainer, finish_distributed
from .common import console


def parse_model_config(text: str | None) -> ModelConfig | None:
    if text is None:
        return None
    try:
        return ModelConfig.parse(text)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--config") from None


def parse_milestones(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a list of numbers", param_hint="--milestones"
        ) from None
    if any(v <= 0 for v in values):
        raise click.BadParameter("milestones must be positive", param_hint="--milestones")
    return values


def parse_gammas(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(not v > 0 for v in values):
        raise click.BadParameter(
            f"{text!r}: give one or more positive gammas, e.g. 2.2 or 1,2.2",
            param_hint="--frames-gamma",
        )
    return values


def parse_synth_options(items: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; VALUE is JSON when it parses (numbers, lists), else a string."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: use KEY=VALUE", param_hint="--synth-opt")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        options[key.strip()] = tuple(value) if isinstance(value, list) else value
    return options


class LiveView:
    """Rich progress for rank 0: step, loss per scale, validation PSNR, steps/s, ETA."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("[bold]train[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[loss]}"),
            TextColumn("{task.fields[val]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: Any = None

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event == "start":
            where = f"{info['device']} x{info['world']}" if info["world"] > 1 else info["device"]
            verb = "resuming at step" if info["resumed"] else "starting at step"
            console.print(
                f"[dim]{info['config'].summary()} on {where} ({info['amp']}); "
                f"{info['train_items']} training items, {info['val_items']} validation[/dim]"
            )
            for source in info["sources"]:
                console.print(f"[dim]  data: {source}[/dim]")
            console.print(f"{verb} {info['start']} of {info['total']}")
            self.progress.start()
            self.task = self.progress.add_task(
                "train",
                total=info["total"],
                completed=info["start"],
                loss="",
                val="",
                rate="",
            )
        elif event == "step" and self.task is not None:
            self.progress.update(self.task, completed=info["step"])
        elif event == "log" and self.task is not None:
            scales = [v for k, v in sorted(info.items()) if k.startswith("loss_s")]
            text = f"loss {info['loss']:.3f} (" + " ".join(f"{v:.2f}" for v in scales) + ")"
            if "adv_g" in info:
                text += f" adv {info['adv_g']:.3f} D {info['loss_d']:.3f}"
            self.progress.update(self.task, loss=text, rate=f"{info['steps_per_s']:.2f} it/s")
        elif event == "val" and self.task is not None:
            best = info["best"]
            self.progress.update(self.task, val=f"val {info['psnr']:.2f} dB {info['ssim']:.3f}")
            self.progress.console.print(
                f"step {info['step']}: validation {info['psnr']:.2f} dB / SSIM "
                f"{info['ssim']:.4f} (best {best['psnr']:.2f} dB at step {int(best['step'])})"
            )
        elif event == "checkpoint" and self.task is not None:
            self.progress.console.print(f"[dim]step {info['step']}: checkpoint saved[/dim]")

    def stop(self) -> None:
        self.progress.stop()


@click.command("train")
@click.argument("data", nargs=-1, required=True)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("runs/deblur"),
    show_default=True,
    help="Run folder: checkpoint.pt, best/last.safetensors, log.csv, curves.png. "
    "Running the same command again resumes from its checkpoint.",
)
@click.option(
    "--config",
    "model_config",
    default=None,
    metavar="NAME|S,B,F,K[,res]",
    help="Network: paper (3,19,64,5), light (3,7,32,3,res), or scales,blocks,feats,kernel; "
    "',res' adds each scale's blurry input to its output (global residual, not in the "
    "paper). Default: the --init file's, else paper.",
)
@click.option("--init", default=None, metavar="WEIGHTS", help="Fine-tune from these weights.")
@click.option("--steps", type=click.IntRange(1), default=131_400, show_default=True)
@click.option(
    "--batch",
    type=click.IntRange(1),
    default=16,
    show_default=True,
    help="Global batch, split across torchrun processes.",
)
@click.option("--patch", type=click.IntRange(4), default=256, show_default=True)
@click.option("--lr", type=float, default=1e-4, show_default=True, help="Adam learning rate.")
@click.option("--schedule", type=click.Choice(SCHEDULES), default="multistep", show_default=True)
@click.option(
    "--milestones",
    default="0.5,0.75,0.9",
    show_default=True,
    help="multistep: fractions of --steps (<= 1) or step numbers (> 1).",
)
@click.option("--lr-gamma", type=float, default=0.5, show_default=True, help="multistep factor.")
@click.option("--min-lr", type=float, default=0.0, show_default=True, help="cosine floor.")
@click.option("--clip-grad", type=float, default=0.0, show_default=True, help="0 = off.")
@click.option(
    "--loss",
    default="1*L1",
    show_default=True,
    help="Multi-scale content loss (L1 or MSE) plus optional adversarial term, e.g. 1*L1+0.1*ADV.",
)
@click.option(
    "--amp",
    type=click.Choice(AMP_MODES),
    default="off",
    show_default=True,
    help="Mixed precision: auto = bf16 on CPU, fp16 + GradScaler on CUDA.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, mps.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--workers", type=click.IntRange(0), default=2, show_default=True)
@click.option(
    "--blur-dir",
    type=click.Choice(["auto", "blur_gamma", "blur"]),
    default="auto",
    show_default=True,
    help="GOPRO scenes: which blurry folder (auto prefers blur_gamma, as official).",
)
@click.option(
    "--frames-gamma",
    default="2.2",
    show_default=True,
    metavar="G[,G...]",
    help="frames: camera gamma for averaging (2.2 = linear light, as GOPRO's blur_gamma; "
    "1 = code values, as GOPRO's blur). Several: each pair draws one, e.g. 1,2.2.",
)
@click.option(
    "--frames-crf",
    type=click.Path(path_type=Path),
    default=None,
    metavar="FILE",
    help="frames: measured inverse camera response instead of the linear-light gamma "
    "(.npy/.txt; e.g. REDS's gopro_hero6_inverse_crf.npy, OpenCV BGR layout understood); "
    "with --frames-gamma 1,2.2 each pair draws code values or the CRF.",
)
@click.option("--no-flip", is_flag=True, help="No horizontal/vertical flips.")
@click.option("--no-transpose", is_flag=True, help="No transposes (rot90).")
@click.option("--no-channel-shuffle", is_flag=True, help="No RGB permutation.")
@click.option("--saturation", type=click.FloatRange(0, 1), default=0.5, show_default=True)
@click.option("--noise", type=click.FloatRange(0), default=2.0, show_default=True)
@click.option("--no-augment", is_flag=True, help="Switch every augmentation off.")
@click.option(
    "--synth-opt",
    multiple=True,
    metavar="KEY=VALUE",
    help="Option for synthetic stills over the training mix (deblur_cli.synth.TRAIN_MIX), "
    "e.g. segments=3, highlights=8, crf=FILE, code_share=0.5; mix=none: plain options.",
)
@click.option(
    "--val",
    "val_data",
    multiple=True,
    help="Validation data (same forms as DATA). Default: hold back --val-count items.",
)
@click.option("--val-count", type=click.IntRange(0), default=8, show_default=True)
@click.option("--val-every", type=click.IntRange(1), default=1000, show_default=True)
@click.option(
    "--val-crop",
    type=click.IntRange(0),
    default=512,
    show_default=True,
    help="Central crop for validation; 0 = whole images.",
)
@click.option("--checkpoint-every", type=click.IntRange(1), default=1000, show_default=True)
@click.option("--log-every", type=click.IntRange(1), default=20, show_default=True)
@click.option(
    "--export",
    type=click.Path(path_type=Path),
    default=None,
    metavar="OUT.safetensors",
    help="At the end, write the best (else last) model here with metadata.",
)
@click.option(
    "--export-last",
    is_flag=True,
    help="Export the last weights even when validation picked a best step (for a noisy "
    "validation set, or a schedule whose end is the point).",
)
@click.option("--restart", is_flag=True, help="Ignore an existing checkpoint in --out.")
def train(
    data: tuple[str, ...],
    out: Path,
    model_config: str | None,
    init: str | None,
    steps: int,
    batch: int,
    patch: int,
    lr: float,
    schedule: str,
    milestones: str,
    lr_gamma: float,
    min_lr: float,
    clip_grad: float,
    loss: str,
    amp: str,
    device: str,
    seed: int,
    workers: int,
    blur_dir: str,
    frames_gamma: str,
    frames_crf: Path | None,
    no_flip: bool,
    no_transpose: bool,
    no_channel_shuffle: bool,
    saturation: float,
    noise: float,
    no_augment: bool,
    synth_opt: tuple[str, ...],
    val_data: tuple[str, ...],
    val_count: int,
    val_every: int,
    val_crop: int,
    checkpoint_every: int,
    log_every: int,
    export: Path | None,
    export_last: bool,
    restart: bool,
) -> None:
    """Train the multi-scale network (official DeepDeblur recipe by default).

    \b
    DATA is one or more folders, each optionally prefixed with its kind:
      gopro:DIR   GOPRO_Large split: DIR/<scene>/{blur_gamma,blur,sharp}/*.png
      pairs:DIR   DIR/blur/* and DIR/sharp/* matched by file name
      frames:DIR  high-frame-rate frames (DIR/*.png or DIR/<seq>/*.png), averaged
                  7-13 at a time in linear light (GOPRO recipe, --frames-gamma) on the fly
      stills:DIR  sharp photos, blurred with synthetic camera shake on the fly
    Without a prefix the layout is guessed (a flat image folder counts as stills).

    \b
    Defaults follow the official code: loss 1*L1 summed over 3 scales, Adam 1e-4,
    batch 16, 256px patches, flips/transposes/RGB shuffle/saturation/noise, lr halved
    at 50/75/90% of the steps. Ctrl-C saves a checkpoint; run the same command to resume.

    \b
    Examples:
      deblur train gopro:GOPRO_Large/train --val gopro:GOPRO_Large/test --val-count 0 \\
          --out runs/gopro --amp auto --export gopro.safetensors
      deblur train stills:photos/ frames:GOPR0477/ --config light --steps 20000
      torchrun --nproc_per_node 4 -m deblur_cli train gopro:GOPRO_Large/train --batch 16
    """
    aug = (
        AugmentConfig.none()
        if no_augment
        else AugmentConfig(
            flip=not no_flip,
            transpose=not no_transpose,
            channel_shuffle=not no_channel_shuffle,
            saturation=saturation,
            noise=noise,
        )
    )
    cfg = TrainConfig(
        data=list(data),
        out=str(out),
        model=parse_model_config(model_config),
        init=init,
        steps=steps,
        batch=batch,
        patch=patch,
        lr=lr,
        schedule=schedule,
        milestones=parse_milestones(milestones),
        gamma=lr_gamma,
        min_lr=min_lr,
        clip_grad=clip_grad,
        loss=loss,
        amp=amp,
        device=device,
        seed=seed,
        workers=workers,
        augment=aug,
        blur_dir=blur_dir,
        gamma_frames=parse_gammas(frames_gamma),
        frames_crf=str(frames_crf) if frames_crf else None,
        synth_options=parse_synth_options(synth_opt),
        val=list(val_data),
        val_count=val_count,
        val_every=val_every,
        val_crop=val_crop,
        checkpoint_every=checkpoint_every,
        log_every=log_every,
        export=str(export) if export else None,
        export_best=not export_last,
        resume=not restart,
    )
    view: LiveView | None = None
    try:
        with console.status("preparing data and model…"):
            trainer = Trainer(cfg)
        if trainer.dist.main:
            view = LiveView()
            trainer.report = view
        try:
            result = trainer.run()
        finally:
            if view:
                view.stop()
        if trainer.dist.main:
            _summary(trainer, result)
    finally:
        finish_distributed()


def _summary(trainer: Trainer, result: Any) -> None:
    if result.step == result.start_step:
        console.print(f"already trained to step {result.step}; nothing to do")
    else:
        done = result.step - result.start_step
        console.print(
            f"trained steps {result.start_step}→{result.step} ({done} steps, "
            f"{result.steps_per_s:.2f} steps/s)"
        )
    if result.best:
        ident = trainer.identity
        base = f" (blurry input {ident['psnr']:.2f} dB / {ident['ssim']:.4f})" if ident else ""
        console.print(
            f"best validation {result.best['psnr']:.2f} dB / SSIM {result.best['ssim']:.4f} "
            f"at step {int(result.best['step'])}{base}"
        )
    console.print(f"run folder: [bold]{result.out}[/bold] (log.csv, curves.png, checkpoint.pt)")
    if result.exported:
        console.print(f"exported → [bold]{result.exported}[/bold]")


COMMANDS = [train]
