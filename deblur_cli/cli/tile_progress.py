"""A spinner that turns into a tile progress bar once the engine reports several tiles.

A 24-megapixel photo runs for tens of seconds on a CPU; a bare spinner says nothing about
how long is left. The engine calls ``progress(done, total)`` (``done`` = 0 first) from
``deblur_array``; a one-tile image keeps the spinner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def tile_progress(
    console: Console, description: str, label: str = "deblurring"
) -> Iterator[Callable[[int, int], None]]:
    """Yield the engine's ``progress`` callback: a spinner with ``description``, replaced by a
    bar headed ``label`` (short, so the bar fits 80 columns) once there are several tiles."""
    status = console.status(f"{description}…")
    status.start()
    bar: Progress | None = None
    task = None

    def update(done: int, total: int) -> None:
        nonlocal bar, task
        if total <= 1:
            return
        if bar is None:
            status.stop()  # one live display at a time
            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("tiles"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
            )
            bar.start()
            task = bar.add_task(label, total=total)
        bar.update(task, completed=done)
        if done >= total:
            bar.update(task, description=f"{label}, writing")

    try:
        yield update
    finally:
        if bar is not None:
            bar.update(task, description=label)  # the bar stays as the run's record
            bar.stop()
        status.stop()
