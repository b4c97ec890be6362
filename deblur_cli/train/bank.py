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
records the settings, and growing ``--count`` extends the same bank.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import InputError, OutputError
from .augment import center_crop, random_crop
from .source import Source, as_uint8, list_images, load_rgb

MANIFEST = "bank.json"
FORMAT = "deblur-bank/1"
FOLDERS = ("blur", "sharp", "teacher")


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
        n_val = min(n_val, len(self.names) // 2)
        if n_val <= 0:
            return self, BankSource(self.root, [], self.teacher_share)
        step = len(self.names) / n_val
        held = {int(i * step + step / 2) for i in range(n_val)}
        keep = [n for i, n in enumerate(self.names) if i not in held]
        val = [n for i, n in enumerate(self.names) if i in held]
        return (
            BankSource(self.root, keep, self.teacher_share),
            BankSource(self.root, val, self.teacher_share),
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


# --------------------------------------------------------------------------- building


class BankWriter:
    """One bank folder: which crops are done, the settings check, atomic writes."""

    def __init__(self, root: Path, settings: dict[str, Any]) -> None:
        self.root = Path(root)
        self.settings = settings

    def open(self) -> None:
        if self.root.exists() and not self.root.is_dir():
            raise OutputError(f"{self.root}: exists and is not a folder")
        old = read_manifest(self.root)
        if old is not None and old.get("settings") != self.settings:
            raise OutputError(
                f"{self.root} was built with other settings (see {self.root / MANIFEST}); "
                "choose another output folder"
            )
        if (self.root / MANIFEST).exists() and old is None:
            raise OutputError(f"{self.root / MANIFEST}: unreadable; choose another output folder")
        if old is None and self.root.is_dir() and any(self.root.iterdir()):
            raise OutputError(f"{self.root}: not empty and not a bank; choose another folder")
        for folder in FOLDERS:
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        self.write_manifest()

    def write_manifest(self, count: int | None = None) -> None:
        data = {"format": FORMAT, "settings": self.settings, "crops": count or self.count()}
        data["teacher"] = self.settings["teacher"]
        with atomic_path(self.root / MANIFEST) as tmp:
            tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")

    def name(self, sample_id: int) -> str:
        return f"{sample_id:06d}"

    def done(self, sample_id: int) -> bool:
        return (self.root / "teacher" / f"{self.name(sample_id)}.png").is_file()

    def count(self) -> int:
        return len(list_images(self.root / "teacher")) if (self.root / "teacher").is_dir() else 0

    def write(
        self, sample_id: int, blur: np.ndarray, sharp: np.ndarray | None, teacher: np.ndarray
    ) -> None:
        name = self.name(sample_id)
        items = [("blur", blur), *([("sharp", sharp)] if sharp is not None else [])]
        for folder, pixels in [*items, ("teacher", teacher)]:
            ok, data = cv2.imencode(".png", np.ascontiguousarray(pixels[..., ::-1]))
            if not ok:
                raise OutputError(f"cannot encode {folder}/{name}.png")
            with atomic_path(self.root / folder / f"{name}.png") as tmp:
                tmp.write_bytes(data.tobytes())


def bank_settings(
    sources: Sequence[Source], teacher_provenance: dict[str, Any], crop: int, seed: int
) -> dict[str, Any]:
    return {
        "sources": [s.describe() for s in sources],
        "teacher": teacher_provenance,
        "crop": crop,
        "seed": seed,
    }


def build_bank(
    sources: Sequence[Source],
    teacher: Callable[[torch.Tensor], torch.Tensor],
    out: Path,
    count: int,
    *,
    crop: int = 256,
    seed: int = 0,
    batch: int = 4,
    workers: int = 1,
    teacher_provenance: dict[str, Any] | None = None,
    progress: Callable[[int, bool], None] | None = None,
) -> int:
    """Write crops ``0..count-1`` (skipping finished ones); returns how many were made.

    Crop ``k`` is a pure function of ``(seed, k)`` (:class:`~.data.TrainSet` draws it), so an
    interrupted build resumes with the same crops and a larger ``count`` extends the bank.
    ``progress(made_so_far, was_skipped)`` is called after each crop.
    """
    from torch.utils.data import DataLoader

    from .augment import AugmentConfig
    from .data import TrainSet, guard_loader

    for source in sources:
        if isinstance(source, BlurrySource):
            source.fit = True
    provenance = teacher_provenance or getattr(teacher, "provenance", {})
    writer = BankWriter(out, bank_settings(sources, provenance, crop, seed))
    writer.open()
    todo = [k for k in range(count) if not writer.done(k)]
    for k in range(count):
        if writer.done(k) and progress:
            progress(k, True)
    crops = _Crops(TrainSet(list(sources), crop, AugmentConfig.none(), seed), todo)
    loader = DataLoader(
        crops,
        batch_size=batch,
        num_workers=workers,
        collate_fn=lambda items: items,
        prefetch_factor=2 if workers else None,
        worker_init_fn=_single_threaded if workers else None,
    )
    made = 0
    for items in guard_loader(loader):
        for group in _same_size(items):
            blur = torch.stack([torch.from_numpy(b).permute(2, 0, 1) for _, b, _ in group])
            restored = teacher(blur.float().contiguous(memory_format=torch.channels_last))
            restored = restored.round().clamp_(0, 255).to(torch.uint8)
            for (k, b, s), t in zip(group, restored.permute(0, 2, 3, 1).numpy(), strict=True):
                writer.write(k, b, s, t)
                made += 1
                if progress:
                    progress(k, False)
    writer.write_manifest()
    return made


def _same_size(items: list) -> list[list]:
    """Crops of small photos can be smaller than the rest: one teacher pass per size."""
    groups: dict[tuple[int, ...], list] = {}
    for item in items:
        groups.setdefault(item[1].shape, []).append(item)
    return list(groups.values())


class _Crops(torch.utils.data.Dataset):
    """Bank crops ``ids`` as (id, blurry uint8, sharp uint8 or None)."""

    def __init__(self, train_set: Any, ids: list[int]) -> None:
        self.train_set, self.ids = train_set, ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray, np.ndarray | None]:
        k = self.ids[i]
        blur, sharp, has_truth = self.train_set.raw_sample(k)
        # Copies: the decoded-image cache hands out read-only arrays.
        return k, np.array(as_uint8(blur)), np.array(as_uint8(sharp)) if has_truth else None


def _single_threaded(_worker_id: int) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
