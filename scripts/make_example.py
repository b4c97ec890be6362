"""Make the bundled demo pair from real footage: ``deblur_cli/examples/{blurry,sharp}.png``.

The blurry picture is real motion blur made the way the GOPRO dataset was (Nah, Kim and Lee,
CVPR 2017): 11 consecutive 240 fps frames of scene GOPR0477_11_00 (a player bouncing a
basketball while the camera pans) averaged in linear light through a gamma-2.2 camera
response, exactly as ``deblur synth frames`` does; the sharp picture is the middle frame.
The crop is the 640x360 top-right corner, where the hands, the ball and the crowd behind
move most. Reproducible from ../shared (byte-identical output for the same frames):

    python scripts/make_example.py                       # ../shared/data/frames/GOPR0477_11_00
    python scripts/make_example.py --frames DIR --out deblur_cli/examples
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deblur_cli.io.images import read_image, write_image
from deblur_cli.synth.frames import average_frames

ROOT = Path(__file__).resolve().parents[1]
SCENE = "GOPR0477_11_00"
FIRST_FRAME, FRAME_COUNT = 181, 11  # files 000181.jpg … 000191.jpg; sharp = 000186.jpg
GAMMA = 2.2  # the camera response GOPRO's blur_gamma approximates
CROP_X, CROP_Y, CROP_W, CROP_H = 640, 0, 640, 360

LAST_FRAME = FIRST_FRAME + FRAME_COUNT - 1
CREDITS = f"""\
# Demo pictures: credits and licence

`blurry.png` and `sharp.png` are cut from frames {FIRST_FRAME:06d}-{LAST_FRAME:06d}
of scene {SCENE} (240 fps, as re-encoded at JPEG quality 95) of the GOPRO dataset
(https://seungjunnah.github.io/Datasets/gopro), by Seungjun Nah, Tae Hyun Kim and
Kyoung Mu Lee: *Deep Multi-scale Convolutional Neural Network for Dynamic Scene Deblurring*,
CVPR 2017. Licensed under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).

Changes: the {FRAME_COUNT} consecutive 240 fps frames were averaged in linear light (gamma
{GAMMA}) to make `blurry.png`; `sharp.png` is the middle frame; both are the
{CROP_W}x{CROP_H} region at x={CROP_X}, y={CROP_Y}. Made by `scripts/make_example.py`.

This scene is part of the training data of the bundled default model (light-gopro), so the
demo shows it on footage it has seen, not on new photos.
"""


def make_example(frames_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    names = [frames_dir / f"{FIRST_FRAME + i:06d}.jpg" for i in range(FRAME_COUNT)]
    missing = [p for p in names if not p.is_file()]
    if missing:
        raise SystemExit(f"missing frames, e.g. {missing[0]}")
    frames = [read_image(path)[0] for path in names]
    crop = (slice(CROP_Y, CROP_Y + CROP_H), slice(CROP_X, CROP_X + CROP_W))
    blurry = average_frames(frames, GAMMA)[crop]
    sharp = frames[FRAME_COUNT // 2][crop]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_image(out_dir / "blurry.png", blurry)
    write_image(out_dir / "sharp.png", sharp)
    (out_dir / "CREDITS.md").write_text(CREDITS)
    return out_dir / "blurry.png", out_dir / "sharp.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=Path, default=ROOT.parent / "shared/data/frames" / SCENE)
    parser.add_argument("--out", type=Path, default=ROOT / "deblur_cli" / "examples")
    args = parser.parse_args()
    for path in make_example(args.frames, args.out):
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
