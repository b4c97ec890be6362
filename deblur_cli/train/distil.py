"""Online distillation: the teacher labels the student's own training inputs, step by step.

Consistent function matching (Beyer et al., CVPR 2022): the teacher sees exactly the crop,
flip, colour change and noise that the student sees, so its target is the right answer for
that very input; mixup of two inputs gives the teacher new images to answer for. Which
samples are taught is a pure function of ``(seed, sample id)``, so a resumed run teaches the
same samples as an uninterrupted one.

For a CPU, where the teacher costs more than the student's step, see ``bank.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .teacher import Teacher

# Kinds whose ground truth the teacher replaces (for ``teacher_share`` of their samples).
# Identity pairs are left out by default: the teacher changes sharp photos (35 dB), and
# those pairs exist to teach that sharp content passes unchanged.
TEACH_KINDS = ("frames", "stills", "gopro", "pairs")
ALL_KINDS = ("frames", "stills", "gopro", "pairs", "identity")


def parse_kinds(text: str | Sequence[str]) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in (text.split(",") if isinstance(text, str) else text))
    kinds = tuple(k for k in kinds if k)
    unknown = [k for k in kinds if k not in ALL_KINDS]
    if unknown:
        raise InputError(f"--teacher-on: unknown kind {unknown[0]!r} (use {', '.join(ALL_KINDS)})")
    return kinds


@dataclass
class Teaching:
    """Which samples the teacher labels, and the labelling itself (with optional mixup)."""

    teacher: Teacher
    share: float = 1.0
    kinds: tuple[str, ...] = TEACH_KINDS
    mixup: float = 0.0
    seed: int = 0

    def wants(self, train_set: Any, sample_id: int) -> bool:
        """Does sample ``sample_id`` train on the teacher's output rather than its truth?"""
        source, _ = train_set.locate(sample_id)
        if not source.has_truth:
            return True
        if source.kind not in self.kinds:
            return False
        draw = np.random.default_rng([self.seed, 5, int(sample_id)]).random()
        return bool(draw < self.share)

    def mask(self, train_set: Any, sample_ids: Sequence[int]) -> torch.Tensor:
        return torch.tensor([self.wants(train_set, k) for k in sample_ids], dtype=torch.bool)

    def label(
        self, blur: torch.Tensor, sharp: torch.Tensor, mask: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets with the taught samples' targets from the teacher.

        With ``mixup`` > 0, that share of the taught samples is blended with another taught
        sample of the batch (weight U(0.5, 1) for its own), and the teacher answers for the
        blend: an input no dataset holds.
        """
        idx = mask.nonzero().flatten().to(blur.device)
        if not len(idx):
            return blur, sharp
        blur, sharp = blur.clone(), sharp.clone()
        taught = blur[idx]
        if self.mixup > 0 and len(idx) > 1:
            rng = np.random.default_rng([self.seed, 6, int(step)])
            mixed = rng.random(len(idx)) < self.mixup
            partner = np.roll(np.arange(len(idx)), 1)
            weight = rng.uniform(0.5, 1.0, len(idx))
            w = torch.tensor(np.where(mixed, weight, 1.0), dtype=taught.dtype)
            w = w.to(taught.device).view(-1, 1, 1, 1)
            taught = w * taught + (1 - w) * taught[torch.as_tensor(partner)]
            blur[idx] = taught
        sharp[idx] = self.teacher(taught).to(sharp.dtype)
        return blur, sharp


def check_truth(sources: Sequence[Any], teaching: Teaching | None) -> None:
    """``blurry:`` data has no target without a teacher: say so before any training."""
    if teaching is None:
        for source in sources:
            if not source.has_truth:
                raise InputError(
                    f"{source.kind}:{source.root} has no ground truth: give --teacher SPEC, "
                    "or build a bank with 'deblur synth teach' and train on bank:DIR"
                )


def distilled_from(sources: Sequence[Any], teaching: Teaching | None) -> list[dict[str, Any]]:
    """Provenance of every teacher whose outputs the run trained on (weights metadata)."""
    found: list[dict[str, Any]] = []
    if teaching is not None:
        found.append({**teaching.teacher.provenance, "how": "online"})
    for source in sources:
        if getattr(source, "kind", "") == "bank" and source.teacher:
            entry = {**source.teacher, "how": f"bank {source.root.name}"}
            if entry not in found:
                found.append(entry)
    return found
