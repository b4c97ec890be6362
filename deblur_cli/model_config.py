"""What a network is, without torch: its configuration and the named ones.

Kept apart from :mod:`deblur_cli.model` so the registry (``deblur weights list``) and
argument checks can describe networks without importing torch (seconds at start-up).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

ARCHITECTURE = "deepdeblur-msresnet"


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build the network; stored as JSON in every weight file."""

    n_scales: int = 3
    n_resblocks: int = 19
    n_feats: int = 64
    kernel_size: int = 5
    # Add each scale's blurry input to its output, so the network learns only the
    # correction. Not in the paper (official checkpoints: False); a small network on a CPU
    # training budget starts at "no harm" instead of having to learn the identity first.
    residual: bool = False

    def to_dict(self) -> dict[str, int | bool]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{k: bool(v) if k == "residual" else int(v) for k, v in known.items()})

    def summary(self) -> str:
        """One line for logs and tables, e.g. ``3 scales, 9 blocks, 32 feats, 3x3, residual``."""
        text = (
            f"{self.n_scales} scales, {self.n_resblocks} blocks, {self.n_feats} feats, "
            f"{self.kernel_size}x{self.kernel_size}"
        )
        return text + (", residual" if self.residual else "")

    @classmethod
    def parse(cls, text: str) -> ModelConfig:
        """A name from :data:`CONFIGS` or ``SCALES,BLOCKS,FEATS,KERNEL[,res]`` (``3,9,32,3``)."""
        if text in CONFIGS:
            return CONFIGS[text]
        parts = [part.strip() for part in text.split(",")]
        residual = parts[-1] == "res"
        try:
            values = [int(v) for v in parts[: -1 if residual else None]]
        except ValueError:
            values = []
        if len(values) != 4:
            names = ", ".join(CONFIGS)
            raise ValueError(f"{text!r}: use {names} or SCALES,BLOCKS,FEATS,KERNEL[,res]")
        if min(values) < 1 or values[3] % 2 == 0:
            raise ValueError("need 4 positive integers and an odd kernel size")
        return cls(*values, residual=residual)

    @property
    def size_multiple(self) -> int:
        """Input sides must divide by this so every PixelShuffle output lines up."""
        return 2 ** (self.n_scales - 1)


# Named configurations (timm-style): the paper network and the light CPU default. Light has
# 7 ResBlocks per scale: at 9 it took 0.54 s per 720p frame on a 2-core CPU (bf16), over the
# 0.5 s budget, and fine-tuned 7- and 9-block nets scored the same (benchmarks, issue #7).
CONFIGS: dict[str, ModelConfig] = {
    "paper": ModelConfig(3, 19, 64, 5),
    "light": ModelConfig(3, 7, 32, 3, residual=True),
}
