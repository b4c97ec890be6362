"""``deblur batch``: a folder tree of photos, resumable and shardable across GPUs/machines."""

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
from rich.table import Table
from rich.text import Text

from ..errors import DeblurError
from .common import console, describe, model_options, open_model, quality_option

if TYPE_CHECKING:
    from ..batch import BatchSummary, FileResult, Shard


class RateColumn(ProgressColumn):
    """images/s and megapixels/s over the files processed so far."""

    def render(self, task: Task) -> Text:
        seconds = task.elapsed or 0.0
        if seconds <= 0 or not task.completed:
            return Text("– img/s  – MP/s", style="progress.data.speed")
        images = task.fields.get("done", 0) / seconds
        megapixels = task.fields.get("megapixels", 0.0) / seconds
        return Text(f"{images:.2f} img/s  {megapixels:.2f} MP/s", style="progress.data.speed")


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
@click.option("--force", is_flag=True, help="Process files again even if their output exists.")
def batch(
    folder: Path,
    output: Path,
    weights,
    device,
    precision,
    tile,
    overlap,
    quality: int,
    workers: int,
    shard_text: str | None,
    force: bool,
) -> None:
    """Deblur every image under FOLDER into OUTPUT, keeping the folder tree.

    Outputs that already exist are skipped, so an interrupted run resumes where it stopped
    (outputs are written atomically: an existing file is always complete). Files are split
    across processes without overlap by --shard I/N, or automatically under torchrun.

    \b
    Examples:
      deblur batch photos/ -o restored/
      deblur batch photos/ -o restored/ --shard 1/4     # machine 2 of 4
      torchrun --nproc-per-node 8 -m deblur_cli batch photos/ -o restored/
    """
    from ..batch import (
        join_ranks,
        parse_shard,
        plan_batch,
        rank_device,
        remove_stale_temporaries,
        run_batch,
        shard_from_env,
        split_done,
    )

    shard = parse_shard(shard_text) if shard_text else shard_from_env()
    under_launcher = shard_text is None and shard is not None
    jobs = plan_batch(folder, output, shard=shard)
    remove_stale_temporaries(jobs)
    todo, done_before = split_done(jobs, force=force)
    label = f"[rank {shard}] " if shard and shard.count > 1 else ""
    if not todo:
        console.print(
            Text(f"{label}all {len(jobs)} output(s) already exist in {output}: nothing to do"),
            soft_wrap=True,
        )
        join_ranks()
        return
    if done_before:
        console.print(
            Text(f"{label}resuming: {len(done_before)} of {len(jobs)} already done"), soft_wrap=True
        )
    model = open_model(weights, rank_device(device), precision, tile, overlap)
    console.print(f"[dim]{label}{describe(model)}[/dim]")

    quiet_rank = under_launcher and shard is not None and shard.index != 0
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet_rank,  # one bar per terminal: rank 0 draws it, others print a summary
    )
    counts = {"done": 0, "megapixels": 0.0}

    def on_result(result: FileResult) -> None:
        if result.status == "done":
            counts["done"] += 1
            counts["megapixels"] += result.megapixels
        else:
            console.print(Text(f"{label}error: {result.error}"), soft_wrap=True)
        progress.update(task, advance=1, **counts)

    with progress:
        task = progress.add_task(f"{label}deblurring", total=len(todo), **counts)
        summary = run_batch(model, todo, quality=quality, workers=workers, on_result=on_result)
    summary.skipped = len(done_before)
    console.print(_summary_table(summary, shard))
    if under_launcher:
        join_ranks()  # exit together: torchrun kills the others when one rank exits non-zero
    if summary.failed:
        raise DeblurError(
            f"{len(summary.failed)} of {len(todo)} file(s) failed (listed above); "
            "the others were written"
        )


COMMANDS = [batch]
