"""``deblur demo``: blur the bundled sharp picture, deblur it, and score both against it.

Proof that an install works offline, and an honest one: the picture is blurred here by the
synthesis code (a seeded camera-shake path), so the sharp original is known and the
comparison shows PSNR before and after.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from .common import console, describe, model_options, open_model

EXAMPLE = "street.png"  # rendered by scripts/make_example.py: our own pixels, public domain


@click.command("demo")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=Path("deblur-demo"),
    show_default=True,
    help="A folder for all four pictures, or a file name such as demo.png for the "
    "comparison alone.",
)
@click.option(
    "--shake",
    type=click.FloatRange(0.0, 0.1),
    default=0.012,
    show_default=True,
    help="Camera-shake extent as a fraction of the picture's diagonal.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the shake path.")
@model_options
def demo(output: Path, shake: float, seed: int, weights, device, precision, tile, overlap) -> None:
    """Blur the bundled example with camera shake, then deblur it with the default model.

    No download and no GPU needed. Writes OUTPUT/sharp.png, OUTPUT/blurry.png,
    OUTPUT/deblurred.png and OUTPUT/compare.png (blurry | deblurred | sharp, labelled with
    PSNR against the sharp picture); an OUTPUT that names an image file gets the
    comparison alone.

    \b
    Examples:
      deblur demo                       # → deblur-demo/compare.png
      deblur demo -o demo.png           # just the comparison picture
      deblur demo -o out --shake 0.04   # stronger shake
      deblur demo -w my.safetensors     # try your own weights
    """
    import numpy as np

    from ..engine import deblur_array
    from ..io.images import IMAGE_EXTENSIONS, read_image, write_image
    from ..photos import side_by_side
    from ..synth import synth_still
    from ..train.metrics import psnr

    source = Path(str(resources.files("deblur_cli").joinpath("examples", EXAMPLE)))
    pixels, _ = read_image(source)
    blurry, sharp = synth_still(pixels, np.random.default_rng(seed), blur=(shake, shake))
    model = open_model(weights, device, precision, tile, overlap)
    console.print(f"[dim]{describe(model)}[/dim]")
    with console.status("deblurring the example…"):
        result = deblur_array(model, blurry)
    before, after = psnr(blurry, sharp), psnr(result, sharp)
    labels = (f"blurry {before:.2f} dB", f"deblurred {after:.2f} dB", "sharp")
    comparison = side_by_side(blurry, result, sharp, labels=labels)
    if output.suffix.lower() in IMAGE_EXTENSIONS and not output.is_dir():
        compare_path = output
        output.parent.mkdir(parents=True, exist_ok=True)
    else:
        output.mkdir(parents=True, exist_ok=True)
        for name, image in (("sharp", sharp), ("blurry", blurry), ("deblurred", result)):
            write_image(output / f"{name}.png", image)
        compare_path = output / "compare.png"
    write_image(compare_path, comparison)
    console.print(f"PSNR vs the sharp picture: {before:.2f} dB blurry → {after:.2f} dB deblurred")
    console.print(f"wrote [bold]{compare_path}[/bold]")


COMMANDS = [demo]
