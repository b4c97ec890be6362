"""Limits on what the network is given, checked while the options are parsed.

Nothing here imports torch, numpy or OpenCV: a ``--tile`` that cannot work, or a picture too
small to deblur, is refused before the model (or anything heavy) loads. The numbers agree with
the engine's (``tests/test_cli.py`` checks ``MIN_TILE`` and ``DEFAULT_OVERLAP``).
"""

from __future__ import annotations

from .errors import InputError

DEFAULT_OVERLAP = 128  # engine.DEFAULT_OVERLAP
MIN_TILE = 64  # engine.MIN_TILE: the smallest tile the engine falls back to on out-of-memory
# Tiles start on multiples of 2^(scales-1), so that each tile's image pyramid samples the same
# pixels as the whole image's: 4 for the three-scale networks (all the bundled ones).
PYRAMID_MULTIPLE = 4
MIN_SIDE = 8  # pixels: the 1/4 scale of a smaller picture is a pixel or two wide


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def min_tile(overlap: int | None, multiple: int = PYRAMID_MULTIPLE) -> int:
    """The smallest tile side that works with ``overlap``: a multiple of the pyramid's step,
    more than twice the overlap (the engine rounds the overlap up to that step, and each
    tile must keep a centre that no neighbour cross-fades), and at least ``MIN_TILE``."""
    overlap = DEFAULT_OVERLAP if overlap is None else overlap
    return max(MIN_TILE, 2 * _round_up(overlap, multiple) + multiple)


def check_tiling(tile: int | None, overlap: int | None, multiple: int = PYRAMID_MULTIPLE) -> None:
    """Refuse a ``--tile``/``--overlap`` pair that cannot work, in one line that says the
    minimum and why. ``tile`` None (automatic) or 0 (whole image) is always fine."""
    if not tile:
        return
    shown = DEFAULT_OVERLAP if overlap is None else overlap
    flag = f"--overlap {shown}" if overlap is not None else f"the default --overlap {shown}"
    if overlap is not None and overlap >= tile:
        raise InputError(
            f"--overlap {shown} must be smaller than --tile {tile}: it is the strip that "
            "neighbouring tiles share"
        )
    least = min_tile(overlap, multiple)
    if tile < least:
        raise InputError(
            f"--tile {tile} is too small: with {flag} a tile must be at least {least} px "
            f"(over twice the overlap, so each tile keeps a centre that is not cross-faded; "
            f"in steps of {multiple} px, the image pyramid's; {MIN_TILE} at least): use "
            f"--tile {least} or more, a smaller --overlap, or --tile 0 for the whole image"
        )


def check_min_size(path: object, width: int, height: int) -> None:
    """A picture must be at least ``MIN_SIDE`` pixels on each side."""
    if min(width, height) < MIN_SIDE:
        raise InputError(
            f"{path}: {width}x{height} is too small to deblur; the smallest picture is "
            f"{MIN_SIDE}x{MIN_SIDE} px"
        )
