"""Video I/O overhead: ``process_video`` frames/s against the engine's own frames/s.

Both columns run the same model on the same decoded frames; the difference is what decoding,
colour conversion, encoding, segmenting and muxing cost on top (goal: <= 10%). Random weights
of a named config, since speed does not depend on the values.

    python benchmarks/bench_video.py --size 1280x720 --frames 8 --runs 3 --config light
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from deblur_cli.engine import deblur_array, load_model
from deblur_cli.model import CONFIGS, ModelConfig, build_model
from deblur_cli.video import decode_frames, probe, process_video
from deblur_cli.weights import save_weights

FPS = Fraction(30000, 1001)


def make_clip(path: Path, width: int, height: int, frames: int) -> Path:
    """A textured pattern panning right, H.264 + AAC sine, like a phone clip."""
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height, width + 4 * frames, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        a = out.add_stream("aac", rate=48000)
        a.layout = "stereo"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(texture[:, 4 * i : 4 * i + width]), format="rgb24"
            )
            frame.pts, frame.time_base = i, 1 / FPS
            out.mux(v.encode(frame))
        out.mux(v.encode(None))
        samples = round(frames / FPS * 48000)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--config", default="light", help="paper, light or tiny")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    args = parser.parse_args()
    width, height = map(int, args.size.lower().split("x"))
    if args.threads:
        torch.set_num_threads(args.threads)
    config = CONFIGS.get(args.config, ModelConfig(3, 1, 8, 3))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        torch.manual_seed(0)
        weights = save_weights(tmp / "w.safetensors", build_model(config).state_dict(), config)
        model = load_model(weights, "cpu", args.precision)
        clip = make_clip(tmp / "clip.mp4", width, height, args.frames)
        info = probe(clip)
        frames = [f.rgb for f in decode_frames(info)]
        deblur_array(model, frames[0])  # warm-up: allocator, kernels
        engine, video, io_only = [], [], []
        for run in range(args.runs):
            t = time.perf_counter()
            for rgb in frames:
                deblur_array(model, rgb)
            engine.append(len(frames) / (time.perf_counter() - t))
            t = time.perf_counter()
            process_video(clip, tmp / f"out{run}.mp4", lambda rgb: deblur_array(model, rgb))
            video.append(len(frames) / (time.perf_counter() - t))
            t = time.perf_counter()
            process_video(clip, tmp / f"same{run}.mp4", lambda rgb: rgb)
            io_only.append(len(frames) / (time.perf_counter() - t))
        e, v = statistics.median(engine), statistics.median(video)
        print(
            f"{width}x{height}, {len(frames)} frames, config {args.config} "
            f"({config.n_resblocks} blocks, {config.n_feats} feats), {model.precision}, "
            f"{torch.get_num_threads()} torch threads, median of {args.runs} runs"
        )
        print(f"{'path':<28}{'frames/s':>10}{'s/frame':>10}")
        print(f"{'engine (deblur_array)':<28}{e:>10.3f}{1 / e:>10.3f}")
        print(f"{'deblur video (end to end)':<28}{v:>10.3f}{1 / v:>10.3f}")
        io = statistics.median(io_only)
        print(f"{'video I/O alone (identity)':<28}{io:>10.3f}{1 / io:>10.3f}")
        print(f"video I/O overhead: {100 * (e / v - 1):.1f}% of engine time per frame")


if __name__ == "__main__":
    main()
