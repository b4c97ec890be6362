"""Least-squares refit of the finest tail: it removes a tone shift the network learnt."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import need_shared

from deblur_cli.engine import prepare
from deblur_cli.model import ModelConfig, build_model
from deblur_cli.train.augment import AugmentConfig
from deblur_cli.train.data import TrainSet, open_source
from deblur_cli.train.evaluate import check_sharp
from deblur_cli.train.refit import collect, parse_shares, refit, tail_of


def _darkening_net() -> torch.nn.Module:
    torch.manual_seed(0)
    config = ModelConfig(3, 1, 8, 3, residual=True)
    net = build_model(config)
    with torch.no_grad():
        tail_of(net).weight.normal_(0, 0.01)
        tail_of(net).bias.fill_(-3.0)  # every output 3 grey levels darker
    return net


def test_refit_on_identity_pairs_removes_the_darkening() -> None:
    kodak = need_shared("data", "sharp", "kodak24crop_ffdnet")
    photos = sorted(kodak.iterdir())
    net = _darkening_net()
    data = TrainSet([open_source(f"identity:{kodak}")], 64, AugmentConfig.none(), seed=1)
    groups = {"identity": collect(net, data, 12, pixels_per_patch=512, margin=8)}
    assert groups["identity"].rows == 12 * 512

    def shift(model: torch.nn.Module) -> dict:
        runner = prepare(model, torch.device("cpu"), torch.float32, tile=0)
        return check_sharp(photos[-4:], runner)  # photos the fit never sampled first

    before = shift(_darkening_net())
    assert before["mean"]["shift"]["all"] < -2.5
    assert not before["passes"]
    refit(net, groups, {"identity": 1.0}, ridge=1e-3)
    after = shift(net)
    assert abs(after["mean"]["shift"]["all"]) < 0.3
    assert after["mean"]["psnr"] > before["mean"]["psnr"] + 5


def test_parse_shares_checks_names() -> None:
    assert parse_shares("identity=0.3, frames=0.7", ["identity", "frames"]) == {
        "identity": 0.3,
        "frames": 0.7,
    }
    with pytest.raises(ValueError, match="unknown group"):
        parse_shares("stills=1", ["identity"])
    assert np.isclose(
        sum(parse_shares("identity=0.25,frames=0.75", ["identity", "frames"]).values()), 1
    )


def test_neutral_group_gets_no_mean_correction() -> None:
    """A blurry group that asks for darkening cannot darken the neutral (sharp) group."""
    from deblur_cli.train.refit import NormalEquations, solve

    gen = torch.Generator().manual_seed(0)

    def group(offset: float, target_mean: float) -> tuple[NormalEquations, torch.Tensor]:
        x = torch.randn(4000, 6, generator=gen, dtype=torch.float64) + offset
        x = torch.cat([x, torch.ones(4000, 1, dtype=torch.float64)], 1)
        y = x[:, :3] * 0.5 + target_mean + 0.1 * torch.randn(4000, 3, generator=gen).double()
        return NormalEquations(x.T @ x, x.T @ y, 4000), x

    blurry, _ = group(0.3, -3.0)  # wants a -3 grey-level correction on average
    sharp, x_sharp = group(-0.2, 0.0)
    groups = {"blurry": blurry, "sharp": sharp}
    current = (torch.zeros(3, 6, 1, 1), torch.zeros(3))
    free_w, free_b = solve(groups, {"blurry": 0.7, "sharp": 0.3}, current, ridge=1e-6)
    held_w, held_b = solve(groups, {"blurry": 0.7, "sharp": 0.3}, current, 1e-6, "sharp")

    def mean_on_sharp(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        coef = torch.cat([w.reshape(3, -1), b[:, None]], 1).T.double()
        return (x_sharp @ coef).mean(0)

    assert mean_on_sharp(free_w, free_b).abs().min() > 0.3  # pulled toward darkening
    assert mean_on_sharp(held_w, held_b).abs().max() < 1e-6  # held at zero
