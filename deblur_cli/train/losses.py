"""Training objectives: multi-scale content loss and the official adversarial term.

A loss is written as the official ``--loss`` string, e.g. ``1*L1`` (default),
``1*MSE`` or ``1*L1+0.1*ADV``. Content terms compare every output scale with the Gaussian
pyramid of the sharp image and are **summed** over scales (not averaged), as official;
``ADV`` is BCE-with-logits on the finest output against the official discriminator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import DeblurError
from ..pyramid import gaussian_pyramid

CONTENT_KINDS = {"L1": F.l1_loss, "MSE": F.mse_loss, "L2": F.mse_loss}
TERM = re.compile(r"^\s*(?:([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*\*\s*)?([A-Za-z0-9]+)\s*$")


@dataclass(frozen=True)
class LossSpec:
    """Parsed ``W*KIND+...``: content kind and weight, adversarial weight (0 = none)."""

    content: str = "L1"
    content_weight: float = 1.0
    adv_weight: float = 0.0

    def __str__(self) -> str:
        text = f"{self.content_weight:g}*{self.content}"
        return text + (f"+{self.adv_weight:g}*ADV" if self.adv_weight else "")


def parse_loss(text: str) -> LossSpec:
    """``1*L1+0.1*ADV`` → LossSpec; one content term (L1, MSE or L2), ADV optional."""
    content: tuple[str, float] | None = None
    adv = 0.0
    for term in text.split("+"):
        match = TERM.match(term)
        if not match:
            raise DeblurError(f"bad loss term {term!r} in {text!r} (use e.g. 1*L1+0.1*ADV)")
        weight = float(match.group(1)) if match.group(1) else 1.0
        kind = match.group(2).upper()
        if kind == "ADV":
            adv += weight
        elif kind in CONTENT_KINDS:
            if content is not None:
                raise DeblurError(f"loss {text!r}: give one content term (L1 or MSE)")
            content = ("MSE" if kind == "L2" else kind, weight)
        else:
            raise DeblurError(f"unknown loss {kind!r} in {text!r} (known: L1, MSE, ADV)")
    if content is None:
        raise DeblurError(f"loss {text!r} has no content term (L1 or MSE)")
    return LossSpec(content[0], content[1], adv)


def multiscale_content_loss(
    outputs: list[torch.Tensor], sharp: torch.Tensor, kind: str = "L1"
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Sum over scales of L1/MSE between each output and the sharp image's pyramid level.

    Returns the total and the per-scale terms (finest first) for logging.
    """
    fn = CONTENT_KINDS[kind]
    targets = gaussian_pyramid(sharp.float(), len(outputs))
    terms = [fn(out.float(), target) for out, target in zip(outputs, targets, strict=True)]
    return torch.stack(terms).sum(), terms


def discriminator_loss(logits_fake: torch.Tensor, logits_real: torch.Tensor) -> torch.Tensor:
    """BCE(D(fake), 0) + BCE(D(real), 1), as the official ``Adversarial`` loss."""
    return F.binary_cross_entropy_with_logits(
        logits_fake.float(), torch.zeros_like(logits_fake, dtype=torch.float32)
    ) + F.binary_cross_entropy_with_logits(
        logits_real.float(), torch.ones_like(logits_real, dtype=torch.float32)
    )


def generator_adv_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """BCE(D(G(x)), 1): the generator tries to be called real."""
    return F.binary_cross_entropy_with_logits(
        logits_fake.float(), torch.ones_like(logits_fake, dtype=torch.float32)
    )
