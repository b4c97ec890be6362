"""``deblur video``: timing, audio, rotation, ranges, frames, errors and resume, end to end.

Clips are made here with PyAV: a moving pattern at 30000/1001 fps plus a 440 Hz sine track.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import run_cli

from deblur_cli.cli import main
from deblur_cli.errors import InputError
from deblur_cli.video import (
    EncodeSettings,
    parse_time,
    parts_folder,
    probe,
    process_video,
    resolve_auto,
)

FPS = Fraction(30000, 1001)
W, H = 160, 96
RATE = 48000


def make_clip(
    path: Path,
    frames: int = 12,
    *,
    rotation: int = 0,
    audio: bool = True,
    video: bool = True,
    options: dict[str, str] | None = None,
    size: tuple[int, int] = (W, H),
) -> Path:
    """A checkerboard sliding right, H.264 at 30000/1001 fps, with a stereo AAC sine."""
    W, H = size  # noqa: N806 - shadows the module default on purpose
    with av.open(str(path), "w", options=options or {}) as out:
        if video:
            v = out.add_stream("libx264", rate=FPS)
            v.width, v.height, v.pix_fmt = W, H, "yuv420p"
            if rotation:
                v.set_display_rotation(rotation)
        if audio:
            a = out.add_stream("aac", rate=RATE)
            a.layout = "stereo"
        if video:
            y, x = np.mgrid[0:H, 0:W]
            for i in range(frames):
                board = (((x + 4 * i) // 8 + y // 8) % 2 * 180 + 40).astype(np.uint8)
                rgb = np.stack([board, np.roll(board, i, 0), 255 - board], -1)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts, frame.time_base = i, 1 / FPS
                out.mux(v.encode(frame))
            out.mux(v.encode(None))
        if audio:
            total = round(frames / FPS * RATE)
            wave = (0.3 * np.sin(2 * np.pi * 440 * np.arange(total) / RATE)).astype(np.float32)
            for k in range(0, total, 1024):
                chunk = wave[k : k + 1024]
                af = av.AudioFrame.from_ndarray(
                    np.stack([chunk, chunk]).T.reshape(1, -1).copy(), format="flt", layout="stereo"
                )
                af.sample_rate, af.pts, af.time_base = RATE, k, Fraction(1, RATE)
                out.mux(a.encode(af))
            out.mux(a.encode(None))
    return path


def read_clip(path: Path) -> dict:
    """What 'plays exactly like the original' means, measured."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = list(c.decode(v))
        info = {
            "times": [float(f.pts * v.time_base) for f in frames],
            "rate": v.average_rate,
            "rotation": frames[0].rotation,
            "size": (frames[0].width, frames[0].height),
            "first": frames[0].to_ndarray(format="rgb24"),
        }
    with av.open(str(path)) as c:
        audio = c.streams.audio
        if audio:
            a = audio[0]
            samples = sum(f.samples for f in c.decode(a))
            info["audio_seconds"] = samples / a.codec_context.sample_rate
            info["audio_codec"] = a.codec_context.name
    return info


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4", rotation=90)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


def test_video_keeps_frames_timing_audio_rotation(clip: Path, tiny_weights: Path) -> None:
    before = clip.read_bytes()
    proc = run_cli("video", clip, "-w", tiny_weights, "--precision", "fp32", "--segment", "0.15")
    assert proc.returncode == 0, proc.stderr
    out = clip.with_name("clip_deblurred.mp4")
    src, dst = read_clip(clip), read_clip(out)
    assert len(dst["times"]) == len(src["times"]) == 12
    assert dst["times"] == pytest.approx(src["times"], abs=1e-6)  # across 3 segments
    assert dst["rate"] == FPS
    assert dst["rotation"] == 90 and dst["size"] == (W, H)
    assert dst["audio_codec"] == "aac"
    assert dst["audio_seconds"] == pytest.approx(src["audio_seconds"], abs=float(1 / FPS))
    assert dst["audio_seconds"] == pytest.approx(12 / FPS, abs=float(1 / FPS))
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        duration = float(c.streams.video[0].duration * c.streams.video[0].time_base)
    assert duration == pytest.approx(12 / FPS, abs=float(1 / FPS))
    assert clip.read_bytes() == before
    assert not parts_folder(out).exists()
    assert "12/12" in proc.stderr and "fps" in proc.stderr


