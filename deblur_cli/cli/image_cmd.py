"""``deblur image``: one or a few photos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.text import Text

from .common import (
    console,
    describe,
    model_options,
    open_model,
    overwrite_option,
    quality_option,
)
from .photo_common import photo_options, run_with_progress
from .tile_progress import tile_progress


@click.command("image")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Output file (one input) or folder (several). Default: NAME_deblurred.EXT "
    "beside each input.",
)
@model_options
@quality_option
@photo_options
@click.option(
    "--compare",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write a labelled before/after picture here (one input only); both pictures "
    "are written or neither.",
)
@overwrite_option(
    "Replace outputs that exist (the input itself included). Without it an existing output "
    "is never touched and that file fails with a line naming it."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Threads decoding and encoding while the model runs (several inputs).",
)
def image(
    inputs: tuple[Path, ...],
    output: Path | None,
    weights,
    device,
    precision,
    tile,
    overlap,
    quality: int,
    output_format: str,
    png_compression: str,
    max_megapixels: float | None,
    compare: Path | None,
    overwrite: bool,
    workers: int,
) -> None:
    """Deblur photos: PNG, JPEG, TIFF, WebP or BMP; 8/16-bit, gray and alpha kept.

    With several inputs a bad file is reported on its own line and the others go on.

    \b
    Examples:
      deblur image blurry.jpg -o sharp.png
      deblur image a.jpg b.jpg -o restored/ --device cuda
      deblur image *.jpg -o restored/ --format png       # lossless outputs
      deblur image big.tif --tile 1024 --compare before_after.jpg
    """
    # Everything that can be refused from the arguments and the files' bytes is, before
    # numpy, OpenCV or torch load: a typo or an empty file costs a fraction of a second.
    from ..io.sniff import max_megapixels_limit
    from ..outputs import plan_outputs

    max_megapixels = max_megapixels_limit(max_megapixels)  # a bad $DEBLUR_MAX_MEGAPIXELS: now
    if compare is not None and len(inputs) > 1:
        raise click.UsageError("--compare takes a single input")
    if len(inputs) == 1:
        _check_input(inputs[0], max_megapixels)
    jobs = plan_outputs(list(inputs), output, output_format)
    model_args = (weights, device, precision, tile, overlap)
    settings = {"quality": quality, "png_compression": png_compression}
    if len(inputs) == 1:
        src, dst = jobs[0]
        _one(src, dst, model_args, compare, overwrite, max_megapixels, settings)
    else:
        _several(jobs, output, model_args, overwrite, max_megapixels, workers, settings)


def _check_input(src: Path, max_megapixels: float) -> None:
    """Missing, a folder, empty, not an image, cut off, too small or too large: from the
    file's bytes and header alone."""
    from ..errors import InputError
    from ..io.sniff import check_image_file

    if src.is_dir():
        raise InputError(
            f"{src}: is a folder; deblur a whole folder with 'deblur batch {src} -o OUT'"
        )
    check_image_file(src, max_megapixels)


def _one(
    src: Path,
    dst: Path,
    model_args: tuple,
    compare: Path | None,
    overwrite: bool,
    max_megapixels: float,
    settings: dict[str, Any],
) -> None:
    """One photo: every check (input, both outputs) before the model loads; ``image`` has
    already checked the input's bytes."""
    from ..outputs import check_not_input, check_replace, check_writable

    check_not_input(src, dst, overwrite)
    if compare is not None:
        check_replace(compare, overwrite, src)
    check_writable([dst] if compare is None else [dst, compare])
    from ..photos import deblur_decoded, read_input  # numpy, OpenCV, torch: from here on

    pixels, info = read_input(src, max_megapixels=max_megapixels)
    model = open_model(*model_args)
    console.print(f"[dim]{describe(model)}[/dim]")
    with tile_progress(console, f"deblurring {src.name}") as progress:
        deblur_decoded(model, pixels, info, dst, compare=compare, progress=progress, **settings)
    console.print(Text(f"{src} → {dst} ({pixels.shape[1]}x{pixels.shape[0]})"), soft_wrap=True)


def _several(
    jobs: list[tuple[Path, Path]],
    folder: Path | None,
    model_args: tuple,
    overwrite: bool,
    max_megapixels: float,
    workers: int,
    settings: dict[str, Any],
) -> None:
    """Several photos through batch's loop: each bad file on its own ``error:`` line, the
    others written, a one-line summary, and a non-zero exit if any failed."""
    from ..batch_plan import BatchSummary, Job, check_output_root, failed_result
    from ..errors import DeblurError
    from ..outputs import check_not_input, check_writable

    if folder is not None:
        check_output_root(folder)  # one shared folder: refuse once, up front
    ready: list[Job] = []
    refused = BatchSummary(total=len(jobs))
    writable: set[Path] = set()  # each output folder probed once, however many files
    for src, dst in jobs:
        job = Job(src, dst)
        try:
            _check_input(src, max_megapixels)
            check_not_input(src, dst, overwrite)
            check_writable([dst], writable)
        except DeblurError as err:
            refused.failed.append(failed_result(job, err))
            console.print(Text(f"error: {refused.failed[-1].error}"), soft_wrap=True)
        else:
            ready.append(job)
    summary = refused
    if ready:
        model = open_model(*model_args)
        console.print(f"[dim]{describe(model)}[/dim]")
        summary = run_with_progress(
            console, model, ready, workers=workers, max_megapixels=max_megapixels, **settings
        )
        summary.total = len(jobs)
        summary.failed = refused.failed + summary.failed
    where = f" into {folder}" if folder is not None else ""
    console.print(
        Text(
            f"deblurred {summary.done} of {len(jobs)} file(s){where}"
            + (f", {len(summary.failed)} failed" if summary.failed else "")
            + (f" ({summary.seconds:.1f} s)" if summary.done else "")
        ),
        soft_wrap=True,
    )
    failure = summary.failure()
    if failure is not None:
        raise failure


COMMANDS = [image]
