"""``deblur video``: a clip in, a sharper clip out that plays exactly like the original."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from ..errors import DeblurError, OutputError
from .common import (
    console,
    describe,
    frame_batch_option,
    model_options,
    open_model,
    overwrite_option,
)

if TYPE_CHECKING:
    import numpy as np

# deblur_cli.video.SEGMENT_SECONDS and SEGMENT_WORK_SECONDS (tests/test_cli.py checks they
# agree): the video module imports PyAV, which --help must not pay for.
SEGMENT_SECONDS = 2.0
SEGMENT_WORK_SECONDS = 15.0


def deblur_array(model, rgb: np.ndarray) -> np.ndarray:
    """The engine's deblur_array, imported on first use (the engine imports torch)."""
    from ..engine import deblur_array as run

    return run(model, rgb)


def deblur_frames(model, frames: list[np.ndarray]) -> list[np.ndarray]:
    """The engine's deblur_frames, imported on first use."""
    from ..engine import deblur_frames as run

    return run(model, frames)


class Interrupted(DeblurError):
    """Ctrl-C: one line saying what was kept and how to go on."""

    exit_code = 130


class TimeType(click.ParamType):
    """A time typed as seconds, MM:SS or H:MM:SS; anything else is a usage error (exit 2)."""

    name = "TIME"

    def convert(self, value, param, ctx) -> float:
        from ..video import parse_time  # PyAV: paid only when a time is given

        try:
            return parse_time(value)
        except DeblurError as err:
            self.fail(str(err), param, ctx)


class FpsColumn(ProgressColumn):
    """Frames per second over rich's recent window (task.speed)."""

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text(f"{speed:.2f} fps" if speed else "– fps", style="progress.data.speed")


