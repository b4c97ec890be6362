"""The PNG writer (multi-core; files any decoder reads back exactly, metadata kept) and the
fast reader (the same pixels as libpng)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from deblur_cli.errors import InputError
from deblur_cli.io import png as png_module
from deblur_cli.io.images import PARALLEL_PNG_PIXELS, ImageInfo, read_image, write_image
from deblur_cli.io.png import adler32_combine, encode_png


def idat_stream(png: bytes) -> bytes:
    """The concatenated IDAT payloads: one zlib stream, header and Adler-32 included."""
    at, stream = 8, b""
    while at < len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        if png[at + 4 : at + 8] == b"IDAT":
            stream += png[at + 8 : at + 8 + length]
        at += 12 + length
    return stream


def test_adler32_combine_matches_zlib() -> None:
    rng = np.random.default_rng(1)
    a, b = (rng.integers(0, 256, n, dtype=np.uint8).tobytes() for n in (3000, 70_001))
    assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)
    assert adler32_combine(1, zlib.adler32(b), len(b)) == zlib.adler32(b)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((41, 57, 3), np.uint8), ((41, 57, 4), np.uint8), ((41, 57), np.uint8),
     ((41, 57, 3), np.uint16), ((41, 57, 4), np.uint16), ((1, 9, 3), np.uint8)],
)  # fmt: skip
@pytest.mark.parametrize("strips", [1, 3, 41])
@pytest.mark.parametrize("library", ["isal", "zlib-ng", "zlib"])
def test_round_trip_every_layout(shape, dtype, strips: int, library: str, monkeypatch) -> None:
    """Exact with ISA-L, zlib-ng and the stdlib fallback, in one strip or many."""
    assert png_module.compress_lib is not None, "isal is a dependency: install it"
    assert png_module.deflate_lib is not zlib, "zlib-ng is a dependency: install it"
    if library != "isal":
        monkeypatch.setattr(png_module, "compress_lib", None)
    if library == "zlib":
        monkeypatch.setattr(png_module, "deflate_lib", zlib)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    png = encode_png(pixels, strips=min(strips, shape[0]), threads=2)
    raw = zlib.decompress(idat_stream(png))  # strict: checks the combined Adler-32
    assert len(raw) == shape[0] * (1 + shape[1] * (pixels.size // shape[0] // shape[1]) * (
        dtype(0).itemsize))  # fmt: skip
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded.ndim == 3:
        code = cv2.COLOR_BGR2RGB if decoded.shape[2] == 3 else cv2.COLOR_BGRA2RGBA
        decoded = cv2.cvtColor(decoded, code)
    np.testing.assert_array_equal(decoded, pixels)
    if dtype == np.uint8:
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(png))), pixels)


def test_big_picture_written_on_every_core_with_metadata(tmp_path: Path) -> None:
    """write_image takes the parallel path from PARALLEL_PNG_PIXELS up; the file holds the
    same pixels, profile and EXIF as the libpng path, at about the same size (ISA-L's level
    1 against libpng's run-length strategy: within 15 %)."""
    frame = cv2.imread(str(Path(__file__).parent.parent / "deblur_cli/examples/sharp.png"))
    side = int(np.ceil(np.sqrt(PARALLEL_PNG_PIXELS)))
    big = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), (side + 16, side))
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x013B] = "A. Photographer"
    info = ImageInfo(icc_profile=icc, exif=exif.tobytes())
    out = write_image(tmp_path / "big.png", big, info)
    pixels, read_info = read_image(out)
    np.testing.assert_array_equal(pixels, big)
    assert read_info.icc_profile == icc
    with Image.open(out) as im:
        assert im.getexif().get(0x013B) == "A. Photographer"
        assert len(idat_stream(out.read_bytes())) > 0
    ok, libpng = cv2.imencode(".png", cv2.cvtColor(big, cv2.COLOR_RGB2BGR),
                              [cv2.IMWRITE_PNG_COMPRESSION, 1,
                               cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE,
                               cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP])  # fmt: skip
    assert ok and abs(out.stat().st_size / len(libpng) - 1) < 0.15
    assert out.read_bytes().count(b"IDAT") > 2  # written in strips


