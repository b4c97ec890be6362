"""The bundled default model: present in the installed package, verified, usable offline."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from conftest import run_cli

from deblur_cli.weights import fetch_entry, load_registry, read_weights, sha256_file

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": "http://127.0.0.1:9"}  # any fetch would fail


def test_registry_default_is_bundled_and_verified():
    registry = load_registry()
    entry = registry.get(registry.default)
    assert entry.bundled, "the default must ship inside the package so it works offline"
    path = fetch_entry(entry)
    assert sha256_file(path) == entry.sha256
    wf = read_weights(path)
    assert wf.config == entry.config
    assert path.stat().st_size <= 20 * 2**20
    for key in ("training_data", "license", "metrics"):
        assert wf.metadata.get(key), f"bundled weights lack {key} metadata"


def test_demo_runs_offline_from_any_folder(tmp_path: Path):
    """Run from outside the repository, so the installed package (not the checkout) answers."""
    result = run_cli("demo", "-o", "demo", "--device", "cpu", env=OFFLINE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    pictures = {
        name: cv2.imread(str(tmp_path / "demo" / f"{name}.png"))
        for name in ("sharp", "blurry", "deblurred", "compare")
    }
    assert all(p is not None for p in pictures.values())
    sharp, blurry, deblurred = (
        pictures[n].astype(np.float64) for n in ("sharp", "blurry", "deblurred")
    )
    assert sharp.shape == blurry.shape == deblurred.shape
    assert pictures["compare"].shape[1] > 3 * sharp.shape[1]

    def psnr(a: np.ndarray) -> float:
        return 10 * np.log10(255**2 / np.mean((a - sharp) ** 2))

    # The shake is real (the picture lost detail) and the bundled model wins some back;
    # the printed summary quotes the same two numbers.
    assert psnr(blurry) < 25
    assert psnr(deblurred) > psnr(blurry) + 0.2
    summary = " ".join(result.stderr.split())
    assert f"{psnr(blurry):.2f} dB blurry → {psnr(deblurred):.2f} dB deblurred" in summary


def test_demo_to_one_picture(tmp_path: Path):
    """`deblur demo -o demo.png` (the README's first command) writes the comparison alone."""
    result = run_cli("demo", "-o", "pics/demo.png", "--device", "cpu", env=OFFLINE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert written == ["pics/demo.png"]
    compare = cv2.imread(str(tmp_path / "pics" / "demo.png"))
    assert compare is not None and compare.shape[1] > 3 * compare.shape[0] // 2


def test_weights_list_shows_the_default(tmp_path: Path):
    result = run_cli("weights", "list", env=OFFLINE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(default)" in result.stdout


def test_default_model_does_no_harm_to_sharp_photos():
    """Sharp photos it never trained on come back with their tone and detail (issue 13)."""
    from conftest import need_shared

    from deblur_cli import load_model
    from deblur_cli.train.evaluate import check_sharp

    bsd = sorted(need_shared("data", "sharp", "bsds300_dcscn", "bsd100").iterdir())[:12]
    frames = sorted(need_shared("data", "eval", "gopro_style_train_scenes", "sharp").iterdir())
    check = check_sharp(bsd + frames[:2], load_model(None, "cpu", "fp32", tile=0))
    assert abs(check["mean"]["shift"]["all"]) <= 0.5, check["mean"]
    assert check["mean"]["psnr"] >= 34, check["mean"]
    assert check["passes"]
