"""int8 on CPUs (quantize.py): the CPU kind and what ``auto`` picks on it, calibration made
once and found again, int8 against fp32 on a real photo (whole and tiled), the fallback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, need_shared, run_cli
from photo_helpers import psnr, random_weights

from deblur_cli import quantize
from deblur_cli.engine import choose_precision, load_model, precision_choice
from deblur_cli.errors import DeblurError
from deblur_cli.io.images import read_image
from deblur_cli.model import build_model
from deblur_cli.quantize import (
    Calibration,
    cpu_isa,
    ensure_calibration,
    int8_usable,
    load_calibration,
    sidecar_path,
    weight_levels,
)
from deblur_cli.weights import load_weight_file

CPU = torch.device("cpu")
ZEN4 = {"avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"}
needs_int8 = pytest.mark.skipif(not int8_usable(CPU), reason="no oneDNN int8 convs here")


def test_cpu_isa_reads_flags_and_honours_the_onednn_cap() -> None:
    assert cpu_isa(ZEN4, env={}) == "avx512_bf16"
    assert cpu_isa(ZEN4, env={"ONEDNN_MAX_CPU_ISA": "AVX2"}) == "avx2"
    assert cpu_isa(ZEN4, env={"DNNL_MAX_CPU_ISA": "avx512_core_vnni"}) == "avx512_vnni"
    assert cpu_isa(ZEN4 | {"amx_int8"}, env={"ONEDNN_MAX_CPU_ISA": "ALL"}) == "amx"
    assert cpu_isa({"avx2", "avx_vnni"}, env={}) == "avx2_vnni"
    assert cpu_isa({"avx2"}, env={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}) == "avx2"
    assert cpu_isa({"sse4_2", "avx"}, env={}) == "none"
    # vpmaddubsw saturates without VNNI: 7-bit weights there, 8-bit with VNNI.
    levels = [weight_levels(isa) for isa in ("avx2", "avx512", "avx2_vnni", "avx512_bf16")]
    assert levels == [63, 63, 127, 127]


AUTO_CASES = [(True, True, "bf16"), (False, True, "int8"), (False, False, "fp32")]


@pytest.mark.parametrize(("bf16", "int8", "expected"), AUTO_CASES)
def test_auto_precision_by_cpu_kind(monkeypatch, bf16: bool, int8: bool, expected: str) -> None:
    monkeypatch.setattr("deblur_cli.engine.cpu_supports_bf16", lambda: bf16)
    monkeypatch.setattr(quantize, "int8_usable", lambda device=None: int8)
    name, why = precision_choice(CPU, "auto")
    assert name == expected and why.startswith("auto on ")
    if int8:
        assert precision_choice(CPU, "int8") == ("int8", "")


def _tiny_net(path: Path):
    wf = load_weight_file(path)
    net = build_model(wf.config)
    net.load_state_dict(wf.state_dict)
    return net


@needs_int8
def test_calibration_is_made_once_then_found(tmp_path: Path, monkeypatch, caplog) -> None:
    """First use calibrates on the example photos and says so; the next run finds it in the
    cache; a sidecar beside the weights wins, unless it belongs to other weights."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    weights = random_weights(tmp_path / "tiny.safetensors", TINY)
    net = _tiny_net(weights)
    assert load_calibration(net, weights) is None
    with caplog.at_level("WARNING"):
        made = ensure_calibration(net, weights)
    assert "calibrating once" in caplog.text
    assert set(made.ranges) == set(quantize._points(TINY)) and made.check["images"] == 2

    def refuse(*args, **kwargs):
        raise AssertionError("calibrated twice")

    monkeypatch.setattr(quantize, "calibrate", refuse)
    assert ensure_calibration(net, weights).ranges == made.ranges
    side = Calibration({k: [-1.0, 1.0] for k in made.ranges}, made.digest)
    side.save(sidecar_path(weights))
    assert load_calibration(net, weights).ranges == side.ranges
    Calibration(side.ranges, "0" * 64).save(sidecar_path(weights))
    assert load_calibration(net, weights).ranges == made.ranges  # stale sidecar: cache


