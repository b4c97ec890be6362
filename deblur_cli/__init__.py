"""deblur: remove motion blur from photos and video.

Library API (the CLI only wraps it)::

    from deblur_cli import load_model, deblur_array
    model = load_model()                 # bundled default; or a path, hf://…, registry name
    sharp = deblur_array(model, rgb)     # HxWx3/HxWx4/HxW, uint8 or uint16 → same
"""

__version__ = "0.1.0"

from .engine import Deblurrer, deblur_array, load_model  # noqa: E402
from .errors import DeblurError  # noqa: E402
from .model import CONFIGS, ModelConfig, MultiScaleDeblurNet, build_model  # noqa: E402

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
