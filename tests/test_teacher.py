"""Distillation: the DMPHN teacher, any deblur network as a teacher, banks, online teaching."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import TINY, need_shared, run_cli

from deblur_cli.errors import InputError
from deblur_cli.model import build_model
from deblur_cli.train.augment import AugmentConfig
from deblur_cli.train.bank import open_bank
from deblur_cli.train.bank_builder import build_bank
from deblur_cli.train.data import TrainSet, open_source
from deblur_cli.train.distil import Teaching
from deblur_cli.train.teacher import DMPHN, load_teacher
from deblur_cli.train.trainer import TrainConfig, Trainer
from deblur_cli.weights import read_weights

TEACHER = ("teachers", "dmphn_1_2_4_gopro.safetensors")


def _teacher_file() -> Path:
    return need_shared(*TEACHER)


def _photos(tmp_path: Path, n: int = 3, sizes=((96, 120), (80, 100), (64, 64))) -> Path:
    """Small real blurry photos (crops of lai2016), one smaller than the usual crop."""
    src = sorted(need_shared("data", "real", "lai2016").glob("*.jpg"))
    folder = tmp_path / "blurry"
    folder.mkdir()
    for i, (path, (h, w)) in enumerate(zip(src[:n], sizes, strict=False)):
        image = cv2.imread(str(path))
        cv2.imwrite(str(folder / f"{i}.png"), image[:h, :w])
    return folder


def test_dmphn_reproduces_the_authors_forward_pass() -> None:
    """Written from the README's facts alone, it must match the released output (fp32)."""
    teacher = load_teacher(_teacher_file(), "cpu", "fp32")
    reference = np.load(need_shared("teachers", "dmphn_1_2_4_reference.npz"))
    x = torch.from_numpy(reference["input_rgb_uint8"]).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        raw = teacher.net(x / 255.0 - 0.5) + 0.5
    expected = torch.from_numpy(reference["output_float"]).permute(2, 0, 1)[None]
    assert float((raw - expected).abs().max()) <= 1e-4
    # The Teacher wrapper (0..255 in and out, clamped) agrees with the raw network.
    via_wrapper = teacher(x) / 255.0
    assert float((via_wrapper - expected.clamp(0, 1)).abs().max()) <= 1e-4
    assert teacher.provenance["architecture"] == "DMPHN(1-2-4)"
    assert "licence" in teacher.provenance  # the file says none is stated: it travels on


def test_dmphn_pads_odd_sizes_and_batches() -> None:
    """Any size works (padded to a multiple of 8, cropped back); a batch equals its items."""
    teacher = load_teacher(_teacher_file(), "cpu", "fp32")
    torch.manual_seed(0)
    batch = torch.rand(2, 3, 37, 53) * 255
    out = teacher(batch)
    assert out.shape == batch.shape
    assert float(out.min()) >= 0 and float(out.max()) <= 255
    one = teacher(batch[1:])
    assert torch.allclose(out[1:], one, atol=1e-3)
    with pytest.raises(RuntimeError):  # unpadded odd sizes do not fit its hierarchy
        DMPHN()(torch.zeros(1, 3, 36, 52))


def test_any_deblur_network_can_teach(tiny_weights: Path) -> None:
    """A deblur weight file teaches with exactly its own forward pass."""
    teacher = load_teacher(tiny_weights, "cpu", "fp32")
    net = build_model(TINY)
    net.load_state_dict(read_weights(tiny_weights).state_dict)
    x = torch.rand(1, 3, 40, 44) * 255
    with torch.no_grad():
        expected = net(x).clamp(0, 255)
    assert torch.allclose(teacher(x), expected, atol=1e-4)
    assert teacher.kind == "deblur"


