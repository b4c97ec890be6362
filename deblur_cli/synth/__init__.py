"""Training pairs with realistic blur: GOPRO-style frame averaging and camera-shake stills.

The two generators the trainer calls on the fly::

    average_frames(frames, gamma=2.2) -> blurry uint8
    synth_still(sharp, rng, **options) -> (blurry, sharp) uint8

``deblur synth frames|stills`` writes the same pairs in the GOPRO_Large layout.
"""

from __future__ import annotations

from .frames import FrameSource, Window, average_frames, plan_windows
from .response import Response, load_crf
from .stills import (
    TRAIN_MIX,
    StillOptions,
    StillPair,
    make_options,
    render_still,
    synth_still,
    with_train_mix,
)

__all__ = [
    "TRAIN_MIX",
    "FrameSource",
    "Response",
    "StillOptions",
    "StillPair",
    "Window",
    "average_frames",
    "load_crf",
    "make_options",
    "plan_windows",
    "render_still",
    "synth_still",
    "with_train_mix",
]
