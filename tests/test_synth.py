"""``deblur synth``: GOPRO-style frame averaging and camera-shake stills, on real images."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from deblur_cli.cli import main
from deblur_cli.io.images import read_image, write_image
from deblur_cli.synth import average_frames, load_crf, make_options, render_still, synth_still

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
FRAMES = DATA / "frames" / "GOPR0477_11_00"
SHARP = DATA / "sharp" / "kodak24crop_ffdnet"

needs_frames = pytest.mark.skipif(not FRAMES.is_dir(), reason="../shared/data/frames absent")
needs_sharp = pytest.mark.skipif(not SHARP.is_dir(), reason="../shared/data/sharp absent")


def gamma_reference(frames: list[np.ndarray], gamma: float = 2.2) -> np.ndarray:
    """The paper's recipe in float64, written independently of the library."""
    linear = np.mean([(f.astype(np.float64) / 255.0) ** gamma for f in frames], axis=0)
    return np.clip(np.round(linear ** (1.0 / gamma) * 255.0), 0, 255).astype(np.uint8)


def pil_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def run(*args: str) -> object:
    return CliRunner().invoke(main, ["synth", *args], catch_exceptions=False)


def sharpness(gray: np.ndarray) -> float:
    return float(cv2.Laplacian(gray.astype(np.float64), cv2.CV_64F).var())


def gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


