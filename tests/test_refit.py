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
