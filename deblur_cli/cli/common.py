"""Options shared by the verbs that run the network, and rich console helpers.

Nothing here imports torch: ``deblur --help`` and every ``<verb> --help`` must stay fast, so
the engine is imported only when a command actually opens a model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console

from ..errors import DeblurError
from ..limits import DEFAULT_OVERLAP, MIN_TILE, check_tiling

if TYPE_CHECKING:
    from ..engine import Deblurrer

# soft_wrap: a line longer than the terminal is left for the terminal to wrap, never broken
# by rich at a space or inside a path (a path copied from the screen must stay whole).
console = Console(stderr=True, soft_wrap=True)

# The same names as deblur_cli.engine.PRECISIONS (tests/test_cli.py checks they agree); kept
# here so that parsing the options does not import torch.
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")


def _check_precision_device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """fp16 on a CPU is a usage error (exit 2) found while parsing, before any work.

    Whichever of --device/--precision is processed second sees the other in ctx.params.
    Only ``--precision fp16`` with a device that is, or resolves to, the CPU costs a torch
    import here; every other combination is decided without one.
    """
    other = "device" if param.name == "precision" else "precision"
    if other not in ctx.params:
        return value
    precision = value if param.name == "precision" else ctx.params[other]
    device = value if param.name == "device" else ctx.params[other]
    if (precision or "").lower() != "fp16" or not _runs_on_cpu(device or "auto"):
        return value
    raise click.BadParameter(
        "fp16 on a CPU runs ~1000x slower than fp32; use bf16, fp32 or auto",
        ctx=ctx,
        param_hint="'--precision'",
    )


def _runs_on_cpu(device: str) -> bool:
    name = device.lower()
    if name == "cpu":
        return True
    if name != "auto":
        return False  # an explicit accelerator; the engine reports it if it is absent
    from ..engine import choose_device

    return choose_device("auto").type == "cpu"


def _check_tiling(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    """A --tile/--overlap pair that cannot work is a usage error (exit 2) found while parsing;
    whichever of the two is processed second sees the other in ctx.params."""
    other = "overlap" if param.name == "tile" else "tile"
    if other in ctx.params:
        pair = {param.name: value, other: ctx.params[other]}
        try:
            check_tiling(pair["tile"], pair["overlap"])
        except DeblurError as err:
            raise click.UsageError(str(err), ctx=ctx) from None
    return value


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
            callback=_check_precision_device,
            help="auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.",
        ),
        click.option(
            "--precision",
            type=click.Choice(PRECISIONS),
            default="auto",
            show_default=True,
            callback=_check_precision_device,
            help="auto = fp16 on CUDA; on a CPU bf16 where native, else int8 (x86 with "
            "AVX2, for a model with an int8 calibration), else fp32. int8 runs on CPUs "
            "only. fp16 is refused on CPU (~1000x slower).",
        ),
        click.option(
            "--tile",
            type=click.IntRange(0),
            default=None,
            metavar="PX",
            callback=_check_tiling,
            help="Tile side in pixels; 0 = whole image. Default: chosen from free memory. "
            f"At least {MIN_TILE} and more than twice the overlap.",
        ),
        click.option(
            "--overlap",
            type=click.IntRange(0),
            default=None,
            metavar="PX",
            callback=_check_tiling,
            help=f"Pixels shared by neighbouring tiles, cross-faded (default {DEFAULT_OVERLAP}).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def overwrite_option(help: str, *old_names: str) -> Callable[[Callable[..., Any]], Any]:
    """--overwrite, the one flag by which every verb may replace an existing output, plus
    hidden ``old_names`` still accepted from older scripts."""

    def add(func: Callable[..., Any]) -> Any:
        for name in old_names:
            func = click.option(
                name, "overwrite", is_flag=True, hidden=True, help="Old name of --overwrite."
            )(func)
        return click.option("--overwrite", is_flag=True, help=help)(func)

    return add


quality_option = click.option(
    "--quality",
    type=click.IntRange(1, 100),
    default=95,
    show_default=True,
    help="JPEG/WebP quality of the output images.",
)

frame_batch_option = click.option(
    "--frame-batch",
    type=click.IntRange(0, 64),
    default=0,
    show_default=True,
    metavar="N",
    help="Pictures of one size per forward pass. 0 = auto: on a GPU as many as fit in 60 % "
    "of free memory (at most 8), which keeps it busy with a light network; 1 on the CPU, "
    "whose cores one picture already fills.",
)


def open_model(
    weights: str | None, device: str, precision: str, tile: int | None, overlap: int | None
) -> Deblurrer:
    """Load the model behind a spinner; the engine (and torch) is imported only now."""
    with console.status("loading model…"):
        from ..engine import load_model

        return load_model(weights, device, precision, tile=tile, overlap=overlap)


def describe(model: Deblurrer) -> str:
    name = model.weights.path.name if model.weights and model.weights.path else "in-memory"
    return f"{name}: {model.config.summary()} on {model.device} {model.precision_summary}"


def middle_ellipsis(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters by taking out its middle: a table keeps both ends
    of a long file name (``GOPR0384_11_0…000001.png``) on one line instead of breaking it."""
    if len(text) <= width:
        return text
    if width < 2:
        return text[:width]
    head = (width - 1 + 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def parse_range(
    kind: type, minimum: float | None = None
) -> Callable[[click.Context, click.Parameter, str | None], tuple | None]:
    """A click callback: 'A-B' or 'A' into an inclusive (lo, hi) pair of ``kind``, lo >= minimum."""

    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple | None:
        if value is None:
            return None
        lo, sep, hi = value.partition("-")
        try:
            pair = (kind(lo), kind(hi if sep else lo))
        except ValueError:
            raise click.BadParameter(f"expected A-B or A, got {value!r}") from None
        if pair[0] > pair[1]:
            raise click.BadParameter(f"range {value!r} is backwards")
        if minimum is not None and pair[0] < minimum:
            raise click.BadParameter(f"range {value!r} starts below {minimum}")
        return pair

    return parse
