"""Calibrate a model for ``--precision int8`` and store the result beside its weights.

    python scripts/calibrate_int8.py                       # the bundled default model
    python scripts/calibrate_int8.py runs/x/best.safetensors -o runs/x/best.int8.json

Activation ranges are recorded with the fp32 network on blurry and sharp photos of
``../shared/data`` that no quality check uses (REDS x4 clips other than test003, real blurry
photos of Lai et al. 2016, raw GOPR0477 frames, Kodak24, Urban100, Sun-Hays80), then int8 is
compared with fp32 on held-out photos (the two official GOPRO test pairs and 4 BSDS test
photos) at both weight widths (8-bit: CPUs with VNNI; 7-bit: AVX2 without VNNI); the worse
figure is stored and decides whether ``--precision auto`` may pick int8. The output is
``<weights stem>.int8.json`` next to the weights (deblur_cli/quantize.py reads it there),
written atomically; scripts/bundle_weights.py calls this after bundling a model.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from deblur_cli.io.images import read_image
from deblur_cli.model import build_model
from deblur_cli.quantize import TAIL, calibrate, compare_to_fp32, cpu_kind, sidecar_path
from deblur_cli.weights import load_weight_file

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# (folder under DATA, file-name glob, how many): blurry first, then sharp.
CALIBRATION_SET = (
    ("pairs/reds_x4/blur", "train00[01]_0000000[05].png", 4),
    ("pairs/reds_x4/blur", "test00[12]_*5.png", 2),
    ("real/lai2016", "*.jpg", 4),
    ("frames/GOPR0477_11_00", "0001[05]0.jpg", 2),
    ("sharp/kodak24crop_ffdnet", "kodim0[1-4].jpg", 4),
    ("sharp/urban100_selfexsr", "*", 2),
    ("sharp/sunhays80_selfexsr", "*", 2),
)
CHECK_SET = (
    ("eval/gopro_test_scenes/blur", "*.png", 2),
    ("sharp/bsds300_dcscn/bsd100", "*", 4),
)
MAX_SIDE = 1280  # larger photos are cut to their centre: ranges do not depend on size


def _centre(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    y, x = max(0, (h - MAX_SIDE) // 2), max(0, (w - MAX_SIDE) // 2)
    return np.ascontiguousarray(image[y : y + MAX_SIDE, x : x + MAX_SIDE, :3])


def photos(data: Path, spec: tuple) -> tuple[list[np.ndarray], list[str]]:
    images, names = [], []
    for folder, pattern, count in spec:
        paths = sorted((data / folder).glob(pattern))[:count]
        if len(paths) < count:
            raise SystemExit(f"{data / folder}: {len(paths)} of {count} photos ({pattern})")
        for path in paths:
            images.append(_centre(read_image(path)[0]))
            names.append(str(path.relative_to(data)))
    return images, names


def write_calibration(
    weights: str | None,
    out: Path | None = None,
    data: Path = DATA,
    quiet: bool = False,
    tail: float = TAIL,
) -> Path:
    """Calibrate ``weights`` (None: the bundled default) and write the sidecar; its path."""
    wf = load_weight_file(weights)
    net = build_model(wf.config)
    net.load_state_dict(wf.state_dict)
    start = time.perf_counter()
    images, names = photos(data, CALIBRATION_SET)
    check, check_names = photos(data, CHECK_SET)
    calibration = calibrate(net, images, names, tail=tail)
    results = [compare_to_fp32(net, calibration, check, levels=n) for n in (127, 63)]
    worst = min(results, key=lambda r: r["psnr_db"])
    calibration.check = {
        **worst,
        "by_weight_bits": {"8": results[0]["psnr_db"], "7": results[1]["psnr_db"]},
        "photos": check_names,
        "cpu": cpu_kind(),
    }
    target = out or sidecar_path(wf.path)
    calibration.save(target)
    if not quiet:
        print(
            f"{target}: {len(images)} calibration photos; int8 vs fp32 on {len(check)} held-out "
            f"photos: worst {results[0]['psnr_db']:.2f} dB (8-bit weights), "
            f"{results[1]['psnr_db']:.2f} dB (7-bit); {time.perf_counter() - start:.0f} s"
        )
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="?", default=None, help="default: the bundled model")
    parser.add_argument("-o", "--output", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument(
        "--tail", type=float, default=TAIL, help="share of extreme values left out (0: min/max)"
    )
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"error: {args.data} not found", file=sys.stderr)
        return 2
    write_calibration(args.weights, args.output, args.data, tail=args.tail)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
