"""Everyday use as a new user meets it (issue #22): outputs never replaced without
--overwrite, tiles checked, one-line errors, 80 columns, honest install hints, bad inputs
refused before torch loads, and a README whose figures come from the code."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from conftest import ROOT, need_shared
from huge_images import huge_header

from deblur_cli.cli import main
from deblur_cli.cli.common import middle_ellipsis

README = ROOT / "README.md"
DOCS = ROOT / "docs"
KODAK = ("data", "sharp", "kodak24crop_ffdnet")


def invoke(*args: object, columns: int = 80):
    return CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": str(columns)})


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A real photo (a 96x64 crop of a Kodak picture), as PNG."""
    folder = need_shared(*KODAK)
    src = sorted(folder.glob("*.*"))[0]
    path = tmp_path / "photo.png"
    Image.open(src).convert("RGB").crop((0, 0, 96, 64)).save(path)
    return path


# --------------------------------------------------------------------------- 1. overwrite


def test_image_never_replaces_an_existing_file_without_overwrite(
    photo: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    unrelated = tmp_path / "holiday.jpg"
    Image.new("RGB", (32, 32), "red").save(unrelated)
    before = unrelated.read_bytes()
    result = invoke("image", photo, "-o", unrelated, "-w", tiny_weights, "--device", "cpu")
    assert result.exit_code == 3
    line = one_error_line(result.stderr)
    assert str(unrelated) in line and "--overwrite" in line
    assert unrelated.read_bytes() == before

    # the default name too, and the comparison picture
    result = invoke("image", photo, "-w", tiny_weights, "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    made = tmp_path / "photo_deblurred.png"
    again = invoke("image", photo, "-w", tiny_weights, "--device", "cpu")
    assert again.exit_code == 3 and str(made) in one_error_line(again.stderr)
    compare = tmp_path / "ab.png"
    compare.write_bytes(before)
    result = invoke("image", photo, "-o", tmp_path / "new.png", "--compare", compare)
    assert result.exit_code == 3 and str(compare) in one_error_line(result.stderr)
    assert not (tmp_path / "new.png").exists() and compare.read_bytes() == before

    result = invoke("image", photo, "-o", unrelated, "-w", tiny_weights, "--overwrite")
    assert result.exit_code == 0, result.stderr
    assert unrelated.read_bytes() != before


def test_batch_leaves_out_its_own_pictures_and_keeps_existing_outputs(
    photo: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.png").write_bytes(photo.read_bytes())
    common = ["-w", tiny_weights, "--device", "cpu"]
    # two files deblur wrote: a default name, and one whose only sign is the metadata mark
    assert invoke("image", photos / "a.png", *common).exit_code == 0
    assert invoke("image", photos / "a.png", "-o", photos / "sharp.jpg", *common).exit_code == 0
    assert invoke("image", photos / "a.png", "-o", photos / "s.webp", *common).exit_code == 0
    with Image.open(photos / "sharp.jpg") as im:
        assert im.getexif().get(0x0131, "").startswith("deblur-cli ")  # EXIF Software
    with Image.open(photos / "a_deblurred.png") as im:
        assert im.info.get("Software", "").startswith("deblur-cli ")  # PNG text chunk

    result = invoke("batch", photos, "-o", tmp_path / "out", *common)
    assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]
    assert "left out 3 picture(s) deblur wrote itself" in result.stderr  # WebP: mark at the end
    assert "--include-deblurred" in result.stderr

    result = invoke("batch", photos, "-o", tmp_path / "all", "--include-deblurred", *common)
    assert result.exit_code == 0, result.stderr
    assert len(list((tmp_path / "all").iterdir())) == 4

    # an existing output is kept (resume) until --overwrite says otherwise
    out = tmp_path / "out" / "a.png"
    out.write_bytes(b"kept")
    result = invoke("batch", photos, "-o", tmp_path / "out", *common)
    assert result.exit_code == 0 and out.read_bytes() == b"kept"
    assert "--overwrite" in result.stderr
    result = invoke("batch", photos, "-o", tmp_path / "out", "--overwrite", *common)
    assert result.exit_code == 0 and out.read_bytes() != b"kept"


# --------------------------------------------------------------------------- 2. tiles


@pytest.mark.parametrize(
    "options, words",
    [
        (["--tile", "3"], ["--tile 3 is too small", "at least 260 px", "--tile 0"]),
        (["--tile", "100", "--overlap", "200"], ["--overlap 200 must be smaller than --tile"]),
        (["--tile", "200", "--overlap", "100"], ["at least 204 px", "twice the overlap"]),
        (["--overlap", "32", "--tile", "40"], ["at least 68 px"]),
    ],
)
def test_tiles_that_cannot_work_are_refused_before_the_model_loads(
    photo: Path, tmp_path: Path, options: list[str], words: list[str]
) -> None:
    # weights that do not exist: had the model been loaded first, the exit code would be 4
    missing = tmp_path / "missing.safetensors"
    result = invoke("image", photo, "-o", tmp_path / "o.png", "-w", missing, *options)
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    for word in words:
        assert word in line
    assert not (tmp_path / "o.png").exists()


def test_smallest_allowed_tile_runs_and_limits_agree_with_the_engine(
    photo: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    from deblur_cli import engine, limits

    assert limits.MIN_TILE == engine.MIN_TILE
    assert limits.DEFAULT_OVERLAP == engine.DEFAULT_OVERLAP
    out = tmp_path / "o.png"
    result = invoke("image", photo, "-o", out, "-w", tiny_weights, "--tile", 68, "--overlap", 32)
    assert result.exit_code == 0, result.stderr
    assert Image.open(out).size == (96, 64)


# --------------------------------------------------------------------------- 3. install hints


def _hint_files() -> list[Path]:
    files = [README, *sorted(DOCS.glob("*.md"))]
    return files + sorted((ROOT / "deblur_cli").rglob("*.py"))


def test_every_install_hint_names_our_distribution() -> None:
    name = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["name"]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    hints = 0
    for path in _hint_files():
        text = path.read_text()
        for match in re.finditer(
            r"pip install\s+['\"]?([A-Za-z][A-Za-z0-9_.\-]*)\[([a-z,]+)\]", text
        ):
            hints += 1
            where = f"{path.relative_to(ROOT)}: {match.group(0)}"
            assert match.group(1) == name, where
            assert set(match.group(2).split(",")) <= set(extras), where
        # a bare "pip install deblur" installs another project
        assert not re.search(r"pip install\s+['\"]?deblur(?![\w-])", text), path
    assert hints >= 2  # the scikit-image hint in the package, and the README's


# --------------------------------------------------------------------------- 4. video


def test_video_segments_close_by_work_done_and_ctrl_c_keeps_every_frame(tmp_path: Path) -> None:
    from test_video import make_clip

    from deblur_cli.video import process_video, unfinished_run

    clip = make_clip(tmp_path / "clip.mp4", frames=12, audio=False)
    out = tmp_path / "out.mp4"
    done: list[int] = []

    def stop_after_5(rgb: np.ndarray) -> np.ndarray:
        if len(done) == 5:
            raise KeyboardInterrupt
        done.append(1)
        return rgb

    # 100 s of video per segment, but at most 0 s of work: every frame closes one
    with pytest.raises(KeyboardInterrupt):
        process_video(clip, out, stop_after_5, segment_seconds=100, segment_work_seconds=0)
    manifest = unfinished_run(clip, out, segment_seconds=100)
    assert manifest is not None and [s["frames"] for s in manifest.segments] == [1] * 5

    # by video time alone, Ctrl-C still keeps the 5 frames done, in one closed segment
    out2 = tmp_path / "out2.mp4"
    done.clear()
    with pytest.raises(KeyboardInterrupt):
        process_video(clip, out2, stop_after_5, segment_seconds=100, segment_work_seconds=None)
    manifest = unfinished_run(clip, out2, segment_seconds=100)
    assert [s["frames"] for s in manifest.segments] == [5]
    result = process_video(clip, out2, lambda x: x, segment_seconds=100)
    assert result.frames == 12 and result.resumed_frames == 5


def test_video_rerun_says_why_it_starts_over(tmp_path: Path, tiny_weights: Path) -> None:
    from test_video import make_clip

    from deblur_cli.video import parts_folder

    clip = make_clip(tmp_path / "clip.mp4", frames=4, audio=False)
    out = tmp_path / "out.mp4"
    parts_folder(out).mkdir()  # what a run killed before its first segment leaves
    result = invoke("video", clip, "-o", out, "-w", tiny_weights, "--precision", "fp32")
    assert result.exit_code == 0, result.stderr
    assert "starting over: " in result.stderr and "first segment" in result.stderr


def test_video_destination_is_checked_before_the_model_loads(tmp_path: Path) -> None:
    from test_video import make_clip

    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=False)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    missing = tmp_path / "missing.safetensors"  # loading the model first would exit 4
    result = invoke("video", clip, "-o", blocker / "out.mp4", "-w", missing)
    assert result.exit_code == 3 and "not a folder" in one_error_line(result.stderr)
    result = invoke("video", clip, "--frames-dir", blocker / "frames", "-w", missing)
    assert result.exit_code == 3 and "not a folder" in one_error_line(result.stderr)


# --------------------------------------------------------------------------- 5. usage errors


@pytest.mark.parametrize(
    "args, words",
    [
        (["image"], ["missing argument", "image --help'"]),
        (["image", "x.png", "--nope"], ["no such option"]),
        (["batch"], ["missing argument 'FOLDER'"]),
        (["video", "x.mp4", "--crf", "99"], ["--crf"]),
        (["weights", "info"], ["missing argument 'SPEC'"]),
        (["nope"], ["no such command"]),
        (["eval", "--ssim", "x"], ["--ssim"]),
        (["synth", "stills"], ["missing"]),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(args: list[str], words: list[str]) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    for word in words:
        assert word in line
    assert "Usage:" not in result.stderr and "Try " not in result.stderr


def test_unknown_output_extension_and_small_pictures_say_what_works(
    photo: Path, tmp_path: Path
) -> None:
    result = invoke("image", photo, "-o", tmp_path / "out.xyz")
    assert result.exit_code == 2
    line = one_error_line(result.stderr)
    assert "'.xyz'" in line and ".png" in line and ".jpg" in line and ".webp" in line
    tiny = tmp_path / "tiny.png"
    Image.open(photo).crop((0, 0, 4, 4)).save(tiny)
    result = invoke("image", tiny)
    assert result.exit_code == 2 and "smallest picture is 8x8" in one_error_line(result.stderr)


# --------------------------------------------------------------------------- 6. 80 columns


def _commands(command: click.Command, path: tuple[str, ...] = ()):
    yield path
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


@pytest.mark.parametrize("path", list(_commands(main)), ids=lambda p: " ".join(p) or "deblur")
def test_every_help_fits_80_columns(path: tuple[str, ...]) -> None:
    result = invoke(*path, "--help")
    assert result.exit_code == 0
    wide = [line for line in result.output.splitlines() if len(line) > 80]
    assert not wide, wide


def test_weights_list_is_one_line_per_model_and_info_json_has_real_types() -> None:
    result = invoke("weights", "list")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    from deblur_cli.weights import load_registry

    names = sorted(load_registry().entries)
    assert len(lines) == 1 + len(names) + 1  # header, one per model, footer
    assert "deblur weights info NAME" in lines[-1]

    result = invoke("weights", "info", "light-gopro", "--json")
    assert result.exit_code == 0
    info = json.loads(result.output)
    assert isinstance(info["config"], dict) and info["config"]["n_scales"] == 3
    assert isinstance(info["parameters"], int) and info["parameters"] > 100_000
    assert isinstance(info["metrics"], dict)
    assert isinstance(info["metrics"]["demo_psnr"], float)
    assert isinstance(info["license"], str) and isinstance(info["sha256"], str)


def test_middle_ellipsis_keeps_both_ends() -> None:
    name = "GOPR0384_11_00-000001_a_very_long_scene_name.png"
    short = middle_ellipsis(name, 20)
    assert len(short) == 20 and short.startswith("GOPR0384") and short.endswith("name.png")
    assert middle_ellipsis("a.png", 20) == "a.png"


def test_eval_table_shortens_long_names_instead_of_breaking_them(
    tmp_path: Path, tiny_weights: Path
) -> None:
    folder = need_shared(*KODAK)
    name = "a_very_long_file_name_from_a_phone_camera_roll_2026_11_30_{}.png"
    for sub in ("blur", "sharp"):
        (tmp_path / "pairs" / sub).mkdir(parents=True)
    for i, src in enumerate(sorted(folder.glob("*.*"))[:2]):
        picture = Image.open(src).convert("RGB").crop((0, 0, 64, 48))
        for sub in ("blur", "sharp"):
            picture.save(tmp_path / "pairs" / sub / name.format(i))
    result = invoke("eval", tmp_path / "pairs", "-w", tiny_weights)
    assert result.exit_code == 0, result.output
    table = result.stdout.split("mean over")[0].splitlines()  # the summary line is prose
    assert all(len(line) <= 80 for line in table), table
    rows = [line for line in table if "…" in line]
    assert len(rows) == 2 and all("_0.png" in r or "_1.png" in r for r in rows)
    assert all(line.strip().startswith("a_very_") for line in rows)


def test_paths_are_never_broken(photo: Path, tiny_weights: Path, tmp_path: Path) -> None:
    deep = tmp_path / ("a_folder_with_a_rather_long_name_" * 3) / "and_a_long_output_name.png"
    result = invoke("image", photo, "-o", deep, "-w", tiny_weights, columns=60)
    assert result.exit_code == 0, result.stderr
    assert str(deep) in result.stderr  # on one line, whole


# --------------------------------------------------------------------------- 8. fast refusal

REFUSAL_DRIVER = """
import sys
from deblur_cli.cli import main
try:
    main(sys.argv[1:], prog_name="deblur")
except SystemExit as exit:
    heavy = sorted(m for m in ("torch", "cv2", "av") if m in sys.modules)
    print(exit.code, ",".join(heavy) or "-")
"""


def test_inputs_refused_from_their_bytes_before_torch_is_imported(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not a picture")
    Image.new("RGB", (4, 4)).save(tmp_path / "tiny.png")
    huge_header(tmp_path / "huge.png", 30000, 30000)
    good = tmp_path / "cut.jpg"
    Image.new("RGB", (64, 64), "white").save(good)
    good.write_bytes(good.read_bytes()[:-200])  # cut off: no end-of-image marker
    cases = {
        "empty.jpg": "empty file",
        "notes.jpg": "not a PNG, JPEG, TIFF, WebP or BMP image",
        "tiny.png": "smallest picture is 8x8",
        "huge.png": "over the limit of 200",
        "cut.jpg": "truncated",
        "missing.png": "no such file",
    }
    for name, words in cases.items():
        result = subprocess.run(
            [sys.executable, "-c", REFUSAL_DRIVER, "image", name],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert result.stdout.split() == ["2", "-"], (name, result.stdout, result.stderr)
        assert words in one_error_line(result.stderr), name


# --------------------------------------------------------------------------- 9, 10. README


def _readme() -> str:
    return README.read_text()


def test_readme_is_a_users_guide_with_the_two_commands_first() -> None:
    text = _readme()
    assert len(text.splitlines()) <= 300
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    assert "deblur demo" in blocks[0] and "pip install" in blocks[0]
    assert blocks[1].strip().endswith("python -m pytest -q")
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).is_file(), link
    for doc in ("docs/model-card.md", "docs/training.md"):
        assert doc in text and (ROOT / doc).is_file()
    # the official checkpoints: where they are published, and how to convert them
    assert "DeepDeblur-PyTorch" in text and "weights convert" in text
    assert "--index-url" in text and "CPU" in text  # the CPU-only torch, told truthfully


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    command = re.findall(r"```bash\n(.*?)```", _readme(), re.S)[1].strip()
    steps = [step.strip() for step in command.split("&&")]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    ci = [line for line in ci if line and not line.startswith("#")]
    assert ci[-1] == steps[-1]  # the test command itself, verbatim
    assert "python -m pip install --quiet torch==2.13.0" in ci
    assert any("torch==2.13.0" in step for step in steps)


def test_readme_defaults_agree_with_the_code() -> None:
    from deblur_cli.cli import video_cmd
    from deblur_cli.io.sniff import DEFAULT_MAX_MEGAPIXELS
    from deblur_cli.limits import DEFAULT_OVERLAP, MIN_SIDE, MIN_TILE, min_tile

    text = " ".join(_readme().split())
    facts = [
        f"default {DEFAULT_OVERLAP}",  # --overlap
        f"at least {MIN_TILE} px",
        f"{min_tile(None)} px with the default overlap",
        f"over {DEFAULT_MAX_MEGAPIXELS:g} megapixels",
        f"{MIN_SIDE}x{MIN_SIDE}",
        f"{video_cmd.SEGMENT_SECONDS:g} s of video",
        f"{video_cmd.SEGMENT_WORK_SECONDS:g} s of work",
        "(default 95)",  # --quality
    ]
    for fact in facts:
        assert fact in text, fact
    from deblur_cli.video import SEGMENT_SECONDS, SEGMENT_WORK_SECONDS

    assert (SEGMENT_SECONDS, SEGMENT_WORK_SECONDS) == (
        video_cmd.SEGMENT_SECONDS,
        video_cmd.SEGMENT_WORK_SECONDS,
    )


def test_readme_demo_figures_are_what_deblur_demo_prints(tmp_path: Path) -> None:
    """The README's first command, as printed today: the PSNR before and after."""
    result = invoke("demo", "-o", tmp_path / "demo.png", "--device", "cpu")
    assert result.exit_code == 0, result.stderr
    printed = re.search(r"([\d.]+) dB blurry → ([\d.]+) dB deblurred", result.stderr)
    stated = re.search(r"([\d.]+) dB → ([\d.]+) dB", " ".join(_readme().split()))
    assert printed and stated
    before, after = (float(x) for x in printed.groups())
    assert float(stated.group(1)) == pytest.approx(before, abs=0.005)
    # bf16 (CPUs with native bf16, the default there) and fp32 differ by a few hundredths
    assert float(stated.group(2)) == pytest.approx(after, abs=0.05)

    # the same command again replaces its own picture; someone else's file is refused
    assert invoke("demo", "-o", tmp_path / "demo.png", "--device", "cpu").exit_code == 0
    unrelated = tmp_path / "mine.png"
    Image.new("RGB", (16, 16)).save(unrelated)
    result = invoke("demo", "-o", unrelated, "-w", tmp_path / "missing.safetensors")
    assert result.exit_code == 3 and "--overwrite" in one_error_line(result.stderr)


def test_outputs_of_the_readmes_commands_are_git_ignored() -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    paths = ["demo.png", "deblur-demo/compare.png", "restored/a.jpg", "clip_deblurred.mp4"]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths], cwd=ROOT, capture_output=True, text=True
    )
    assert sorted(result.stdout.split()) == sorted(paths)


def test_readme_commands_exist() -> None:
    """Every ``deblur VERB`` the README shows is a command, and its options exist."""
    text = _readme()
    for verb, rest in re.findall(r"^deblur (\w+)([^\n#]*)", text, re.M):
        assert verb in main.commands, verb
        command = main.commands[verb]
        if isinstance(command, click.Group):
            continue
        known = {opt for p in command.params for opt in getattr(p, "opts", [])}
        for option in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", rest):
            assert option in known, (verb, option)
    assert os.path.basename(str(README)) == "README.md"


def test_weights_list_reads_the_registry_without_torch() -> None:
    """The registry is TOML: listing it must not pay for importing torch (seconds)."""
    result = subprocess.run(
        [sys.executable, "-c", REFUSAL_DRIVER, "weights", "list"], capture_output=True, text=True
    )
    assert result.stdout.split()[-2:] == ["0", "-"], (result.stdout, result.stderr)
    assert "light-gopro*" in result.stdout


def test_several_bad_inputs_and_an_empty_folder_are_refused_without_torch(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.png").write_text("not a picture")
    (tmp_path / "nothing").mkdir()
    for args, words in [
        (["image", "empty.jpg", "notes.png", "-o", "out"], "2 of 2 file(s) failed"),
        (["batch", "nothing", "-o", "out"], "no images found"),
    ]:
        result = subprocess.run(
            [sys.executable, "-c", REFUSAL_DRIVER, *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert result.stdout.split()[-2:] == ["2", "-"], (args, result.stdout, result.stderr)
        assert words in result.stderr, args
        assert "the others were written" not in result.stderr
        assert not (tmp_path / "out").exists()  # nothing half-made
