"""``deblur train``: the paper's training recipe on one CPU, one GPU, or many via torchrun."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.table import Column
from rich.text import Text

from .common import console, parse_range

if TYPE_CHECKING:
    from ..model import ModelConfig
    from ..train.trainer import Trainer

# The same names as deblur_cli.train.trainer's (tests/test_cli.py checks they agree); kept
# here so that parsing the options does not import torch.
SCHEDULES = ("multistep", "cosine", "constant")
AMP_MODES = ("off", "auto", "bf16", "fp16")


def parse_model_config(text: str | None) -> ModelConfig | None:
    if text is None:
        return None
    from ..model import ModelConfig

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


def parse_teacher_on(text: str) -> tuple[str, ...]:
    from ..errors import InputError
    from ..train.distil import parse_kinds

    try:
        return parse_kinds(text)
    except InputError as err:
        message = str(err).removeprefix("--teacher-on: ")
        raise click.BadParameter(message, param_hint="--teacher-on") from None


def format_duration(seconds: float) -> str:
    """3 d 4 h, 2 h 05 min, 7 min 30 s: the units a person plans with."""
    seconds = max(0, round(seconds))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class EtaColumn(ProgressColumn):
    """ETA from the run's own pace (wall time per step since this process started), so it
    reads a time after the first step even when one step takes minutes (rich's estimate
    needs two updates within 30 s and shows -:--:-- on a slow CPU)."""

    def render(self, task: Task) -> Text:
        eta = task.fields.get("eta")
        return Text("ETA " + (_clock(eta) if eta is not None else "…"), style="progress.remaining")


class LiveView:
    """Progress for rank 0: a bar on a terminal (fitting 80 columns), plain lines in a pipe.

    Also says which defaults were chosen for the user, and after the first steps how long
    the whole run will take.
    """

    ESTIMATE_AFTER_STEPS = 20
    ESTIMATE_AFTER_S = 60.0
    PIPE_EVERY_S = 30.0

    def __init__(self) -> None:
        self.live = console.is_terminal
        nowrap = Column(no_wrap=True)
        self.progress = Progress(
            TextColumn("[bold]train[/bold]", table_column=nowrap),
            BarColumn(bar_width=None),  # the bar, not the numbers, gives way on a narrow terminal
            TextColumn("{task.completed}/{task.total}", table_column=nowrap),
            TextColumn("{task.fields[loss]}", table_column=nowrap),
            TextColumn("{task.fields[val]}", table_column=nowrap),
            TextColumn("{task.fields[rate]}", table_column=nowrap),
            EtaColumn(table_column=nowrap),
            console=console,
            expand=True,
            disable=not self.live,
        )
        self.task: Any = None
        self.total = self.start_step = 0
        self.step = 0
        self.first_step_at: float | None = None
        self.estimated = False
        self.last_line_at = 0.0
        self.text = {"loss": "", "val": "", "rate": ""}

    def __call__(self, event: str, info: dict[str, Any]) -> None:
        if event == "start":
            self._start(info)
        elif self.task is None:
            return
        elif event == "step":
            self._step(info["step"])
        elif event == "log":
            self._log(info)
        elif event == "val":
            best = info["best"]
            self.text["val"] = f"val {info['psnr']:.2f} dB"
            self.progress.update(self.task, val=self.text["val"])
            self._print(
                f"step {info['step']}: validation {info['psnr']:.2f} dB / SSIM "
                f"{info['ssim']:.4f} (best {best['psnr']:.2f} dB at step {int(best['step'])})"
            )
        elif event == "checkpoint":
            self._print(f"[dim]step {info['step']}: checkpoint saved[/dim]")

    def _start(self, info: dict[str, Any]) -> None:
        where = f"{info['device']} x{info['world']}" if info["world"] > 1 else info["device"]
        self._print(
            f"[dim]{info['config'].summary()} on {where} ({info['amp']}); batch "
            f"{info['batch']}, {info['patch']}px patches; {info['train_items']} training "
            f"items, {info['val_items']} validation[/dim]"
        )
        chosen = describe_chosen(info.get("chosen", {}), info["device"], info["resumed"])
        if chosen:
            self._print(chosen)
        if info.get("val_note"):
            self._print(f"[yellow]{info['val_note']}[/yellow]")
        for source in info["sources"]:
            self._print(f"[dim]  data: {source}[/dim]")
        if info.get("teacher"):
            self._print(f"[dim]  teacher: {info['teacher']} labels the taught samples[/dim]")
        verb = "resuming at step" if info["resumed"] else "starting at step"
        self._print(f"{verb} {info['start']} of {info['total']:,}")
        self.total, self.start_step, self.step = info["total"], info["start"], info["start"]
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=info["total"], completed=info["start"], eta=None, **self.text
        )

    def _pace(self) -> float | None:
        """Seconds per step over this process's steps after the first (which pays warm-up)."""
        done = self.step - self.start_step
        if self.first_step_at is None or done < 2:
            return None
        return (time.monotonic() - self.first_step_at) / (done - 1)

    def _step(self, step: int) -> None:
        self.step = step
        if self.first_step_at is None:
            self.first_step_at = time.monotonic()
        pace = self._pace()
        eta = pace * (self.total - step) if pace is not None else None
        self.progress.update(self.task, completed=step, eta=eta)
        self._estimate(force=False)

    def _estimate(self, force: bool) -> None:
        """Once, after the first log interval (or a minute): how long the whole run takes."""
        pace = self._pace()
        if self.estimated or pace is None or self.step >= self.total:
            return
        assert self.first_step_at is not None
        done = self.step - self.start_step
        elapsed = time.monotonic() - self.first_step_at
        if not (force or done >= self.ESTIMATE_AFTER_STEPS or elapsed >= self.ESTIMATE_AFTER_S):
            return
        self.estimated = True
        whole = pace * (self.total - self.start_step)
        until = datetime.now() + timedelta(seconds=pace * (self.total - self.step))
        self._print(
            f"estimate: {self.total - self.start_step:,} steps at {pace:.2f} s/step "
            f"≈ {format_duration(whole)} in all, done around {until:%a %H:%M} "
            "(validation adds a little)"
        )

    def _log(self, info: dict[str, Any]) -> None:
        self._step(info["step"])  # the trainer logs a step before it reports it done
        scales = [v for k, v in sorted(info.items()) if k.startswith("loss_s")]
        loss = f"loss {info['loss']:.3f}"
        if console.width >= 120:  # the per-scale losses only where they fit
            loss += " (" + " ".join(f"{v:.2f}" for v in scales) + ")"
        if "adv_g" in info and console.width >= 120:
            loss += f" adv {info['adv_g']:.3f} D {info['loss_d']:.3f}"
        rate = info["steps_per_s"]
        pace = f"{rate:.2f} it/s" if rate >= 0.1 else f"{1 / rate:.1f} s/it" if rate else ""
        if pace and info.get("data_share", 0) >= 0.05:  # the loader, not the network, waits
            pace += f" ({100 * info['data_share']:.0f}% waiting for data)"
        if pace and info.get("teacher_share_time", 0) >= 0.05:
            pace += f" ({100 * info['teacher_share_time']:.0f}% teacher)"
        self.text.update(loss=loss, rate=pace)
        self.progress.update(self.task, loss=self.text["loss"], rate=self.text["rate"])
        self._estimate(force=True)
        now = time.monotonic()
        if not self.live and (
            now - self.last_line_at >= self.PIPE_EVERY_S or info["step"] >= self.total
        ):
            self.last_line_at = now
            pace = self._pace()
            eta = f"ETA {_clock(pace * (self.total - info['step']))}" if pace else "ETA …"
            parts = [f"step {info['step']}/{self.total}", loss, self.text["val"], self.text["rate"]]
            self._print("  ".join(p for p in parts + [eta] if p))

    def _print(self, markup: str) -> None:
        """One message, never cut or folded mid-word by rich (a pipe keeps it one line)."""
        target = self.progress.console if self.live else console
        target.print(markup, soft_wrap=not self.live, overflow="fold" if self.live else None)

    def stop(self) -> None:
        self.progress.stop()


