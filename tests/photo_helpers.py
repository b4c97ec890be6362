"""Helpers shared by the photo tests (engine, ``deblur image``, ``deblur batch``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from deblur_cli.model import ModelConfig, build_model
from deblur_cli.weights import save_weights

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TINY = ModelConfig(3, 1, 8, 3)
SMALL = ModelConfig(3, 2, 16, 5)


def data_file(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test cleanly where the data is absent."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


def random_weights(path: Path, config: ModelConfig = TINY, seed: int = 0) -> Path:
    """Seeded random weights: exercises every layer, but does not preserve content."""
    torch.manual_seed(seed)
    return save_weights(path, build_model(config).state_dict(), config)


def identity_weights(path: Path, config: ModelConfig = TINY) -> Path:
    """Weights that make the network return its input exactly (fp32), so tests can check
    orientation, bit depth and channels by comparing pixels, not just shapes."""
    net = build_model(config)
    state = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
    c = config.kernel_size // 2
    head, tail = (
        "body_models.0.body.0.weight",
        f"body_models.0.body.{config.n_resblocks + 1}.weight",
    )
    for ch in range(3):
        state[head][ch, ch, c, c] = 1.0  # copy the finest input's RGB into features 0..2
        state[tail][ch, ch, c, c] = 1.0  # and back out; zero ResBlocks are identities
    return save_weights(path, state, config)


def run_deblur(*args: object, timeout: float = 300) -> subprocess.CompletedProcess:
    """The installed ``deblur`` command as a user runs it (falls back to ``-m`` if not on PATH)."""
    exe = Path(sys.executable).with_name("deblur")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "deblur_cli"]
    return subprocess.run(
        [*cmd, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)
