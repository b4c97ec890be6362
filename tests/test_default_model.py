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
    blurry = cv2.imread(str(tmp_path / "demo" / "blurry_street.png"))
    sharp = cv2.imread(str(tmp_path / "demo" / "blurry_street_deblurred.png"))
    compare = cv2.imread(str(tmp_path / "demo" / "blurry_street_compare.png"))
    assert blurry is not None and sharp is not None and compare is not None
    assert sharp.shape == blurry.shape
    assert compare.shape[1] > 2 * blurry.shape[1]
    assert np.abs(sharp.astype(int) - blurry.astype(int)).mean() > 0.5


def test_weights_list_shows_the_default(tmp_path: Path):
    result = run_cli("weights", "list", env=OFFLINE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "(default)" in result.stdout
