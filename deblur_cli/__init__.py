"""deblur: remove motion blur from photos and video.

Library API (the CLI only wraps it)::

    from deblur_cli import load_model, deblur_array
    model = load_model()                 # bundled default; or a path, hf://…, registry name
    sharp = deblur_array(model, rgb)     # HxWx3/HxWx4/HxW, uint8 or uint16 → same

The names below are imported on first use (PEP 562), so that ``import deblur_cli`` — and
with it ``deblur --help`` — does not pay for torch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name → the submodule that defines it
_LAZY = {
    "Deblurrer": "engine",
    "deblur_array": "engine",
    "load_model": "engine",
    "DeblurError": "errors",
    "CONFIGS": "model",
    "ModelConfig": "model",
    "MultiScaleDeblurNet": "model",
    "build_model": "model",
}

__all__ = [
    "CONFIGS",
    "DeblurError",
    "Deblurrer",
    "ModelConfig",
    "MultiScaleDeblurNet",
    "build_model",
    "deblur_array",
    "load_model",
    "__version__",
]

if TYPE_CHECKING:
    from .engine import Deblurrer, deblur_array, load_model
    from .errors import DeblurError
    from .model import CONFIGS, ModelConfig, MultiScaleDeblurNet, build_model


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