def test_identity_round_trip_keeps_colours(clip: Path, tmp_path: Path) -> None:
    out = process_video(clip, tmp_path / "same.mkv", lambda rgb: rgb).output
    a, b = read_clip(clip), read_clip(out)
    diff = b["first"].astype(float) - a["first"].astype(float)
    # 4:2:0 smears the sharp coloured edges, but there is no colour-matrix or range shift
    assert np.abs(diff.mean(axis=(0, 1))).max() < 2.5, diff.mean(axis=(0, 1))
    assert len(b["times"]) == 12 and b["rotation"] == 90 and b["rate"] == FPS
    # Matroska keeps milliseconds; it may shift every stream alike to avoid negative times
    assert np.diff(b["times"]) == pytest.approx(np.diff(a["times"]), abs=1.01e-3)
    assert b["audio_codec"] == "aac"


def test_start_end(clip: Path, tiny_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "part.mp4"
    proc = run_cli(
        "video", clip, "-o", out, "-w", tiny_weights, "--precision", "fp32",
        "--start", "0.1", "--end", "0:00.3",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    info = read_clip(out)
    # frames at 3..8 x 1001/30000 s lie in [0.1, 0.3); the first is moved to time 0
    assert info["times"] == pytest.approx([i * 1001 / 30000 for i in range(6)], abs=1e-6)
    assert info["audio_seconds"] == pytest.approx(6 / FPS, abs=2 * 1024 / RATE)


def test_frames_dir(clip: Path, tiny_weights: Path, tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    proc = run_cli(
        "video", clip, "--frames-dir", folder, "-w", tiny_weights, "--precision", "fp32",
        "--end", "0.2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    pngs = sorted(folder.glob("frame_*.png"))
    assert len(pngs) == 6  # 0 .. 5 x 1001/30000 < 0.2
    from PIL import Image

    with Image.open(pngs[0]) as im:
        assert im.size == (H, W)  # rotated upright
    rows = (folder / "timestamps.txt").read_text().splitlines()[1:]
    assert float(rows[5].split("\t")[1]) == pytest.approx(5 * 1001 / 30000, abs=1e-6)


@pytest.mark.parametrize("faststart", [False, True])
def test_truncated_clip_fails_cleanly(
    clip: Path, tiny_weights: Path, tmp_path: Path, faststart: bool
) -> None:
    if faststart:  # index first: the cut only shows when comparing the index to the size
        clip = make_clip(tmp_path / "fs.mp4", options={"movflags": "faststart"})
    data = clip.read_bytes()
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "out.mp4"
    proc = run_cli("video", bad, "-o", out, "-w", tiny_weights)
    assert proc.returncode != 0
    assert "cut.mp4" in one_error_line(proc.stderr)
    assert not out.exists() and not parts_folder(out).exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_inputs(tmp_path: Path, tiny_weights: Path) -> None:
    runner = CliRunner()
    sound = make_clip(tmp_path / "sound.mp4", video=False)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    cases = [
        ([str(sound)], "no video stream"),
        ([str(junk)], "not a readable video"),
        ([str(tmp_path / "missing.mp4")], "no such file"),
    ]
    for args, message in cases:
        result = runner.invoke(main, ["video", *args, "-w", str(tiny_weights)])
        assert result.exit_code == 2, result.output
        assert message in one_error_line(result.stderr)
    clip = make_clip(tmp_path / "c.mp4", frames=2, audio=False)
    for extra, message in [
        (["--codec", "nope"], "unknown video encoder"),
        (["-o", str(tmp_path / "x.xyz")], "unknown video extension '.xyz'; use one of .mp4"),
        (["-o", str(clip)], "is the input"),
    ]:
        result = runner.invoke(main, ["video", str(clip), "-w", str(tiny_weights), *extra])
        assert result.exit_code != 0
        assert message in one_error_line(result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "c.mp4", "junk.mp4", "sound.mp4", "tiny.safetensors",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--start", "5"], "--start 5 s is past the end of clip.mp4 (it ends at 0.400 s)"),
        (["--start", "0:00.5", "--frames-dir", "FRAMES"], "--start 0.5 s is past the end"),
        (["--end", "0"], "--end 0 s is not after the first frame of clip.mp4"),
    ],
)
def test_range_outside_the_clip_fails_before_the_model_loads(
    clip: Path,
    tiny_weights: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    extra: list[str],
    message: str,
) -> None:
    from deblur_cli.cli import video_cmd

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(video_cmd, "open_model", no_model)
    extra = [str(tmp_path / "frames") if a == "FRAMES" else a for a in extra]
    result = CliRunner().invoke(main, ["video", str(clip), "-w", str(tiny_weights), *extra])
    assert result.exit_code == 2, result.output
    assert message in one_error_line(result.stderr)  # no 0/0 progress bar either
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "tiny.safetensors"]


@pytest.mark.parametrize("option, value", [("--start", "abc"), ("--end", "1:xx"), ("--end", "-3")])
def test_bad_time_is_a_usage_error(clip: Path, tiny_weights: Path, option: str, value: str) -> None:
    result = CliRunner().invoke(main, ["video", str(clip), "-w", str(tiny_weights), option, value])
    assert result.exit_code == 2, result.output
    assert f"cannot read time {value!r} (use seconds, MM:SS or HH:MM:SS)" in result.stderr
    assert option in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(InputError, match="cannot read time"):  # the library says the same
        parse_time(value)


def x264_setting(path: Path, name: str) -> str:
    """One of the settings x264 writes into the stream itself (``threads``, ``subme``…)."""
    settings = path.read_bytes().split(b"x264 - core", 1)[1][:2000]
    return settings.split(f" {name}=".encode(), 1)[1].split(b" ", 1)[0].decode()


def x264_threads(path: Path) -> int:
    return int(x264_setting(path, "threads"))


def test_codecs_stay_beside_a_cpu_network(tiny_weights: Path, tmp_path: Path) -> None:
    """On the CPU the network already has every core: the encoder runs on one thread instead
    of one per core preempting it; the library default (for a GPU) keeps x264's own choice."""
    clip = make_clip(tmp_path / "wide.mp4", frames=3, audio=False, size=(320, 192))
    out = tmp_path / "cpu.mp4"
    proc = run_cli("video", clip, "-o", out, "-w", tiny_weights, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert x264_threads(out) == 1
    if (os.cpu_count() or 1) > 1:
        process_video(clip, tmp_path / "auto.mp4", lambda rgb: rgb)
        assert x264_threads(tmp_path / "auto.mp4") > 1


def test_preset_auto_is_veryfast_on_the_cpu(tiny_weights: Path, tmp_path: Path) -> None:
    """x264 shares the cores with a CPU network, so auto picks veryfast there with one
    sub-pixel pass (subme=1, one reference frame); an explicit --preset is used as given
    (medium: subme=7, ref=3), and a GPU run gets medium."""
    clip = make_clip(tmp_path / "c.mp4", frames=3, audio=False, size=(160, 96))
    auto, medium = tmp_path / "auto.mp4", tmp_path / "medium.mp4"
    proc = run_cli("video", clip, "-o", auto, "-w", tiny_weights, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "preset veryfast (subme=1)" in " ".join((proc.stdout + proc.stderr).split())
    assert (x264_setting(auto, "subme"), x264_setting(auto, "ref")) == ("1", "1")
    proc = run_cli("video", clip, "-o", medium, "-w", tiny_weights, "--preset", "medium")
    assert proc.returncode == 0, proc.stderr
    assert (x264_setting(medium, "subme"), x264_setting(medium, "ref")) == ("7", "3")
    auto_settings = EncodeSettings(preset="auto")
    assert resolve_auto(auto_settings, "cuda:0") == EncodeSettings(preset="medium")
    slow = EncodeSettings(preset="slow")
    assert resolve_auto(slow, "cpu") == slow


def test_frame_batch_gives_the_same_video(clip: Path, tiny_weights: Path, tmp_path: Path) -> None:
    """--frame-batch 5 (what auto picks on a GPU) runs 12 frames as 5+5+2 per forward pass:
    the same frames and timestamps as one at a time."""
    one, five = tmp_path / "one.mp4", tmp_path / "five.mp4"
    common = ["-w", tiny_weights, "--precision", "fp32", "--pix-fmt", "yuv444p", "--crf", "0",
              "--segment", "0.15"]  # fmt: skip
    proc = run_cli("video", clip, "-o", one, *common)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("video", clip, "-o", five, "--frame-batch", "5", *common)
    assert proc.returncode == 0, proc.stderr
    assert "5 frames per forward pass" in " ".join((proc.stdout + proc.stderr).split())
    assert read_clip(five)["times"] == read_clip(one)["times"]
    with av.open(str(one)) as a, av.open(str(five)) as b:
        pairs = zip(a.decode(video=0), b.decode(video=0), strict=True)
        diffs = [np.abs(x.to_ndarray().astype(int) - y.to_ndarray()).max() for x, y in pairs]
    assert len(diffs) == 12 and max(diffs) <= 1


def segmented_run(clip: Path, weights: Path, out: Path) -> list[str]:
    """``deblur video`` arguments in 0.1 s segments (3 frames each), fp32 so reruns match."""
    args = ["video", str(clip), "-o", str(out), "-w", str(weights), "--segment", "0.1"]
    return [*args, "--precision", "fp32"]


def interrupt_after(monkeypatch: pytest.MonkeyPatch, frames: int | None) -> dict[str, int]:
    """Make the CLI's per-frame function count its calls and press Ctrl-C on call
    ``frames + 1`` (None: never)."""
    from deblur_cli.cli import video_cmd
    from deblur_cli.engine import deblur_array

    calls = {"n": 0}

    def counting(model, rgb):
        calls["n"] += 1
        if frames is not None and calls["n"] == frames + 1:
            raise KeyboardInterrupt
        return deblur_array(model, rgb)

    monkeypatch.setattr(video_cmd, "deblur_array", counting)
    return calls


def test_ctrl_c_then_same_command_resumes(
    clip: Path, tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.mp4"
    args = segmented_run(clip, tiny_weights, out)
    interrupt_after(monkeypatch, 6)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 130
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert "run the same command again" in errors[0]
    # exactly what was kept: frames and video time (6 frames at 29.97 fps)
    assert "kept 6 deblurred frames (0–5, the first 0.2 s of the video)" in errors[0]
    assert "continue from frame 6" in errors[0]
    assert not out.exists()
    manifest = json.loads((parts_folder(out) / "manifest.json").read_text())
    assert sum(s["frames"] for s in manifest["segments"]) == 6  # two segments of 3 frames

    calls = interrupt_after(monkeypatch, None)
    result = CliRunner().invoke(main, args)  # the very same command: no --resume
    assert result.exit_code == 0, result.stderr
    assert calls["n"] == 12 - 6  # only the frames not done yet
    assert "resuming: reused 2 finished segments (frames 0–5, 0.2 s of video)" in result.stderr
    assert read_clip(out)["times"] == pytest.approx(read_clip(clip)["times"], abs=1e-6)
    assert not parts_folder(out).exists()

    finished = out.read_bytes()
    result = CliRunner().invoke(main, args)  # finished: nothing to redo
    assert result.exit_code == 0, result.stderr
    assert calls["n"] == 6 and "nothing to do" in result.stderr and "--overwrite" in result.stderr
    assert out.read_bytes() == finished

    result = CliRunner().invoke(main, [*args, "--overwrite"])
    assert result.exit_code == 0, result.stderr
    assert calls["n"] == 6 + 12 and "resuming" not in result.stderr


def test_force_discards_finished_segments(
    clip: Path, tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.mp4"
    args = segmented_run(clip, tiny_weights, out)
    interrupt_after(monkeypatch, 6)
    assert CliRunner().invoke(main, args).exit_code == 130
    calls = interrupt_after(monkeypatch, None)
    changed = [*args, "--start", "0.05", "--crf", "20"]
    assert CliRunner().invoke(main, changed).exit_code == 2  # refused: other settings
    result = CliRunner().invoke(main, [*changed, "--restart"])  # the spelling train uses
    assert result.exit_code == 0, result.stderr
    assert calls["n"] == 10 and "resuming" not in result.stderr  # from 0.05 s: frames 2..11
    assert read_clip(out)["times"] == pytest.approx(read_clip(clip)["times"][:10], abs=1e-6)


@pytest.mark.parametrize(
    "change, message",
    [
        (["--crf", "20"], "--crf 18 → 20"),
        (["--start", "0.05"], "--start not set → 0.05"),
        (["-w", "OTHER"], "weights file"),
        (["--segment", "0.2"], "frames per segment (--segment) 3 → 6"),
    ],
)
def test_rerun_with_other_settings_refuses_to_mix(
    clip: Path,
    tiny_weights: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: list[str],
    message: str,
) -> None:
    if change[-1] == "OTHER":
        other = tmp_path / "other.safetensors"
        other.write_bytes(tiny_weights.read_bytes())
        change = ["-w", str(other)]
    out = tmp_path / "out.mp4"
    args = segmented_run(clip, tiny_weights, out)
    interrupt_after(monkeypatch, 4)
    assert CliRunner().invoke(main, args).exit_code == 130
    manifest = (parts_folder(out) / "manifest.json").read_text()
    calls = interrupt_after(monkeypatch, None)
    changed = [*args, *change]  # a later option wins in click
    result = CliRunner().invoke(main, changed)
    assert result.exit_code == 2, result.output
    line = one_error_line(result.stderr)
    assert message in line and "2 finished segments (frames 0–3)" in line  # Ctrl-C keeps all
    assert "--overwrite" in line
    assert calls["n"] == 0 and not out.exists()
    assert (parts_folder(out) / "manifest.json").read_text() == manifest  # nothing discarded


def test_library_resume_never_splices_other_jobs(clip: Path, tmp_path: Path) -> None:
    from deblur_cli.video import ResumeConflict, unfinished_run

    out = tmp_path / "out.mp4"
    seen: list[int] = []

    def stop_after_4(rgb: np.ndarray) -> np.ndarray:
        seen.append(1)
        if len(seen) > 4:
            raise KeyboardInterrupt
        return rgb

    with pytest.raises(KeyboardInterrupt):
        process_video(clip, out, stop_after_4, job={"model": "a"}, segment_seconds=0.1)
    # Ctrl-C closes the segment in progress: all 4 frames done are kept, not just 3.
    assert unfinished_run(clip, out, job={"model": "a"}, segment_seconds=0.1).frames == 4
    with pytest.raises(ResumeConflict, match="other settings.*model a → b"):
        process_video(clip, out, lambda x: x, job={"model": "b"}, segment_seconds=0.1)
    result = process_video(clip, out, lambda x: x, job={"model": "b"}, resume=False)
    assert result.resumed_frames == 0 and result.frames == 12


def test_frames_dir_rerun_resumes_and_refuses_other_range(
    clip: Path, tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "frames"
    args = ["video", str(clip), "--frames-dir", str(folder), "-w", str(tiny_weights)]
    args += ["--precision", "fp32"]
    interrupt_after(monkeypatch, 5)
    assert CliRunner().invoke(main, args).exit_code == 130
    assert len(list(folder.glob("frame_*.png"))) == 5

    result = CliRunner().invoke(main, [*args, "--start", "0.1"])  # frame_000000 would move
    assert result.exit_code == 2
    assert "--start not set → 0.1" in one_error_line(result.stderr)

    calls = interrupt_after(monkeypatch, None)
    result = CliRunner().invoke(main, [*args, "--resume"])  # the old flag is still accepted
    assert result.exit_code == 0, result.stderr
    assert calls["n"] == 12 - 5 and "resuming: reused 5 finished frames (0–4)" in result.stderr
    assert len(list(folder.glob("frame_*.png"))) == 12
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and "nothing to do" in result.stderr and calls["n"] == 7

    result = CliRunner().invoke(main, [*args, "--overwrite", "--end", "0.2"])
    assert result.exit_code == 0, result.stderr
    assert calls["n"] == 7 + 6 and len(list(folder.glob("frame_*.png"))) == 6  # old ones gone


def test_ctrl_c_keeps_frames_still_being_written(
    clip: Path, tiny_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--frames-dir: frames deblurred before Ctrl-C but still queued for the (slow) writer
    are written, not dropped, so the re-run resumes after all of them."""
    from deblur_cli.io import images

    real_write = images.write_image

    def slow_write(*args, **kwargs):
        time.sleep(0.3)
        return real_write(*args, **kwargs)

    monkeypatch.setattr(images, "write_image", slow_write)
    folder = tmp_path / "frames"
    interrupt_after(monkeypatch, 4)
    args = ["video", str(clip), "--frames-dir", str(folder), "-w", str(tiny_weights)]
    assert CliRunner().invoke(main, [*args, "--precision", "fp32"]).exit_code == 130
    assert sorted(p.name for p in folder.glob("frame_*.png")) == [
        f"frame_{i:06d}.png" for i in range(4)
    ]


def test_help_offers_overwrite_not_the_old_names() -> None:
    result = CliRunner().invoke(main, ["video", "--help"])
    assert "--overwrite" in result.output and "same command" in result.output
    for old in ("--force", "--restart", "--resume"):  # still accepted, no longer shown
        assert old not in result.output


# The child runs the real CLI, but its per-frame function tells the parent (through a pipe)
# when it has handed BLOCK_AFTER frames on and then blocks for good: the kill always lands
# mid-run, however fast the machine.
KILL_DRIVER = """
import os, sys, threading
from deblur_cli.cli import main, video_cmd

signal_fd, block_after = int(sys.argv[1]), int(sys.argv[2])
real_deblur, calls = video_cmd.deblur_array, 0

def deblur_then_block(model, rgb):
    global calls
    calls += 1
    if calls > block_after:
        os.write(signal_fd, b"blocked")
        os.close(signal_fd)
        threading.Event().wait()
    return real_deblur(model, rgb)

video_cmd.deblur_array = deblur_then_block
main(sys.argv[3:], prog_name="deblur")
"""
BLOCK_AFTER = 7  # segments of 3 frames: two finished, the third in progress when killed


def test_resume_after_sigkill(
    tmp_path: Path, tiny_weights: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deblur_cli.cli import video_cmd
    from deblur_cli.engine import deblur_array

    clip = make_clip(tmp_path / "long.mp4", frames=30)
    out = tmp_path / "out.mp4"
    args = segmented_run(clip, tiny_weights, out)
    manifest = parts_folder(out) / "manifest.json"
    log = tmp_path / "child.log"
    read_end, write_end = os.pipe()
    with log.open("wb") as child_log:
        proc = subprocess.Popen(
            [sys.executable, "-c", KILL_DRIVER, str(write_end), str(BLOCK_AFTER), *args],
            pass_fds=(write_end,),
            stdout=child_log,
            stderr=subprocess.STDOUT,
        )
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 120)
        message = os.read(read_end, 16) if ready else b""
        assert message == b"blocked", (proc.poll(), log.read_text())
        # the encoder thread still finishes the segments whose frames were handed on
        deadline, done = time.monotonic() + 60, 0
        while time.monotonic() < deadline and done < 6:
            if manifest.is_file():
                done = sum(s["frames"] for s in json.loads(manifest.read_text())["segments"])
            time.sleep(0.02)
        assert proc.poll() is None  # still blocked: the kill lands mid-run
    finally:
        os.close(read_end)
        proc.kill()
        proc.wait()
    assert done == 6 and not out.exists()

    seen = []

    def count(model, rgb: np.ndarray) -> np.ndarray:
        seen.append(1)
        return deblur_array(model, rgb)

    monkeypatch.setattr(video_cmd, "deblur_array", count)
    result = CliRunner().invoke(main, args)  # the same command again
    assert result.exit_code == 0, result.stderr
    assert "resuming: reused 2 finished segments (frames 0–5, 0.2 s of video)" in result.stderr
    assert len(seen) == 30 - 6
    info = read_clip(out)
    assert info["times"] == pytest.approx([i / FPS for i in range(30)], abs=1e-6)
    assert info["audio_seconds"] == pytest.approx(30 / FPS, abs=float(1 / FPS))
    assert not parts_folder(out).exists()


def test_parse_time_and_probe(clip: Path) -> None:
    assert parse_time("1:02.5") == 62.5 and parse_time("1:00:00") == 3600
    assert parse_time("7") == 7 and parse_time(None) is None
    info = probe(clip)
    assert (info.width, info.height, info.rate, info.frames, info.rotation) == (W, H, FPS, 12, 90)
    assert info.other_streams == ("audio:aac",)


def test_photos_work_and_video_says_why_without_pyav(
    clip: Path, tiny_weights: Path, tmp_path: Path
) -> None:
    """A machine where PyAV will not import still deblurs photos; `deblur video` says why."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "av.py").write_text("raise ImportError('PyAV blocked for this test')\n")
    paths = [str(blocker), os.environ.get("PYTHONPATH")]
    env = {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    photo = tmp_path / "in.png"
    cv2.imwrite(str(photo), np.full((32, 48, 3), 90, np.uint8))
    ok = run_cli("image", photo, "-o", tmp_path / "out.png", "-w", tiny_weights, env=env)
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "out.png").is_file()
    result = run_cli("video", clip, "-o", tmp_path / "out.mp4", "-w", tiny_weights, env=env)
    assert result.returncode == 5
    line = one_error_line(result.stderr)
    assert "needs PyAV" in line and "blocked" in line
    assert not (tmp_path / "out.mp4").exists()


def test_video_package_ships_in_the_wheel() -> None:
    """Every folder of deblur_cli/video (and the rest) is listed for setuptools, so a
    non-editable install does not lose part of the package."""
    tomllib = pytest.importorskip("tomllib")

    root = Path(__file__).resolve().parents[1]
    listed = set(
        tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    on_disk = {
        ".".join(init.parent.relative_to(root).parts)
        for init in (root / "deblur_cli").rglob("__init__.py")
    }
    assert "deblur_cli.video" in on_disk
    assert on_disk <= listed, on_disk - listed
