"""Teacher targets: blurry photos without ground truth, and a bank of the teacher's outputs.

On a CPU a GOPRO-trained teacher costs far more per pixel than the student's training step
(DMPHN(1-2-4): ~1.5 s per 256² crop on 2 cores, the light student's step ~0.3 s for a whole
batch), so running it inside every step would make the teacher, not the student, set the
pace. A **bank** runs it once: crops are drawn from any training sources (frames averaged at
any window length, synthetic stills, REDS pairs, real blurry photos...), the teacher restores
each, and ``BANK/{blur,teacher,sharp}/NNNNNN.png`` are written. ``bank:BANK`` then trains a
student with random patches of those crops, the teacher's output as the target (or, for the
share ``1 - teacher_share`` of crops that have one, the ground truth).

Layout and resume follow ``synth/layout.py``: ``blur`` and ``sharp`` first, ``teacher``
last, each atomically, so a crop whose teacher file exists is complete; ``bank.json``
records the settings, and growing ``--count`` extends the same bank. Building lives in
``bank_builder.py``; this module only reads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .augment import center_crop, random_crop
from .source import Source, as_uint8, list_images, load_rgb, spread_split

MANIFEST = "bank.json"


class BlurrySource(Source):
    """Real blurry photos with no ground truth (``blurry:DIR``): only a teacher can label them.

    ``sample`` returns the crop twice; the trainer or the bank builder replaces the second
    with the teacher's output.
    """

    kind = "blurry"
    has_truth = False

    def __init__(self, root: Path, paths: Sequence[Path], fit: bool = False) -> None:
        super().__init__(root)
        self.paths = list(paths)
        # fit: a photo smaller than the crop gives the largest square it has (a multiple of
        # 8), instead of an error. The bank builder wants every photo, whatever its size.
        self.fit = fit

    def __len__(self) -> int:
        return len(self.paths)

    def sample(self, index, rng, patch):
        image = as_uint8(load_rgb(self.paths[index]))
        h, w = image.shape[:2]
        if self.fit:
            patch = min(patch, h - h % 8, w - w % 8)
        if h < patch or w < patch:
            raise InputError(f"{self.paths[index]}: {w}x{h} is smaller than the {patch}px patch")
        return random_crop(image, image, patch, rng)

    def val_pair(self, index, crop, seed):
        image = center_crop(as_uint8(load_rgb(self.paths[index])), crop)
        return image, image

    def split(self, n_val):
        return self, BlurrySource(self.root, [])  # nothing to validate against


class BankSource(Source):
    """Crops restored by a teacher (``bank:DIR``, see the module docstring).

    ``teacher_share`` of the crops that have ground truth train on the teacher's output,
    the rest on the truth; crops without truth always train on the teacher's.
    """

    kind = "bank"

    def __init__(self, root: Path, names: Sequence[str], teacher_share: float = 1.0) -> None:
        super().__init__(root)
        self.names = list(names)
        self.teacher_share = teacher_share
        manifest = read_manifest(root)
        self.teacher = (manifest or {}).get("teacher", {})

    def __len__(self) -> int:
        return len(self.names)

    def _file(self, folder: str, index: int) -> Path:
        return self.root / folder / f"{self.names[index]}.png"

    def _pair(self, index: int, use_teacher: bool) -> tuple[np.ndarray, np.ndarray]:
        blur = as_uint8(load_rgb(self._file("blur", index)))
        truth = self._file("sharp", index)
        source = "teacher" if use_teacher or not truth.is_file() else "sharp"
        target = as_uint8(load_rgb(self._file(source, index)))
        if target.shape != blur.shape:
            raise InputError(f"{self._file(source, index)}: size differs from its blurry crop")
        return blur, target

    def sample(self, index, rng, patch):
        use_teacher = bool(rng.random() < self.teacher_share)
        return random_crop(*self._pair(index, use_teacher), patch, rng)

    def val_pair(self, index, crop, seed):
        # Validation measures restoration: the truth where the crop has it.
        blur, target = self._pair(index, use_teacher=False)
        return center_crop(blur, crop), center_crop(target, crop)

    def split(self, n_val):
        keep, val = spread_split(self.names, n_val)
        return BankSource(self.root, keep, self.teacher_share), BankSource(
            self.root, val, self.teacher_share
        )

    def describe(self) -> str:
        who = self.teacher.get("architecture", "a teacher")
        return (
            f"bank:{self.root} ({len(self)} crops by {who}, teacher share {self.teacher_share:g})"
        )


def is_bank(root: Path) -> bool:
    return (root / "teacher").is_dir() and (root / "blur").is_dir()


def open_bank(root: Path, teacher_share: float = 1.0) -> BankSource:
    """The complete crops of a bank folder (those whose ``teacher/`` file exists)."""
    if not is_bank(root):
        raise InputError(f"{root}: not a teacher bank (no blur/ and teacher/ folders)")
    names = [p.stem for p in list_images(root / "teacher") if (root / "blur" / p.name).is_file()]
    return BankSource(root, names, teacher_share)


def read_manifest(root: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(root) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
