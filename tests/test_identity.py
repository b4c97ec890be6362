"""Identity pairs (sharp in, sharp out) in training: the data path and the CLI switch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import DATA, need_shared, run_cli

from deblur_cli.errors import InputError
from deblur_cli.train.data import TrainSet, load_rgb, open_source
from deblur_cli.train.identity import degrade, size_identity

KODAK = ("data", "sharp", "kodak24crop_ffdnet")


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse)) if mse else float("inf")


def test_identity_pairs_are_the_photo_with_mild_camera_noise() -> None:
    root = need_shared(*KODAK)
    source = open_source(f"identity:{root}")
    assert source.kind == "identity" and len(source) == 24
    changed = 0
    for k in range(12):
        noisy, sharp = source.sample(k, np.random.default_rng(k), 96)
        assert noisy.shape == sharp.shape == (96, 96, 3)
        # the target is an untouched crop of photo k, at the window the generator drew
        photo = load_rgb(source.paths[k])
        where = np.random.default_rng(k)
        y = int(where.integers(0, photo.shape[0] - 96 + 1))
        x = int(where.integers(0, photo.shape[1] - 96 + 1))
        assert np.array_equal(photo[y : y + 96, x : x + 96], sharp)
        # the input is the same picture, mildly degraded, and no brighter or darker
        assert _psnr(noisy, sharp) > 33
        assert abs(noisy.astype(float).mean() - sharp.astype(float).mean()) < 0.5
        changed += not np.array_equal(noisy, sharp)
    assert changed >= 6  # most inputs carry noise and/or JPEG
    # a sample is a pure function of (index, seed)
    a = source.sample(3, np.random.default_rng(7), 64)
    b = source.sample(3, np.random.default_rng(7), 64)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_degrade_has_no_tone_shift_on_a_real_photo() -> None:
    root = need_shared(*KODAK)
    source = open_source(f"identity:{root}")
    photo = source._photo(0)
    shifts = [
        degrade(photo, np.random.default_rng(i), always=True).astype(float).mean()
        - photo.astype(float).mean()
        for i in range(4)
    ]
    assert max(abs(s) for s in shifts) < 0.3


def test_identity_fraction_sets_the_share_of_samples(tmp_path: Path) -> None:
    need_shared(*KODAK)
    reds = need_shared("data", "pairs", "reds_x4")
    pairs = open_source(f"pairs:{reds}")
    ident = open_source(f"identity:{DATA / 'sharp' / 'kodak24crop_ffdnet'}")
    size_identity([pairs, ident], 0.25)
    share = len(ident) / (len(ident) + len(pairs))
    assert abs(share - 0.25) < 0.02
    train = TrainSet([pairs, ident], patch=64)
    assert len(train) == len(pairs) + len(ident)
    # over one epoch, about that share of pairs are near-identical (REDS pairs are blurry)
    psnrs = []
    for k in range(len(train)):
        b, s = train[k]
        psnrs.append(_psnr(b.numpy(), s.numpy()))
    near_identity = sum(p > 30 for p in psnrs) / len(psnrs)
    assert 0.15 < near_identity < 0.5
    with pytest.raises(InputError, match="identity:DIR"):
        size_identity([pairs], 0.25)


def test_cli_train_with_identity_pairs(tmp_path: Path) -> None:
    kodak = need_shared(*KODAK)
    reds = need_shared("data", "pairs", "reds_x4")
    out = tmp_path / "run"
    common = ["--config", "3,1,8,3", "--steps", "2", "--batch", "2", "--patch", "64"]
    common += ["--workers", "0", "--val-count", "0", "--out", str(out)]
    result = run_cli(
        "train", f"pairs:{reds}", f"identity:{kodak}", "--identity-fraction", "0.3", *common
    )
    assert result.returncode == 0, result.stderr
    said = result.stdout + result.stderr
    assert "identity:" in said and "items" in said
    bad = run_cli("train", f"pairs:{reds}", "--identity-fraction", "0.3", *common, "--restart")
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error:") and "identity:DIR" in bad.stderr
    assert "Traceback" not in bad.stderr
