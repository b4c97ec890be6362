"""Engine: precision choice, tile plans, seamless blending, dtype/channel round trips."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from photo_helpers import TINY, data_file, identity_weights, psnr, random_weights

from deblur_cli.engine import (
    _axis_weight,
    choose_precision,
    load_model,
    plan_tiles,
)
from deblur_cli.errors import DeblurError
from deblur_cli.io.images import read_image


def test_auto_precision_never_fp16_on_cpu() -> None:
    cpu = torch.device("cpu")
    assert choose_precision(cpu, "auto") in (torch.float32, torch.bfloat16)
    with pytest.raises(DeblurError):
        choose_precision(cpu, "fp16")


def _coverage(plan) -> np.ndarray:
    wy = [_axis_weight(plan.ys, i, plan.tile_h) for i in range(len(plan.ys))]
    wx = [_axis_weight(plan.xs, j, plan.tile_w) for j in range(len(plan.xs))]
    total = np.zeros((plan.height, plan.width), np.float32)
    for i, y in enumerate(plan.ys):
        for j, x in enumerate(plan.xs):
            total[y : y + plan.tile_h, x : x + plan.tile_w] += wy[i][:, None] * wx[j][None, :]
    return total


@pytest.mark.parametrize("multiple", [1, 4, 8])
def test_plan_tiles_properties(multiple: int) -> None:
    """Split axes use multiple-of-2^(scales-1) tiles at aligned starts, stay inside the image,
    share at least the overlap, and the blend weights cover every pixel."""
    rng = random.Random(multiple)
    for _ in range(150):
        height, width = rng.randint(8, 900), rng.randint(8, 900)
        tile = rng.choice([64, 100, 128, 256, 512])
        overlap = rng.choice([0, 16, 32, 128])
        plan = plan_tiles(height, width, tile, overlap, multiple)
        eff_overlap = min(overlap, max(tile // multiple * multiple, multiple) // 2)
        eff_overlap = eff_overlap // multiple * multiple
        for length, side, starts in (
            (height, plan.tile_h, plan.ys),
            (width, plan.tile_w, plan.xs),
        ):
            if len(starts) == 1:
                assert side == length and starts == (0,)  # whole axis: the net pads it itself
                continue
            assert side % multiple == 0 and side <= tile
            assert starts[0] == 0 and starts[-1] + side == length
            assert all(s % multiple == 0 for s in starts[:-1])
            gaps = np.diff(starts)
            assert (gaps > 0).all() and (side - gaps >= eff_overlap).all()
        assert _coverage(plan).min() > 0


def test_plan_whole_image_when_tile_zero_or_large() -> None:
    assert len(plan_tiles(720, 1280, 0, 128, 4)) == 1
    assert len(plan_tiles(720, 1280, 2048, 128, 4)) == 1


def test_tiled_matches_whole_image_on_real_photo(tmp_path: Path) -> None:
    """No seams: 256-px tiles of a real 1280x720 frame agree with whole-image inference."""
    photo = data_file("eval", "gopro_style_train_scenes", "blur")
    pixels, _ = read_image(sorted(photo.glob("*.png"))[0])
    assert pixels.shape[:2] == (720, 1280)
    model = load_model(random_weights(tmp_path / "w.safetensors", TINY), "cpu", "fp32")
    whole = model(pixels, tile=0)
    tiled = model(pixels, tile=256)
    assert model.stats["tiles"] > 4
    assert psnr(whole, tiled) >= 45.0


@pytest.mark.parametrize(
    "shape,dtype",
    [
        ((40, 52), np.uint8),
        ((40, 52, 3), np.uint16),
        ((40, 52, 4), np.uint8),
        ((40, 52, 1), np.uint8),
    ],
)
def test_deblur_array_keeps_shape_dtype_alpha(tmp_path: Path, shape, dtype) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype)
    model = load_model(identity_weights(tmp_path / "id.safetensors"), "cpu", "fp32")
    out = model(image, tile=32)
    assert out.shape == image.shape and out.dtype == image.dtype
    if len(shape) == 3 and shape[2] == 4:
        assert np.array_equal(out[..., 3], image[..., 3])
    # the identity network through tiles gives the input back at full bit depth
    assert np.abs(out.astype(np.int64) - image.astype(np.int64)).max() <= 1


def test_random_net_changes_pixels_but_not_alpha(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, size=(48, 64, 4), dtype=np.uint8)
    model = load_model(random_weights(tmp_path / "w.safetensors", TINY), "cpu", "fp32")
    out = model(image)
    assert not np.array_equal(out[..., :3], image[..., :3])
    assert np.array_equal(out[..., 3], image[..., 3])


def test_auto_tile_is_an_area_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide image whose area fits the automatic tile's area runs whole (no overlap cost)."""
    import deblur_cli.engine as engine

    model = load_model(random_weights(tmp_path / "w.safetensors", TINY), "cpu", "fp32")
    image = np.zeros((100, 300, 3), np.uint8)
    monkeypatch.setattr(engine, "auto_tile", lambda _model: 200)  # 200^2 >= 100*300
    model(image)
    assert model.stats["tiles"] == 1
    monkeypatch.setattr(engine, "auto_tile", lambda _model: 160)  # 160^2 < 100*300
    model(image)
    assert model.stats["tiles"] > 1
