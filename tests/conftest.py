"""Shared fixtures: paths to ../shared, tiny weight files, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deblur_cli.model import ModelConfig, build_model
from deblur_cli.weights import save_weights

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
FIXTURES = SHARED / "fixtures"
TINY = ModelConfig(n_scales=3, n_resblocks=1, n_feats=8, kernel_size=3)


def need_shared(*parts: str) -> Path:
    """The path under ../shared, or skip the test when it is not there (e.g. outside CI)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available")
    return path


@pytest.fixture
def tiny_weights(tmp_path: Path) -> Path:
    """A seeded random-weight file of a tiny config: shape-correct, fast, deterministic."""
    torch.manual_seed(0)
    net = build_model(TINY)
    return save_weights(tmp_path / "tiny.safetensors", net.state_dict(), TINY, license="test")


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run the installed ``deblur`` entry point the way a user does (a real subprocess)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "deblur_cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )
