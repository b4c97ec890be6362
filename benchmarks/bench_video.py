"""Video I/O overhead: ``process_video`` seconds per frame against the engine's own.

The variants run the same model on the same clip: the engine alone on frames decoded
beforehand; ``process_video`` end to end (decode, colour conversion, model, encode, segments,
mux) as ``deblur video`` runs it beside a CPU network (codecs on one thread each, a queue
that absorbs x264's segment flushes, ``--preset auto`` = veryfast with subme=1), and the same
with plain veryfast and with x264's medium preset (the earlier defaults); and
``process_video`` with an identity function (the I/O alone). They are interleaved
round by round, in a rotating order, so that load from other processes hits all of them
alike; the table gives medians and the spread (min–max) over rounds, and the ratio of video
to engine is taken within each round (goal: <= 1.10). Random weights of a named config, since
speed does not depend on the values. The clip is made from real 1280x720 GOPRO frames
(../shared/data/frames) when they are there, else from a panning texture.

    python benchmarks/bench_video.py --size 1280x720 --frames 150 --rounds 3 --config light

Use enough frames for the steady state: x264 buffers its rate-control lookahead (40 frames
at the medium preset) and encodes it after the last network frame, a fixed cost that a
10-frame clip would count as per-frame overhead.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from PIL import Image

from deblur_cli.engine import deblur_array, load_model
from deblur_cli.model import ModelConfig, build_model
from deblur_cli.video import (
    EncodeSettings,
    decode_frames,
    probe,
    process_video,
    resolve_auto,
)
from deblur_cli.video import threads as threads_lib
from deblur_cli.weights import save_weights

FPS = Fraction(30000, 1001)
ENGINE = "engine (deblur_array)"
VIDEO = "deblur video (end to end)"
FRAMES_DIR = Path(__file__).resolve().parents[2] / "shared/data/frames/GOPR0477_11_00"


def source_frames(width: int, height: int, count: int) -> list[np.ndarray]:
    """Real consecutive frames (cropped to size) when available, else a panning texture."""
    files = sorted(FRAMES_DIR.glob("*.jpg"))[:count] if FRAMES_DIR.is_dir() else []
    if len(files) == count:
        frames = []
        for path in files:
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
            if rgb.shape[0] < height or rgb.shape[1] < width:
                rgb = np.asarray(Image.fromarray(rgb).resize((width, height)))
            frames.append(np.ascontiguousarray(rgb[:height, :width]))
        return frames
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height, width + 4 * count, 3), dtype=np.uint8)
    return [np.ascontiguousarray(texture[:, 4 * i : 4 * i + width]) for i in range(count)]


def make_clip(path: Path, frames: list[np.ndarray]) -> Path:
    """H.264 + AAC sine, like a phone clip."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        a = out.add_stream("aac", rate=48000)
        a.layout = "stereo"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, 1 / FPS
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        samples = round(len(frames) / FPS * 48000)
        wave = (0.3 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 48000)).astype(np.float32)
        for k in range(0, samples, 1024):
            chunk = wave[k : k + 1024]
            af = av.AudioFrame.from_ndarray(
                np.stack([chunk, chunk]).T.reshape(1, -1).copy(), format="flt", layout="stereo"
            )
            af.sample_rate, af.pts, af.time_base = 48000, k, Fraction(1, 48000)
            out.mux(a.encode(af))
        out.mux(a.encode(None))
    return path


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}–{max(values):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--frames", type=int, default=150, help="5 segments: steady state")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--config", default="light", help="paper, light, tiny or S,B,F,K")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    width, height = map(int, args.size.lower().split("x"))
    if args.threads:
        torch.set_num_threads(args.threads)
    config = ModelConfig(3, 1, 8, 3) if args.config == "tiny" else ModelConfig.parse(args.config)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        torch.manual_seed(0)
        weights = save_weights(tmp / "w.safetensors", build_model(config).state_dict(), config)
        model = load_model(weights, "cpu", args.precision)
        clip = make_clip(tmp / "clip.mp4", source_frames(width, height, args.frames))
        info = probe(clip)
        decoded = [f.rgb for f in decode_frames(info)]
        n = len(decoded)

        def engine() -> None:
            for rgb in decoded:
                deblur_array(model, rgb)

        cli_default = resolve_auto(EncodeSettings(preset="auto"), "cpu")
        real_yield = threads_lib.yield_to_network

        def video(settings: EncodeSettings, io_priority: bool = True) -> Callable[[], None]:
            def run() -> None:
                threads_lib.yield_to_network = real_yield if io_priority else lambda: False
                try:
                    process_video(
                        clip,
                        tmp / "out.mp4",
                        lambda rgb: deblur_array(model, rgb),
                        settings=settings,
                        info=info,
                        codec_threads=1,
                    )
                finally:
                    threads_lib.yield_to_network = real_yield

            return run

        def io_only() -> None:
            process_video(
                clip, tmp / "same.mp4", lambda rgb: rgb, settings=cli_default, info=info,
                codec_threads=1,
            )  # fmt: skip

        variants: dict[str, Callable[[], None]] = {
            ENGINE: engine,
            VIDEO: video(cli_default),
            "video, x264 veryfast (subme 2)": video(EncodeSettings(preset="veryfast")),
            "video, x264 medium": video(EncodeSettings(preset="medium")),
            "video, codecs at normal priority": video(cli_default, io_priority=False),
            "video I/O alone (identity)": io_only,
        }
        deblur_array(model, decoded[0])  # warm-up: allocator, kernels
        io_only()  # warm-up: codec libraries, page cache
        times: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                for stale in tmp.glob("*.mp4"):  # each run starts afresh, not resumed
                    if stale != clip:
                        stale.unlink()
                t = time.perf_counter()
                variants[name]()
                times[name].append((time.perf_counter() - t) / n)
        print(
            f"{width}x{height}, {n} frames, config {args.config} "
            f"({config.n_resblocks} blocks, {config.n_feats} feats), {model.precision}, "
            f"{torch.get_num_threads()} torch threads, {args.rounds} interleaved rounds"
        )
        print(f"{'path':<34}{'s/frame':>9}{'spread':>14}{'x engine':>10}{'spread':>14}")
        for name, values in times.items():
            ratios = [v / e for v, e in zip(values, times[ENGINE], strict=True)]
            print(
                f"{name:<34}{statistics.median(values):>9.3f}{spread(values):>14}"
                f"{statistics.median(ratios):>10.3f}{spread(ratios):>14}"
            )
        ratio = statistics.median(v / e for v, e in zip(times[VIDEO], times[ENGINE], strict=True))
        print(f"deblur video I/O overhead: {100 * (ratio - 1):.1f}% of engine time per frame")


if __name__ == "__main__":
    main()
