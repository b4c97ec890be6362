"""Writing pairs in the GOPRO_Large layout, resumably, plus a preview sheet.

``OUT/<scene>/blur_gamma/NNNNNN.png`` (the paper's training input), optionally
``OUT/<scene>/blur/NNNNNN.png`` (averaged without the camera response) and
``OUT/<scene>/sharp/NNNNNN.png``. Every file is written atomically, sharp first and
blur_gamma last, so a pair whose blur_gamma exists is complete and a killed run resumes by
skipping those. ``OUT/<scene>/synth.json`` records the settings: resuming with different
ones would silently mix two datasets, so it is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_path
from ..errors import OutputError
from ..io.images import read_image, write_image

MANIFEST = "synth.json"


class SceneWriter:
    """One scene folder: knows which pairs are finished and writes new ones atomically."""

    def __init__(self, root: Path, mode: str, settings: dict, plain: bool = False) -> None:
        self.root = Path(root)
        self.mode = mode
        self.settings = settings
        self.folders = ["sharp", *(["blur"] if plain else []), "blur_gamma"]

    def open(self) -> None:
        """Create the scene and check a previous run used the same settings."""
        if self.root.exists() and not self.root.is_dir():
            raise OutputError(f"{self.root}: exists and is not a folder")
        manifest = self.root / MANIFEST
        if manifest.exists():
            try:
                old = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
            if not isinstance(old, dict) or old.get("settings") != self.settings:
                raise OutputError(
                    f"{self.root} was made with other settings (see {manifest}); "
                    "choose another output folder or delete that scene"
                )
            return
        self._write_manifest([])

    def path(self, folder: str, name: str) -> Path:
        return self.root / folder / f"{name}.png"

    def done(self, name: str) -> bool:
        return all(self.path(folder, name).is_file() for folder in self.folders)

    def write(
        self, name: str, sharp: np.ndarray, blur_gamma: np.ndarray, blur: np.ndarray | None = None
    ) -> None:
        images = {"sharp": sharp, "blur": blur, "blur_gamma": blur_gamma}
        for folder in self.folders:
            write_image(self.path(folder, name), images[folder])

    def finish(self, pairs: list[dict]) -> None:
        """Rewrite the manifest with what each pair was made from."""
        self._write_manifest(pairs)

    def _write_manifest(self, pairs: list[dict]) -> None:
        body = {"tool": "deblur synth", "mode": self.mode, "settings": self.settings}
        body["pairs"] = pairs
        try:
            with atomic_path(self.root / MANIFEST) as tmp:
                tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
        except OSError as err:
            raise OutputError(f"cannot write {self.root / MANIFEST}: {err.strerror}") from None


def _label(image: np.ndarray, text: str) -> None:
    """White text on a dark strip: readable on any picture."""
    scale = max(0.4, image.shape[1] / 1000)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    image[: h + base + 8, : w + 12] //= 3
    cv2.putText(
        image, text, (6, h + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
    )


def write_preview(pairs: list[tuple[Path, Path, str]], out: Path, width: int = 1200) -> Path:
    """Stack rows of blurry | sharp (labelled) for a quick look at what was generated."""
    rows = []
    for blurry_path, sharp_path, caption in pairs:
        blurry, _ = read_image(blurry_path)
        sharp, _ = read_image(sharp_path)
        half = width // 2 - 2
        scale = half / blurry.shape[1]
        size = (half, max(1, int(round(blurry.shape[0] * scale))))
        left = cv2.resize(blurry[..., :3], size, interpolation=cv2.INTER_AREA)
        right = cv2.resize(sharp[..., :3], size, interpolation=cv2.INTER_AREA)
        _label(left, f"blurry {caption}")
        _label(right, "sharp")
        gap = np.full((size[1], width - 2 * half, 3), 255, np.uint8)
        rows.append(np.concatenate([left, gap, right], axis=1))
        rows.append(np.full((4, width, 3), 255, np.uint8))
    if not rows:
        raise OutputError("no pairs to preview")
    return write_image(out, np.concatenate(rows[:-1], axis=0))
