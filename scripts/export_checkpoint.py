"""Write the generator of a training checkpoint as a weight file.

``deblur train`` exports at its end; a run stopped early (Ctrl-C, a session's time) keeps
only ``checkpoint.pt``. This writes that network, read with ``weights_only=True``, as a
safetensors file with the run's config:

    python scripts/export_checkpoint.py runs/ft/checkpoint.pt runs/ft/step.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deblur_cli.model import ModelConfig  # noqa: E402
from deblur_cli.weights import save_weights  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    config = ModelConfig(**state["model_config"])
    path = save_weights(
        args.out, state["G"], config, description=f"{args.checkpoint} at step {state['step']}"
    )
    print(f"step {state['step']} → {path}")


if __name__ == "__main__":
    main()
