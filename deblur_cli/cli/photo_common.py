"""What ``deblur image`` and ``deblur batch`` share: their output options and the progress
display around :func:`deblur_cli.batch.run_batch` (one loop for many files, whichever verb).

The library is imported inside the functions, so that ``--help`` does not pay for torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
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

if TYPE_CHECKING:
    from ..batch_plan import BatchSummary, FileResult, Job
    from ..engine import Deblurrer

max_megapixels_option = click.option(
    "--max-megapixels",
    type=click.FloatRange(min=0),
    default=None,
    metavar="MP",
    help="Refuse pictures larger than this, judged from the file header before decoding. "
    "Default: $DEBLUR_MAX_MEGAPIXELS, else 200. 0 = no limit.",
)
format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["keep", "png", "jpg", "webp", "tif"]),
    default="keep",
    show_default=True,
    help="Output format: keep each input's, or write all as one. png/tif keep 16 bits and "
    "alpha; webp is 8-bit with alpha; jpg is 8-bit and has no alpha (transparent pictures "
    "are composited onto white). ICC is kept in every format, EXIF in all but 16-bit tif.",
)
png_compression_option = click.option(
    "--png-compression",
    type=click.Choice(["fast", "small"]),
    default="fast",
    show_default=True,
    help="fast: level 1, 'up' row filter, ISA-L, on every core from 4 MP (~0.007 s per "
    "720p frame, files ~17% larger than Pillow's default level 6); small: level 9, "
    "adaptive filters (~3% smaller than Pillow's default, seconds per 720p frame).",
)


def photo_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The output options every photo verb takes on top of the model options."""
    for option in reversed([format_option, png_compression_option, max_megapixels_option]):
        func = option(func)
    return func


class RateColumn(ProgressColumn):
    """images/s and megapixels/s over the files processed so far."""

    def render(self, task: Task) -> Text:
        seconds = task.elapsed or 0.0
        if seconds <= 0 or not task.completed:
            return Text("– img/s  – MP/s", style="progress.data.speed")
        images = task.fields.get("done", 0) / seconds
        megapixels = task.fields.get("megapixels", 0.0) / seconds
        return Text(f"{images:.2f} img/s  {megapixels:.2f} MP/s", style="progress.data.speed")


def run_with_progress(
    console: Console,
    model: Deblurrer,
    jobs: list[Job],
    *,
    label: str = "",
    quiet: bool = False,
    **settings: Any,
) -> BatchSummary:
    """Run ``jobs`` through :func:`run_batch` under a progress bar; each failure is printed on
    its own ``error:`` line as it happens and the others carry on."""
    from ..batch import run_batch

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,  # one bar per terminal: under torchrun rank 0 draws it
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
        task = progress.add_task(f"{label}deblurring", total=len(jobs), **counts)
        return run_batch(model, jobs, on_result=on_result, **settings)