@needs_int8
def test_auto_takes_int8_only_with_a_calibration_that_passed(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("deblur_cli.engine.cpu_supports_bf16", lambda: False)
    weights = random_weights(tmp_path / "tiny.safetensors", TINY)
    net = _tiny_net(weights)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = load_model(weights, "cpu", "auto")  # no calibration: fp32, none made
    assert model.precision == "fp32" and "no int8 calibration" in model.precision_reason
    assert load_calibration(net, weights) is None
    ranges = {k: [-300.0, 300.0] for k in quantize._points(TINY)}
    digest = quantize.weights_digest(net)
    Calibration(ranges, digest, check={"psnr_db": 30.0}).save(sidecar_path(weights))
    model = load_model(weights, "cpu", "auto")
    assert model.precision == "fp32" and "30.0 dB from fp32" in model.precision_reason
    Calibration(ranges, digest, check={"psnr_db": 50.0}).save(sidecar_path(weights))
    model = load_model(weights, "cpu", "auto")
    assert model.precision == "int8" and model.backend == "oneDNN int8"


def test_bundled_model_has_its_calibration() -> None:
    """weights/light-gopro.int8.json belongs to the bundled weights and passed its check:
    after retraining, run scripts/calibrate_int8.py (bundle_weights.py does)."""
    wf = load_weight_file(None)
    net = build_model(wf.config)
    net.load_state_dict(wf.state_dict)
    calibration = load_calibration(net, wf.path)
    assert calibration is not None, "stale or missing weights/*.int8.json"
    assert calibration.passes and calibration.check["by_weight_bits"]["7"] >= 45


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    path = need_shared("data", "eval", "gopro_test_scenes", "blur", "GOPR0410_11_00_0138.png")
    return np.ascontiguousarray(read_image(path)[0][180:540, 200:840])


@needs_int8
def test_int8_close_to_fp32_whole_and_tiled(frame: np.ndarray) -> None:
    """The bundled model on a real 640x360 crop: int8 >= 45 dB from fp32 (the gate), and
    int8 tiles close to int8 whole (55.0 dB measured; fp32 tiles reach ~89 dB: near a seam
    a tile's other context re-draws int8's rounding noise, which is ~50 dB from fp32)."""
    fp32 = load_model(None, "cpu", "fp32", tile=0)
    int8 = load_model(None, "cpu", "int8", tile=0)
    assert int8.backend == "oneDNN int8" and int8.precision == "int8"
    whole = int8(frame)
    assert psnr(whole, fp32(frame)) >= 45.0
    assert psnr(int8(frame, tile=320), whole) >= 52.0
    assert int8.stats["tiles"] > 1


@needs_int8
def test_int8_failure_falls_back_to_eager_fp32(frame: np.ndarray, caplog) -> None:
    model = load_model(None, "cpu", "int8", tile=0)
    crop = frame[:64, :96]

    def broken(x):
        raise RuntimeError("onednn: unsupported")

    model.runner.forward = broken
    with caplog.at_level("WARNING"):
        out = model(crop)
    assert model.precision == "fp32" and "falling back" in caplog.text
    eager = load_model(None, "cpu", "fp32", tile=0, fused=False)
    assert np.abs(out.astype(int) - eager(crop).astype(int)).max() <= 1


@needs_int8
def test_cli_summary_names_the_precision_and_why(tmp_path: Path) -> None:
    need_shared("data")
    src = Path(__file__).resolve().parents[1] / "deblur_cli" / "examples" / "sharp.png"
    result = run_cli(
        "image", src, "-o", tmp_path / "out.png", "--device", "cpu",
        env={"ONEDNN_MAX_CPU_ISA": "AVX2"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "int8 (auto on AVX2, no VNNI, no native bf16)" in result.stderr


def test_calibration_json_round_trip(tmp_path: Path) -> None:
    calibration = Calibration({"0.in": [-1.5, 2.0]}, "ab" * 32, ["x.png"], {"psnr_db": 47.0})
    path = calibration.save(tmp_path / "c.int8.json")
    assert Calibration.from_json(path.read_text()) == calibration
    data = json.loads(path.read_text())
    data["version"] = 99
    with pytest.raises(ValueError):
        Calibration.from_json(json.dumps(data))
    assert sidecar_path("w/light-gopro.safetensors") == Path("w/light-gopro.int8.json")


def test_int8_refused_where_it_cannot_run(monkeypatch) -> None:
    with pytest.raises(DeblurError, match="CPUs only"):
        choose_precision(torch.device("cuda"), "int8")
    monkeypatch.setattr(quantize, "int8_usable", lambda device=None: False)
    with pytest.raises(DeblurError, match="AVX2"):
        choose_precision(CPU, "int8")
    assert precision_choice(CPU, "auto")[0] in ("bf16", "fp32")