def test_bad_arrays_refused() -> None:
    with pytest.raises(ValueError, match="uint8 or uint16"):
        encode_png(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="1-4 channels"):
        encode_png(np.zeros((4, 4, 5), np.uint8))


def libpng_file(path: Path, rgb: np.ndarray, filters: int, level: int = 1) -> Path:
    codes = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}
    bgr = rgb if rgb.ndim == 2 else cv2.cvtColor(rgb, codes[rgb.shape[2]])
    params = [cv2.IMWRITE_PNG_COMPRESSION, level, cv2.IMWRITE_PNG_FILTER, filters]
    assert cv2.imwrite(str(path), bgr, params)
    return path


def row_filters(png: bytes, height: int) -> set[int]:
    raw = zlib.decompress(idat_stream(png))
    return set(raw[:: len(raw) // height])


@pytest.mark.parametrize(
    ("name", "filters", "fast"),
    [("none", cv2.IMWRITE_PNG_FILTER_NONE, True), ("sub", cv2.IMWRITE_PNG_FILTER_SUB, True),
     ("up", cv2.IMWRITE_PNG_FILTER_UP, True),
     ("none+sub+up", cv2.IMWRITE_PNG_FILTER_NONE | cv2.IMWRITE_PNG_FILTER_SUB
      | cv2.IMWRITE_PNG_FILTER_UP, True),
     ("paeth", cv2.IMWRITE_PNG_FILTER_PAETH, False), ("all", cv2.IMWRITE_PNG_ALL_FILTERS, False)],
)  # fmt: skip
@pytest.mark.parametrize("kind", ["rgb8", "rgba16", "gray8"])
def test_reader_gives_what_libpng_gives(name, filters, fast, kind, tmp_path: Path) -> None:
    """read_image decodes None/Sub/Up files itself (libdeflate + numpy) and hands every other
    filter to libpng; either way the pixels are OpenCV's, in RGB order."""
    frame = cv2.imread(str(Path(__file__).parent.parent / "deblur_cli/examples/sharp.png"))
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)[:67, :91]
    pixels = {
        "rgb8": rgb,
        "rgba16": np.dstack([rgb, rgb[..., :1]]).astype(np.uint16) * 256 + 3,
        "gray8": rgb[..., 1].copy(),
    }[kind]
    path = libpng_file(tmp_path / f"{name}.png", pixels, filters)
    data = path.read_bytes()
    if name == "none+sub+up" and kind == "rgb8":
        used = row_filters(data, pixels.shape[0])
        assert len(used) > 1 and used <= {0, 1, 2}  # a real mix, row by row
    decoded = png_module.decode_png(data)
    assert (decoded is not None) == fast
    read, _info = read_image(path)
    assert read.dtype == pixels.dtype and read.shape == pixels.shape
    np.testing.assert_array_equal(read, pixels)


def test_reader_leaves_damage_to_libpng(tmp_path: Path) -> None:
    """A flipped bit in the pixels (bad chunk CRC, bad Adler-32) or a short stream is not
    decoded here; the caller then gets libpng's verdict: the usual one-line error."""
    frame = cv2.imread(str(Path(__file__).parent.parent / "deblur_cli/examples/sharp.png"))
    good = libpng_file(tmp_path / "good.png", frame[:64, :64], cv2.IMWRITE_PNG_FILTER_SUB)
    data = bytearray(good.read_bytes())
    assert png_module.decode_png(bytes(data)) is not None
    at = data.index(b"IDAT") + 40
    data[at] ^= 0x10
    assert png_module.decode_png(bytes(data)) is None
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(InputError, match="bad.png"):
        read_image(tmp_path / "bad.png")
    tiny = encode_png(np.zeros((8, 8, 3), np.uint8))
    tall = tiny.replace(struct.pack(">II", 8, 8), struct.pack(">II", 8, 9), 1)  # rows missing
    assert png_module.decode_png(tall) is None
