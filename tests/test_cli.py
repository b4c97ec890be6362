"""CLI-wide behaviour: help on every option, usage errors exit 2, start-up imports."""

from __future__ import annotations

import subprocess
import sys
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


HEAVY = ("torch", "cv2", "av")


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        *[[verb, "--help"] for verb in ("image", "batch", "video", "train", "eval", "demo")],
        ["weights", "--help"],
        ["weights", "list", "--help"],
        ["weights", "info", "--help"],
        ["synth", "frames", "--help"],
        ["synth", "stills", "--help"],
    ],
)
def test_help_does_not_import_torch_cv2_or_av(argv: list[str]):
    """Start-up cost: listing commands or showing any --help must not load the heavy stack
    (torch alone is ~1.3 s). Checked in a fresh interpreter, the way the entry point runs."""
    code = (
        "import sys\n"
        "from deblur_cli.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_option_choices_kept_out_of_heavy_modules_match_the_library():
    """The CLI repeats a few constants so that --help stays light; they must not drift."""
    from deblur_cli.cli import eval_cmd, train_cmd, video_cmd
    from deblur_cli.train import metrics, trainer
    from deblur_cli.video import SEGMENT_SECONDS

    assert train_cmd.SCHEDULES == trainer.SCHEDULES
    assert train_cmd.AMP_MODES == trainer.AMP_MODES
    assert eval_cmd.SSIM_MODES == metrics.SSIM_MODES
    assert video_cmd.SEGMENT_SECONDS == SEGMENT_SECONDS
    from deblur_cli.io.images import OUTPUT_FORMATS, PNG_COMPRESSION

    for command in (main.commands["image"], main.commands["batch"]):
        choices = {p.name: getattr(p.type, "choices", None) for p in command.params}
        assert list(choices["output_format"]) == list(OUTPUT_FORMATS)
        assert list(choices["png_compression"]) == list(PNG_COMPRESSION)


def test_library_names_load_on_first_use():
    import deblur_cli

    assert set(deblur_cli.__all__) <= set(dir(deblur_cli))
    assert deblur_cli.load_model is deblur_cli.engine.load_model
    with pytest.raises(AttributeError):
        deblur_cli.no_such_name  # noqa: B018
