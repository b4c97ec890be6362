"""Building a bank of teacher targets (see ``bank.py`` for what a bank is and how it trains).

Crop ``k`` is drawn by :class:`~.data.TrainSet` from ``(seed, k)``, so a build resumes with
the same crops and a larger count extends it; a DataLoader worker draws crops while the
teacher runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader

from ..atomic import atomic_path
from ..errors import OutputError
from .augment import AugmentConfig
from .bank import MANIFEST, BlurrySource, read_manifest
from .data import TrainSet, guard_loader
from .source import Source, as_uint8, list_images

FORMAT = "deblur-bank/1"
FOLDERS = ("blur", "sharp", "teacher")


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

    def write_manifest(self) -> None:
        data = {"format": FORMAT, "settings": self.settings, "crops": self.count()}
        data["teacher"] = self.settings["teacher"]  # where BankSource looks for it
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
    for source in sources:
        if isinstance(source, BlurrySource):
            source.fit = True
    provenance = teacher_provenance or getattr(teacher, "provenance", {})
    writer = BankWriter(out, bank_settings(sources, provenance, crop, seed))
    writer.open()
    todo = []
    for k in range(count):
        if not writer.done(k):
            todo.append(k)
        elif progress:
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
