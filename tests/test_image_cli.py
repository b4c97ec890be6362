"""``deblur image`` end to end: formats, bit depth, alpha, orientation, metadata, bad input."""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import run_cli
from huge_images import huge_header, huge_png
from photo_helpers import data_file, identity_weights, random_weights, run_deblur
from PIL import Image, ImageCms, ImageOps

from deblur_cli.cli import main
from deblur_cli.io.images import ImageInfo, read_image, write_image


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("weights")
    return {
        "identity": identity_weights(folder / "identity.safetensors"),
        "random": random_weights(folder / "random.safetensors"),
    }


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo (RGB uint8), shrunk so the tests stay fast."""
    path = data_file("sharp", "kodak24crop_ffdnet")
    rgb = np.asarray(Image.open(sorted(path.iterdir())[0]).convert("RGB"))
    return np.ascontiguousarray(cv2.resize(rgb, (96, 64), interpolation=cv2.INTER_AREA))


def deblur(*args: object) -> tuple[int, str]:
    """In-process CLI call (fast); the error cases below use the real subprocess."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stderr


def test_16bit_png_stays_16bit(tmp_path: Path, weights, photo) -> None:
    src, dst = tmp_path / "deep.png", tmp_path / "out.png"
    low_byte = np.arange(96, dtype=np.uint32)[None, :, None]  # detail 8 bits could not hold
    deep = (photo.astype(np.uint32) * 256 + low_byte).astype(np.uint16)
    cv2.imwrite(str(src), cv2.cvtColor(deep, cv2.COLOR_RGB2BGR))
    code, err = deblur("image", src, "-o", dst, "--weights", weights["identity"],
                       "--precision", "fp32")  # fmt: skip
    assert code == 0, err
    out = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (64, 96, 3)
    assert np.abs(cv2.cvtColor(out, cv2.COLOR_BGR2RGB).astype(int) - deep).max() <= 1


def test_rgba_keeps_alpha(tmp_path: Path, weights, photo) -> None:
    src, dst = tmp_path / "rgba.png", tmp_path / "out.png"
    alpha = np.tile(np.linspace(0, 255, 96, dtype=np.uint8), (64, 1))
    Image.fromarray(np.dstack([photo, alpha]), "RGBA").save(src)
    code, err = deblur("image", src, "-o", dst, "--weights", weights["random"])
    assert code == 0, err
    out = Image.open(dst)
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], alpha)


def test_grayscale_stays_grayscale(tmp_path: Path, weights, photo) -> None:
    src = tmp_path / "gray.png"
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(src), gray)
    code, err = deblur("image", src, "--weights", weights["identity"], "--precision", "fp32")
    assert code == 0, err
    out = cv2.imread(str(tmp_path / "gray_deblurred.png"), cv2.IMREAD_UNCHANGED)
    assert out.ndim == 2 and np.array_equal(out, gray)


def rotated_tagged_picture(tag: int, value: str) -> tuple[np.ndarray, bytes, bytes]:
    """A landscape picture as the sensor stored it, with EXIF "rotate 90° clockwise to
    display" plus one more tag, and an sRGB profile: (pixels, icc, exif)."""
    stored = np.zeros((48, 80, 3), np.uint8)
    stored[:, :20] = (230, 30, 30)  # a red band on the stored left edge
    stored[:10, :] = (30, 30, 230)  # and a blue band on the stored top
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[tag] = value
    return stored, icc, exif.tobytes()


def test_exif_rotated_jpeg_comes_out_upright_with_exif_and_icc(tmp_path: Path, weights) -> None:
    src, dst = tmp_path / "phone.jpg", tmp_path / "out.jpg"
    stored, icc, exif = rotated_tagged_picture(0x010F, "TestCam")  # Make
    Image.fromarray(stored).save(src, quality=98, exif=exif, icc_profile=icc)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(src)).convert("RGB"))
    assert upright.shape == (80, 48, 3)

    code, err = deblur("image", src, "-o", dst, "--weights", weights["identity"],
                       "--precision", "fp32")  # fmt: skip
    assert code == 0, err
    out = Image.open(dst)
    pixels = np.asarray(out.convert("RGB")).astype(int)
    assert pixels.shape == (80, 48, 3)
    assert np.abs(pixels - upright).mean() < 3  # same picture, same way up
    assert out.info.get("icc_profile") == icc
    out_exif = out.getexif()
    assert out_exif.get(0x010F) == "TestCam"
    assert out_exif.get(0x0112, 1) == 1  # no viewer rotates it a second time


