"""Image I/O benchmark: what writing and reading cost next to the network.

Two parts, each interleaving its variants round by round in one process, so that drift on
a shared machine hits every variant alike; the tables give medians, the spread (min–max
over rounds) and ratios.

1. Encoders, per 720p frame (real frames of GOPR0477_11_00) and on a 24 MP picture: Pillow
   PNG at level 6 (the old default) and 1, OpenCV PNG at level 1 with the default and the
   run-length strategy, level 9, and ``encode_image`` as ``deblur`` calls it (fast and small,
   metadata included); JPEG q95 for scale. Decoding PNGs from three writers and a JPEG,
   OpenCV against ``read_image``'s own PNG reader.
2. ``deblur batch`` against the engine alone on 20 720p PNG frames: the engine pass runs the
   model on frames decoded beforehand; the batch pass runs :func:`deblur_cli.batch.run_batch`
   (the loop behind ``deblur batch`` and multi-input ``deblur image``: read, deblur and write
   overlapped), once with today's PNG writer and once with the old one (Pillow level 6), so
   before/after come from the same run. Both use the bundled default model as the CLI does,
   after one warm-up frame. Optionally (``--cli``) the real ``deblur batch`` command end to
   end, start-up included.

    python benchmarks/bench_io.py                    # everything (a few minutes on 2 cores)
    python benchmarks/bench_io.py --rounds 5 --no-batch
"""

from __future__ import annotations

import argparse
import io
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FRAMES = ROOT.parent / "shared" / "data" / "frames" / "GOPR0477_11_00"

from deblur_cli.io import png as png_module  # noqa: E402
from deblur_cli.io.images import ImageInfo, encode_image  # noqa: E402


def load_frames(count: int) -> list[np.ndarray]:
    files = sorted(FRAMES.glob("*.jpg"))[:count]
    if len(files) < count:
        sys.exit(f"need {count} frames in {FRAMES}")
    return [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]


def stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


# --------------------------------------------------------------------------- 1. encoders


def pillow_png(level: int, strategy: int = -1) -> Callable[[np.ndarray], bytes]:
    def encode(rgb: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, "PNG", compress_level=level, compress_type=strategy)
        return buffer.getvalue()

    return encode


def opencv_png(level: int, strategy: int = cv2.IMWRITE_PNG_STRATEGY_DEFAULT, row_filter=None):
    params = [cv2.IMWRITE_PNG_COMPRESSION, level, cv2.IMWRITE_PNG_STRATEGY, strategy]
    if row_filter is not None:
        params += [cv2.IMWRITE_PNG_FILTER, row_filter]

    def encode(rgb: np.ndarray) -> bytes:
        return cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)[1].tobytes()

    return encode


def bench_encoders(frames: list[np.ndarray], rounds: int, big: bool) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x013B] = "bench"
    info = ImageInfo(exif=exif.tobytes(), icc_profile=icc)
    variants: dict[str, Callable[[np.ndarray], bytes]] = {
        "Pillow PNG level 6 (old default)": pillow_png(6),
        "Pillow PNG level 1": pillow_png(1),
        "Pillow PNG level 1, RLE": pillow_png(1, 3),
        "OpenCV PNG level 1": opencv_png(1),
        "OpenCV PNG level 1, RLE": opencv_png(1, cv2.IMWRITE_PNG_STRATEGY_RLE),
        "OpenCV PNG level 1, RLE, up filter": opencv_png(
            1, cv2.IMWRITE_PNG_STRATEGY_RLE, cv2.IMWRITE_PNG_FILTER_UP
        ),
        "OpenCV PNG level 9": opencv_png(9),
        "PNG fast before: zlib-ng run-length": zlib_ng_png,
        "encode_image png fast (+ICC/EXIF)": lambda a: encode_image(a, ".png", info),
        "encode_image png small (+ICC/EXIF)": lambda a: encode_image(a, ".png", info, 95, "small"),
        "encode_image jpg q95 (Pillow)": lambda a: encode_image(a, ".jpg", info),
    }
    pictures = {"720p frame": frames}
    if big and len(frames) >= 16:  # a 24 MP photo: the frames stitched 4x4 and cropped to 6000x4000
        tiles = [np.concatenate(frames[r * 4 : r * 4 + 4], axis=1) for r in range(4)]
        pictures["24 MP photo"] = [np.ascontiguousarray(np.concatenate(tiles)[:4000, :6000])]
    for label, images in pictures.items():
        times: dict[str, list[float]] = {name: [] for name in variants}
        sizes: dict[str, list[int]] = {name: [] for name in variants}
        slow = label != "720p frame"
        for _ in range(rounds):
            for name, encode in variants.items():
                if slow and "level 9" in name or slow and "small" in name:
                    continue  # ~60 s per 24 MP encode: not worth the wait
                start = time.perf_counter()
                for image in images:
                    sizes[name].append(len(encode(image)))
                times[name].append((time.perf_counter() - start) / len(images))
        base = statistics.median(times["Pillow PNG level 6 (old default)"])
        print(f"\n## encoders, per {label} ({len(images)} picture(s) x {rounds} rounds)\n")
        print("| encoder | median s | min–max s | vs Pillow level 6 | median size MB |")
        print("|---|---:|---:|---:|---:|")
        for name in variants:
            if not times[name]:
                continue
            med, lo, hi = stats(times[name])
            size = statistics.median(sizes[name]) / 1e6
            print(f"| {name} | {med:.3f} | {lo:.3f}–{hi:.3f} | {base / med:.2f}x | {size:.2f} |")
        sys.stdout.flush()
    bench_decoders(frames[0], rounds)


