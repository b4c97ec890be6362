"""``deblur batch``: a folder tree of photos, resumable and shardable across GPUs/machines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table
from rich.text import Text

from .common import (
    console,
    describe,
    frame_batch_option,
    model_options,
    open_model,
    overwrite_option,
    quality_option,
)
from .photo_common import photo_options, run_with_progress

if TYPE_CHECKING:
    from ..batch_plan import BatchSummary, Shard


def _summary_table(summary: BatchSummary, shard: Shard | None) -> Table:
    title = "deblur batch" + (f" (shard {shard})" if shard and shard.count > 1 else "")
    table = Table(title=title, show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("deblurred", str(summary.done))
    table.add_row("already done (skipped)", str(summary.skipped))
    table.add_row("failed", str(len(summary.failed)), style="red" if summary.failed else None)
    table.add_row("megapixels", f"{summary.megapixels:.1f}")
    table.add_row("time", f"{summary.seconds:.1f} s")
    table.add_row("images/s", f"{summary.images_per_s:.2f}")
    table.add_row("megapixels/s", f"{summary.megapixels_per_s:.2f}")
    return table


@click.command("batch")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    required=True,
    help="Output folder; the input's sub-folders and file names are kept.",
)
@model_options
@quality_option
@photo_options
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Threads decoding and encoding while the model runs.",
)
@click.option(
    "--shard",
    "shard_text",
    default=None,
    metavar="I/N",
    help="Process only every N-th file starting at I (0-based). Under torchrun this is "
    "taken from RANK/WORLD_SIZE automatically.",
)
@frame_batch_option
@overwrite_option(
    "Deblur every file again, replacing outputs that exist. Without it, existing outputs "
    "are kept and their files skipped (an interrupted run resumes).",
    "--force",
)
@click.option(
    "--include-deblurred",
    is_flag=True,
    help="Also take pictures deblur wrote itself (*_deblurred.* names, or deblur's mark in "
    "their metadata) as inputs; by default they are left out.",
)
def batch(
    folder: Path,
    output: Path,
    weights,
    device,
    precision,
    tile,
    overlap,
    quality: int,
    output_format: str,
    png_compression: str,
    max_megapixels: float | None,
    workers: int,
    shard_text: str | None,
    frame_batch: int,
    overwrite: bool,
    include_deblurred: bool,
) -> None:
    """Deblur every image under FOLDER into OUTPUT, keeping the folder tree.

    Outputs that already exist are kept and their files skipped, so an interrupted run
    resumes where it stopped (outputs are written atomically: an existing file is always
    complete); --overwrite redoes them. Pictures deblur wrote itself are not taken as
    inputs. Files are split across processes without overlap by --shard I/N, or
    automatically under torchrun.

    \b
    Examples:
      deblur batch photos/ -o restored/
      deblur batch raw_jpegs/ -o restored/ --format png   # lossless outputs
      deblur batch photos/ -o restored/ --shard 1/4       # machine 2 of 4
      torchrun --nproc-per-node 8 -m deblur_cli batch photos/ -o restored/
    """
    from ..batch_plan import (  # torch-free: an empty folder or a bad --shard costs no torch
        check_output_root,
        join_ranks,
        parse_shard,
        plan_batch,
        rank_device,
        remove_stale_temporaries,
        shard_from_env,
        split_done,
    )
    from ..io.sniff import max_megapixels_limit

    max_megapixels = max_megapixels_limit(max_megapixels)  # a bad $DEBLUR_MAX_MEGAPIXELS: now
    shard = parse_shard(shard_text) if shard_text else shard_from_env()
    under_launcher = shard_text is None and shard is not None
    left_out: list[Path] = []
    jobs = plan_batch(
        folder,
        output,
        shard=shard,
        output_format=output_format,
        include_deblurred=include_deblurred,
        left_out=left_out,
    )
    remove_stale_temporaries(jobs)
    todo, done_before = split_done(jobs, force=overwrite)
    label = f"[rank {shard}] " if shard and shard.count > 1 else ""
    if left_out:
        example = left_out[0].relative_to(folder).as_posix()
        console.print(
            Text(
                f"{label}left out {len(left_out)} picture(s) deblur wrote itself ({example}"
                f"{', …' if len(left_out) > 1 else ''}); --include-deblurred takes them"
            )
        )
    if not todo:
        console.print(
            Text(
                f"{label}all {len(jobs)} output(s) already exist in {output}: nothing to do "
                "(--overwrite redoes them)"
            ),
            soft_wrap=True,
        )
        join_ranks()
        return
    check_output_root(output)  # a read-only destination fails now, not after the model ran
    if done_before:
        console.print(
            Text(
                f"{label}resuming: {len(done_before)} of {len(jobs)} already done, their "
                "outputs kept (--overwrite redoes them)"
            )
        )
    model = open_model(weights, rank_device(device), precision, tile, overlap)
    model.frames_per_batch = frame_batch or None
    console.print(f"[dim]{label}{describe(model)}[/dim]")
    summary = run_with_progress(
        console,
        model,
        todo,
        label=label,
        quiet=under_launcher and shard is not None and shard.index != 0,
        quality=quality,
        png_compression=png_compression,
        workers=workers,
        max_megapixels=max_megapixels,
    )
    summary.skipped = len(done_before)
    console.print(_summary_table(summary, shard))
    if under_launcher:
        join_ranks()  # exit together: torchrun kills the others when one rank exits non-zero
    failure = summary.failure()
    if failure is not None:
        raise failure


COMMANDS = [batch]
