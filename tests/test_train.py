"""deblur train: datasets, augmentation, losses, the loop, resume, AMP, ADV, DDP, CLI."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from deblur_cli.errors import InputError
from deblur_cli.model import ModelConfig
from deblur_cli.train.augment import AugmentConfig, augment_pair
from deblur_cli.train.data import TrainSet, open_source
from deblur_cli.train.discriminator import Discriminator, min_patch
from deblur_cli.train.losses import multiscale_content_loss, parse_loss
from deblur_cli.train.trainer import TrainConfig, Trainer
from deblur_cli.weights import read_weights

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
EVAL_PAIRS = SHARED / "eval" / "gopro_style_train_scenes"
TINY = ModelConfig(3, 1, 8, 3)
TINY_ARG = "3,1,8,3"
needs_shared = pytest.mark.skipif(not EVAL_PAIRS.is_dir(), reason="../shared/data absent")


def _crop_pairs(dest: Path, size: int, per_image: int) -> Path:
    """Small aligned pairs cut from the real GOPRO-style pairs (fast to decode)."""
    for sub in ("blur", "sharp"):
        (dest / sub).mkdir(parents=True, exist_ok=True)
    for i, blur_path in enumerate(sorted((EVAL_PAIRS / "blur").glob("*.png"))):
        blur = cv2.imread(str(blur_path))
        sharp = cv2.imread(str(EVAL_PAIRS / "sharp" / blur_path.name))
        for j in range(per_image):
            y, x = 150 + 200 * j, 300 + 350 * j
            cv2.imwrite(str(dest / "blur" / f"p{i}_{j}.png"), blur[y : y + size, x : x + size])
            cv2.imwrite(str(dest / "sharp" / f"p{i}_{j}.png"), sharp[y : y + size, x : x + size])
    return dest


def _write_frame_crops(frames: list[Path], dest: Path) -> list[np.ndarray]:
    """An 80 px crop of each frame saved as PNG in ``dest``; returns the crops as RGB."""
    dest.mkdir()
    crops = []
    for p in frames:
        crop = cv2.imread(str(p))[300:380, 500:580]
        cv2.imwrite(str(dest / (p.stem + ".png")), crop)
        crops.append(np.ascontiguousarray(crop[..., ::-1]))
    return crops


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    if not EVAL_PAIRS.is_dir():
        pytest.skip("../shared/data absent")
    return _crop_pairs(tmp_path_factory.mktemp("pairs"), 96, 2)


def tiny_cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        data=[f"pairs:{data}"],
        out=str(out),
        model=TINY,
        steps=6,
        batch=2,
        patch=64,
        lr=1e-3,
        workers=0,
        val_count=2,
        val_every=1000,
        val_crop=64,
        checkpoint_every=1000,
        log_every=2,
    )
    base.update(kw)
    return TrainConfig(**base)


def run_cli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    exe = shutil.which("deblur")
    cmd = [exe, *args] if exe else [sys.executable, "-m", "deblur_cli", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- pieces


def test_parse_loss() -> None:
    spec = parse_loss("1*L1+0.1*ADV")
    assert (spec.content, spec.content_weight, spec.adv_weight) == ("L1", 1.0, 0.1)
    assert parse_loss("MSE").content == "MSE"
    assert str(parse_loss("2*L2")) == "2*MSE"
    from deblur_cli.errors import DeblurError

    for bad in ("1*FOO", "ADV", "1*L1+1*MSE", "x*L1"):
        with pytest.raises(DeblurError):
            parse_loss(bad)


def test_content_loss_sums_scales() -> None:
    sharp = torch.rand(1, 3, 32, 32) * 255
    outs = [sharp + 1, torch.nn.functional.avg_pool2d(sharp, 2), torch.zeros(1, 3, 8, 8)]
    total, terms = multiscale_content_loss(outs, sharp, "L1")
    assert len(terms) == 3 and torch.isclose(total, sum(terms))
    assert torch.isclose(terms[0], torch.tensor(1.0))


def test_discriminator_official_shape() -> None:
    d = Discriminator()
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 11 and all(c.bias is None for c in convs)
    assert [c.out_channels for c in convs] == [32, 32, 64, 64, 128, 128, 256, 256, 512, 512, 1]
    assert [c.stride[0] for c in convs[:10]] == [1, 2, 1, 2, 1, 4, 1, 4, 1, 4]
    assert convs[9].kernel_size == (4, 4) and convs[9].padding == (0, 0)
    with torch.no_grad():
        assert d(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 1, 1)
    assert 192 < min_patch() <= 256


def test_augment_is_deterministic_and_keeps_pairs_aligned() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)
    cfg = AugmentConfig(saturation=0.0, noise=0.0)  # geometric + channel only: exact
    for seed in range(8):
        b, s = augment_pair(img, img, np.random.default_rng(seed), cfg)
        assert np.array_equal(b, s)
    a1 = augment_pair(img, img, np.random.default_rng(5), AugmentConfig())
    a2 = augment_pair(img, img, np.random.default_rng(5), AugmentConfig())
    assert all(np.array_equal(x, y) for x, y in zip(a1, a2, strict=True))
    b, s = augment_pair(img, img, np.random.default_rng(1), AugmentConfig.none())
    assert np.array_equal(b, img) and np.array_equal(s, img)


@needs_shared
def test_sample_depends_only_on_seed_and_id(pairs: Path) -> None:
    ts = TrainSet([open_source(f"pairs:{pairs}")], patch=32, seed=3)
    b1, s1 = ts[17]
    b2, s2 = TrainSet([open_source(str(pairs))], patch=32, seed=3)[17]
    assert torch.equal(b1, b2) and torch.equal(s1, s2)
    assert b1.shape == (3, 32, 32)


# --------------------------------------------------------------------------- training


@needs_shared
def test_loss_falls(pairs: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(pairs, tmp_path / "run", steps=30, batch=4, log_every=5, val_every=30)
    result = Trainer(cfg).run()
    assert result.step == 30
    with open(tmp_path / "run" / "log.csv") as f:
        losses = [float(r["loss"]) for r in csv.DictReader(f) if r["loss"]]
    assert losses[-1] < 0.7 * losses[0], losses
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000
    assert result.best and np.isfinite(result.best["psnr"])
    assert read_weights(tmp_path / "run" / "last.safetensors").config == TINY


@needs_shared
def test_time_waiting_for_data_is_measured(pairs: Path, tmp_path: Path, monkeypatch) -> None:
    """log.csv and the result say how much of the run waited on the loader: a slow source
    (here 60 ms per pair, in the main process) shows as most of it, a fast one as little."""
    from deblur_cli.train import data

    shares = {}
    for name, delay in (("fast", 0.0), ("slow", 0.06)):
        original = data.PairSource.sample

        def slow(self, *args, delay=delay, original=original, **kwargs):
            time.sleep(delay)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(data.PairSource, "sample", slow)
        cfg = tiny_cfg(pairs, tmp_path / name, steps=6, batch=2, val_count=0)
        result = Trainer(cfg).run()
        monkeypatch.setattr(data.PairSource, "sample", original)
        with open(tmp_path / name / "log.csv") as f:
            rows = [r for r in csv.DictReader(f) if r["data_s"]]
        assert len(rows) == 3 and all(0 <= float(r["data_share"]) <= 1 for r in rows)
        if delay:
            assert all(float(r["data_s"]) >= 2 * delay for r in rows), rows
        shares[name] = result.data_share
    assert shares["slow"] > 0.5 and shares["slow"] > 3 * shares["fast"], shares


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["G"]


@needs_shared
def test_interrupt_and_resume_is_bit_identical(pairs: Path, tmp_path: Path) -> None:
    straight = Trainer(tiny_cfg(pairs, tmp_path / "a")).run()

    def interrupt(trainer: Trainer, step: int) -> None:
        if step == 3:
            trainer.stop.request()  # what Ctrl-C / SIGTERM do

    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_cfg(pairs, tmp_path / "b"), on_step=interrupt).run()
    state = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 3
    resumed = Trainer(tiny_cfg(pairs, tmp_path / "b"))
    assert resumed.resumed_from == 3
    result = resumed.run()
    assert (result.start_step, result.step) == (3, straight.step) == (3, 6)
    a, b = _weights(tmp_path / "a" / "checkpoint.pt"), _weights(tmp_path / "b" / "checkpoint.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with open(tmp_path / "b" / "log.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f) if r["loss"]]
    assert steps == [2, 4, 6]  # no duplicated rows after the resume


@needs_shared
def test_stopped_run_exported_from_its_checkpoint(pairs: Path, tmp_path: Path) -> None:
    """scripts/export_checkpoint.py: the network of a run stopped early, as a weight file."""
    from deblur_cli.engine import load_model

    def interrupt(trainer: Trainer, step: int) -> None:
        if step == 2:
            trainer.stop.request()

    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_cfg(pairs, tmp_path / "run"), on_step=interrupt).run()
    script = Path(__file__).resolve().parents[1] / "scripts" / "export_checkpoint.py"
    out = tmp_path / "stopped.safetensors"
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "run" / "checkpoint.pt"),
                           str(out)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "step 2" in proc.stdout
    model = load_model(out, "cpu", "fp32")
    assert model.config == TINY
    saved = _weights(tmp_path / "run" / "checkpoint.pt")
    state = model.net.state_dict()
    assert saved.keys() == state.keys() and all(torch.equal(saved[k], state[k]) for k in saved)


@needs_shared
def test_amp_bf16_and_cosine(pairs: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(pairs, tmp_path / "r", steps=4, amp="auto", schedule="cosine")
    trainer = Trainer(cfg)
    assert trainer.amp_dtype == torch.bfloat16
    trainer.run()
    assert trainer.opt_g.param_groups[0]["lr"] < 1e-3 * 0.5


@needs_shared
def test_adversarial_loss_trains_d_and_resumes(tmp_path: Path) -> None:
    data = _crop_pairs(tmp_path / "big", 200, 1)
    cfg = tiny_cfg(data, tmp_path / "adv", steps=2, patch=196, loss="1*L1+0.1*ADV")
    trainer = Trainer(cfg)
    before = {k: v.clone() for k, v in trainer.d_net.state_dict().items()}
    trainer.run()
    after = trainer.d_net.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    state = torch.load(tmp_path / "adv" / "checkpoint.pt", weights_only=True)
    assert {"D", "opt_D", "sched_D"} <= set(state)
    with open(tmp_path / "adv" / "log.csv") as f:
        assert any(r["adv_g"] and r["loss_d"] for r in csv.DictReader(f))


@needs_shared
def test_export_best_or_last(pairs: Path, tmp_path: Path) -> None:
    """--export gives the best-validated step; --export-last the final weights, which say
    in their metrics how they validated."""
    from safetensors.torch import load_file

    cfg = tiny_cfg(pairs, tmp_path / "run", steps=5, val_every=2, export=str(tmp_path / "b.st"))
    Trainer(cfg).run()
    best = json.loads(read_weights(tmp_path / "run" / "best.safetensors").metadata["metrics"])
    assert best["val"]["step"] in (2, 4, 5)
    cfg = tiny_cfg(pairs, tmp_path / "run", steps=5, val_every=2, export=str(tmp_path / "l.st"))
    cfg.export_best = False
    Trainer(cfg).run()  # already finished: resumes at the end and only exports
    run = tmp_path / "run"
    for exported, twin in (("b.st", "best.safetensors"), ("l.st", "last.safetensors")):
        got, want = load_file(tmp_path / exported), load_file(run / twin)
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
    last = read_weights(tmp_path / "l.st").metadata
    assert json.loads(last["steps"]) == 5
    metrics = json.loads(last["metrics"])
    assert metrics["val"] == best["val"]
    if best["val"]["step"] != 5:
        assert metrics["val_last"]["step"] == 5


@needs_shared
def test_synthetic_sources(tmp_path: Path) -> None:
    pytest.importorskip("deblur_cli.synth")
    frames = sorted((SHARED / "frames" / "GOPR0477_11_00").glob("*.jpg"))[:20]
    stills = sorted((SHARED / "sharp" / "kodak24crop_ffdnet").glob("*.jpg"))[:3]
    if not frames or not stills:
        pytest.skip("frames or stills missing")
    (tmp_path / "f").mkdir()
    (tmp_path / "s").mkdir()
    for p in frames:
        cv2.imwrite(str(tmp_path / "f" / (p.stem + ".png")), cv2.imread(str(p))[300:400, 500:600])
    for p in stills:
        shutil.copy(p, tmp_path / "s")
    cfg = tiny_cfg(tmp_path, tmp_path / "run", val_count=0, steps=2)
    cfg.data = [f"frames:{tmp_path / 'f'}", f"stills:{tmp_path / 's'}"]
    trainer = Trainer(cfg)
    assert [s.kind for s in trainer.train_sources] == ["frames", "stills"]
    for sample_id in range(4):  # both kinds give aligned uint8-range 64px patches
        blur, sharp = trainer.train_set[sample_id]
        assert blur.shape == sharp.shape == (3, 64, 64)
    assert trainer.run().step == 2


@needs_shared
def test_frames_mixed_gamma_draws_each_response(tmp_path: Path) -> None:
    """--frames-gamma 1,2.2: every pair is an exact average under one of the two responses."""
    from deblur_cli.synth import average_frames

    frames = sorted((SHARED / "frames" / "GOPR0477_11_00").glob("*.jpg"))[:30]
    if len(frames) < 30:
        pytest.skip("frames missing")
    crops = _write_frame_crops(frames, tmp_path / "f")
    source = open_source(f"frames:{tmp_path / 'f'}", gamma=(1.0, 2.2))
    assert "gamma 1 or 2.2" in source.describe()
    seen = set()
    for seed in range(12):
        blur, sharp = source.sample(15, np.random.default_rng(seed), 80)
        start = next(i for i, c in enumerate(crops) if np.array_equal(c, sharp))
        matches = set()
        for gamma in (1.0, 2.2):
            for n in range(7, 14):  # the window that has this sharp frame in its middle
                first = start - n // 2
                if first >= 0 and np.array_equal(
                    average_frames(crops[first : first + n], gamma=gamma), blur
                ):
                    matches.add(gamma)
        assert len(matches) == 1, matches
        seen |= matches
    assert seen == {1.0, 2.2}
    # Validation cycles through the gammas (index 0: gamma 1, index 1: gamma 2.2).
    single = open_source(f"frames:{tmp_path / 'f'}", gamma=2.2)
    assert np.array_equal(source.val_pair(1, 64, 0)[0], single.val_pair(1, 64, 0)[0])
    assert not np.array_equal(source.val_pair(0, 64, 0)[0], single.val_pair(0, 64, 0)[0])


@needs_shared
def test_frames_count_sets_how_many_frames_each_pair_averages(tmp_path: Path) -> None:
    """--frames-count A-B: every pair is the exact average of A..B frames around its sharp
    frame, and longer windows blur more (real motion of GOPR0477)."""
    from deblur_cli.synth import average_frames
    from deblur_cli.train.metrics import psnr

    frames = sorted((SHARED / "frames" / "GOPR0477_11_00").glob("*.jpg"))[:40]
    if len(frames) < 40:
        pytest.skip("frames missing")
    crops = _write_frame_crops(frames, tmp_path / "f")
    spec = f"frames:{tmp_path / 'f'}"
    counts = {}
    for count in ((5, 5), (21, 25)):
        source = open_source(spec, gamma=1.0, frames_count=count)
        psnrs = []
        for seed in range(6):
            blur, sharp = source.sample(20, np.random.default_rng(seed), 80)
            start = next(i for i, c in enumerate(crops) if np.array_equal(c, sharp))
            used = [
                n
                for n in range(2, 30)
                if start - n // 2 >= 0
                and np.array_equal(
                    average_frames(crops[start - n // 2 : start - n // 2 + n], gamma=1.0), blur
                )
            ]
            assert used and count[0] <= used[0] <= count[1], (count, used)
            psnrs.append(psnr(blur.astype(float), sharp.astype(float)))
        counts[count] = float(np.mean(psnrs))
    assert counts[(21, 25)] < counts[(5, 5)] - 1, counts
    with pytest.raises(InputError, match="2 <= A <= B"):
        open_source(spec, frames_count=(9, 3))
    result = run_cli("train", spec, "--frames-count", "13-7", "-o", "run", cwd=tmp_path)
    assert result.returncode == 2 and "--frames-count" in result.stderr
    assert "Traceback" not in result.stderr


@needs_shared
def test_frames_crf_and_realistic_stills_on_the_fly(tmp_path: Path) -> None:
    """--frames-crf averages through the measured response; stills take every switch."""
    from deblur_cli.synth import average_frames, load_crf

    crf = SHARED / "crf" / "gopro_hero6_inverse_crf.npy"
    frames = sorted((SHARED / "frames" / "GOPR0477_11_00").glob("*.jpg"))[:20]
    stills = sorted((SHARED / "sharp" / "kodak24crop_ffdnet").glob("*.jpg"))[:2]
    if not crf.is_file() or len(frames) < 20 or not stills:
        pytest.skip("crf, frames or stills missing")
    crops = _write_frame_crops(frames, tmp_path / "f")
    source = open_source(f"frames:{tmp_path / 'f'}", frames_crf=crf)
    assert "CRF gopro_hero6_inverse_crf.npy" in source.describe()
    blur, sharp = source.sample(10, np.random.default_rng(0), 80)
    start = next(i for i, c in enumerate(crops) if np.array_equal(c, sharp))
    response = load_crf(crf)
    matches = [
        n
        for n in range(7, 14)
        if start - n // 2 >= 0
        and np.array_equal(
            average_frames(crops[start - n // 2 : start - n // 2 + n], response=response), blur
        )
    ]
    assert matches  # exactly the CRF average of the window around the sharp frame
    assert not np.array_equal(blur, average_frames(crops[start - matches[0] // 2 :][: matches[0]]))
    train, val = source.split(1)
    assert train.crf == val.crf == source.crf
    # With --frames-gamma 1,2.2 each pair draws code values (gamma 1) or the CRF.
    mixed = open_source(f"frames:{tmp_path / 'f'}", gamma=(1.0, 2.2), frames_crf=crf)
    assert "code values or CRF" in mixed.describe()
    seen = set()
    for seed in range(8):
        blur, sharp = mixed.sample(10, np.random.default_rng(seed), 80)
        start = next(i for i, c in enumerate(crops) if np.array_equal(c, sharp))
        for n in range(7, 14):
            window = crops[start - n // 2 : start - n // 2 + n]
            if start - n // 2 < 0:
                continue
            if np.array_equal(average_frames(window, response=response), blur):
                seen.add("crf")
            if np.array_equal(average_frames(window, gamma=1.0), blur):
                seen.add("code")
    assert seen == {"crf", "code"}

    (tmp_path / "s").mkdir()
    for p in stills:
        shutil.copy(p, tmp_path / "s")
    options = {"blur_px": (2.0, 30.0), "sharp_share": 0.2, "highlights": 4.0, "crf": str(crf)}
    options |= {"noise": 2.0, "jpeg": (85, 95)}
    if importlib.util.find_spec("skimage"):
        options["segments"] = 2
    stills_source = open_source(f"stills:{tmp_path / 's'}", synth_options=options)
    blur, sharp = stills_source.sample(0, np.random.default_rng(1), 128)
    assert blur.shape == sharp.shape == (128, 128, 3) and not np.array_equal(blur, sharp)
    again = stills_source.sample(0, np.random.default_rng(1), 128)
    assert np.array_equal(again[0], blur) and np.array_equal(again[1], sharp)
    with pytest.raises(InputError, match="blur_px"):
        open_source(f"stills:{tmp_path / 's'}", synth_options={"blur_px": (0, 3)})
    # Without options stills: renders the training mix; keys override it; mix=none is plain.
    from deblur_cli.synth import TRAIN_MIX

    assert open_source(f"stills:{tmp_path / 's'}").options == TRAIN_MIX
    tuned = open_source(f"stills:{tmp_path / 's'}", synth_options={"code_share": 0.0})
    assert tuned.options == {**TRAIN_MIX, "code_share": 0.0}
    assert open_source(f"stills:{tmp_path / 's'}", synth_options={"mix": "none"}).options == {}
    with pytest.raises(InputError, match="mix=train"):
        open_source(f"stills:{tmp_path / 's'}", synth_options={"mix": "gopro"})


def test_cli_train_rejects_a_missing_frames_crf(tmp_path: Path) -> None:
    (tmp_path / "f").mkdir()
    for i in range(8):
        cv2.imwrite(str(tmp_path / "f" / f"{i:03d}.png"), np.zeros((64, 64, 3), np.uint8))
    proc = run_cli("train", "frames:f", "--frames-crf", "nope.npy", "--steps", "1", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "nope.npy: no such CRF file" in proc.stderr


# --------------------------------------------------------------------------- CLI


@needs_shared
def test_cli_train_export_then_finetune(pairs: Path, tmp_path: Path) -> None:
    common = ["--config", TINY_ARG, "--batch", "2", "--patch", "64", "--workers", "0"]
    common += ["--val-count", "2", "--val-crop", "64", "--val-every", "2", "--log-every", "1"]
    proc = run_cli(
        "train", f"pairs:{pairs}", "-o", "run", "--steps", "3",
        "--export", "model.safetensors", *common, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    exported = read_weights(tmp_path / "model.safetensors")
    assert exported.config == TINY
    meta = exported.metadata
    assert json.loads(meta["metrics"])["val"]["psnr"] > 0
    assert "pairs:" in meta["training_data"] and json.loads(meta["steps"]) == 3
    assert json.loads(meta["training"])["loss"] == "1*L1"
    proc = run_cli(
        "train", str(pairs), "-o", "ft", "--steps", "1", "--init", "model.safetensors",
        "--batch", "2", "--patch", "64", "--workers", "0", "--val-count", "0", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert read_weights(tmp_path / "ft" / "last.safetensors").config == TINY
    # Same command again: already finished, resumes at the end and does nothing.
    proc = run_cli(
        "train", f"pairs:{pairs}", "-o", "run", "--steps", "3", *common, cwd=tmp_path
    )  # fmt: skip
    assert proc.returncode == 0 and "already trained to step 3" in proc.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "nowhere"], "nowhere: no such folder"),
        (["train", "DATA", "--loss", "1*FOO"], "unknown loss"),
        (["train", "DATA", "--patch", "30"], "multiple of 4"),
        (["train", "DATA", "--amp", "fp16", "--device", "cpu"], "fp16 on CPU"),
        (["train", "DATA", "--init", "missing.safetensors"], "not found"),
    ],
)
def test_cli_train_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "DATA" / "blur").mkdir(parents=True)
    (tmp_path / "DATA" / "sharp").mkdir()
    img = np.zeros((64, 64, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "DATA" / "blur" / "a.png"), img)
    cv2.imwrite(str(tmp_path / "DATA" / "sharp" / "a.png"), img)
    proc = run_cli(*args, "--config", TINY_ARG, "--steps", "1", "--workers", "0", cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr


def test_cli_train_rejects_bad_frames_gamma(tmp_path: Path) -> None:
    proc = run_cli("train", "frames:x", "--frames-gamma", "1,0", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--frames-gamma: '1,0': give one or more positive gammas" in proc.stderr


@needs_shared
def test_torchrun_two_processes_gloo(pairs: Path, tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not installed")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [
            torchrun, "--standalone", "--nproc_per_node", "2", "-m", "deblur_cli",
            "train", f"pairs:{pairs}", "-o", "ddp", "--config", TINY_ARG, "--steps", "2",
            "--batch", "4", "--patch", "64", "--workers", "0", "--val-count", "2",
            "--val-crop", "64", "--export", "ddp.safetensors",
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 2
    meta = read_weights(tmp_path / "ddp.safetensors").metadata
    assert json.loads(meta["training"])["processes"] == 2


def test_decoded_cache_reuses_read_only_pixels_within_its_budget(tmp_path):
    """Frames are decoded once per worker, shared read-only, and evicted oldest first."""
    import cv2

    from deblur_cli.train.data import DecodedCache

    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), np.full((10, 20, 3), 40 * i, np.uint8))
        paths.append(path)
    one_image = 10 * 20 * 3
    cache = DecodedCache(max_bytes=2 * one_image)
    first = cache.get(paths[0])
    assert cache.get(paths[0]) is first
    assert not first.flags.writeable
    cache.get(paths[1])
    cache.get(paths[2])  # over budget: paths[0], least recently used, goes
    assert cache.bytes == 2 * one_image
    assert cache.get(paths[0]) is not first
    assert int(cache.get(paths[2])[0, 0, 0]) == 80
    assert DecodedCache(0).get(paths[1]).flags.writeable  # 0 = no caching
