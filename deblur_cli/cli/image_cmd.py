"""``deblur image``: one or a few photos."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.text import Text

from ..errors import InputError
from .common import console, describe, model_options, open_model, quality_option

if TYPE_CHECKING:
    from ..engine import Deblurrer


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
@click.option(
    "--compare",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write a labelled before/after picture here (one input only).",
)
@click.option("--overwrite", is_flag=True, help="Allow the output to replace the input file.")
def image(
    inputs: tuple[Path, ...],
    output: Path | None,
    weights,
    device,
    precision,
    tile,
    overlap,
    quality: int,
    compare: Path | None,
    overwrite: bool,
) -> None:
    """Deblur photos: PNG, JPEG, TIFF, WebP or BMP; 8/16-bit, gray and alpha kept.

    \b
    Examples:
      deblur image blurry.jpg -o sharp.png
      deblur image a.jpg b.jpg -o restored/ --device cuda
      deblur image big.tif --tile 1024 --compare before_after.jpg
    """
    for path in inputs:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
    if compare is not None and len(inputs) > 1:
        raise click.UsageError("--compare takes a single input")
    from ..photos import check_not_input, deblur_decoded, plan_outputs, read_input

    jobs = plan_outputs(list(inputs), output)
    model: Deblurrer | None = None
    for src, dst in jobs:
        check_not_input(src, dst, overwrite)
        # Decode before loading the model: a bad input costs no model load and prints nothing
        # but its one error line.
        pixels, info = read_input(src)
        if model is None:
            model = open_model(weights, device, precision, tile, overlap)
            console.print(f"[dim]{describe(model)}[/dim]")
        with console.status(f"deblurring {src.name}…"):
            deblur_decoded(model, pixels, info, dst, quality=quality, compare=compare)
        console.print(Text(f"{src} → {dst} ({pixels.shape[1]}x{pixels.shape[0]})"), soft_wrap=True)


COMMANDS = [image]