def describe_chosen(chosen: dict[str, Any], device: str, resumed: bool) -> str:
    """One line naming the defaults picked for the user, or '' when they gave everything."""
    if not chosen:
        return ""
    parts = []
    if "model" in chosen:
        from ..model import CONFIGS

        config = chosen["model"]
        name = next((n for n, c in CONFIGS.items() if c == config), None)
        parts.append(f"--config {name} ({config.summary()})" if name else f"--config {config}")
    for name in ("steps", "batch", "patch"):
        if name in chosen:
            parts.append(f"--{name} {chosen[name]:,}")
    if resumed:
        return "from the run being resumed: " + ", ".join(parts)
    why = (
        "the paper's recipe on CUDA"
        if device.startswith("cuda")
        else "light defaults for a CPU (the paper's network would take weeks here: give "
        "--config paper --steps 131400 --batch 16 --patch 256 to insist)"
    )
    return f"chose {', '.join(parts)}: {why}"


def source_options(command):
    """The options that shape what DATA yields: shared by 'deblur train' and 'deblur synth
    teach', so a bank is built from exactly the data a run would see."""
    for option in reversed(_SOURCE_OPTIONS):
        command = option(command)
    return command


_SOURCE_OPTIONS = [
    click.option(
        "--blur-dir",
        type=click.Choice(["auto", "blur_gamma", "blur"]),
        default="auto",
        show_default=True,
        help="GOPRO scenes: which blurry folder (auto prefers blur_gamma, as official).",
    ),
    click.option(
        "--frames-gamma",
        default="2.2",
        show_default=True,
        metavar="G[,G...]",
        help="frames: camera gamma for averaging (2.2 = linear light, as GOPRO's blur_gamma; "
        "1 = code values, as GOPRO's blur). Several: each pair draws one, e.g. 1,2.2.",
    ),
    click.option(
        "--frames-crf",
        type=click.Path(path_type=Path),
        default=None,
        metavar="FILE",
        help="frames: measured inverse camera response instead of the linear-light gamma "
        "(.npy/.txt; e.g. REDS's gopro_hero6_inverse_crf.npy, OpenCV BGR layout understood); "
        "with --frames-gamma 1,2.2 each pair draws code values or the CRF.",
    ),
    click.option(
        "--frames-count",
        default="7-13",
        show_default=True,
        callback=parse_range(int, minimum=2),
        metavar="A-B",
        help="frames: how many consecutive frames each blurry image averages, drawn in A-B "
        "(GOPRO: 7-13 at 240 fps). More frames = a longer exposure: the larger blur of faster "
        "motion than the footage holds.",
    ),
    click.option(
        "--synth-opt",
        multiple=True,
        metavar="KEY=VALUE",
        help="Option for synthetic stills over the training mix (deblur_cli.synth.TRAIN_MIX), "
        "e.g. segments=3, highlights=8, crf=FILE, code_share=0.5; mix=none: plain options.",
    ),
]


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
    "paper). Default: the --init file's (or the resumed run's), else paper on CUDA and "
    "light elsewhere.",
)
@click.option("--init", default=None, metavar="WEIGHTS", help="Fine-tune from these weights.")
@click.option(
    "--steps",
    type=click.IntRange(1),
    default=None,
    help="Optimizer steps in all. Default: 131,400 on CUDA (the paper), 7,000 on CPU.",
)
@click.option(
    "--batch",
    type=click.IntRange(1),
    default=None,
    help="Global batch, split across torchrun processes. Default: 16 on CUDA (the paper), "
    "8 on CPU.",
)
@click.option(
    "--patch",
    type=click.IntRange(4),
    default=None,
    help="Side of the square training crops in pixels. Default: 256 on CUDA (the paper), "
    "128 on CPU.",
)
@click.option("--lr", type=float, default=1e-4, show_default=True, help="Adam learning rate.")
@click.option(
    "--schedule",
    type=click.Choice(SCHEDULES),
    default="multistep",
    show_default=True,
    help="Learning-rate schedule: multistep (--milestones, --lr-gamma) or cosine (--min-lr).",
)
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
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of weights, crops and shuffling."
)
@click.option(
    "--workers",
    type=click.IntRange(0),
    default=2,
    show_default=True,
    help="Data-loading processes (0 = in the training process).",
)
@source_options
@click.option("--no-flip", is_flag=True, help="No horizontal/vertical flips.")
@click.option("--no-transpose", is_flag=True, help="No transposes (rot90).")
@click.option("--no-channel-shuffle", is_flag=True, help="No RGB permutation.")
@click.option(
    "--saturation",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Augmentation: saturation scaled by a factor drawn from 1 ± this (0 = off).",
)
@click.option(
    "--noise",
    type=click.FloatRange(0),
    default=2.0,
    show_default=True,
    help="Augmentation: Gaussian noise on the blurry input, std drawn as N(0,1) x this "
    "grey levels (0 = off).",
)
@click.option("--no-augment", is_flag=True, help="Switch every augmentation off.")
@click.option(
    "--teacher",
    default=None,
    metavar="SPEC",
    help="Distil: a network labels the training inputs (a DMPHN .safetensors, or any "
    "--weights SPEC). Needed for blurry:DIR. On a CPU build a bank first (deblur synth "
    "teach): the teacher costs more than the student's step.",
)
@click.option(
    "--teacher-share",
    type=click.FloatRange(0, 1),
    default=1.0,
    show_default=True,
    help="Share of samples with ground truth that train on the teacher's output instead "
    "(kinds in --teacher-on, and bank:DIR crops).",
)
@click.option(
    "--teacher-on",
    default="frames,stills,gopro,pairs",
    show_default=True,
    metavar="KINDS",
    help="With --teacher: the kinds whose truth it may replace (identity too, if named).",
)
@click.option(
    "--mixup",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="With --teacher: share of taught inputs blended with another; the teacher labels "
    "the blend.",
)
@click.option(
    "--val",
    "val_data",
    multiple=True,
    help="Validation data (same forms as DATA). Default: hold back --val-count items.",
)
@click.option(
    "--identity-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Share of samples drawn from identity:DIR (sharp in, sharp out); 0 = one per photo.",
)
@click.option(
    "--val-count",
    type=click.IntRange(0),
    default=8,
    show_default=True,
    help="Without --val: training items held back for validation, never more than 10% "
    "of a source (a small dataset keeps its items for training).",
)
@click.option(
    "--val-every",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Validate every N steps (and at the end).",
)
@click.option(
    "--val-crop",
    type=click.IntRange(0),
    default=512,
    show_default=True,
    help="Central crop for validation; 0 = whole images.",
)
@click.option(
    "--checkpoint-every",
    type=click.IntRange(1),
    default=1000,
    show_default=True,
    help="Save checkpoint.pt (what a re-run resumes from) every N steps.",
)
@click.option(
    "--log-every",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    help="Write losses to log.csv (and the progress line) every N steps.",
)
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
    steps: int | None,
    batch: int | None,
    patch: int | None,
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
    frames_count: tuple[int, int],
    no_flip: bool,
    no_transpose: bool,
    no_channel_shuffle: bool,
    saturation: float,
    noise: float,
    no_augment: bool,
    synth_opt: tuple[str, ...],
    identity_fraction: float,
    teacher: str | None,
    teacher_share: float,
    teacher_on: str,
    mixup: float,
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
      frames:DIR  high-frame-rate frames (DIR/*.png or DIR/<seq>/*.png),
                  averaged 7-13 at a time in linear light on the fly (GOPRO
                  recipe, --frames-gamma)
      stills:DIR  sharp photos, blurred with synthetic camera shake on the fly
      identity:DIR  sharp photos as their own targets (input: mild noise/JPEG),
                  so the network leaves sharp content alone; see
                  --identity-fraction
      blurry:DIR  real blurry photos without ground truth: --teacher labels them
      bank:DIR    crops restored by a teacher ('deblur synth teach'); see
                  --teacher-share
    Without a prefix the layout is guessed (a flat image folder counts as stills).

    \b
    Defaults follow the official code: loss 1*L1 summed over 3 scales, Adam
    1e-4, flips/transposes/RGB shuffle/saturation/noise, lr halved at 50/75/90%
    of the steps; on CUDA also the paper network, batch 16, 256px patches,
    131,400 steps. On a CPU, where that would take weeks, the light network,
    batch 8, 128px patches, 7,000 steps (what is chosen is printed, with the
    estimated time after the first steps). Ctrl-C saves a checkpoint; run the
    same command to resume.

    \b
    Examples:
      deblur train gopro:GOPRO_Large/train --val gopro:GOPRO_Large/test \\
          --val-count 0 --out runs/gopro --amp auto --export gopro.safetensors
      deblur train stills:photos/ frames:GOPR0477/ --config light --steps 20000
      torchrun --nproc_per_node 4 -m deblur_cli train \\
          gopro:GOPRO_Large/train --batch 16
    """
    from ..train.augment import AugmentConfig
    from ..train.trainer import TrainConfig, Trainer, finish_distributed

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
        frames_count=frames_count,
        synth_options=parse_synth_options(synth_opt),
        identity_fraction=identity_fraction,
        teacher=teacher,
        teacher_share=teacher_share,
        teacher_on=parse_teacher_on(teacher_on),
        mixup=mixup,
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
            f"{result.steps_per_s:.2f} steps/s, {100 * result.data_share:.0f}% waiting for data)"
        )
    if result.best:
        ident = trainer.identity
        base = f" (blurry input {ident['psnr']:.2f} dB / {ident['ssim']:.4f})" if ident else ""
        console.print(
            f"best validation {result.best['psnr']:.2f} dB / SSIM {result.best['ssim']:.4f} "
            f"at step {int(result.best['step'])}{base}",
            soft_wrap=True,
        )
    console.print(
        f"run folder: [bold]{result.out}[/bold] (log.csv, curves.png, checkpoint.pt)",
        soft_wrap=True,
    )
    if result.exported:
        console.print(f"exported → [bold]{result.exported}[/bold]", soft_wrap=True)


COMMANDS = [train]
