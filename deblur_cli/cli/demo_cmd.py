"""``deblur demo``: deblur the bundled example picture — proof that an install works offline."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import click

from ..photos import deblur_file
from .common import console, describe, model_options, open_model

EXAMPLE = "blurry_street.png"


@click.command("demo")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("deblur-demo"),
    show_default=True,
    help="Folder for the example, its result and a comparison.",
)
@model_options
def demo(output: Path, weights, device, precision, tile, overlap) -> None:
    """Deblur the bundled example with the default model (no download, no GPU needed).

    Writes OUTPUT/blurry_street.png, OUTPUT/blurry_street_deblurred.png and a labelled
    OUTPUT/blurry_street_compare.png.
    """
    source = Path(str(resources.files("deblur_cli").joinpath("examples", EXAMPLE)))
    output.mkdir(parents=True, exist_ok=True)
    blurry = output / EXAMPLE
    shutil.copyfile(source, blurry)
    model = open_model(weights, device, precision, tile, overlap)
    console.print(f"[dim]{describe(model)}[/dim]")
    result = output / "blurry_street_deblurred.png"
    compare = output / "blurry_street_compare.png"
    with console.status("deblurring the example…"):
        deblur_file(model, blurry, result, compare=compare)
    console.print(f"wrote [bold]{result}[/bold] and [bold]{compare}[/bold]")


COMMANDS = [demo]