def test_icc_and_exif_carried_to_png(tmp_path: Path, weights, photo) -> None:
    src, dst = tmp_path / "tagged.png", tmp_path / "out.png"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x013B] = "A. Photographer"  # Artist
    Image.fromarray(photo).save(src, icc_profile=icc, exif=exif.tobytes())
    code, err = deblur("image", src, "-o", dst, "--weights", weights["random"])
    assert code == 0, err
    out = Image.open(dst)
    assert out.info.get("icc_profile") == icc
    assert out.getexif().get(0x013B) == "A. Photographer"


@pytest.mark.parametrize("exif_after_pixels", [False, True])
def test_png_orientation_and_profile_read_from_chunks(
    tmp_path: Path, weights, exif_after_pixels: bool
) -> None:
    """PNG metadata is read from the chunk list (not by a second, Pillow decode): the
    orientation is applied and the ICC profile kept, wherever the eXIf chunk sits."""
    src, dst = tmp_path / "rotated.png", tmp_path / "out.png"
    stored, icc, exif = rotated_tagged_picture(0x013B, "A. Photographer")  # Artist
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, "PNG", icc_profile=icc, exif=exif)
    data = buffer.getvalue()
    if exif_after_pixels:  # legal, and what some tools write: move eXIf to just before IEND
        at = data.index(b"eXIf") - 4
        length = int.from_bytes(data[at : at + 4], "big")
        chunk = data[at : at + 12 + length]
        data = data[:at] + data[at + 12 + length :]
        data = data[: len(data) - 12] + chunk + data[len(data) - 12 :]
        assert data.index(b"eXIf") > data.index(b"IDAT")
    src.write_bytes(data)
    upright = np.asarray(ImageOps.exif_transpose(Image.open(src)).convert("RGB"))
    assert upright.shape == (80, 48, 3)
    code, err = deblur("image", src, "-o", dst, "--weights", weights["identity"],
                       "--precision", "fp32")  # fmt: skip
    assert code == 0, err
    out = Image.open(dst)
    assert np.abs(np.asarray(out.convert("RGB")).astype(int) - upright).mean() < 3
    assert out.info.get("icc_profile") == icc
    assert out.getexif().get(0x013B) == "A. Photographer"
    assert out.getexif().get(0x0112, 1) == 1


def test_compare_picture(tmp_path: Path, weights, photo) -> None:
    src = tmp_path / "a.jpg"
    Image.fromarray(photo).save(src)
    code, err = deblur("image", src, "--weights", weights["random"], "--compare",
                       tmp_path / "ab.png")  # fmt: skip
    assert code == 0, err
    assert (tmp_path / "a_deblurred.jpg").is_file()
    assert cv2.imread(str(tmp_path / "ab.png")).shape[1] > 2 * 96


def _assert_one_line_failure(result, *absent: Path) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for path in absent:
        assert not path.exists()
    leftovers = [p for p in absent[0].parent.iterdir() if ".tmp" in p.name] if absent else []
    assert not leftovers


def test_truncated_jpeg_fails_cleanly(tmp_path: Path, weights, photo) -> None:
    full = io.BytesIO()
    Image.fromarray(photo).save(full, format="JPEG", quality=95)
    src, dst = tmp_path / "cut.jpg", tmp_path / "out.jpg"
    src.write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    result = run_deblur("image", src, "-o", dst, "--weights", weights["random"])
    _assert_one_line_failure(result, dst)
    assert "truncated" in result.stderr


def test_text_file_named_png_fails_cleanly(tmp_path: Path, weights) -> None:
    src = tmp_path / "notes.png"
    src.write_text("this is not a picture\n")
    result = run_deblur("image", src, "--weights", weights["random"])
    _assert_one_line_failure(result, tmp_path / "notes_deblurred.png")


