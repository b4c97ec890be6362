"""Render the bundled demo picture: a sharp procedural scene (our own pixels, no
third-party photo; dedicated to the public domain). ``deblur demo`` blurs it with the
synthesis code and deblurs it.

    python scripts/make_example.py deblur_cli/examples/street.png
"""

from __future__ import annotations

import sys

import cv2
import numpy as np


def scene(width: int = 640, height: int = 424, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sky = np.linspace(235, 150, height)[:, None, None] * np.array([0.75, 0.85, 1.0])
    img = np.broadcast_to(sky, (height, width, 3)).astype(np.float32).copy()
    # Buildings with windows: strong edges at many orientations of scale.
    x = 0
    while x < width:
        w = int(rng.integers(60, 130))
        h = int(rng.integers(150, 330))
        colour = rng.uniform(60, 200, 3)
        cv2.rectangle(img, (x, height - h), (x + w, height), colour.tolist(), -1)
        for wy in range(height - h + 12, height - 20, 26):
            for wx in range(x + 8, x + w - 14, 20):
                lit = rng.random() < 0.4
                cv2.rectangle(img, (wx, wy), (wx + 10, wy + 14),
                              (250, 230, 140) if lit else (40, 45, 60), -1)
        x += w + int(rng.integers(2, 12))
    # A sign with text and a striped awning: fine detail that blur destroys.
    img = np.clip(img, 0, 255).astype(np.uint8)
    cv2.rectangle(img, (150, 250), (490, 330), (245, 245, 240), -1)
    cv2.putText(img, "DEBLUR", (170, 312), cv2.FONT_HERSHEY_DUPLEX, 2.2, (30, 30, 160), 5,
                cv2.LINE_AA)
    for i in range(0, 340, 20):
        cv2.rectangle(img, (150 + i, 235), (160 + i, 250), (200, 40, 40), -1)
    texture = rng.normal(0, 6, (height, width, 1)).astype(np.float32)
    return np.clip(img.astype(np.float32) + texture, 0, 255).astype(np.uint8)


def main(out: str) -> None:
    sharp = scene()
    cv2.imwrite(out, np.round(sharp).astype(np.uint8)[..., ::-1])


if __name__ == "__main__":
    main(sys.argv[1])
