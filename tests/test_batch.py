"""``deblur batch``: folder tree, resume after SIGKILL, bad files, sharding across ranks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from huge_images import huge_png
from photo_helpers import data_file, random_weights
from PIL import Image

from deblur_cli import batch as batch_lib
from deblur_cli import batch_plan
from deblur_cli.batch_plan import Shard, parse_shard, plan_batch, rank_device, shard_from_env
from deblur_cli.cli import main
from deblur_cli.errors import DeblurError


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_weights(tmp_path_factory.mktemp("w") / "tiny.safetensors")


def make_tree(root: Path, count: int, size: tuple[int, int] = (96, 64)) -> list[Path]:
    """``count`` small real photos spread over nested folders, PNG and JPEG mixed."""
    sources = sorted(data_file("sharp", "bsds300_dcscn", "bsd100").glob("*.jpg"))
    folders = [root, root / "a", root / "a" / "b", root / "c"]
    made = []
    for i in range(count):
        image = cv2.resize(cv2.imread(str(sources[i % len(sources)])), size)
        path = folders[i % 4] / f"img_{i:03d}.{'png' if i % 2 else 'jpg'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), image)
        made.append(path)
    return made


def outputs(folder: Path) -> dict[str, int]:
    """Relative path → mtime (ns) of every finished output (temporaries are hidden files)."""
    return {
        p.relative_to(folder).as_posix(): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def batch_cli(*args: object, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, ["batch", *map(str, args)], env=env)


def test_tree_kept_and_bad_file_skipped(tmp_path: Path, weights: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    made = make_tree(src, 6)
    (src / "c" / "notes.png").write_text("not an image")
    (src / "readme.txt").write_text("ignored: not an image extension")
    result = batch_cli(src, "-o", out, "--weights", weights)
    assert result.exit_code != 0
    failures = [line for line in result.stderr.splitlines() if "notes.png" in line]
    assert len(failures) == 1 and failures[0].startswith("error:")
    expected = {p.relative_to(src).as_posix() for p in made}
    assert set(outputs(out)) == expected
    for rel in expected:
        assert cv2.imread(str(out / rel)) is not None


def test_frame_batch_groups_same_size_pictures(tmp_path: Path, weights: Path, monkeypatch) -> None:
    """--frame-batch 3 (what auto picks on a GPU): runs of same-size pictures share a forward
    pass, a picture of another size or a broken file starts a new group, and every output
    is what one-by-one gives (PNG, fp32: identical)."""
    from deblur_cli import engine

    src = tmp_path / "in"
    src.mkdir()
    frames = sorted(data_file("frames", "GOPR0477_11_00").glob("*.jpg"))[:6]
    for i, frame in enumerate(frames):  # frame 3 is smaller, frame 4 broken
        image = cv2.imread(str(frame))[:96, :128]
        cv2.imwrite(str(src / f"f{i}.png"), image[:64] if i == 3 else image)
    (src / "f4.png").write_text("not an image")
    calls: list[int] = []
    real = engine._forward

    def counting(model, batch, to_255=1.0):
        calls.append(batch.shape[0])
        return real(model, batch, to_255)

    monkeypatch.setattr(engine, "_forward", counting)
    common = ["--weights", weights, "--precision", "fp32", "--format", "png"]
    one = batch_cli(src, "-o", tmp_path / "one", *common)
    assert one.exit_code != 0 and calls == [1, 1, 1, 1, 1]  # 5 readable pictures
    calls.clear()
    grouped = batch_cli(src, "-o", tmp_path / "grouped", "--frame-batch", "3", *common)
    assert grouped.exit_code != 0 and "f4.png" in grouped.stderr
    assert calls == [3, 1, 1]  # f0-f2 together; f3 (another size); f5 (after the broken f4)
    assert sorted(outputs(tmp_path / "grouped")) == [f"f{i}.png" for i in (0, 1, 2, 3, 5)]
    for i in (0, 1, 2, 3, 5):
        a = cv2.imread(str(tmp_path / "one" / f"f{i}.png"))
        b = cv2.imread(str(tmp_path / "grouped" / f"f{i}.png"))
        assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 1


def test_output_inside_input_is_not_rescanned(tmp_path: Path, weights: Path) -> None:
    make_tree(tmp_path, 3)
    first = batch_cli(tmp_path, "-o", tmp_path / "restored", "--weights", weights)
    assert first.exit_code == 0, first.stderr
    again = batch_cli(tmp_path, "-o", tmp_path / "restored", "--weights", weights)
    assert again.exit_code == 0 and "nothing to do" in again.stderr
    assert not (tmp_path / "restored" / "restored").exists()


def test_same_input_and_output_folder_refused(tmp_path: Path, weights: Path) -> None:
    make_tree(tmp_path, 2)
    result = batch_cli(tmp_path, "-o", tmp_path, "--weights", weights)
    assert result.exit_code != 0 and len(result.stderr.strip().splitlines()) == 1
    nested = batch_cli(tmp_path / "a", "-o", tmp_path, "--weights", weights, "--force")
    assert nested.exit_code != 0 and len(nested.stderr.strip().splitlines()) == 1


def test_sigkill_half_way_then_resume(tmp_path: Path, weights: Path) -> None:
    """A killed run leaves only complete files; the rerun does only the rest."""
    src, out = tmp_path / "in", tmp_path / "out"
    made = make_tree(src, 50, size=(240, 160))
    exe = Path(sys.executable).with_name("deblur")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "deblur_cli"]
    cmd += ["batch", str(src), "-o", str(out), "--weights", str(weights), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while len(outputs(out) if out.exists() else {}) < 12:
            assert proc.poll() is None, "batch finished before it could be killed"
            assert time.monotonic() < deadline, "batch made no progress"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done_before = outputs(out)
    assert 12 <= len(done_before) < 50
    for rel in done_before:  # whatever exists is complete
        assert cv2.imread(str(out / rel)) is not None

    time.sleep(0.05)  # mtimes of redone files would differ from here on
    result = batch_cli(src, "-o", out, "--weights", weights)
    assert result.exit_code == 0, result.stderr
    assert f"resuming: {len(done_before)} of 50 already done" in result.stderr
    after = outputs(out)
    assert set(after) == {p.relative_to(src).as_posix() for p in made}
    assert all(after[rel] == mtime for rel, mtime in done_before.items())  # not redone
    for rel in after:
        with Image.open(out / rel) as im:
            im.load()  # a truncated file raises here
        assert cv2.imread(str(out / rel)).shape == (160, 240, 3)
    assert not [p for p in out.rglob(".*") if p.is_file()]  # no temporaries left behind


def test_stale_temporary_of_own_output_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    mine = out / ".img_001.k2j4_x9.tmp.png"
    other = out / ".someone_else.k2j4_x9.tmp.png"
    mine.write_bytes(b"half")
    other.write_bytes(b"half")
    jobs = [batch_plan.Job(tmp_path / "img_001.png", out / "img_001.png")]
    assert batch_plan.remove_stale_temporaries(jobs) == 1
    assert not mine.exists() and other.exists()


def test_shards_cover_every_file_exactly_once(tmp_path: Path) -> None:
    made = make_tree(tmp_path / "in", 23)
    everything = plan_batch(tmp_path / "in", tmp_path / "out")
    assert [job.src for job in everything] == sorted(
        made, key=lambda p: p.relative_to(tmp_path / "in").as_posix()
    )
    for count in (1, 2, 3, 5, 30):
        seen = []
        for index in range(count):
            seen += plan_batch(tmp_path / "in", tmp_path / "out", shard=Shard(index, count))
        assert sorted(j.src for j in seen) == sorted(j.src for j in everything)
        assert len(seen) == len(everything)  # no file in two shards


def test_shard_from_torchrun_env_and_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    assert shard_from_env({}) is None
    assert shard_from_env({"RANK": "2", "WORLD_SIZE": "4"}) == Shard(2, 4)
    assert parse_shard("1/3") == Shard(1, 3)
    for bad in ("3/3", "x/2", "1", "-1/2"):
        with pytest.raises(DeblurError):
            parse_shard(bad)
    assert rank_device("cpu", {"LOCAL_RANK": "1"}) == "cpu"
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    assert rank_device("auto", {"LOCAL_RANK": "1"}) == "cuda:1"
    assert rank_device("auto", {}) == "auto"


def test_cli_shards_under_torchrun_env_and_flag(tmp_path: Path, weights: Path) -> None:
    src = tmp_path / "in"
    made = make_tree(src, 7)
    expected = {p.relative_to(src).as_posix() for p in made}
    for rank in range(2):  # what torchrun --nproc-per-node 2 gives each process
        env = {"RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)}
        result = batch_cli(src, "-o", tmp_path / "env", "--weights", weights, env=env)
        assert result.exit_code == 0, result.stderr
    assert set(outputs(tmp_path / "env")) == expected
    first = batch_cli(src, "-o", tmp_path / "flag", "--weights", weights, "--shard", "0/2")
    assert first.exit_code == 0, first.stderr
    half = set(outputs(tmp_path / "flag"))
    assert 0 < len(half) < len(expected)
    second = batch_cli(src, "-o", tmp_path / "flag", "--weights", weights, "--shard", "1/2")
    assert second.exit_code == 0, second.stderr
    assert set(outputs(tmp_path / "flag")) == expected
    bad = batch_cli(src, "-o", tmp_path / "flag", "--weights", weights, "--shard", "2/2")
    assert bad.exit_code != 0 and len(bad.stderr.strip().splitlines()) == 1


def test_missing_folder_one_line(tmp_path: Path, weights: Path) -> None:
    result = batch_cli(tmp_path / "nope", "-o", tmp_path / "out", "--weights", weights)
    assert result.exit_code != 0 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_outputs_written_by_run_batch_decode(tmp_path: Path, weights: Path) -> None:
    """The library entry point, without the CLI: results come back per file."""
    from deblur_cli.engine import load_model

    make_tree(tmp_path / "in", 4)
    jobs = plan_batch(tmp_path / "in", tmp_path / "out")
    seen = []
    summary = batch_lib.run_batch(load_model(weights, "cpu"), jobs, on_result=seen.append)
    assert summary.done == 4 and not summary.failed and len(seen) == 4
    assert summary.megapixels == pytest.approx(4 * 96 * 64 / 1e6)
    for job in jobs:
        assert np.asarray(Image.open(job.dst)).shape[:2] == (64, 96)


def test_huge_file_reported_on_its_line_and_the_others_done(tmp_path: Path, weights: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    made = make_tree(src, 3)
    huge_png(src / "a" / "huge.png")
    result = batch_cli(src, "-o", out, "--weights", weights)
    assert result.exit_code == 2, result.stderr
    failures = [line for line in result.stderr.splitlines() if "huge.png" in line]
    assert len(failures) == 1 and failures[0].startswith("error:")
    assert "20000x20000 is 400 megapixels, over the limit of 200" in failures[0]
    assert "decompression bomb" not in result.stderr
    assert set(outputs(out)) == {p.relative_to(src).as_posix() for p in made}


def test_unwritable_output_fails_before_the_model_loads(tmp_path: Path) -> None:
    make_tree(tmp_path / "in", 2)
    (tmp_path / "not_a_folder").write_text("a file")
    result = batch_cli(tmp_path / "in", "-o", tmp_path / "not_a_folder" / "out",
                       "--weights", tmp_path / "no-such-weights.safetensors")  # fmt: skip
    assert result.exit_code == 3, result.stderr  # weights are never looked at (that is 4)
    assert len(result.stderr.strip().splitlines()) == 1 and "not_a_folder" in result.stderr


def test_format_png_for_a_tree_of_jpegs(tmp_path: Path, weights: Path) -> None:
    """--format png: lossless outputs named .png, metadata kept, and a rerun resumes."""
    from PIL import ImageCms

    src, out = tmp_path / "in", tmp_path / "out"
    made = make_tree(src, 4)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x013B] = "A. Photographer"
    tagged = src / "a" / "tagged.jpg"
    Image.open(made[0]).save(tagged, quality=95, icc_profile=icc, exif=exif.tobytes())
    result = batch_cli(src, "-o", out, "--weights", weights, "--format", "png")
    assert result.exit_code == 0, result.stderr
    expected = {p.relative_to(src).with_suffix(".png").as_posix() for p in [*made, tagged]}
    assert set(outputs(out)) == expected
    for rel in expected:
        with Image.open(out / rel) as im:
            assert im.format == "PNG" and im.size == (96, 64)
    with Image.open(out / "a" / "tagged.png") as im:
        assert im.info.get("icc_profile") == icc
        assert im.getexif().get(0x013B) == "A. Photographer"
    again = batch_cli(src, "-o", out, "--weights", weights, "--format", "png")
    assert again.exit_code == 0 and "nothing to do" in again.stderr


def test_format_collision_refused_before_the_work(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    photo = np.full((64, 96, 3), 100, np.uint8)
    cv2.imwrite(str(src / "a.jpg"), photo)
    cv2.imwrite(str(src / "a.png"), photo)
    result = batch_cli(src, "-o", tmp_path / "out", "--format", "webp",
                       "--weights", tmp_path / "no-such-weights.safetensors")  # fmt: skip
    assert result.exit_code == 3, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "a.webp" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
def test_io_threads_yield_to_the_network() -> None:
    """Decode/encode threads run at a lower priority than the network's; the caller's own
    priority is left alone."""
    import threading

    from deblur_cli.runtime import IO_THREAD_NICENESS, yield_to_network

    before = os.getpriority(os.PRIO_PROCESS, 0)
    seen: dict[str, int] = {}

    def worker() -> None:
        assert yield_to_network()
        seen["io"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["io"] == max(before, IO_THREAD_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