def test_bank_is_built_resumed_extended_and_guarded(tmp_path: Path) -> None:
    """synth teach writes blur/teacher crops (sharp where there is truth), resumes, grows."""
    photos = _photos(tmp_path)
    bank = tmp_path / "bank"
    args = ["synth", "teach", f"blurry:{photos}", "-o", bank, "--teacher", _teacher_file()]
    args += ["--crop", "72", "--seed", "4", "--workers", "0"]
    first = run_cli(*args, "--count", "4")
    assert first.returncode == 0, first.stderr
    assert "4 crops restored, 0 already there" in first.stdout + first.stderr
    names = sorted(p.name for p in (bank / "teacher").glob("*.png"))
    assert names == [f"00000{i}.png" for i in range(4)]
    assert not list((bank / "sharp").glob("*.png"))  # blurry photos have no truth
    small = [cv2.imread(str(p)).shape for p in (bank / "blur").glob("*.png")]
    assert (64, 64, 3) in small and (72, 72, 3) in small  # the 64 px photo fits whole
    manifest = json.loads((bank / "bank.json").read_text())
    assert manifest["teacher"]["architecture"] == "DMPHN(1-2-4)"
    # Each teacher crop is the teacher's restoration of its blurry crop (same precision).
    teacher = load_teacher(_teacher_file(), "cpu", "auto")
    changed = 0
    for name in names:
        blur = cv2.imread(str(bank / "blur" / name))[..., ::-1]
        target = cv2.imread(str(bank / "teacher" / name))[..., ::-1].astype(float)
        x = torch.from_numpy(blur.copy()).permute(2, 0, 1)[None].float()
        expected = teacher(x)[0].permute(1, 2, 0).round().numpy()
        assert blur.shape == target.shape
        # bf16 results move by a level or two with the batch they ran in
        assert np.abs(target - expected).max() <= 3 and np.abs(target - expected).mean() < 0.5
        changed += bool(np.abs(target - blur).max() > 2)
    assert changed >= 2  # restored, not copied
    before = (bank / "teacher" / names[0]).stat().st_mtime_ns

    again = run_cli(*args, "--count", "6")  # resumes: only crops 4 and 5 are new
    assert again.returncode == 0, again.stderr
    assert "2 crops restored, 4 already there" in again.stdout + again.stderr
    assert (bank / "teacher" / names[0]).stat().st_mtime_ns == before

    other = run_cli(*args[:-4], "--crop", "64", "--seed", "4", "--workers", "0", "--count", "6")
    assert other.returncode != 0
    assert other.stderr.strip().count("\n") == 0 and "other settings" in other.stderr


def test_bank_with_truth_and_teacher_share(tmp_path: Path) -> None:
    """Pairs keep their truth in the bank; teacher_share picks which target trains."""
    pairs = need_shared("data", "pairs", "reds_x4")
    small = tmp_path / "pairs"
    for sub in ("blur", "sharp"):
        (small / sub).mkdir(parents=True)
        for path in sorted((pairs / sub).glob("train000_*.png"))[:3]:
            shutil.copy(path, small / sub / path.name)
    teacher = load_teacher(_teacher_file(), "cpu", "fp32")
    bank = tmp_path / "bank"
    made = build_bank([open_source(f"pairs:{small}")], teacher, bank, 3, crop=64, workers=0)
    assert made == 3 and len(list((bank / "sharp").glob("*.png"))) == 3
    rng = np.random.default_rng(0)
    teacher_only, truth_only = open_bank(bank, 1.0), open_bank(bank, 0.0)
    blur_t, target_t = teacher_only.sample(0, np.random.default_rng(1), 32)
    blur_s, target_s = truth_only.sample(0, np.random.default_rng(1), 32)
    assert np.array_equal(blur_t, blur_s)  # same crop either way
    assert not np.array_equal(target_t, target_s)
    half = open_bank(bank, 0.5)
    picks = [half.sample(0, rng, 64)[1] for _ in range(40)]
    sharp = cv2.imread(str(bank / "sharp" / "000000.png"))[..., ::-1]
    share_truth = np.mean([np.array_equal(p, sharp) for p in picks])
    assert 0.2 < share_truth < 0.8


def test_train_on_a_bank_records_the_teacher(tmp_path: Path) -> None:
    """The distilled weights say whose outputs they learned, licence note included."""
    photos = _photos(tmp_path, sizes=((96, 96), (96, 96), (96, 96)))
    teacher = load_teacher(_teacher_file(), "cpu", "fp32")
    bank = tmp_path / "bank"
    build_bank([open_source(f"blurry:{photos}")], teacher, bank, 4, crop=64, workers=0)
    cfg = TrainConfig(
        data=[f"bank:{bank}"], out=str(tmp_path / "run"), model=TINY, steps=2, batch=2,
        patch=32, workers=0, val_count=0, augment=AugmentConfig.none(),
    )  # fmt: skip
    Trainer(cfg).run()
    meta = read_weights(tmp_path / "run" / "last.safetensors").metadata
    teachers = json.loads(meta["distilled_from"])
    assert teachers[0]["architecture"] == "DMPHN(1-2-4)"
    assert teachers[0]["licence"] == "none stated in the repository"
    assert "HongguangZhang/DMPHN-cvpr19-master" in teachers[0]["source"]


