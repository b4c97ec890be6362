"""Refit the finest tail of a residual model on a data mix (deblur_cli.train.refit).

    python scripts/refit_tail.py runs/refit --init light-gopro \
        --group frames=frames:FRAMES --group reds=pairs:REDS_TRAIN \
        --group stills=stills:KODAK,stills:URBAN --group identity=identity:KODAK,identity:URBAN \
        --count 240 --variant all:frames=0.35,reds=0.1,stills=0.25,identity=0.3

Collects the normal equations of every group once (OUT/normal_equations.pt; re-running
reuses them), then writes OUT/VARIANT.safetensors for each ``--variant NAME:SHARES``. A
group's share is the weight of its mean squared error in the fit: identity=0.3 means
sharp-in/sharp-out pixels make 30 % of the objective.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from rich.progress import Progress

from deblur_cli.model import build_model
from deblur_cli.train.augment import AugmentConfig
from deblur_cli.train.data import TrainSet, open_source
from deblur_cli.train.refit import NormalEquations, collect, parse_shares, refit, tail_of
from deblur_cli.weights import load_weight_file, save_weights


def _still_options(gamma: float | str) -> dict:
    return {} if gamma == "mix" else {"mix": "none", "gamma": gamma}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--init", default="light-gopro", help="weights to start from")
    parser.add_argument("--group", action="append", default=[], metavar="NAME[@GAMMA]=SPEC[,..]")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:SHARES")
    parser.add_argument("--count", type=int, default=240, help="patches per group")
    parser.add_argument("--patch", type=int, default=176)
    parser.add_argument("--pixels", type=int, default=4096, help="sampled pixels per patch")
    parser.add_argument("--ridge", type=float, default=1e-3)
    parser.add_argument("--stills-gamma", type=float, default=1.0, help="for plain groups")
    parser.add_argument("--frames-gamma", default="1,2.2")
    parser.add_argument("--noise", type=float, default=1.0, help="input noise augmentation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--neutral",
        default=None,
        metavar="GROUP",
        help="constrain the mean correction over this group (sharp photos) to zero",
    )
    parser.add_argument(
        "--cascade",
        default=None,
        metavar="NAME:SHARES",
        help="refit every scale's tail, coarse to fine, each on the outputs of the refit "
        "coarser ones, with these shares; writes OUT/NAME.safetensors",
    )
    args = parser.parse_args()

    torch.set_num_threads(max(1, torch.get_num_threads()))
    args.out.mkdir(parents=True, exist_ok=True)
    init = load_weight_file(args.init)

    def fresh_model() -> torch.nn.Module:
        """A new network holding the --init weights (each fit starts from them)."""
        model = build_model(init.config)
        model.load_state_dict(init.state_dict)
        return model

    groups_spec: dict[str, list[str]] = {}
    stills_gamma: dict[str, float | str] = {}
    for item in args.group:
        name, _, specs = item.partition("=")
        # NAME@GAMMA: plain shake stills at this gamma; NAME@mix: synth.TRAIN_MIX stills
        name, _, gamma = name.partition("@")
        groups_spec[name] = specs.split(",")
        stills_gamma[name] = gamma if gamma == "mix" else float(gamma or args.stills_gamma)
    cache = args.out / "normal_equations.pt"
    stored = torch.load(cache, weights_only=True) if cache.is_file() else {}
    gammas = tuple(float(g) for g in args.frames_gamma.split(","))
    augment = AugmentConfig(noise=args.noise)

    def collect_groups(model, scale: int, tag: str) -> dict[str, NormalEquations]:
        found: dict[str, NormalEquations] = {}
        for name, specs in groups_spec.items():
            key = json.dumps(
                [specs, args.count, args.patch, args.pixels, args.seed, args.init,
                 stills_gamma[name], gammas, args.noise] + ([scale, tag] if tag else [])
            )  # fmt: skip
            slot = f"{name}@{scale}:{tag}" if tag else name
            if slot in stored and stored[slot]["key"] == key:
                entry = stored[slot]
                found[name] = NormalEquations(entry["xtx"], entry["xty"], entry["rows"])
                continue
            sources = [
                open_source(s, synth_options=_still_options(stills_gamma[name]), gamma=gammas)
                for s in specs
            ]
            data = TrainSet(sources, args.patch, augment, seed=args.seed)
            start = time.perf_counter()
            with Progress() as bar:
                task = bar.add_task(f"features: {name} (scale {scale})", total=args.count)
                found[name] = collect(
                    model, data, args.count, pixels_per_patch=args.pixels, seed=args.seed,
                    scale=scale,
                    progress=lambda done, total, task=task: bar.update(task, completed=done),
                )  # fmt: skip
            print(
                f"{name} scale {scale}: {args.count} patches in {time.perf_counter() - start:.0f} s"
            )
            stored[slot] = {"key": key, "xtx": found[name].xtx, "xty": found[name].xty,
                            "rows": found[name].rows}  # fmt: skip
            torch.save(stored, cache)
        return found

    if args.cascade:
        cname, _, text = args.cascade.partition(":")
        shares = parse_shares(text, list(groups_spec))
        fitted = fresh_model()
        for scale in reversed(range(init.config.n_scales)):
            found = collect_groups(fitted, scale, f"cascade {text} neutral {args.neutral}")
            refit(fitted, found, shares, args.ridge, scale=scale, neutral=args.neutral)
            bias = tail_of(fitted, scale).bias.detach().tolist()
            print(f"scale {scale} refit (tail bias {[round(b, 2) for b in bias]})")
        target = save_weights(
            args.out / f"{cname}.safetensors", fitted.state_dict(), init.config,
            description=f"{args.init} with every scale's tail refit by least squares, coarse "
            f"to fine ({text})",
            training_data=json.dumps({k: groups_spec[k] for k in shares}),
            metrics={"refit": {"shares": shares, "ridge": args.ridge, "count": args.count,
                               "patch": args.patch, "scales": "cascade",
                               "neutral": args.neutral or ""}},
        )  # fmt: skip
        print(f"{cname}: {target}")
        return
    groups = collect_groups(fresh_model(), 0, "")

    for variant in args.variant:
        vname, _, text = variant.partition(":")
        shares = parse_shares(text, list(groups))
        fitted = fresh_model()
        refit(fitted, groups, shares, args.ridge, neutral=args.neutral)
        bias = tail_of(fitted).bias.detach().tolist()
        target = save_weights(
            args.out / f"{vname}.safetensors", fitted.state_dict(), init.config,
            description=f"{args.init} with the finest tail refit by least squares ({text})",
            training_data=json.dumps({k: groups_spec[k] for k in shares}),
            metrics={"refit": {"shares": shares, "ridge": args.ridge, "count": args.count,
                               "patch": args.patch, "neutral": args.neutral or ""}},
        )  # fmt: skip
        print(f"{vname}: {target} (tail bias {[round(b, 2) for b in bias]})")


if __name__ == "__main__":
    main()