def test_missing_input_fails_cleanly(tmp_path: Path, weights) -> None:
    result = run_deblur("image", tmp_path / "nope.jpg", "--weights", weights["random"])
    _assert_one_line_failure(result, tmp_path / "nope_deblurred.jpg")


def test_input_never_overwritten_without_flag(tmp_path: Path, weights, photo) -> None:
    src = tmp_path / "keep.png"
    Image.fromarray(photo).save(src)
    before = src.read_bytes()
    result = run_deblur("image", src, "-o", src, "--weights", weights["random"])
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1 and "--overwrite" in result.stderr
    assert src.read_bytes() == before
    code, _ = deblur("image", src, "-o", tmp_path, "--weights", weights["random"])  # same file
    assert code != 0 and src.read_bytes() == before
    code, err = deblur("image", src, "-o", src, "--weights", weights["random"], "--overwrite")
    assert code == 0, err
    assert src.read_bytes() != before


def test_huge_png_refused_from_its_header(tmp_path: Path, weights) -> None:
    """A valid 20000x20000 PNG: one line with the size, the limit and how to raise it, before
    any decoding (decoding it used to cost 2.6 GB and end in Pillow's traceback)."""
    src = huge_png(tmp_path / "huge.png")
    result = run_deblur("image", src, "--weights", weights["random"])
    _assert_one_line_failure(result, tmp_path / "huge_deblurred.png")
    assert result.returncode == 2
    message = result.stderr.strip()
    assert "20000x20000" in message and "400 megapixels" in message
    assert "limit of 200" in message and "--max-megapixels 401" in message
    assert "DEBLUR_MAX_MEGAPIXELS" in message


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".big.tif", ".webp", ".bmp"])
def test_size_limit_read_from_every_format_header(tmp_path: Path, weights, suffix: str) -> None:
    src = huge_header(tmp_path / f"big{suffix}", 16000, 15000)  # 240 MP declared
    code, err = deblur("image", src, "--weights", weights["random"])
    assert code == 2, err
    assert "16000x15000 is 240 megapixels, over the limit of 200" in err


def test_size_limit_from_option_and_environment(tmp_path: Path, weights, photo) -> None:
    src = tmp_path / "small.png"
    Image.fromarray(photo).save(src)  # 96x64 = 0.006 MP
    env = {"DEBLUR_MAX_MEGAPIXELS": "0.005"}
    low = run_cli("image", src, "--weights", weights["random"], env=env)
    assert low.returncode == 2 and "over the limit of 0.005" in low.stderr
    assert len(low.stderr.strip().splitlines()) == 1
    lifted = run_cli("image", src, "--weights", weights["random"], "--max-megapixels", "0",
                     env=env)  # fmt: skip
    assert lifted.returncode == 0, lifted.stderr
    assert (tmp_path / "small_deblurred.png").is_file()
    code, err = deblur("image", src, "--weights", weights["random"], "--max-megapixels", "0.001")
    assert code == 2 and "--max-megapixels 1" in err
    bad = run_cli("image", src, "--weights", weights["random"],
                  env={"DEBLUR_MAX_MEGAPIXELS": "lots"})  # fmt: skip
    assert bad.returncode == 2 and "DEBLUR_MAX_MEGAPIXELS" in bad.stderr


def test_folder_input_points_to_batch(tmp_path: Path, weights, photo) -> None:
    (tmp_path / "photos").mkdir()
    Image.fromarray(photo).save(tmp_path / "photos" / "a.png")
    result = run_deblur("image", tmp_path / "photos", "--weights", weights["random"])
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "is a folder" in result.stderr and "deblur batch" in result.stderr


