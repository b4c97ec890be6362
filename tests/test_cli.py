"""CLI-wide behaviour: help on every option, usage errors exit 2, start-up imports."""

from __future__ import annotations

from pathlib import Path

import click
import cv2
import numpy as np
import pytest
from conftest import run_cli

from deblur_cli.cli import main


def _walk(command: click.Command, path: tuple[str, ...]):
    yield path, command
    if isinstance(command, click.Group):
        for name in command.list_commands(click.Context(command)):
            sub = command.get_command(click.Context(command), name)
            assert sub is not None, f"{' '.join(path)} lists {name} but cannot load it"
            yield from _walk(sub, (*path, name))


def test_every_option_of_every_command_has_help():
    commands = list(_walk(main, ("deblur",)))
    assert len(commands) >= 12  # the group, 8 verbs, 2 synth and 4 weights subcommands
    missing = [
        f"{' '.join(path)} {'/'.join(param.opts)}"
        for path, command in commands
        for param in command.params
        if isinstance(param, click.Option) and not (param.help or "").strip()
    ]
    assert missing == []
    undocumented = [" ".join(path) for path, command in commands if not (command.help or "")]
    assert undocumented == []


@pytest.fixture
def png(tmp_path: Path) -> Path:
    path = tmp_path / "in.png"
    cv2.imwrite(str(path), np.full((24, 24, 3), 128, np.uint8))
    return path


@pytest.mark.parametrize(
    "verb, args",
    [
        ("image", ("--tile", "-5")),
        ("image", ("--overlap", "-1")),
        ("image", ("--precision", "fp16", "--device", "cpu")),
        ("image", ("--device", "cpu", "--precision", "fp16")),
        ("batch", ("--tile", "-5")),
        ("video", ("--tile", "-5")),
        ("eval", ("--precision", "fp16", "--device", "cpu")),
        ("demo", ("--tile", "-5")),
    ],
)
def test_usage_errors_exit_2_before_any_work(tmp_path: Path, png: Path, verb: str, args):
    out = tmp_path / "out"
    for sub in ("blur", "sharp"):
        (tmp_path / "pairs" / sub).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "pairs" / sub / "a.png"), np.zeros((24, 24, 3), np.uint8))
    target = {
        "image": [png, "-o", out / "x.png"],
        "batch": [png.parent, "-o", out],
        "video": [png, "-o", out / "x.mp4"],
        "eval": [tmp_path / "pairs"],
        "demo": ["-o", out],
    }
    result = run_cli(verb, *target[verb], *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_fp16_on_cpu_is_a_usage_error_through_auto_device(png: Path, tmp_path: Path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("auto resolves to CUDA here")
    result = run_cli("image", png, "-o", tmp_path / "x.png", "--precision", "fp16")
    assert result.returncode == 2
    assert "fp16" in result.stderr and "Traceback" not in result.stderr


def test_precisions_match_the_engine():
    from deblur_cli.cli.common import PRECISIONS
    from deblur_cli.engine import PRECISIONS as ENGINE_PRECISIONS

    assert PRECISIONS == ENGINE_PRECISIONS