@pytest.fixture(scope="module")
def small_frames(tmp_path_factory) -> Path:
    """24 real consecutive frames, cropped to 96x64 PNGs so CLI tests stay fast."""
    if not FRAMES.is_dir():
        pytest.skip("../shared/data/frames absent")
    folder = tmp_path_factory.mktemp("frames") / "clip"
    for i, src in enumerate(sorted(FRAMES.glob("*.jpg"))[:24]):
        write_image(folder / f"{i + 1:06d}.png", pil_rgb(src)[300:364, 600:696])
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Three real photos, shrunk to 200 px, in a folder named like a scene."""
    if not SHARP.is_dir():
        pytest.skip("../shared/data/sharp absent")
    folder = tmp_path_factory.mktemp("stills") / "kodak"
    for src in sorted(SHARP.iterdir())[:3]:
        write_image(folder / f"{src.stem}.png", cv2.resize(pil_rgb(src), (200, 200)))
    return folder


# --- frames ----------------------------------------------------------------------------


@needs_frames
def test_average_frames_is_the_linear_light_mean() -> None:
    frames = [pil_rgb(p)[200:328, 400:656] for p in sorted(FRAMES.glob("*.jpg"))[:9]]
    blurry = average_frames(frames)
    assert blurry.dtype == np.uint8 and blurry.shape == frames[0].shape
    assert np.abs(blurry.astype(int) - gamma_reference(frames)).max() <= 1
    plain = average_frames(frames, gamma=1.0)
    mean = np.round(np.mean(frames, axis=0))
    assert np.abs(plain.astype(int) - mean).max() <= 1
    # Averaging in linear light brightens mixed edges compared with the plain mean.
    assert blurry.astype(float).mean() > plain.astype(float).mean()


@needs_frames
def test_frames_cli_writes_gopro_layout_from_real_frames(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("frames", str(FRAMES), "-o", str(out), "--frames", "7-9", "--max-pairs", "2")
    assert result.exit_code == 0, result.output
    scene = out / FRAMES.name
    manifest = json.loads((scene / "synth.json").read_text())
    assert len(manifest["pairs"]) == 2
    for pair in manifest["pairs"]:
        names = pair["frames"]
        assert 7 <= len(names) <= 9
        assert pair["sharp"] == names[len(names) // 2]
        assert pair["name"] == Path(pair["sharp"]).stem  # named after the sharp frame
        sources = [pil_rgb(FRAMES / n) for n in names]
        blurry, _ = read_image(scene / "blur_gamma" / f"{pair['name']}.png")
        sharp, _ = read_image(scene / "sharp" / f"{pair['name']}.png")
        plain, _ = read_image(scene / "blur" / f"{pair['name']}.png")
        assert np.abs(blurry.astype(int) - gamma_reference(sources)).max() <= 1
        assert np.array_equal(sharp, sources[len(sources) // 2])
        assert np.abs(plain.astype(int) - gamma_reference(sources, 1.0)).max() <= 1
    # Back-to-back windows: the second starts right after the first.
    first, second = manifest["pairs"]
    assert int(Path(second["frames"][0]).stem) == int(Path(first["frames"][-1]).stem) + 1


def test_frames_seed_resume_and_settings_guard(small_frames: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["frames", str(small_frames), "-o", str(out), "--frames", "3-5", "--seed", "7"]
    assert run(*args).exit_code == 0
    scene = out / "clip"
    names = sorted(p.name for p in (scene / "blur_gamma").iterdir())
    assert len(names) >= 4 and all(len(n) == len("000001.png") for n in names)
    snapshot = {n: (scene / "blur_gamma" / n).read_bytes() for n in names}

    # Same seed, another folder: identical; another seed: different windows.
    again = run(*args[:3], str(tmp_path / "again"), *args[4:])
    assert again.exit_code == 0
    assert {n: (tmp_path / "again/clip/blur_gamma" / n).read_bytes() for n in names} == snapshot
    run("frames", str(small_frames), "-o", str(tmp_path / "o2"), "--frames", "3-5")
    assert sorted(p.name for p in (tmp_path / "o2/clip/blur_gamma").iterdir()) != names

    # Simulate a kill: one pair lost its blur_gamma, one its sharp. Only those two redo.
    (scene / "blur_gamma" / names[1]).unlink()
    (scene / "sharp" / names[2]).unlink()
    kept = (scene / "blur_gamma" / names[0]).stat().st_mtime_ns
    resumed = run(*args)
    assert resumed.exit_code == 0
    assert f"2 pairs written, {len(names) - 2} already there" in resumed.output
    assert (scene / "blur_gamma" / names[0]).stat().st_mtime_ns == kept
    assert {n: (scene / "blur_gamma" / n).read_bytes() for n in names} == snapshot
    assert not [p for p in scene.rglob(".*") if p.is_file()]  # no temporary leftovers

    clash = run("frames", str(small_frames), "-o", str(out), "--frames", "3-5", "--seed", "8")
    assert clash.exit_code == 3
    assert "other settings" in clash.output and "Traceback" not in clash.output


def test_frames_from_video_match_the_decoded_frames(small_frames: Path, tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    video = tmp_path / "clip.mp4"
    frames = [read_image(p)[0] for p in sorted(small_frames.iterdir())]
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=240)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv444p"
        stream.options = {"crf": "0"}
        for f in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        container.mux(stream.encode())
    with av.open(str(video)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == len(frames)

    out = tmp_path / "out"
    result = run("frames", str(video), "-o", str(out), "--frames", "5", "--gap", "1", "--preview")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "clip" / "synth.json").read_text())
    names = [p["name"] for p in manifest["pairs"]]
    assert names == ["000003", "000009", "000015", "000021"]  # 5 frames, 1 skipped, repeat
    for k, name in enumerate(names):
        window = decoded[6 * k : 6 * k + 5]
        blurry, _ = read_image(out / "clip" / "blur_gamma" / f"{name}.png")
        sharp, _ = read_image(out / "clip" / "sharp" / f"{name}.png")
        assert np.abs(blurry.astype(int) - gamma_reference(window)).max() <= 1
        assert np.array_equal(sharp, window[2])
    preview, _ = read_image(out / "preview.png")
    assert preview.shape[1] == 1200 and preview.shape[0] > 4 * 300


def test_crf_table_equal_to_gamma_gives_the_same_pairs(small_frames: Path, tmp_path: Path) -> None:
    table = tmp_path / "crf.txt"
    table.write_text("# gamma 2.2\n" + "\n".join(str((v / 255) ** 2.2) for v in range(256)))
    common = [str(small_frames), "--frames", "4", "--max-pairs", "2", "--no-plain"]
    assert run("frames", *common, "-o", str(tmp_path / "g")).exit_code == 0
    assert run("frames", *common, "-o", str(tmp_path / "c"), "--crf", str(table)).exit_code == 0
    for path in (tmp_path / "g/clip/blur_gamma").iterdir():
        a, _ = read_image(path)
        b, _ = read_image(tmp_path / "c/clip/blur_gamma" / path.name)
        assert np.abs(a.astype(int) - b).max() <= 1
    assert not (tmp_path / "g/clip/blur").exists()


def test_frames_errors_are_one_line(small_frames: Path, tmp_path: Path) -> None:
    odd = tmp_path / "odd"
    odd.mkdir()
    for i, src in enumerate(sorted(small_frames.iterdir())[:6]):
        pixels, _ = read_image(src)
        write_image(odd / src.name, pixels if i != 3 else pixels[:32])
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 50)
    (tmp_path / "bad_crf.txt").write_text("1 2 3")
    out = str(tmp_path / "out")
    cases = [
        ([str(tmp_path / "missing")], 2, "no such file"),
        ([str(tmp_path / "empty")], 2, "no image frames"),
        ([str(tmp_path / "notes.txt")], 2, "not a folder of frames or a video"),
        ([str(tmp_path / "broken.mp4")], 2, "broken.mp4"),
        ([str(odd), "--frames", "6"], 2, "differs from the first frame"),
        ([str(small_frames), "--frames", "40"], 2, "fewer frames than one window"),
        ([str(small_frames), "--frames", "9-7"], 2, "backwards"),
        ([str(small_frames), "--crf", str(tmp_path / "bad_crf.txt")], 2, "256"),
    ]
    for args, code, message in cases:
        result = run("frames", *args, "-o", out)
        assert result.exit_code == code, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert not list((tmp_path / "out").rglob("*.png")) if (tmp_path / "out").exists() else True


# --- stills ----------------------------------------------------------------------------


@needs_sharp
def test_synth_still_blurs_and_is_reproducible() -> None:
    photo = pil_rgb(sorted(SHARP.iterdir())[0])
    blurry, sharp = synth_still(photo, np.random.default_rng(11))
    assert blurry.shape == sharp.shape and blurry.dtype == sharp.dtype == np.uint8
    assert 0.7 * photo.shape[0] < sharp.shape[0] <= photo.shape[0]
    assert sharpness(gray(blurry)) < 0.5 * sharpness(gray(sharp))
    again, again_sharp = synth_still(photo, np.random.default_rng(11))
    assert np.array_equal(again, blurry) and np.array_equal(again_sharp, sharp)
    other, _ = synth_still(photo, np.random.default_rng(12))
    assert other.shape != blurry.shape or not np.array_equal(other, blurry)
    pair = render_still(photo, np.random.default_rng(11), make_options())
    x0, y0, x1, y1 = pair.crop
    assert np.array_equal(pair.sharp, photo[y0:y1, x0:x1])  # mid-exposure = the photo


@needs_sharp
def test_roll_shake_blurs_corners_more_than_the_centre() -> None:
    photo = pil_rgb(sorted(SHARP.iterdir())[0])
    only_roll = dict(rotation=0.0, translation=0.0, zoom=0.0, roll=1.0, blur=(0.03, 0.03))
    blurry, sharp = synth_still(photo, np.random.default_rng(3), **only_roll)
    h, w = blurry.shape[:2]
    s = min(h, w) // 10

    def loss(y: int, x: int) -> float:
        """Share of local detail the blur removed in an s x s window."""
        b, t = gray(blurry)[y : y + s, x : x + s], gray(sharp)[y : y + s, x : x + s]
        return 1.0 - sharpness(b) / sharpness(t)

    centre = loss((h - s) // 2, (w - s) // 2)
    corners = [loss(0, 0), loss(0, w - s), loss(h - s, 0), loss(h - s, w - s)]
    assert centre < 0.5 and min(corners) > 0.7, (centre, corners)


@needs_sharp
def test_objects_noise_and_jpeg_options() -> None:
    photo = pil_rgb(sorted(SHARP.iterdir())[0])
    other = pil_rgb(sorted(SHARP.iterdir())[1])
    rng = np.random.default_rng(5)
    plain_b, plain_s = synth_still(photo, np.random.default_rng(5))
    blurry, sharp = synth_still(
        photo, rng, objects=1, object_sources=[other], noise=4, jpeg=(60, 70)
    )
    assert blurry.shape == sharp.shape
    assert not np.array_equal(sharp, plain_s)  # the pasted object is in the target too
    with pytest.raises(ValueError, match="unknown synth_still option"):
        synth_still(photo, rng, blurr=(0.1, 0.2))
    with pytest.raises(ValueError, match="uint8"):
        synth_still(photo.astype(np.float32), rng)


def test_stills_cli_seed_resume_and_preview(photos: Path, tmp_path: Path) -> None:
    args = ["stills", str(photos), "--seed", "4", "--per-image", "2", "--objects", "1"]
    result = run(*args, "-o", str(tmp_path / "a"), "--preview")
    assert result.exit_code == 0, result.output
    scene = tmp_path / "a" / "kodak"
    names = sorted(p.name for p in (scene / "blur_gamma").iterdir())
    assert names == [f"{i:06d}.png" for i in range(1, 7)]
    assert sorted(p.name for p in (scene / "sharp").iterdir()) == names
    assert not (scene / "blur").exists()
    for name in names:
        blurry, _ = read_image(scene / "blur_gamma" / name)
        sharp, _ = read_image(scene / "sharp" / name)
        assert blurry.shape == sharp.shape
        assert sharpness(gray(blurry)) < sharpness(gray(sharp))
    assert read_image(tmp_path / "a" / "preview.png")[0].shape[1] == 1200

    # "a" rendered its photos in one process per core; one process writes the same bytes.
    assert run(*args, "-o", str(tmp_path / "b"), "--workers", "1").exit_code == 0
    for name in names:
        for folder in ("blur_gamma", "sharp"):
            a = (scene / folder / name).read_bytes()
            assert a == (tmp_path / "b" / "kodak" / folder / name).read_bytes()
    assert (scene / "synth.json").read_bytes() == (tmp_path / "b/kodak/synth.json").read_bytes()

    for name in (names[0], names[3]):  # pairs of two photos: resumed in two processes
        (scene / "blur_gamma" / name).unlink()
    resumed = run(*args, "-o", str(tmp_path / "a"), "--workers", "2")
    assert "2 pairs written, 4 already there" in resumed.output
    for name in (names[0], names[3]):
        assert (scene / "blur_gamma" / name).read_bytes() == (
            tmp_path / "b" / "kodak" / "blur_gamma" / name
        ).read_bytes()


def test_stills_errors_are_one_line(photos: Path, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny"
    write_image(tiny / "t.png", np.zeros((20, 20, 3), np.uint8))
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.png").write_bytes(b"not a png")
    out = tmp_path / "o"
    cases = [
        ([str(tmp_path / "missing")], 2, "no such file"),
        ([str(tiny)], 2, "too small"),
        ([str(tmp_path / "junk")], 2, "x.png"),
        ([str(tmp_path / "empty_dir_absent")], 2, "no such file"),
        ([str(photos), "--blur", "0.1-0.02"], 2, "backwards"),
        ([str(photos), "--jpeg", "0-50"], 2, "JPEG quality"),
    ]
    for args, code, message in cases:
        result = run("stills", *args, "-o", str(out))
        assert result.exit_code == code, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    # A broken photo among good ones, rendered in two processes: the same one line.
    result = run("stills", str(photos), str(tmp_path / "junk"), "-o", str(tmp_path / "p"),
                 "--workers", "2")  # fmt: skip
    assert result.exit_code == 2 and "x.png" in result.output, result.output
    assert "Traceback" not in result.output
    (tmp_path / "file").write_text("x")
    result = run("stills", str(photos), "-o", str(tmp_path / "file"))
    assert result.exit_code == 3 and "not a folder" in result.output


# --- realistic synthesis switches (issue 13) ------------------------------------------

CRF = DATA / "crf" / "gopro_hero6_inverse_crf.npy"
needs_crf = pytest.mark.skipif(not CRF.is_file(), reason="../shared/data/crf absent")


def kodak(name: str, side: int = 240) -> np.ndarray:
    """A real Kodak photo, shrunk so each render takes a fraction of a second."""
    return cv2.resize(pil_rgb(SHARP / f"{name}.jpg"), (side, side), interpolation=cv2.INTER_AREA)


@needs_crf
def test_gopro_crf_loads_as_rgb_with_the_reds_regularisation() -> None:
    raw = np.load(CRF)[:, 0, :]  # OpenCV layout: BGR
    response = load_crf(CRF)
    assert response.table.shape == (256, 3)
    assert response.table[0].tolist() == [0, 0, 0] and np.allclose(response.table[255], 1)

    # Channel order: RGB column c follows raw BGR column 2 - c (up to an affine rescale and
    # the 1e-6 tie repair), and clearly not the other columns.
    def misfit(c: int, raw_c: int) -> float:
        a, b = np.polyfit(raw[:251, raw_c], response.table[:251, c], 1)
        return float(np.abs(a * raw[:251, raw_c] + b - response.table[:251, c]).max())

    for c in range(3):
        assert misfit(c, 2 - c) < 1e-3
        assert min(misfit(c, k) for k in range(3) if k != 2 - c) > 5 * misfit(c, 2 - c)
    # Codes above 250 continue the 249-251 slope instead of the raw jump (10 → 46).
    top = response.table[250:]
    assert np.allclose(np.diff(top, axis=0), np.diff(top, axis=0)[0], rtol=1e-3)
    assert np.all(np.diff(response.table, axis=0) > 0)
    # Exact round trip on a real photo, every code of every channel.
    photo = kodak("kodim05")
    assert np.array_equal(response.from_linear(response.to_linear(photo)), photo)
    codes = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=2)
    assert np.array_equal(response.from_linear(response.to_linear(codes)), codes)


@needs_crf
@needs_frames
def test_frames_through_the_crf_match_an_independent_reference() -> None:
    frames = [pil_rgb(p)[200:264, 400:496] for p in sorted(FRAMES.glob("*.jpg"))[:9]]
    table = np.load(CRF)[:, 0, ::-1].astype(np.float64)  # RGB, raw (no top repair needed:
    mean = np.mean([table[f, np.arange(3)] for f in frames], axis=0)  # these codes are < 240)
    assert max(int(f.max()) for f in frames) <= 250
    reference = np.stack(
        [np.interp(mean[..., c], table[:, c], np.arange(256.0)) for c in range(3)], axis=2
    )
    blurry = average_frames(frames, response=load_crf(CRF))
    assert np.abs(blurry.astype(float) - reference).max() <= 0.51
    gamma = average_frames(frames, gamma=2.2)
    assert np.abs(blurry.astype(int) - gamma).max() >= 2  # a different response, visibly


@needs_sharp
def test_no_shake_is_the_identity_up_to_noise() -> None:
    photo = kodak("kodim03")
    opts = dict(sharp_share=1.0, blur_px=(5.0, 40.0))
    blurry, sharp = synth_still(photo, np.random.default_rng(1), **opts)
    assert np.array_equal(blurry, photo) and np.array_equal(sharp, photo)
    noisy, sharp = synth_still(photo, np.random.default_rng(1), noise=6.0, **opts)
    assert np.array_equal(sharp, photo)
    diff = noisy.astype(float) - photo
    assert 0.3 < diff.std() < 8 and abs(diff.mean()) < 0.5
    assert sharpness(gray(noisy)) > sharpness(gray(photo))  # grain, not blur
    # blur_px: the drawn extent stays in the asked range, log-uniformly spread.
    extents = [
        render_still(photo, np.random.default_rng(s), make_options(blur_px=(1, 60))).extent_px
        for s in range(12)
    ]
    assert all(1 <= e <= 60 for e in extents) and max(extents) / min(extents) > 4


@needs_sharp
def test_photon_noise_variance_follows_the_signal() -> None:
    """With a linear response, Poisson noise variance grows linearly with the light."""
    photo = kodak("kodim03", 320)
    opts = dict(sharp_share=1.0, gamma=1.0, noise=12.0)
    levels, variances = [], []
    for seed in range(6):
        noisy, sharp = synth_still(photo, np.random.default_rng(seed), **opts)
        diff = noisy.astype(float) - sharp
        bins = np.digitize(sharp, [40, 90, 140, 190, 240])
        pair_var = [diff[(bins == b) & (sharp > 3)].var() for b in (0, 1, 2, 3, 4)]
        pair_level = [sharp[(bins == b) & (sharp > 3)].mean() for b in (0, 1, 2, 3, 4)]
        if pair_var[2] > 4:  # the drawn noise level is not near zero
            variances.append(np.array(pair_var) / pair_var[2])
            levels.append(pair_level)
    assert len(variances) >= 3
    variance = np.mean(variances, axis=0)
    level = np.mean(levels, axis=0)
    assert np.all(np.diff(variance) > 0), variance  # brighter → noisier
    slope, intercept = np.polyfit(level, variance, 1)
    assert slope > 0 and variance[4] > 2.0 * variance[0], (variance, level)
    assert np.max(np.abs(np.polyval([slope, intercept], level) - variance)) < 0.25


@needs_sharp
def test_highlights_smear_into_streaks_brighter_than_the_clipped_sharp() -> None:
    photo = kodak("kodim05", 320)  # white helmets and highlights on the bikes
    opts = dict(blur_px=(25.0, 25.0))
    dim_b, dim_s = synth_still(photo, np.random.default_rng(2), highlights=1.0, **opts)
    hot_b, hot_s = synth_still(photo, np.random.default_rng(2), highlights=64.0, **opts)
    assert dim_s.shape == hot_s.shape  # the same shake: only the light differs
    assert hot_s.max() == 255  # the target is clipped as a sensor clips
    bright = hot_s.max(axis=2) >= 250
    ring = (cv2.dilate(bright.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0) & ~bright
    # Around the highlights the blurry image gets far brighter than without the boost, and
    # brighter than the sharp target there: light streaks, not grey smudges.
    gain = hot_b[ring].astype(float).mean() - dim_b[ring].astype(float).mean()
    assert gain > 8, gain
    assert hot_b[ring].astype(float).mean() > hot_s[ring].astype(float).mean() + 10
    assert (hot_b.max(axis=2) >= 250).mean() > 2 * (dim_b.max(axis=2) >= 250).mean()
    # Far from any highlight nothing changes.
    x0, y0, x1, y1 = render_still(photo, np.random.default_rng(2), make_options(**opts)).crop
    boosted = (photo.max(axis=2) >= 240).astype(np.uint8)  # the boost ramps in from 240
    far = (cv2.dilate(boosted, np.ones((81, 81), np.uint8)) == 0)[y0:y1, x0:x1]
    assert far.mean() > 0.05 and np.abs(hot_b[far].astype(int) - dim_b[far]).max() <= 1


@needs_sharp
def test_segments_move_on_their_own_over_a_still_background() -> None:
    pytest.importorskip("skimage")
    photo = kodak("kodim05", 256)
    opts = dict(segments=3, sharp_share=1.0, blur_px=(15.0, 30.0))
    pair = render_still(photo, np.random.default_rng(4), make_options(**opts))
    assert np.array_equal(pair.sharp, photo)  # mid-exposure: every segment in its place
    changed = np.abs(pair.blurry.astype(int) - photo).max(axis=2) > 6
    # No camera shake: only the moving regions (and what they pass over) blur.
    assert 0.03 < changed.mean() < 0.8, changed.mean()
    untouched = ~cv2.dilate(changed.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert untouched.mean() > 0.15
    same = (pair.blurry[untouched] == photo[untouched]).all(axis=1)
    assert same.mean() > 0.999  # bar the faintest tails of the moving segments
    again = render_still(photo, np.random.default_rng(4), make_options(**opts))
    assert np.array_equal(again.blurry, pair.blurry)
    other = render_still(photo, np.random.default_rng(5), make_options(**opts))
    assert not np.array_equal(other.blurry, pair.blurry)
    # Over a shaking camera the segments add their own motion to the shake.
    shake = dict(blur_px=(4.0, 4.0), sharp_share=0.0)
    base, _ = synth_still(photo, np.random.default_rng(6), **shake)
    moved, _ = synth_still(photo, np.random.default_rng(6), segments=3, **shake)
    assert moved.shape == base.shape and not np.array_equal(moved, base)


def test_segments_without_scikit_image_is_a_one_line_error(
    photos: Path, tmp_path: Path, monkeypatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "skimage", None)  # find_spec then says: not installed
    result = run("stills", str(photos), "-o", str(tmp_path / "o"), "--segments", "2")
    assert result.exit_code == 2
    assert "scikit-image" in result.output and "Traceback" not in result.output


@needs_crf
def test_stills_cli_realistic_switches(photos: Path, tmp_path: Path) -> None:
    pytest.importorskip("skimage")
    switches = ["--blur-px", "2-30", "--sharp-share", "0.2", "--highlights", "8"]
    switches += ["--segments", "2", "--crf", str(CRF), "--noise", "3", "--jpeg", "85-95"]
    result = run("stills", str(photos), "-o", str(tmp_path / "o"), "--seed", "1", *switches)
    assert result.exit_code == 0, result.output
    scene = tmp_path / "o" / "kodak"
    settings = json.loads((scene / "synth.json").read_text())["settings"]
    assert settings["segments"] == 2 and settings["blur_px"] == [2.0, 30.0]
    assert settings["crf"] == str(CRF) and settings["highlights"] == 8.0
    for name in ("000001.png", "000002.png", "000003.png"):
        blurry, _ = read_image(scene / "blur_gamma" / name)
        sharp, _ = read_image(scene / "sharp" / name)
        assert blurry.shape == sharp.shape
    for args, message in [
        (["--crf", str(tmp_path / "none.npy")], "no such CRF file"),
        (["--highlights", "0.5"], "highlights"),
        (["--blur-px", "0-10"], "blur_px"),
    ]:
        bad = run("stills", str(photos), "-o", str(tmp_path / "bad"), *args)
        assert bad.exit_code == 2 and message in bad.output, bad.output


@needs_sharp
def test_code_share_sets_how_much_blur_brightens() -> None:
    """Linear-light averages brighten blurred contrast (Jensen); code-value ones keep tone."""
    photo = kodak("kodim05", 200)
    shifts = {0.0: [], 1.0: []}
    for seed in range(3):
        for share in shifts:
            b, s = synth_still(
                photo, np.random.default_rng(seed), blur_px=(12, 12), code_share=share
            )
            shifts[share].append(float(b.astype(float).mean() - s.astype(float).mean()))
    assert min(shifts[0.0]) > 1.5, shifts
    assert max(abs(v) for v in shifts[1.0]) < 0.6, shifts


def test_stills_cli_train_mix(photos: Path, tmp_path: Path) -> None:
    result = run("stills", str(photos), "-o", str(tmp_path / "m"), "--mix", "train")
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "m" / "kodak" / "synth.json").read_text())["settings"]
    assert settings["blur_px"] == [1.0, 60.0] and settings["code_share"] == 0.75
    assert settings["jpeg"] == [85, 98] and settings["sharp_share"] == 0.2
    args = ["--mix", "train", "--blur-px", "2-4", "--noise", "0"]
    result = run("stills", str(photos), "-o", str(tmp_path / "n"), *args)
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "n" / "kodak" / "synth.json").read_text())["settings"]
    assert settings["blur_px"] == [2.0, 4.0] and settings["noise"] == 0.0  # given wins
    assert settings["code_share"] == 0.75
    result = run(
        "stills", str(photos), "-o", str(tmp_path / "p"), "--mix", "train", "--blur", "0.02"
    )
    settings = json.loads((tmp_path / "p" / "kodak" / "synth.json").read_text())["settings"]
    assert settings["blur_px"] is None and settings["blur"] == [0.02, 0.02]


def test_ablation_variants_each_change_the_pairs(photos: Path) -> None:
    """scripts/ablate_synthesis.py: every variant is a set of --synth-opt that ``stills:``
    accepts, and each switch really changes what is rendered from the same draw."""
    import importlib.util
    import sys

    from deblur_cli.cli.train_cmd import parse_synth_options
    from deblur_cli.train.data import open_source

    script = Path(__file__).resolve().parents[1] / "scripts" / "ablate_synthesis.py"
    spec = importlib.util.spec_from_file_location("ablate_synthesis", script)
    module = importlib.util.module_from_spec(spec)
    sys.modules["ablate_synthesis"] = module
    spec.loader.exec_module(module)
    crf = DATA / "crf" / "gopro_hero6_inverse_crf.npy"
    if not crf.is_file():
        pytest.skip("../shared/data/crf absent")
    pairs = {}
    for variant in module.VARIANTS:
        options = parse_synth_options(tuple(o.format(crf=crf) for o in variant.options))
        source = open_source(f"stills:{photos}", synth_options=options)
        blurs = []
        for seed in range(3):
            blur, sharp = source.sample(seed % len(source), np.random.default_rng(seed), 96)
            assert blur.shape == sharp.shape == (96, 96, 3)
            blurs.append(blur)
        pairs[variant.name] = np.stack(blurs).astype(np.int16)
    assert len(pairs) == len(module.VARIANTS) >= 9
    for name, blurs in pairs.items():
        if name != "plain":
            assert np.abs(blurs - pairs["plain"]).max() > 8, name
