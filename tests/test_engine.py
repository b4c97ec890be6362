"""Engine: precision choice, tile plans, seamless blending, dtype/channel round trips, and
the fused inference path against eager PyTorch."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import need_shared, run_cli
from photo_helpers import TINY, data_file, identity_weights, psnr, random_weights

from deblur_cli.engine import (
    _axis_weight,
    choose_precision,
    cpu_supports_bf16,
    deblur_array,
    deblur_frames,
    frames_per_batch,
    load_model,
    plan_tiles,
    prepare,
)
from deblur_cli.errors import DeblurError
from deblur_cli.fused import FusedNet, fast_gaussian_pyramid, onednn_usable
from deblur_cli.io.images import read_image
from deblur_cli.model import ModelConfig, build_model
from deblur_cli.pyramid import gaussian_pyramid
from deblur_cli.weights import convert_official


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


# --------------------------------------------------------------------------- fused path


def _real_crop() -> np.ndarray:
    photo = data_file("eval", "gopro_style_train_scenes", "blur")
    pixels, _ = read_image(sorted(photo.glob("*.png"))[0])
    return pixels[200:456, 300:620]  # 256x320 of a real 720p frame: seconds, not minutes


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fused_default_model_matches_eager_fp32(precision: str) -> None:
    """The fused path of the bundled default (the one users run) stays within one grey level
    of eager PyTorch at the same precision on a real photo; bf16 itself (fused or not) may
    round a few pixels 2 levels away from fp32."""
    if precision == "bf16" and not cpu_supports_bf16():
        pytest.skip("this CPU has no native bf16")
    pixels = _real_crop()
    eager32 = load_model(None, "cpu", "fp32", tile=0, fused=False)
    eager = load_model(None, "cpu", precision, tile=0, fused=False)
    fused = load_model(None, "cpu", precision, tile=0, fused=True)
    assert eager.backend == "eager" and fused.backend != "eager"
    reference = eager32(pixels).astype(np.int16)
    same_precision = eager(pixels).astype(np.int16)
    out = fused(pixels).astype(np.int16)
    assert np.abs(out - same_precision).max() <= 1
    assert (out != same_precision).mean() < (0.001 if precision == "fp32" else 0.05)
    assert np.abs(out - reference).max() <= (1 if precision == "fp32" else 2)
    assert (np.abs(out - reference) > 1).mean() < 0.001
    assert np.abs(reference - pixels).max() >= 5  # the network did change the picture


def test_fused_official_checkpoint_matches_fixture(tmp_path: Path) -> None:
    """The official checkpoint through the fused path reproduces the official outputs."""
    folder = need_shared("fixtures", "official-tiny")
    io = np.load(folder / "io.npz")
    wf = convert_official(folder / "model-1000.pt", tmp_path / "official.safetensors")
    for onednn in (True, False):
        model = load_model(wf, "cpu", "fp32", tile=0)
        model.runner = FusedNet(
            model.net, onednn=onednn and onednn_usable(model.device, model.dtype)
        )
        x = torch.from_numpy(io["blur"]).permute(2, 0, 1)[None].float()
        out = model.runner(x)[0].permute(1, 2, 0).numpy()
        assert np.abs(out - io["output_0"]).max() < 1e-2


def test_in_place_path_matches_eager(tmp_path: Path) -> None:
    """The plain-PyTorch fused variant (what CUDA/MPS run) computes the same function,
    residual and not, at sizes that are no multiple of 4."""
    for config in (TINY, ModelConfig(3, 2, 8, 3, residual=True)):
        torch.manual_seed(0)
        net = build_model(config)
        for scale in net.body_models:
            scale.body[-1].reset_parameters()
        model = prepare(net, torch.device("cpu"), torch.float32, tile=0, fused=False)
        image = torch.rand(1, 3, 37, 53) * 255
        with torch.inference_mode():
            expected = model.net(image)
            got = FusedNet(model.net, onednn=False)(image)
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-3)


@pytest.mark.parametrize("shape", [(96, 160), (37, 51), (5, 9), (2, 3)])
def test_fast_pyramid_is_the_reference_pyramid(shape) -> None:
    image = torch.rand(1, 3, *shape) * 255
    for fast, reference in zip(
        fast_gaussian_pyramid(image, 3), gaussian_pyramid(image, 3), strict=True
    ):
        assert fast.shape == reference.shape
        assert torch.allclose(fast, reference, atol=1e-4)


def test_fused_failure_falls_back_to_eager(tmp_path: Path, caplog) -> None:
    """A fused path that breaks at run time costs speed, never the job."""
    model = load_model(random_weights(tmp_path / "w.safetensors", TINY), "cpu", "fp32")
    image = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    expected = load_model(random_weights(tmp_path / "w.safetensors", TINY), "cpu", "fp32",
                          fused=False)(image)  # fmt: skip

    class Broken(torch.nn.Module):
        kind = "broken"

        def forward(self, x):
            raise RuntimeError("could not create a primitive")

    model.runner = Broken()
    with caplog.at_level("WARNING", logger="deblur_cli.engine"):
        out = model(image)
    assert np.array_equal(out, expected)
    assert model.backend == "eager" and "primitive" in model.stats["fused_error"]
    assert "falling back to eager" in caplog.text


def test_fused_can_be_switched_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = random_weights(tmp_path / "w.safetensors", TINY)
    assert load_model(weights, "cpu", "fp32").backend != "eager"
    monkeypatch.setenv("DEBLUR_FUSED", "0")
    assert load_model(weights, "cpu", "fp32").backend == "eager"
    assert load_model(weights, "cpu", "fp32", fused=True).backend != "eager"


# --------------------------------------------------------------------------- tile progress


def test_progress_reports_every_tile_from_zero(tmp_path: Path) -> None:
    model = load_model(random_weights(tmp_path / "w.safetensors", TINY), "cpu", "fp32")
    calls: list[tuple[int, int]] = []
    model(np.zeros((200, 300, 3), np.uint8), tile=96, progress=lambda d, t: calls.append((d, t)))
    total = model.stats["tiles"]
    assert total > 4
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [done for done, _ in calls] == list(range(total + 1))


def test_image_command_draws_a_tile_bar_for_big_photos(tmp_path: Path) -> None:
    """``deblur image`` shows tiles done / total when a photo needs several tiles, and keeps
    the plain spinner for a photo that runs whole."""
    import cv2

    pixels = _real_crop()
    src = tmp_path / "photo.png"
    cv2.imwrite(str(src), pixels[..., ::-1])
    weights = random_weights(tmp_path / "w.safetensors", TINY)
    tiles = len(plan_tiles(*pixels.shape[:2], 128, 32, TINY.size_multiple))
    common = ("--weights", weights, "--device", "cpu", "--precision", "fp32")
    # a 128-px tile needs an overlap under 64 (the CLI refuses --tile 128 with the default 128)
    tiled = ("--tile", "128", "--overlap", "32")
    result = run_cli("image", src, "-o", tmp_path / "tiled.png", *tiled, *common)
    assert result.returncode == 0, result.stderr
    assert f"{tiles}/{tiles} tiles" in result.stderr
    assert (tmp_path / "tiled.png").exists()
    result = run_cli("image", src, "-o", tmp_path / "whole.png", "--tile", "0", *common)
    assert result.returncode == 0, result.stderr
    assert " tiles" not in result.stderr


def test_compile_failures_fall_back_to_the_fused_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch.compile is opt-in; without a C++ compiler it is skipped, and a compile that
    fails on the first frame hands the work to the fused path, with the same pixels."""
    import deblur_cli.fused as fused_module

    weights = random_weights(tmp_path / "w.safetensors", TINY)
    image = np.random.default_rng(2).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    expected = load_model(weights, "cpu", "fp32", compile=False)(image)
    assert load_model(weights, "cpu", "fp32").backend != "torch.compile"  # off by default

    monkeypatch.setattr(fused_module, "compiler_available", lambda: False)
    model = load_model(weights, "cpu", "fp32", compile=True)
    assert model.backend == "oneDNN fused" or model.backend == "in-place"

    def broken_compile(net, **options):
        def run(x):
            raise RuntimeError("InvalidCxxCompiler: no working C++ compiler found")

        return run

    monkeypatch.setattr(fused_module, "compiler_available", lambda: True)
    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setenv("DEBLUR_COMPILE", "1")
    model = load_model(weights, "cpu", "fp32")
    assert model.backend == "torch.compile"
    assert np.array_equal(model(image), expected)
    assert model.backend in ("oneDNN fused", "in-place")  # for good, not retried per frame


