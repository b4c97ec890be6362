"""Options shared by the verbs that run the network, and rich console helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from ..engine import PRECISIONS, Deblurrer, load_model

console = Console(stderr=True)


def model_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--weights/--device/--precision/--tile/--overlap, identical on every verb."""
    options = [
        click.option(
            "--weights",
            "-w",
            default=None,
            metavar="SPEC",
            help="A .safetensors/.pt file, hf://owner/repo/file[@rev], or a name from "
            "'deblur weights list'. Default: the bundled model.",
        ),
        click.option(
            "--device",
            default="auto",
            show_default=True,
            help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.",
        ),
        click.option(
            "--precision",
            type=click.Choice(PRECISIONS),
            default="auto",
            show_default=True,
            help="auto = fp16 on CUDA, bf16 on CPUs with native bf16, else fp32.",
        ),
        click.option(
            "--tile",
            type=int,
            default=None,
            metavar="PX",
            help="Tile side in pixels; 0 = whole image. Default: chosen from free memory.",
        ),
        click.option(
            "--overlap",
            type=int,
            default=None,
            metavar="PX",
            help="Pixels shared by neighbouring tiles, cross-faded (default 128).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


quality_option = click.option(
    "--quality",
    type=click.IntRange(1, 100),
    default=95,
    show_default=True,
    help="JPEG/WebP quality of the output images.",
)


def open_model(
    weights: str | None, device: str, precision: str, tile: int | None, overlap: int | None
) -> Deblurrer:
    with console.status("loading model…"):
        return load_model(weights, device, precision, tile=tile, overlap=overlap)


def describe(model: Deblurrer) -> str:
    name = model.weights.path.name if model.weights and model.weights.path else "in-memory"
    return f"{name}: {model.config.summary()} on {model.device} {model.precision}"
