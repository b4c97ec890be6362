"""Make a shallower network's starting point from a trained one by dropping ResBlocks.

    python scripts/trim_blocks.py runs/light-gopro/light-gopro.safetensors 7 init-7.safetensors

Keeps the head conv, the first BLOCKS ResBlocks and the tail conv of every scale, plus the
up-convolutions. A ResBlock adds a correction to its input, so a network without its last
blocks is still a sensible deblurrer: fine-tuning it (``deblur train --init``) starts far
closer to a good model than random weights. Used by ``scripts/train_candidates.py``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from deblur_cli.weights import read_weights, save_derived_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="trained .safetensors file")
    parser.add_argument("blocks", type=int, help="ResBlocks to keep per scale")
    parser.add_argument("output", help="where to write the trimmed .safetensors file")
    args = parser.parse_args()

    weights = read_weights(args.source)
    old_blocks = weights.config.n_resblocks
    if not 1 <= args.blocks <= old_blocks:
        parser.error(f"blocks must be 1..{old_blocks}")
    old_tail, new_tail = old_blocks + 1, args.blocks + 1
    state = {}
    for key, tensor in weights.state_dict.items():
        parts = key.split(".")
        if parts[0] == "body_models" and parts[2] == "body":
            index = int(parts[3])
            if index == old_tail:
                parts[3] = str(new_tail)
            elif index > args.blocks:  # a dropped ResBlock (index 0 is the head)
                continue
        state[".".join(parts)] = tensor
    config = replace(weights.config, n_resblocks=args.blocks)
    change = f"first {args.blocks} of {old_blocks} ResBlocks per scale"
    path = save_derived_weights(
        args.output, state, config, weights, str(args.source), "trimmed", change
    )
    print(f"{path}: {config.summary()}")


if __name__ == "__main__":
    main()
