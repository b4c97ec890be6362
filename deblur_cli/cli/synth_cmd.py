"""``deblur synth``: make blurry/sharp training pairs (GOPRO_Large layout)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..errors import InputError, OutputError
from .common import console, parse_range

if TYPE_CHECKING:
    from ..synth.layout import SceneWriter

PREVIEW_ROWS = 4


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _check_output(output: Path, inputs: tuple[Path, ...]) -> None:
    if output.exists() and not output.is_dir():
        raise OutputError(f"{output}: exists and is not a folder")
    for path in inputs:
        if path.exists() and path.resolve() == output.resolve():
            raise OutputError(f"{output}: the output folder cannot be an input")


def _report(made: int, skipped: int, seconds: float, output: Path) -> None:
    rate = made / seconds if seconds > 0 and made else 0.0
    console.print(
        f"{made} pairs written, {skipped} already there, in {seconds:.1f} s "
        f"({rate:.2f} pairs/s) → [bold]{output}[/bold]"
    )


@click.group("synth")
def synth() -> None:
    """Make blurry/sharp training pairs: GOPRO-style from frames, or camera shake on stills.

    \b
    Output (what 'deblur train' reads):
      OUT/<scene>/blur_gamma/NNNNNN.png  blurry, averaged in linear light
      OUT/<scene>/blur/NNNNNN.png        (frames) averaged in code values
      OUT/<scene>/sharp/NNNNNN.png       the sharp target
    Runs are resumable: the same command skips pairs that are already complete.
    """


@synth.command("frames")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="OUT folder.")
@click.option(
    "--frames",
    "sizes",
    default="7-13",
    show_default=True,
    callback=parse_range(int),
    help="Frames averaged per pair, drawn per pair from this range (240 fps footage).",
)
@click.option(
    "--gap", type=click.IntRange(0), default=0, show_default=True, help="Frames left between pairs."
)
@click.option(
    "--gamma",
    type=click.FloatRange(0.1, 10),
    default=2.2,
    show_default=True,
    help="Camera response as a power law.",
)
@click.option(
    "--crf",
    type=click.Path(path_type=Path),
    default=None,
    help="Measured camera response instead of --gamma: 256 increasing values (.txt/.csv/.npy).",
)
@click.option(
    "--plain/--no-plain",
    default=True,
    show_default=True,
    help="Also write blur/ (frames averaged without the response, like GOPRO_Large).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the window sizes.")
@click.option("--max-pairs", type=click.IntRange(1), default=None, help="Stop after N per input.")
@click.option("--scene", default=None, help="Scene name (one input only). Default: input name.")
@click.option("--preview", is_flag=True, help=f"Write OUT/preview.png of {PREVIEW_ROWS} pairs.")
def frames_cmd(
    inputs: tuple[Path, ...],
    output: Path,
    sizes: tuple[int, int],
    gap: int,
    gamma: float,
    crf: Path | None,
    plain: bool,
    seed: int,
    max_pairs: int | None,
    scene: str | None,
    preview: bool,
) -> None:
    """Average consecutive frames (a folder of images or a video) into GOPRO-style pairs.

    Each blurry image is the mean of N consecutive frames in linear light; the middle frame
    is its sharp target and names the pair. Use footage at high frame rate (GOPRO used
    240 fps); for 30 fps video use --frames 3-5.

    \b
    Examples:
      deblur synth frames GOPR0477_11_00/ -o data/train
      deblur synth frames clip.mp4 -o data/train --frames 5-9 --seed 1 --preview
    """
    from ..synth.frames import FrameSource
    from ..synth.jobs import FramesJob, response_settings
    from ..synth.layout import SceneWriter, write_preview
    from ..synth.response import Response, load_crf

    if sizes[0] < 1:
        raise click.BadParameter("must be at least 1", param_hint="--frames")
    if scene is not None and len(inputs) > 1:
        raise click.UsageError("--scene takes a single input")
    _check_output(output, inputs)
    response = load_crf(crf) if crf is not None else Response.from_gamma(gamma)
    settings = {
        "frames": list(sizes),
        "gap": gap,
        "seed": seed,
        "plain": plain,
        **response_settings(response),
    }
    jobs = []
    for path in inputs:
        source = FrameSource(path)
        name = scene or source.name
        if any(job.writer.root.name == name for job in jobs):
            raise InputError(f"two inputs are both named {name!r}: run them separately")
        writer = SceneWriter(output / name, "frames", settings, plain=plain)
        jobs.append(FramesJob(source, writer, sizes, gap, seed, response, plain, max_pairs))
    expected = [job.expected() for job in jobs]
    total = None if None in expected else sum(expected)
    made = skipped = 0
    start = time.perf_counter()
    records = []
    with _progress() as progress:
        task = progress.add_task("synth frames", total=total)
        for job in jobs:

            def advance(name: str, was_skipped: bool) -> None:
                nonlocal made, skipped
                skipped += was_skipped
                made += not was_skipped
                progress.advance(task)

            records += [(job.writer, r) for r in job.run(advance)]
    _report(made, skipped, time.perf_counter() - start, output)
    if preview:
        rows = [
            (w.path("blur_gamma", r["name"]), w.path("sharp", r["name"]), _caption(w, r))
            for w, r in _spread(records)
        ]
        console.print(f"preview → [bold]{write_preview(rows, output / 'preview.png')}[/bold]")


def _defaulted(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source in (None, click.core.ParameterSource.DEFAULT)


def _caption(writer: SceneWriter, record: dict) -> str:
    count = len(record.get("frames", [])) or None
    return f"{writer.root.name}/{record['name']}" + (f", {count} frames" if count else "")


def _spread(records: list) -> list:
    """A few pairs spread over the whole run, for the preview."""
    if len(records) <= PREVIEW_ROWS:
        return records
    step = (len(records) - 1) / (PREVIEW_ROWS - 1)
    return [records[round(i * step)] for i in range(PREVIEW_ROWS)]


@synth.command("stills")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="OUT folder.")
@click.option("--seed", type=int, default=0, show_default=True, help="Makes the run reproducible.")
@click.option(
    "--per-image", type=click.IntRange(1), default=1, show_default=True, help="Pairs per photo."
)
@click.option(
    "--blur",
    default="0.01-0.04",
    show_default=True,
    callback=parse_range(float),
    help="Blur extent at the worst point, as a fraction of the image diagonal.",
)
@click.option("--rotation", type=click.FloatRange(0), default=1.0, show_default=True,
              help="Weight of pitch/yaw shake.")  # fmt: skip
@click.option("--roll", type=click.FloatRange(0), default=0.5, show_default=True,
              help="Weight of roll (blur grows towards the corners).")  # fmt: skip
@click.option("--translation", type=click.FloatRange(0), default=0.2, show_default=True,
              help="Weight of sideways camera motion.")  # fmt: skip
@click.option("--zoom", type=click.FloatRange(0), default=0.1, show_default=True,
              help="Weight of forward motion (radial blur).")  # fmt: skip
@click.option("--objects", type=click.IntRange(0, 10), default=0, show_default=True,
              help="Moving object layers pasted from other input photos.")  # fmt: skip
@click.option("--noise", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Max sensor noise (photon + read, before the response), std in grey levels "
              "at mid-grey (blurry only).")  # fmt: skip
@click.option("--jpeg", default=None, callback=parse_range(int), metavar="Q1-Q2",
              help="Re-encode the blurry image as JPEG, quality drawn from Q1-Q2.")  # fmt: skip
@click.option("--gamma", type=click.FloatRange(0.1, 10), default=2.2, show_default=True,
              help="Camera response as a power law.")  # fmt: skip
# Realistic synthesis (each a switch, off by default, so it can be measured alone).
@click.option("--crf", type=click.Path(path_type=Path), default=None,
              help="Measured inverse camera response instead of --gamma (.npy/.txt), e.g. "
              "REDS's gopro_hero6_inverse_crf.npy.")  # fmt: skip
@click.option("--blur-px", default=None, callback=parse_range(float), metavar="A-B",
              help="Shake extent drawn log-uniform in A-B pixels (replaces --blur), "
              "e.g. 1-60 covers everyday photos to GOPRO.")  # fmt: skip
@click.option("--sharp-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of pairs without camera shake (segments still move).")  # fmt: skip
@click.option("--code-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of pairs averaged in code values (gamma 1): tone-neutral blur, as "
              "GOPRO_Large's blur/.")  # fmt: skip
@click.option("--highlights", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Boost near-white light up to this factor before the blur, clip after: "
              "light streaks (0 = off, e.g. 8).")  # fmt: skip
@click.option("--segments", type=click.IntRange(0, 16), default=0, show_default=True,
              help="Regions of the photo that move on their own paths (needs scikit-image, "
              "the 'train' extra).")  # fmt: skip
@click.option("--mix", type=click.Choice(["none", "train"]), default="none", show_default=True,
              help="train: start from the mix 'deblur train stills:' renders (TRAIN_MIX: "
              "--blur-px 1-60 --sharp-share 0.2 --code-share 0.75 --noise 3 --jpeg 85-98); "
              "options given here still win.")  # fmt: skip
@click.option("--max-side", type=click.IntRange(32), default=None,
              help="Shrink larger photos to this many pixels first (faster, cleaner).")  # fmt: skip
@click.option("--scene", default=None, help="Put every pair in this one scene.")
@click.option("--preview", is_flag=True, help=f"Write OUT/preview.png of {PREVIEW_ROWS} pairs.")
@click.option("--workers", type=click.IntRange(0), default=0, show_default=True,
              help="Photos rendered at once, in separate processes (0 = one per core). The "
              "pairs are the same for any number.")  # fmt: skip
def stills_cmd(
    inputs: tuple[Path, ...],
    output: Path,
    seed: int,
    per_image: int,
    blur: tuple[float, float],
    rotation: float,
    roll: float,
    translation: float,
    zoom: float,
    objects: int,
    noise: float,
    jpeg: tuple[int, int] | None,
    gamma: float,
    crf: Path | None,
    blur_px: tuple[float, float] | None,
    sharp_share: float,
    code_share: float,
    highlights: float,
    segments: int,
    mix: str,
    max_side: int | None,
    scene: str | None,
    preview: bool,
    workers: int,
) -> None:
    """Blur sharp photos with random handheld camera shake (spatially varying blur).

    Each pair renders a random 3-D shake trajectory as a sequence of homographies, averaged
    in linear light; borders the warps leave empty are cropped from both images. Folders are
    searched recursively; each subfolder becomes a scene.

    \b
    Examples:
      deblur synth stills photos/ -o data/stills --seed 1 --preview
      deblur synth stills photos/ -o data/stills --per-image 3 --objects 1 \\
          --noise 2 --jpeg 80-95
      deblur synth stills photos/ -o data/mix --mix train
          # the mix that 'deblur train stills:' renders
      deblur synth stills photos/ -o data/real --mix train --segments 3 \\
          --highlights 8 --crf gopro_hero6_inverse_crf.npy
    """
    from ..synth.jobs import StillsJob, plan_stills
    from ..synth.layout import write_preview
    from ..synth.stills import StillOptions, with_train_mix

    _check_output(output, inputs)
    given = dict(
        gamma=gamma,
        blur=blur,
        rotation=rotation,
        roll=roll,
        translation=translation,
        zoom=zoom,
        objects=objects,
        noise=noise,
        jpeg=jpeg,
        crf=str(crf) if crf is not None else None,
        blur_px=blur_px,
        sharp_share=sharp_share,
        code_share=code_share,
        highlights=highlights,
        segments=segments,
    )
    if mix == "train":
        ctx = click.get_current_context()
        typed = {k: v for k, v in given.items() if not _defaulted(ctx, k)}
        given = {**given, **with_train_mix(typed)}
    try:
        options = StillOptions(**given)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    items = plan_stills(list(inputs), scene, exclude=output)
    job = StillsJob(items, output, options, seed, per_image, max_side, workers=workers)
    made = skipped = 0
    start = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("synth stills", total=job.expected())

        def advance(name: str, was_skipped: bool) -> None:
            nonlocal made, skipped
            skipped += was_skipped
            made += not was_skipped
            progress.advance(task)

        records = job.run(advance)
    _report(made, skipped, time.perf_counter() - start, output)
    if preview:
        writers = job.writers()
        flat = [(writers[s], r) for s, rs in records.items() for r in rs]
        rows = [
            (w.path("blur_gamma", r["name"]), w.path("sharp", r["name"]), _caption(w, r))
            for w, r in _spread(flat)
        ]
        console.print(f"preview → [bold]{write_preview(rows, output / 'preview.png')}[/bold]")


COMMANDS = [synth]
