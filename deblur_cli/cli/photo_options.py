"""Options shared by ``deblur image`` and ``deblur batch`` (the photo verbs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

max_megapixels_option = click.option(
    "--max-megapixels",
    type=click.FloatRange(min=0),
    default=None,
    metavar="MP",
    help="Refuse pictures larger than this, judged from the file header before decoding. "
    "Default: $DEBLUR_MAX_MEGAPIXELS, else 200. 0 = no limit.",
)


def photo_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options every photo verb takes on top of the model options."""
    for option in reversed([max_megapixels_option]):
        func = option(func)
    return func
