"""deblur eval and the metrics: official conventions, checked against scikit-image."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import run_cli

from deblur_cli.io.images import read_image
from deblur_cli.model import ModelConfig, build_model
from deblur_cli.train.metrics import psnr, ssim
from deblur_cli.weights import save_weights

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
EVAL_PAIRS = SHARED / "eval" / "gopro_style_train_scenes"
needs_shared = pytest.mark.skipif(not EVAL_PAIRS.is_dir(), reason="../shared/data absent")


@pytest.fixture
def tiny_weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    config = ModelConfig(3, 1, 8, 3)
    return save_weights(tmp_path / "tiny.safetensors", build_model(config).state_dict(), config)


def test_psnr_rounds_and_clamps_first() -> None:
    target = np.full((16, 16, 3), 10, np.uint8)
    assert psnr(target.astype(np.float32) + 0.4, target) == math.inf  # rounds to 10
    over = np.full((16, 16, 3), 300.0, np.float32)
    assert psnr(over, np.full((16, 16, 3), 255, np.uint8)) == math.inf  # clamps to 255
    assert psnr(target + 1, target) == pytest.approx(20 * math.log10(255))


@needs_shared
def test_metrics_match_scikit_image_on_real_images() -> None:
    skm = pytest.importorskip("skimage.metrics")
    blur_path = sorted((EVAL_PAIRS / "blur").glob("*.png"))[0]
    blur, _ = read_image(blur_path)
    sharp, _ = read_image(EVAL_PAIRS / "sharp" / blur_path.name)
    blur, sharp = blur[:360, :480], sharp[:360, :480]
    assert psnr(blur, sharp) == pytest.approx(
        skm.peak_signal_noise_ratio(sharp, blur, data_range=255), abs=1e-9
    )
    official = skm.structural_similarity(
        sharp, blur, data_range=255, channel_axis=2, gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False,
    )  # fmt: skip
    assert ssim(blur, sharp) == pytest.approx(official, abs=1e-9)
    default = skm.structural_similarity(sharp, blur, data_range=255, channel_axis=2)
    assert ssim(blur, sharp, "skimage") == pytest.approx(default, abs=1e-9)
    # torch CxHxW float input gives the same numbers as numpy HxWxC uint8
    t = torch.from_numpy(blur.astype(np.float32)).permute(2, 0, 1)
    assert ssim(t, sharp) == pytest.approx(official, abs=1e-9)


@needs_shared
def test_identity_baseline_on_gopro_style_scenes(tmp_path: Path) -> None:
    proc = run_cli("eval", str(EVAL_PAIRS), "--identity-only", "--json", "s.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().splitlines()[-1]
    found = re.search(r"identity \(blurry input\) ([\d.]+) dB / SSIM ([\d.]+)", line)
    assert found, line
    assert float(found.group(1)) == pytest.approx(26.77, abs=0.01)
    # Official Gaussian-window SSIM; the 0.809 quoted in data/SOURCES.md is skimage's
    # default 7x7 uniform window, available as --ssim skimage.
    assert float(found.group(2)) == pytest.approx(0.828, abs=0.01)
    also = re.search(r"scikit-image default SSIM: identity ([\d.]+)", line)
    assert also and float(also.group(1)) == pytest.approx(0.809, abs=0.005), line
    result = json.loads((tmp_path / "s.json").read_text())
    assert len(result["images"]) == 7 and "model" not in result["mean"]
    assert result["mean"]["identity"]["ssim_skimage"] == pytest.approx(0.809, abs=0.005)
    proc = run_cli(
        "eval", str(EVAL_PAIRS), "--identity-only", "--ssim", "skimage", "--limit", "7",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "26.77 dB / SSIM 0.809" in proc.stdout


@needs_shared
def test_eval_with_weights_writes_json_and_csv(tmp_path: Path, tiny_weights: Path) -> None:
    data = tmp_path / "pairs"
    for sub in ("blur", "sharp"):
        (data / sub).mkdir(parents=True)
    for i, blur_path in enumerate(sorted((EVAL_PAIRS / "blur").glob("*.png"))[:2]):
        for sub in ("blur", "sharp"):
            img = cv2.imread(str(EVAL_PAIRS / sub / blur_path.name))[:128, :160]
            cv2.imwrite(str(data / sub / f"x{i}.png"), img)
    proc = run_cli(
        "eval", str(data), "-w", str(tiny_weights), "--json", "r.json", "--csv", "r.csv",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert set(result["mean"]) == {"identity", "model"}
    assert result["conventions"]["precision"] == "fp32"
    with open(tmp_path / "r.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == ["x0.png", "x1.png", "MEAN"]
    assert float(rows[-1]["psnr"]) == pytest.approx(result["mean"]["model"]["psnr"], abs=1e-3)


def test_eval_bad_input_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "a.png"), np.zeros((32, 32, 3), np.uint8))
    for args, message in [
        (["eval", "missing"], "no such folder"),
        (["eval", "photos"], "needs aligned pairs"),
    ]:
        proc = run_cli(*args, cwd=tmp_path)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().count("\n") == 0 and message in proc.stderr


def _residual_weights(path: Path, shift: float) -> Path:
    """A tiny residual model that adds ``shift`` grey levels to every pixel (0 = identity).

    Residual networks start as the exact identity (zero tails); the finest tail's bias is
    what the output adds to the input, so a negative bias is a model that darkens."""
    config = ModelConfig(3, 1, 8, 3, residual=True)
    net = build_model(config)
    with torch.no_grad():
        net.body_models[0].body[-1].bias.fill_(shift)
    return save_weights(path, net.state_dict(), config)


def _named_crops(dest: Path, count: int, size: tuple[int, int] = (96, 128)) -> Path:
    """Small pairs that keep the real (long) GOPRO file names."""
    for sub in ("blur", "sharp"):
        (dest / sub).mkdir(parents=True)
    for blur_path in sorted((EVAL_PAIRS / "blur").glob("*.png"))[:count]:
        for sub in ("blur", "sharp"):
            img = cv2.imread(str(EVAL_PAIRS / sub / blur_path.name))
            cv2.imwrite(
                str(dest / sub / blur_path.name), img[300 : 300 + size[0], 500 : 500 + size[1]]
            )
    return dest


@needs_shared
def test_sharp_check_flags_a_model_that_darkens(tmp_path: Path) -> None:
    pairs = _named_crops(tmp_path / "pairs", 3)
    stills = tmp_path / "stills"
    stills.mkdir()
    for p in sorted((SHARED / "sharp" / "kodak24crop_ffdnet").glob("*"))[:2]:
        cv2.imwrite(str(stills / f"{p.stem}.png"), cv2.imread(str(p))[:128, :128])
    dark = _residual_weights(tmp_path / "dark.safetensors", -3.0)
    proc = run_cli(
        "eval", str(pairs), "-w", str(dark), "--sharp-check", "--sharp", str(stills),
        "--json", "r.json", "--csv", "r.csv", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "HARM" in proc.stdout and "darkens sharp photos by 3.0" in proc.stdout
    check = json.loads((tmp_path / "r.json").read_text())["sharp_check"]
    assert len(check["images"]) == 5 and check["passes"] is False
    assert check["mean"]["shift"]["all"] == pytest.approx(-3.0, abs=0.2)
    assert check["mean"]["shift"]["midtones"] == pytest.approx(-3.0, abs=0.05)
    assert check["mean"]["psnr"] < 40
    with open(tmp_path / "r.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["kind"] for r in rows].count("sharp") == 6  # 5 images + their mean
    assert float(rows[-1]["tone_shift"]) == pytest.approx(check["mean"]["shift"]["all"], abs=1e-3)

    # the identity model passes: nothing changes
    same = _residual_weights(tmp_path / "same.safetensors", 0.0)
    proc = run_cli(
        "eval", "--sharp", str(stills), "-w", str(same), "--json", "s.json", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    check = json.loads((tmp_path / "s.json").read_text())["sharp_check"]
    assert check["passes"] is True and check["mean"]["shift"]["all"] == 0.0
    assert proc.stdout.strip().splitlines()[-1].endswith("passes")


@needs_shared
def test_eval_scores_the_bundled_model_by_default(tmp_path: Path) -> None:
    pairs = _named_crops(tmp_path / "pairs", 2)
    proc = run_cli("eval", str(pairs), "--json", "d.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads((tmp_path / "d.json").read_text())
    assert set(result["mean"]) == {"identity", "model"}
    assert result["weights"] == "light-gopro"
    assert "identity (blurry input)" in proc.stdout and "light-gopro" in proc.stdout
    proc = run_cli("eval", str(pairs), "--identity-only", "--json", "i.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads((tmp_path / "i.json").read_text())["mean"]) == {"identity"}
    bad = run_cli("eval", str(pairs), "--identity-only", "--sharp-check", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


@needs_shared
@pytest.mark.parametrize("columns", ["80", None])
def test_eval_table_fits_80_columns_and_pipes(tmp_path: Path, columns: str | None) -> None:
    """Piped (no terminal) and at COLUMNS=80: no line over 80, a name on one line."""
    pairs = _named_crops(tmp_path / "pairs", 3)
    same = _residual_weights(tmp_path / "same.safetensors", 0.0)
    env = {"COLUMNS": columns} if columns else {}
    proc = run_cli("eval", str(pairs), "-w", str(same), "--sharp-check", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines if not line.startswith(("mean over", "do no"))) <= 80
    names = sorted(p.name for p in (pairs / "blur").iterdir())
    rules = [i for i, line in enumerate(lines) if line.lstrip().startswith("───")]
    assert len(rules) == 2  # the pairs table and the do-no-harm table
    for rule in rules:
        body = []
        for line in lines[rule + 1 :]:
            if not line.strip():
                break
            body.append(line)
        # one line per name, in order: whole, or shortened in its middle, never broken
        assert len(body) == len(names)
        for line, name in zip(body, names, strict=True):
            shown = line.split()[0]
            head, cut, tail = shown.partition("…")
            assert shown == name or (cut and name.startswith(head) and name.endswith(tail))
