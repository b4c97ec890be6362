"""What every training source is, and the decoded-image cache they share.

A :class:`Source` answers three questions: how many items it has, a random training patch
for item *i* given a random generator, and a fixed validation pair for item *i*. The kinds
live beside it (``data.py``: pairs, frames, stills; ``identity.py``; ``bank.py``: teacher
targets and blurry photos without ground truth); this module imports none of them.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..io.images import IMAGE_EXTENSIONS, read_image


def list_images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


class DecodedCache:
    """Decoded images kept in memory, least recently used dropped first.

    A ``frames:`` sample decodes 7-13 full frames for one small patch, and a ``stills:``
    sample a whole photo for a 256 px crop: without this, decoding took more CPU than the
    network's training step. Each DataLoader worker holds its own cache. The budget comes
    from ``$DEBLUR_DECODE_CACHE_MB`` (default 1024 MB per process; 0 switches it off).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[Path, np.ndarray] = OrderedDict()

    def get(self, path: Path) -> np.ndarray:
        hit = self._items.get(path)
        if hit is not None:
            self._items.move_to_end(path)
            return hit
        pixels = decode_rgb(path)
        if self.max_bytes <= 0 or pixels.nbytes > self.max_bytes:
            return pixels
        pixels.flags.writeable = False  # shared by later samples: nobody may edit it
        self._items[path] = pixels
        self.bytes += pixels.nbytes
        while self.bytes > self.max_bytes:
            _, dropped = self._items.popitem(last=False)
            self.bytes -= dropped.nbytes
        return pixels


_DECODED = DecodedCache(int(float(os.environ.get("DEBLUR_DECODE_CACHE_MB", "1024")) * 2**20))


def load_rgb(path: Path) -> np.ndarray:
    """Any image we can read → HxWx3 in 0..255, read-only, cached (see DecodedCache)."""
    return _DECODED.get(Path(path))


def decode_rgb(path: Path) -> np.ndarray:
    """Any image we can read → HxWx3 in 0..255 (uint8, or float32 for 16-bit/float files)."""
    pixels, _ = read_image(path)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    pixels = pixels[..., :3]
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) * np.float32(255.0 / 65535.0)
    return pixels.astype(np.float32) * np.float32(255.0)


def as_uint8(pixels: np.ndarray) -> np.ndarray:
    """decode_rgb's output (uint8, or float 0..255 from 16-bit/float files) as uint8 codes.

    uint8 passes through untouched: np.rint on uint8 makes float16 copies, and that used to be
    three quarters of a ``frames:`` sample's time.
    """
    if pixels.dtype == np.uint8:
        return pixels
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- sources


class Source:
    """A set of items that can each give a training patch and a validation pair."""

    kind = ""
    has_truth = True  # False: the target must come from a teacher (``blurry:``)

    def __init__(self, root: Path) -> None:
        self.root = root

    def __len__(self) -> int:
        raise NotImplementedError

    def sample(
        self, index: int, rng: np.random.Generator, patch: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """A random ``patch``² blurry/sharp crop of item ``index``."""
        raise NotImplementedError

    def val_pair(self, index: int, crop: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """A fixed pair for item ``index``: the same every call (central crop, 0 = whole)."""
        raise NotImplementedError

    def split(self, n_val: int) -> tuple[Source, Source]:
        """Hold back about ``n_val`` items for validation: (train, val)."""
        raise NotImplementedError

    def describe(self) -> str:
        return f"{self.kind}:{self.root} ({len(self)} items)"

    def fixed_crops(
        self, count: int, patch: int, seed: int, first: int = 0, stop: int | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """``count`` training patches, the same on every call: crop k takes its item from
        ``first..stop-1`` and its patch from the generator (seed, k). Scoring scripts put
        identical crops through every network they compare."""
        stop = len(self) if stop is None else stop
        crops = []
        for k in range(count):
            rng = np.random.default_rng([seed, k])
            blur, sharp = self.sample(int(rng.integers(first, stop)), rng, patch)
            crops.append((np.ascontiguousarray(blur), sharp))
        return crops


def spread_split(items: list, n_val: int) -> tuple[list, list]:
    """Every k-th item held back (at most half), not the last ones: lists are sorted by
    scene or name, and a validation set from one end of them would say little."""
    n_val = min(n_val, len(items) // 2)
    if n_val <= 0:
        return list(items), []
    step = len(items) / n_val
    held = {int(i * step + step / 2) for i in range(n_val)}
    return (
        [x for i, x in enumerate(items) if i not in held],
        [x for i, x in enumerate(items) if i in held],
    )
