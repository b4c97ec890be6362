"""``deblur demo``: the default model on a real blurry photo with its ground truth.

The bundled pair (deblur_cli/examples, made by scripts/make_example.py) is real motion blur:
11 consecutive 240 fps frames of the GOPRO dataset averaged as the dataset was made (CC BY
4.0, Nah et al. 2017; see examples/CREDITS.md), with the middle frame as the sharp truth, so
the comparison shows honestly what the model does, with PSNR before and after.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import click

from .common import console, describe, model_options, open_model, overwrite_option

EXAMPLE_BLURRY, EXAMPLE_SHARP = "blurry.png", "sharp.png"
EXAMPLE_NOTE = (
    "example: 11 averaged 240 fps frames of GOPRO scene GOPR0477_11_00 (Nah et al. 2017, "
    "CC BY 4.0), which the default model saw in training"
)


def example_path(name: str) -> Path:
    return Path(str(resources.files("deblur_cli").joinpath("examples", name)))


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
@model_options
@overwrite_option(
    "Replace existing files that an earlier demo did not write (its own are replaced "
    "anyway, so the same command can be run again)."
)
def demo(output: Path, weights, device, precision, tile, overlap, overwrite: bool) -> None:
    """Deblur a real blurry photo that ships with the package and compare with the truth.

    No download and no GPU needed. Writes OUTPUT/blurry.png, OUTPUT/deblurred.png,
    OUTPUT/sharp.png and OUTPUT/compare.png (blurry | deblurred | sharp, labelled with
    PSNR against the sharp picture); an OUTPUT that names an image file gets the
    comparison alone. The blur is real camera and subject motion (GOPRO dataset, CC BY 4.0).

    \b
    Examples:
      deblur demo                       # → deblur-demo/compare.png
      deblur demo -o demo.png           # just the comparison picture
      deblur demo -w my.safetensors     # try your own weights on the same picture
    """
    from ..io.sniff import IMAGE_EXTENSIONS, SOFTWARE
    from ..outputs import check_replace, check_writable, is_own_output

    single = output.suffix.lower() in IMAGE_EXTENSIONS and not output.is_dir()
    names = ("compare",) if single else ("sharp", "blurry", "deblurred", "compare")
    targets = [output] if single else [output / f"{name}.png" for name in names]
    for target in targets:  # files an earlier demo wrote carry its mark: those are replaced
        check_replace(target, overwrite or (target.is_file() and is_own_output(target)))
    check_writable(targets)
    from ..engine import deblur_array
    from ..io.images import ImageInfo, read_image, write_image
    from ..photos import side_by_side
    from ..train.metrics import psnr

    mark = ImageInfo(software=SOFTWARE)
    blurry, _ = read_image(example_path(EXAMPLE_BLURRY))
    sharp, _ = read_image(example_path(EXAMPLE_SHARP))
    model = open_model(weights, device, precision, tile, overlap)
    console.print(f"[dim]{describe(model)}[/dim]")
    console.print(f"[dim]{EXAMPLE_NOTE}[/dim]", soft_wrap=True)
    with console.status("deblurring the example…"):
        result = deblur_array(model, blurry)
    before, after = psnr(blurry, sharp), psnr(result, sharp)
    labels = (f"blurry {before:.2f} dB", f"deblurred {after:.2f} dB", "sharp")
    comparison = side_by_side(blurry, result, sharp, labels=labels)
    pictures = {"sharp": sharp, "blurry": blurry, "deblurred": result, "compare": comparison}
    for name, target in zip(names, targets, strict=True):
        write_image(target, pictures[name], mark)
    compare_path = targets[-1]
    console.print(f"PSNR vs the sharp picture: {before:.2f} dB blurry → {after:.2f} dB deblurred")
    console.print(f"wrote [bold]{compare_path}[/bold]")


COMMANDS = [demo]