@click.command("video")
@click.argument("input", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Output video. Default: NAME_deblurred.EXT beside the input.",
)
@model_options
@click.option("--codec", default="libx264", show_default=True, help="Video encoder.")
@click.option(
    "--crf",
    type=click.IntRange(0, 63),
    default=18,
    show_default=True,
    help="Constant quality (x264/x265/VPx/AV1); lower = better and bigger.",
)
@click.option(
    "--preset",
    default="auto",
    show_default=True,
    help="x264/x265 speed preset (ultrafast … veryslow). auto: on the CPU, where the encoder "
    "shares the network's cores, veryfast with one sub-pixel pass (subme=1; 4x less encoder "
    "CPU than medium, about the same size and quality at the same --crf); medium on a GPU.",
)
@click.option("--pix-fmt", default="yuv420p", show_default=True, help="Output pixel format.")
@frame_batch_option
@click.option("--start", type=TimeType(), default=None, help="Start at TIME (s, MM:SS, H:MM:SS).")
@click.option("--end", type=TimeType(), default=None, help="Stop before TIME.")
@click.option(
    "--frames-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write deblurred PNG frames (upright) and timestamps.txt here instead of a video.",
)
@overwrite_option(
    "Replace an existing output, and discard the finished segments (or frames) an earlier "
    "run made with other settings. Without it an existing output is never touched.",
    "--force",
    "--restart",
)
@click.option(
    "--resume",
    is_flag=True,
    hidden=True,
    help="Accepted for old scripts; running the same command again always resumes.",
)
@click.option(
    "--segment",
    type=click.FloatRange(0.01),
    default=SEGMENT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Resume granularity: video is encoded in pieces this long, each on a keyframe, "
    f"or shorter: a piece also closes after {SEGMENT_WORK_SECONDS:g} s of work.",
)
def video(
    input: Path,
    output: Path | None,
    weights,
    device,
    precision,
    tile,
    overlap,
    codec: str,
    crf: int,
    preset: str,
    pix_fmt: str,
    frame_batch: int,
    start: float | None,
    end: float | None,
    frames_dir: Path | None,
    overwrite: bool,
    resume: bool,
    segment: float,
) -> None:
    """Deblur a video; frame rate, timestamps, rotation, audio and subtitles are kept.

    \b
    Examples:
      deblur video clip.mp4                      # writes clip_deblurred.mp4
      deblur video clip.mov -o sharp.mp4 --crf 20
      deblur video clip.mp4 --start 0:12 --end 0:20
      deblur video clip.mp4 --frames-dir frames/

    An interrupted run resumes when the same command is run again. Ctrl-C keeps every
    frame already deblurred; a crash or a kill loses at most the segment in progress
    (--segment seconds of video or 15 s of work, whichever is less). Work made with
    other settings is never mixed in; --overwrite starts over.
    """
    from ..outputs import check_writable, default_output
    from ..video import (
        EncodeSettings,
        VideoResult,
        check_encoder,
        check_output,
        export_frames,
        finished_export,
        finished_output,
        parts_folder,
        probe,
        process_video,
        resolve_auto,
        unfinished_export,
        unfinished_run,
        why_starting_over,
    )
    from ..video.resume import ResumeConflict

    if output is not None and frames_dir is not None:
        raise click.UsageError("give either --output or --frames-dir, not both")
    if start is not None and end is not None and end <= start:
        raise click.UsageError("--end must be after --start")
    info = probe(input)
    info.check_range(start, end)  # before the model loads: a range past the end is a typo
    settings = EncodeSettings(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt)
    dst = output or default_output(input)
    # Fail on a bad destination before spending time loading the model.
    if frames_dir is None:
        check_output(input, dst)
        check_encoder(settings, info, dst)
        check_writable([dst])
    else:
        if frames_dir.exists() and not frames_dir.is_dir():
            raise click.UsageError(f"--frames-dir {frames_dir}: exists and is not a folder")
        check_writable([frames_dir / "frame_000000.png"])
    if not overwrite and (finished_export(frames_dir) if frames_dir else dst.exists()):
        if frames_dir is None and not finished_output(dst):
            raise OutputError(f"{dst} exists; add --overwrite to replace it")
        what = f"{frames_dir} holds a finished export" if frames_dir else f"{dst} exists"
        console.print(Text(f"{what}: nothing to do (add --overwrite to make it again)"))
        return
    model = open_model(weights, device, precision, tile, overlap)
    settings = resolve_auto(settings, str(model.device))
    from ..engine import frames_per_batch

    model.frames_per_batch = frame_batch or None
    per_call = frames_per_batch(model, info.height, info.width)
    job = {
        "weights": describe(model),
        "file": str(model.weights.path) if model.weights and model.weights.path else None,
        "tile": model.tile,
        "overlap": model.overlap,
    }

    # Refuse to mix in work made with other settings (--overwrite discards it), and say
    # what is reused, or why the run starts over.
    reused = restart = None
    carry_on = True
    try:
        if frames_dir is not None:
            count = unfinished_export(input, frames_dir, start=start, end=end, job=job)
            reused = f"{count} finished frames (0–{count - 1})" if count else None
        else:
            manifest = unfinished_run(
                input, dst, settings=settings, start=start, end=end, segment_seconds=segment,
                job=job, info=info,
            )  # fmt: skip
            if manifest is not None:
                reused = manifest.describe(manifest.seconds(info.time_base, info.rate))
            else:
                restart = why_starting_over(parts_folder(dst))
    except ResumeConflict as err:
        if not overwrite:
            raise
        carry_on = False
        restart = f"--overwrite discards {str(err).split(': run the same command')[0]}"
    console.print(
        f"[dim]{describe(model)}"
        + (f"; {per_call} frames per forward pass" if per_call > 1 else "")
        + "[/dim]"
    )
    console.print(
        f"[dim]{input.name}: {info.width}x{info.height} {info.codec} "
        f"{float(info.rate):.3f} fps"
        + (f", rotated {info.rotation}°" if info.rotation else "")
        + (f", {', '.join(info.other_streams)}" if info.other_streams else "")
        + (
            f"; {settings.describe()}"
            if frames_dir is None and settings.preset and codec in ("libx264", "libx265")
            else ""
        )
        + "[/dim]"
    )
    if reused:
        console.print(Text(f"resuming: reused {reused}"))
    elif restart:
        console.print(Text(f"starting over: {restart}"))

    def fn(rgb: np.ndarray) -> np.ndarray:
        return deblur_array(model, rgb)

    def frames_fn(frames: list[np.ndarray]) -> list[np.ndarray]:
        return deblur_frames(model, frames)  # several frames per forward pass (a GPU)

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("frames"),
        FpsColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    done = 0
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(input.name, total=None)

        def progress(n: int, total: int | None) -> None:
            nonlocal done
            if done == 0 and n > 0:
                bar.reset(task, total=total, completed=n)  # resumed frames: not in the fps
            else:
                bar.update(task, completed=n, total=total)
            done = n

        try:
            if frames_dir is not None:
                result: VideoResult = export_frames(
                    input,
                    frames_dir,
                    fn,
                    start=start,
                    end=end,
                    resume=carry_on,
                    job=job,
                    progress=progress,
                    info=info,
                )
            else:
                result = process_video(
                    input,
                    dst,
                    fn,
                    settings=settings,
                    start=start,
                    end=end,
                    resume=carry_on,
                    segment_seconds=segment,
                    job=job,
                    progress=progress,
                    info=info,
                    codec_threads=1 if str(model.device).startswith("cpu") else 0,
                    frames_fn=frames_fn if per_call > 1 else None,
                    frames_per_call=per_call,
                )
        except KeyboardInterrupt:
            raise Interrupted(kept_line(input, dst, frames_dir, info, done)) from None
    for line in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {line}")
    console.print(f"{input} → [bold]{result.output}[/bold] ({result.frames} frames)")


def format_seconds(seconds: float) -> str:
    """``12.4 s`` or ``3:05.2`` (minutes) for a stretch of video."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}:{rest:04.1f}"


def kept_line(input: Path, dst: Path, frames_dir: Path | None, info, done: int) -> str:
    """After Ctrl-C: exactly what was kept (frames and video time) and where, read back from
    what is on disk, and how to go on."""
    from ..video import Manifest, parts_folder
    from ..video.resume import frame_files

    if frames_dir is not None:
        kept = len(frame_files(frames_dir))
        where, seconds = frames_dir, None
    else:
        manifest = Manifest.load(parts_folder(dst))
        kept = manifest.frames if manifest else 0
        where = parts_folder(dst)
        seconds = manifest.seconds(info.time_base, info.rate) if manifest else 0.0
    if not kept:
        return f"interrupted after {done} frames; nothing was kept, the next run starts over"
    span = f", the first {format_seconds(seconds)} of the video" if seconds is not None else ""
    return (
        f"interrupted: kept {kept} deblurred frames (0–{kept - 1}{span}) in {where}; run "
        f"the same command again to continue from frame {kept}"
    )


COMMANDS = [video]