def _real_frames(count: int) -> list[np.ndarray]:
    folder = need_shared("data", "frames", "GOPR0477_11_00")
    files = sorted(folder.glob("*.jpg"))[:count]
    return [np.ascontiguousarray(read_image(f)[0][:200, :320]) for f in files]


def test_frames_in_one_pass_match_one_by_one() -> None:
    """deblur_frames stacks same-size frames into one forward pass (what keeps a GPU busy in
    deblur video): the bundled model gives what it gives frame by frame."""
    model = load_model(precision="fp32")
    frames = _real_frames(3)
    stacked = deblur_frames(model, frames)
    for one, frame in zip(stacked, frames, strict=True):
        alone = deblur_array(model, frame)
        assert one.dtype == np.uint8 and one.shape == frame.shape
        assert np.abs(one.astype(int) - alone).max() <= 1
        assert np.abs(one.astype(int) - frame).mean() > 0.05  # the model did run
    deep = [f.astype(np.uint16) * 257 for f in frames[:2]]  # 16-bit frames stack too
    for one, frame in zip(deblur_frames(model, deep), deep, strict=True):
        assert one.dtype == np.uint16
        assert np.abs(one.astype(int) - deblur_array(model, frame)).max() <= 257


def test_frames_that_cannot_stack_run_one_by_one(tmp_path: Path) -> None:
    model = load_model(identity_weights(tmp_path / "id.safetensors"), "cpu", "fp32")
    rng = np.random.default_rng(0)
    mixed = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in
             [(40, 64, 3), (48, 64, 3), (40, 64), (40, 64, 4)]]  # fmt: skip
    for out, frame in zip(deblur_frames(model, mixed), mixed, strict=True):
        assert out.shape == frame.shape
        assert np.abs(out.astype(int) - frame).max() <= 1


def test_out_of_memory_halves_the_frame_batch(tmp_path: Path, monkeypatch) -> None:
    """A batch that does not fit is split in halves (and remembered), never lost."""
    from deblur_cli import engine

    model = load_model(identity_weights(tmp_path / "id.safetensors"), "cpu", "fp32")
    real_forward = engine._forward
    tried: list[int] = []
    ran: list[int] = []

    def small_device(model, batch, to_255=1.0):
        tried.append(batch.shape[0])
        if batch.shape[0] > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        ran.append(batch.shape[0])
        return real_forward(model, batch, to_255)

    monkeypatch.setattr(engine, "_forward", small_device)
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(6)]
    outs = deblur_frames(model, frames)
    assert tried[0] == 6 and sum(ran) == 6 and max(ran) <= 2
    assert model.frames_per_batch is not None and model.frames_per_batch <= 3
    for out, frame in zip(outs, frames, strict=True):
        assert np.abs(out.astype(int) - frame).max() <= 1
    assert frames_per_batch(model, 720, 1280) == model.frames_per_batch
    model.frames_per_batch = None
    assert frames_per_batch(model, 720, 1280) == 1  # the CPU: one frame fills every core