def zlib_ng_png(rgb: np.ndarray) -> bytes:
    """Our writer as it was before ISA-L: zlib-ng's run-length strategy."""
    real = png_module.compress_lib
    png_module.compress_lib = None
    try:
        return png_module.encode_png(rgb, threads=1)
    finally:
        png_module.compress_lib = real


def bench_decoders(frame: np.ndarray, rounds: int) -> None:
    """OpenCV's libpng against ``read_image``'s own PNG reader (libdeflate + numpy, for the
    None/Sub/Up filters; other files fall through to OpenCV), per 720p frame."""
    files = {
        "PNG fast (ours, Up filter)": encode_image(frame, ".png"),
        "PNG by OpenCV imwrite, defaults (Sub)": cv2.imencode(".png", frame[..., ::-1])[
            1
        ].tobytes(),
        "PNG by Pillow (Paeth: OpenCV reads)": pillow_png(6)(frame),
        "JPEG q95": encode_image(frame, ".jpg"),
    }

    def ours(data: bytes) -> np.ndarray:
        pixels = png_module.decode_png(data)
        return pixels if pixels is not None else opencv(data)

    def opencv(data: bytes) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)

    print("\n| decode a 720p frame | OpenCV median s | deblur's reader median s | ratio |")
    print("|---|---:|---:|---:|")
    for name, data in files.items():
        times: dict[str, list[float]] = {"opencv": [], "ours": []}
        for _ in range(rounds * 5):
            for label, decode in (("opencv", opencv), ("ours", ours)):
                start = time.process_time()
                decode(data)
                times[label].append(time.process_time() - start)
        a, b = statistics.median(times["opencv"]), statistics.median(times["ours"])
        print(f"| {name} | {a:.4f} | {b:.4f} | {a / b:.2f}x |")


# --------------------------------------------------------------------------- 2. batch vs engine


def old_write_image(path, pixels, info=None, *, quality=95, png_compression="fast"):
    """The writer before #15.2: Pillow's PNG at its default level 6, atomically."""
    from deblur_cli.atomic import atomic_path

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    return Path(path)


