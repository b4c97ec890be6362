"""deblur train on a CPU: light defaults that are said out loud, an estimate, a bounded
validation hold-back, and progress that stays whole at 80 columns and in a pipe."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import pytest
import torch
from conftest import TINY, need_shared, run_cli

from deblur_cli.model import CONFIGS
from deblur_cli.train.trainer import TrainConfig, Trainer, resolve_defaults
from deblur_cli.weights import read_weights

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_defaults_follow_the_device_and_never_override_the_user():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
    cfg, chosen = resolve_defaults(TrainConfig(data=["x"]), cpu)
    assert (cfg.model, cfg.steps, cfg.batch, cfg.patch) == (CONFIGS["light"], 7_000, 8, 128)
    assert set(chosen) == {"model", "steps", "batch", "patch"}
    cfg, _ = resolve_defaults(TrainConfig(data=["x"]), cuda)
    assert (cfg.model, cfg.steps, cfg.batch, cfg.patch) == (CONFIGS["paper"], 131_400, 16, 256)

    given = TrainConfig(data=["x"], model=TINY, steps=5, batch=2, patch=64)
    assert resolve_defaults(given, cpu) == (given, {})
    # --init decides the network; a resumed run decides everything it recorded.
    cfg, chosen = resolve_defaults(TrainConfig(data=["x"]), cpu, init_config=TINY)
    assert cfg.model == TINY and "model" not in chosen
    resumed = {"model_config": TINY.to_dict(), "train_config": {"steps": 9, "batch": 4}}
    cfg, _ = resolve_defaults(TrainConfig(data=["x"]), cuda, resumed=resumed)
    assert (cfg.model, cfg.steps, cfg.batch, cfg.patch) == (TINY, 9, 4, 256)


def _pairs(root: Path, count: int, size: int = 160) -> Path:
    source = need_shared("data", "eval", "gopro_style_train_scenes")
    blurs = sorted((source / "blur").glob("*.png"))
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True)
    for i in range(count):
        name = blurs[i % len(blurs)].name
        y, x = 40 + 60 * (i // len(blurs)), 300 + 50 * (i // len(blurs))
        for sub in ("blur", "sharp"):
            image = cv2.imread(str(source / sub / name))
            cv2.imwrite(str(root / sub / f"p{i:02d}.png"), image[y : y + size, x : x + size])
    return root


def test_validation_never_takes_more_than_a_tenth(tmp_path: Path):
    data = _pairs(tmp_path / "pairs", 12, size=72)
    cfg = TrainConfig(
        data=[f"pairs:{data}"], out=str(tmp_path / "run"), model=TINY, steps=1, batch=1,
        patch=64, workers=0, val_count=8, device="cpu",
    )  # fmt: skip
    trainer = Trainer(cfg)
    assert (len(trainer.train_set), len(trainer.val_set)) == (11, 1)  # not 4 + 8
    assert "10%" in trainer.val_note
    few = Trainer(TrainConfig(**{**cfg.__dict__, "data": [f"pairs:{_pairs(tmp_path / 'f', 6)}"]}))
    assert (len(few.train_set), len(few.val_set)) == (6, 0)
    assert "--val" in few.val_note


def _progress_lines(text: str) -> list[str]:
    lines = ANSI.sub("", text).replace("\r", "\n").splitlines()
    return [line for line in lines if line.strip()]


def test_cpu_run_says_what_it_chose_and_estimates_the_time_in_a_pipe(tmp_path: Path):
    """No --config/--batch/--patch on a CPU: the light recipe, said on one line; after the
    first log interval an estimate of the whole run; piped progress lines that are whole."""
    if torch.cuda.is_available():
        pytest.skip("the CPU defaults apply without CUDA")
    data = _pairs(tmp_path / "pairs", 10)
    run = tmp_path / "run"
    result = run_cli(
        "train", f"pairs:{data}", "-o", run, "--steps", "4", "--log-every", "2",
        "--workers", "0", "--val-count", "0", env={"COLUMNS": "80"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = _progress_lines(result.stderr)
    chose = [line for line in lines if line.startswith("chose ")]
    assert len(chose) == 1 and "--config light" in chose[0], lines
    assert "--batch 8" in chose[0] and "--patch 128" in chose[0] and "--steps 7,000" not in chose[0]
    assert any(line.startswith("estimate: 4 steps at ") for line in lines), lines
    steps = [line for line in lines if line.startswith("step 4/4")]
    assert steps and re.search(r"ETA 0:00:00$", steps[-1]) and "…" not in steps[-1]
    assert read_weights(run / "last.safetensors").config == CONFIGS["light"]


def test_train_bar_fits_80_columns_on_a_terminal(tmp_path: Path):
    """FORCE_COLOR makes rich draw its live bar into the pipe, as on an 80-column terminal."""
    data = _pairs(tmp_path / "pairs", 10, size=96)
    result = run_cli(
        "train", f"pairs:{data}", "-o", tmp_path / "run", "--config", "3,1,4,3", "--steps",
        "12", "--batch", "2", "--patch", "32", "--log-every", "3", "--workers", "0",
        "--val-count", "0", env={"COLUMNS": "80", "FORCE_COLOR": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    bars = [line for line in _progress_lines(result.stderr) if line.startswith("train ")]
    assert bars, result.stderr
    final = bars[-1]
    assert len(final) <= 80 and "…" not in final, final
    assert re.search(r" 12/12 loss \d+\.\d{3} .* ETA 0:00:00$", final), final
    after_two = [bar for bar in bars if int(re.search(r" (\d+)/12 ", bar).group(1)) >= 2]
    assert after_two and all(re.search(r"ETA \d+:\d\d:\d\d$", bar) for bar in after_two)