def test_several_inputs_one_bad_the_others_written(tmp_path: Path, weights, photo) -> None:
    """Like ``deblur batch``: an error line per bad file, the rest done, a summary, exit 2."""
    for name in ("a.jpg", "c.jpg"):
        Image.fromarray(photo).save(tmp_path / name)
    (tmp_path / "bad.jpg").write_text("not a picture")
    out = tmp_path / "out"
    result = run_cli("image", tmp_path / "a.jpg", tmp_path / "bad.jpg", tmp_path / "missing.jpg",
                     tmp_path / "c.jpg", "-o", out, "--weights", weights["random"])  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert any("bad.jpg" in line for line in errors)
    assert any("missing.jpg" in line and "no such file" in line for line in errors)
    assert "deblurred 2 of 4 file(s)" in result.stderr and "2 failed" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "c.jpg"]
    for name in ("a.jpg", "c.jpg"):
        assert np.asarray(Image.open(out / name)).shape == (64, 96, 3)


def _a_file_in_the_way(tmp_path: Path) -> Path:
    """A folder that cannot be created (a file has its name): unwritable even for root."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file")
    return blocker / "out"


def test_unwritable_output_fails_before_the_model_loads(tmp_path: Path, photo) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(photo).save(src)
    never = tmp_path / "no-such-weights.safetensors"  # loading it would exit 4
    result = run_cli("image", src, "-o", _a_file_in_the_way(tmp_path) / "a.png", "--weights", never)
    assert result.returncode == 3, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "not_a_folder" in result.stderr
    several = run_cli("image", src, src, "-o", _a_file_in_the_way(tmp_path), "--weights", never)
    assert several.returncode == 3, several.stderr
    assert len(several.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder_fails_before_the_model_loads(tmp_path: Path, photo) -> None:
    src, locked = tmp_path / "a.png", tmp_path / "locked"
    Image.fromarray(photo).save(src)
    locked.mkdir(mode=0o555)
    never = tmp_path / "no-such-weights.safetensors"
    result = run_cli("image", src, "-o", locked / "a.png", "--weights", never)
    assert result.returncode == 3 and "locked" in result.stderr, result.stderr


def test_compare_unwritable_writes_neither(tmp_path: Path, weights, photo) -> None:
    src, dst = tmp_path / "a.png", tmp_path / "out.png"
    Image.fromarray(photo).save(src)
    blocked = _a_file_in_the_way(tmp_path) / "ab.png"
    result = run_cli("image", src, "-o", dst, "--compare", blocked, "--weights",
                     tmp_path / "no-such-weights.safetensors")  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not dst.exists()
    code, err = deblur(
        "image", src, "-o", dst, "--compare", tmp_path, "--weights", weights["random"]
    )  # fmt: skip  (a folder is no picture name)
    assert code == 3 and "is a folder" in err and not dst.exists()


def test_files_written_together_or_not_at_all(tmp_path: Path) -> None:
    """The rename of the second file fails: the first is rolled back to what it was."""
    from deblur_cli.atomic import write_files_together
    from deblur_cli.errors import OutputError

    first, second = tmp_path / "main.png", tmp_path / "compare.png"
    first.write_bytes(b"previous result")
    second.mkdir()  # a folder where the second file should go: its rename must fail
    (second / "keep").write_text("x")
    with pytest.raises(OutputError):
        write_files_together([(first, b"new result"), (second, b"new compare")])
    assert first.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.png", "main.png"]
    write_files_together([(first, b"new result"), (tmp_path / "ab.png", b"new compare")])
    assert first.read_bytes() == b"new result" and (tmp_path / "ab.png").is_file()


def test_format_for_several_inputs(tmp_path: Path, weights, photo) -> None:
    """jpg: 8-bit, alpha composited onto white; tif: 16 bits kept; webp: 8-bit with alpha."""
    rgba = tmp_path / "rgba.png"
    alpha = np.zeros((64, 96), np.uint8)
    alpha[:, 48:] = 255  # left half fully transparent (and black underneath)
    Image.fromarray(np.dstack([photo, alpha]), "RGBA").save(rgba)
    deep = tmp_path / "deep.png"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    write_image(deep, photo.astype(np.uint16) * 257, ImageInfo(icc_profile=icc))
    identity = ["--weights", weights["identity"], "--precision", "fp32"]

    code, err = deblur("image", rgba, deep, "-o", tmp_path / "jpg", "--format", "jpg", *identity)
    assert code == 0, err
    flat = np.asarray(Image.open(tmp_path / "jpg" / "rgba.jpg"))
    assert flat.shape == (64, 96, 3)
    assert flat[:, :40].min() >= 250  # transparent → white, not the black behind it
    assert np.abs(flat[:, 56:].astype(int) - photo[:, 56:]).mean() < 3
    assert Image.open(tmp_path / "jpg" / "deep.jpg").mode == "RGB"

    code, err = deblur("image", rgba, deep, "-o", tmp_path / "tif", "--format", "tif", *identity)
    assert code == 0, err
    out = cv2.imread(str(tmp_path / "tif" / "deep.tif"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and np.array_equal(out[..., ::-1], photo.astype(np.uint16) * 257)
    assert read_image(tmp_path / "tif" / "deep.tif")[1].icc_profile == icc  # 16-bit tif too
    assert np.array_equal(np.asarray(Image.open(tmp_path / "tif" / "rgba.tif"))[..., 3], alpha)

    code, err = deblur("image", rgba, "--format", "webp", "--quality", "100", *identity)
    assert code == 0, err
    webp = Image.open(tmp_path / "rgba_deblurred.webp")
    assert webp.mode == "RGBA" and np.array_equal(np.asarray(webp)[..., 3], alpha)


def test_format_contradicting_output_name_refused(tmp_path: Path, weights, photo) -> None:
    src = tmp_path / "a.png"
    Image.fromarray(photo).save(src)
    code, err = deblur("image", src, "-o", tmp_path / "b.png", "--format", "jpg",
                       "--weights", weights["random"])  # fmt: skip
    assert code == 2 and "--format" in err and not (tmp_path / "b.png").exists()
    code, err = deblur("image", src, "-o", tmp_path / "b.jpeg", "--format", "jpg",
                       "--weights", weights["random"])  # fmt: skip
    assert code == 0, err


def test_png_compression_fast_and_small_keep_metadata_depth_and_alpha(
    tmp_path: Path, weights, photo
) -> None:
    """PNG goes through OpenCV's encoder (fast); ICC and EXIF must still be carried, for
    16-bit and alpha too, and 'small' must give the same pixels in fewer bytes."""
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x013B] = "A. Photographer"
    frame = sorted(data_file("eval", "gopro_style_train_scenes", "sharp").glob("*.png"))[0]
    real = np.asarray(Image.open(frame).convert("RGB"))[:256, :384]
    rgba = tmp_path / "rgba.png"
    alpha = np.tile(np.linspace(0, 255, 384, dtype=np.uint8), (256, 1))
    picture = Image.fromarray(np.dstack([real, alpha]), "RGBA")
    picture.save(rgba, icc_profile=icc, exif=exif.tobytes())
    identity = ["--weights", weights["identity"], "--precision", "fp32"]
    sizes = {}
    for mode in ("fast", "small"):
        dst = tmp_path / mode / "rgba.png"
        code, err = deblur("image", rgba, "-o", dst, "--png-compression", mode, *identity)
        assert code == 0, err
        with Image.open(dst) as out:
            assert out.mode == "RGBA" and out.info.get("icc_profile") == icc
            assert out.getexif().get(0x013B) == "A. Photographer"
            assert np.array_equal(np.asarray(out), np.dstack([real, alpha]))
        sizes[mode] = dst.stat().st_size
    assert sizes["small"] < sizes["fast"]

    deep = tmp_path / "deep.png"  # 16-bit with the same metadata
    write_image(deep, real.astype(np.uint16) * 257, ImageInfo(exif.tobytes(), icc))
    code, err = deblur("image", deep, "-o", tmp_path / "deep_out.png", *identity)
    assert code == 0, err
    with Image.open(tmp_path / "deep_out.png") as out:
        assert out.info.get("icc_profile") == icc
        assert out.getexif().get(0x013B) == "A. Photographer"
    pixels = cv2.imread(str(tmp_path / "deep_out.png"), cv2.IMREAD_UNCHANGED)
    assert pixels.dtype == np.uint16 and np.array_equal(
        pixels[..., ::-1], real.astype(np.uint16) * 257
    )