def test_online_teaching_labels_blurry_photos_and_mixups(tmp_path: Path, tiny_weights) -> None:
    """--teacher replaces the targets of the taught samples with its output on the very
    input the student sees; blurry: data needs a teacher; identity is left alone."""
    photos = _photos(tmp_path, sizes=((80, 80), (80, 80), (80, 80)))
    ident = tmp_path / "ident"
    shutil.copytree(photos, ident)
    sources = [open_source(f"blurry:{photos}"), open_source(f"identity:{ident}")]
    data = TrainSet(sources, 48, AugmentConfig.none(), seed=0)
    teacher = load_teacher(tiny_weights, "cpu", "fp32")
    teaching = Teaching(teacher, share=1.0, mixup=0.0)
    ids = range(6)
    mask = teaching.mask(data, ids)
    kinds = [data.locate(k)[0].kind for k in ids]
    assert mask.tolist() == [kind == "blurry" for kind in kinds]
    blur = torch.stack([data[k][0] for k in ids])
    sharp = torch.stack([data[k][1] for k in ids])
    new_blur, target = teaching.label(blur, sharp, mask, step=0)
    assert torch.equal(new_blur, blur)
    assert torch.allclose(target[mask], teacher(blur[mask]))
    assert torch.equal(target[~mask], sharp[~mask])  # identity keeps its truth
    mixed = Teaching(teacher, share=1.0, mixup=1.0)
    mixed_blur, mixed_target = mixed.label(blur, sharp, mask, step=3)
    assert not torch.equal(mixed_blur[mask], blur[mask])  # blends: inputs no dataset has
    assert torch.allclose(mixed_target[mask], teacher(mixed_blur[mask]))

    out = tmp_path / "run"
    common = ["train", f"blurry:{photos}", "--config", "3,1,8,3", "--steps", "2"]
    common += ["--batch", "2", "--patch", "32", "--workers", "0", "--val-count", "0"]
    refused = run_cli(*common, "-o", out)
    assert refused.returncode != 0 and "has no ground truth" in refused.stderr
    assert refused.stderr.strip().count("\n") == 0
    done = run_cli(*common, "-o", out, "--teacher", tiny_weights, "--mixup", "0.5")
    assert done.returncode == 0, done.stderr
    meta = read_weights(out / "last.safetensors").metadata
    assert json.loads(meta["training"])["mixup"] == 0.5
    assert json.loads(meta["distilled_from"])[0]["how"] == "online"


def test_teacher_share_is_a_stable_fraction(tmp_path: Path, tiny_weights) -> None:
    photos = _photos(tmp_path, sizes=((80, 80), (80, 80), (80, 80)))
    data = TrainSet([open_source(f"stills:{photos}")], 48, seed=0)
    teaching = Teaching(load_teacher(tiny_weights, "cpu", "fp32"), share=0.3)
    picks = [teaching.wants(data, k) for k in range(400)]
    assert 0.22 < np.mean(picks) < 0.38
    assert picks == [teaching.wants(data, k) for k in range(400)]  # a resumed run agrees
    with pytest.raises(InputError):
        from deblur_cli.train.distil import parse_kinds

        parse_kinds("frames,nonsense")


def test_teacher_by_family_scores_teacher_and_students_alike(tmp_path: Path) -> None:
    """scripts/teacher_by_family.py: a network asked as teacher and as student scores the
    same gain (the two paths agree); the synthesis options reach the family (tiny blur gains
    less than large)."""
    import subprocess
    import sys

    frames = need_shared("data", "frames", "GOPR0477_11_00")
    photos = need_shared("data", "sharp", "kodak24crop_ffdnet")
    script = Path(__file__).resolve().parents[1] / "scripts" / "teacher_by_family.py"
    result = subprocess.run(
        [sys.executable, str(script), "light-gopro", f"frames:{frames}",
         "--family", f"tiny=stills:{photos};mix=none;blur_px=[1,1.5];code_share=1",
         "--family", f"large=stills:{photos};mix=none;blur_px=[20,30];code_share=1",
         "--student", "light-gopro", "--count", "3", "--patch", "96",
         "--precision", "fp32", "--frames-gamma", "1"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines() if line.startswith("| ")]
    table = {cells[0].strip(): [float(c) for c in cells[1:]] for cells in rows[1:]}
    assert set(table) == {f"frames:{frames}", "tiny", "large"}
    for blurry, teacher, gain, student_gain in table.values():
        assert gain == pytest.approx(teacher - blurry, abs=0.011)
        assert gain == pytest.approx(student_gain, abs=0.05)
    assert table["tiny"][0] > table["large"][0] + 3  # the blurry input: larger blur, lower PSNR


def test_memorisation_check_fits_its_crops(tmp_path: Path) -> None:
    """scripts/memorisation_check.py: the student learns its few fixed crops (train gain
    climbs), and a network asked as teacher scores what the untrained student scores."""
    import subprocess
    import sys

    frames = need_shared("data", "frames", "GOPR0477_11_00")
    script = Path(__file__).resolve().parents[1] / "scripts" / "memorisation_check.py"
    result = subprocess.run(
        [sys.executable, str(script), f"frames:{frames}", "--student", "light-gopro",
         "--teacher", "light-gopro", "--count", "4", "--batch", "4", "--patch", "96",
         "--steps", "40", "--evals", "1", "--lr", "3e-4", "--precision", "fp32"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    gains = {
        head: (float(found[1]), float(found[2]))
        for head, _, rest in (line.partition(":") for line in result.stdout.splitlines())
        if (found := re.search(r"train ([-+][\d.]+) held ([-+][\d.]+)", rest))
    }
    teacher, before, after = gains["teacher"], gains["step 0"], gains["step 40"]
    assert teacher == pytest.approx(before, abs=0.02)
    assert after[0] > before[0] + 1.0
