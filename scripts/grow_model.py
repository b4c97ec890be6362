"""Make a larger network that computes exactly what a trained one computes (Net2Net-style).

    python scripts/grow_model.py light-gopro --feats 64 wide-init.safetensors
    python scripts/grow_model.py light-gopro --blocks 11 deep-init.safetensors
    python scripts/grow_model.py light-gopro --kernel 5 wide-view-init.safetensors

Why: comparing a larger config with the trained default on the same data and budget is only
fair if both start from the same function; a larger network trained from scratch would first
spend most of the budget catching up. So the new parts start "switched off":

- wider (``--feats``): every new feature channel gets random incoming weights (the spread
  of the layer's trained ones), so it computes features and receives gradients, but all
  weights *from* new channels into old ones and into the RGB tail are zero, so the output is
  unchanged;
- deeper (``--blocks``): appended ResBlocks get a random first conv and a zero second conv,
  so each adds exactly nothing until training moves it;
- larger kernels (``--kernel``, e.g. the paper's 5x5): every kernel is zero-padded in the
  middle of the larger one (padding grows with it), so each conv computes what it did, and
  the new taps widen the receptive field as training moves them off zero.

Fine-tuning the result (``deblur train --init``) then measures what the extra capacity buys.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import torch

from deblur_cli.model import build_model
from deblur_cli.weights import load_weight_file, save_derived_weights

# New incoming weights get the spread of the trained layer they extend, so new channels
# carry features of the usual size and their zero outgoing weights get full-size gradients.
# With a tiny spread (1e-3) they were still ~30x smaller than the old ones after 1,500
# fine-tuning steps, and the wider network scored what the light one did to 0.01 dB: no
# test of capacity at all.


def grow(
    state: dict[str, torch.Tensor], feats: int, blocks: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Return the grown state dict (official key names) for ``feats`` and ``blocks``."""
    generator = torch.Generator().manual_seed(seed)

    def noise(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        return torch.randn(shape, generator=generator) * like.float().std()

    grown: dict[str, torch.Tensor] = {}
    tails: dict[str, int] = {}
    for key in state:
        parts = key.split(".")
        if parts[0] == "body_models" and parts[2] == "body":
            scale, index = parts[1], int(parts[3])
            tails[scale] = max(tails.get(scale, 0), index)
    for key, tensor in state.items():
        parts = key.split(".")
        if parts[0] != "body_models":
            grown[key] = tensor.clone()  # up-convolutions work on RGB: width-independent
            continue
        index, old_tail = int(parts[3]), tails[parts[1]]
        if index == old_tail:  # the conv back to RGB: new channels feed it nothing
            parts[3] = str(blocks + 1)
            if tensor.dim() == 4:
                out, old_in, k, _ = tensor.shape
                tensor = torch.cat([tensor, tensor.new_zeros(out, feats - old_in, k, k)], 1)
            grown[".".join(parts)] = tensor.clone()
            continue
        if tensor.dim() == 1:  # bias: new channels start at zero
            grown[key] = torch.cat([tensor, tensor.new_zeros(feats - tensor.shape[0])])
            continue
        out, inp, k, _ = tensor.shape
        new_out = feats - out
        new_in = 0 if index == 0 else feats - inp  # the head reads the RGB input
        top = torch.cat([tensor, tensor.new_zeros(out, new_in, k, k)], 1)
        bottom = noise((new_out, inp + new_in, k, k), tensor)
        grown[key] = torch.cat([top, bottom], 0)
    # Appended ResBlocks: body.0 random (small), body.2 zero -> each is the identity.
    k = state["body_models.0.body.0.weight"].shape[-1]
    for scale, old_tail in tails.items():
        first_convs = [
            grown[f"body_models.{scale}.body.{i}.body.0.weight"] for i in range(1, old_tail)
        ]
        for index in range(old_tail, blocks + 1):
            prefix = f"body_models.{scale}.body.{index}.body"
            grown[f"{prefix}.0.weight"] = noise((feats, feats, k, k), torch.stack(first_convs))
            grown[f"{prefix}.0.bias"] = torch.zeros(feats)
            grown[f"{prefix}.2.weight"] = torch.zeros(feats, feats, k, k)
            grown[f"{prefix}.2.bias"] = torch.zeros(feats)
    return grown


def widen_kernels(state: dict[str, torch.Tensor], kernel: int) -> dict[str, torch.Tensor]:
    """Every k x k conv kernel centred in a ``kernel`` x ``kernel`` one of zeros."""
    out = {}
    for key, tensor in state.items():
        if tensor.dim() == 4 and tensor.shape[-1] < kernel:
            pad = (kernel - tensor.shape[-1]) // 2
            tensor = torch.nn.functional.pad(tensor, (pad, pad, pad, pad))
        out[key] = tensor.clone()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="trained weights: a registry name or a file")
    parser.add_argument("output", help="where to write the grown .safetensors file")
    parser.add_argument("--feats", type=int, help="feature channels (default: unchanged)")
    parser.add_argument("--blocks", type=int, help="ResBlocks per scale (default: unchanged)")
    parser.add_argument("--kernel", type=int, help="kernel size, odd (default: unchanged)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    weights = load_weight_file(args.source)
    config = weights.config
    feats = args.feats or config.n_feats
    blocks = args.blocks or config.n_resblocks
    kernel = args.kernel or config.kernel_size
    if feats < config.n_feats or blocks < config.n_resblocks or kernel < config.kernel_size:
        parser.error(f"can only grow: the source has {config.summary()}")
    if kernel % 2 == 0:
        parser.error("--kernel must be odd")
    state = grow(weights.state_dict, feats, blocks, args.seed)
    state = widen_kernels(state, kernel)
    new_config = replace(config, n_feats=feats, n_resblocks=blocks, kernel_size=kernel)
    build_model(new_config).load_state_dict(state)  # shapes checked before anything is written
    change = f"{config.summary()} -> {new_config.summary()}, same output"
    path = save_derived_weights(
        args.output, state, new_config, weights, str(args.source), "grown", change
    )
    print(f"{path}: {new_config.summary()}")


if __name__ == "__main__":
    main()