def bench_batch(frames: list[np.ndarray], rounds: int, workers: int, cli: bool) -> None:
    from deblur_cli import batch as batch_lib
    from deblur_cli import batch_plan
    from deblur_cli.engine import load_model
    from deblur_cli.io import images as images_lib

    model = load_model()
    with tempfile.TemporaryDirectory(prefix="bench_io_") as tmp:
        src = Path(tmp) / "frames"
        src.mkdir()
        for i, frame in enumerate(frames):
            cv2.imwrite(str(src / f"{i:06d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        decoded = [batch_lib.read_input(p)[0] for p in sorted(src.glob("*.png"))]
        model(decoded[0])  # warm-up: oneDNN builds its primitives on the first call
        real_writer = batch_lib.write_image

        def engine_pass() -> float:
            start = time.perf_counter()
            for pixels in decoded:
                model(pixels)
            return time.perf_counter() - start

        real_yield = batch_lib.yield_to_network
        real_decode = images_lib.decode_png

        def batch_pass(
            writer, io_priority: bool = True, png_reader: bool = True
        ) -> Callable[[], float]:
            def run() -> float:
                out = Path(tmp) / f"out_{time.monotonic_ns()}"
                jobs = batch_plan.plan_batch(src, out)
                batch_lib.write_image = writer
                batch_lib.yield_to_network = real_yield if io_priority else lambda: False
                images_lib.decode_png = real_decode if png_reader else lambda data: None
                try:
                    summary = batch_lib.run_batch(model, jobs, workers=workers)
                finally:
                    batch_lib.write_image = real_writer
                    batch_lib.yield_to_network = real_yield
                    images_lib.decode_png = real_decode
                assert summary.done == len(frames), summary.failed
                return summary.seconds

            return run

        def cli_pass() -> float:
            out = Path(tmp) / f"cli_{time.monotonic_ns()}"
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "deblur_cli", "batch", str(src), "-o", str(out)],
                check=True,
                capture_output=True,
                cwd=ROOT,
            )
            return time.perf_counter() - start

        variants: dict[str, Callable[[], float]] = {
            "engine alone": engine_pass,
            "batch, PNG fast (now)": batch_pass(real_writer),
            "batch, PNG read by OpenCV (before)": batch_pass(real_writer, png_reader=False),
            "batch, I/O threads at normal priority": batch_pass(real_writer, io_priority=False),
            "batch, Pillow PNG level 6 (before)": batch_pass(old_write_image),
        }
        if cli:
            variants["deblur batch CLI, start-up included"] = cli_pass
        per_frame: dict[str, list[float]] = {name: [] for name in variants}
        cpu_per_frame: dict[str, list[float]] = {name: [] for name in variants}
        for r in range(rounds):
            for name, run in variants.items():
                cpu_start = cpu_seconds()
                per_frame[name].append(run() / len(frames))
                cpu_per_frame[name].append((cpu_seconds() - cpu_start) / len(frames))
            setup = f"{r + 1} round(s), --workers {workers}, {model.precision} on {model.device}"
            print_batch_table(per_frame, cpu_per_frame, f"{len(frames)} 720p PNG frames, {setup}")


def print_batch_table(
    per_frame: dict[str, list[float]], cpu_per_frame: dict[str, list[float]], setup: str
) -> None:
    """Printed after every round, so that an interrupted run still leaves its figures."""
    print(f"\n## deblur batch vs the engine alone: {setup}\n")
    print(
        "Wall: seconds per frame. CPU: CPU-seconds per frame, all threads (and the CLI's child "
        "process); on a machine shared with other jobs the CPU ratio is the steadier one, on "
        "an idle one both agree when the engine keeps every core busy.\n"
    )
    print("| variant | wall s/frame median (min–max) | wall ratio | per-round wall ratios "
          "| CPU s/frame median | CPU ratio |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    engine, engine_cpu = per_frame["engine alone"], cpu_per_frame["engine alone"]
    for name, values in per_frame.items():
        med, lo, hi = stats(values)
        ratios = [v / e for v, e in zip(values, engine, strict=True)]
        cpu = statistics.median(cpu_per_frame[name])
        print(
            f"| {name} | {med:.3f} ({lo:.3f}–{hi:.3f}) | {med / statistics.median(engine):.3f}x "
            f"| {min(ratios):.3f}–{max(ratios):.3f} | {cpu:.3f} "
            f"| {cpu / statistics.median(engine_cpu):.3f}x |"
        )
    sys.stdout.flush()


def cpu_seconds() -> float:
    """CPU time of this process (all threads) plus its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-encoders", action="store_true")
    parser.add_argument("--no-batch", action="store_true")
    parser.add_argument("--no-big", action="store_true", help="skip the 24 MP encodes")
    parser.add_argument("--cli", action="store_true", help="also time the deblur batch command")
    args = parser.parse_args()
    frames = load_frames(max(args.frames, 16))
    if not args.no_encoders:
        bench_encoders(frames[: args.frames], args.rounds, big=not args.no_big)
    if not args.no_batch:
        bench_batch(frames[: args.frames], args.rounds, args.workers, args.cli)


if __name__ == "__main__":
    main()
