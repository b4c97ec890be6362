"""Identity pairs: a sharp photo in, the same photo out.

A network trained only on blurry→sharp pairs never sees an input that should be left
alone, so it applies what it learnt about blur (above all the mean darkening of synthetic
blur, which is brighter than its sharp target) to sharp photos too. Identity pairs teach it
that sharp content passes through unchanged. The input carries what a real sharp photo
carries — mild sensor noise and JPEG — so the network does not learn that "clean" means
"leave alone" and "noisy" means "blurry"; the target is the photo itself.

``identity:DIR`` reads the images of DIR (or of ``DIR/sharp``); ``--identity-fraction F``
sizes these sources so that about F of the training samples are identity pairs, whatever
the number of photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from .augment import center_crop, random_crop
from .source import Source, as_uint8, list_images, load_rgb, spread_split

JPEG_QUALITY = (80, 98)  # everyday cameras and phones save at 80-98
JPEG_CHANCE = 0.5
NOISE_CHANCE = 0.5
NOISE_MAX = 2.0  # grey levels of std at mid-grey: mild, like a daylight photo


def degrade(sharp: np.ndarray, rng: np.random.Generator, always: bool = False) -> np.ndarray:
    """A sharp uint8 photo as a camera might have saved it: mild shot/read noise, then JPEG.

    Every random number is drawn whether or not it is used, so one switch does not change
    the others. Noise is signal-dependent (photon noise grows with brightness) and added in
    code values; it has zero mean, so it does not shift the tone. ``always`` applies both
    (validation pairs, whose PSNR must stay finite).
    """
    use_noise, use_jpeg = (rng.random(2) < (NOISE_CHANCE, JPEG_CHANCE)) | always
    level = rng.uniform(0.0, NOISE_MAX)
    read_share = rng.uniform(0.1, 0.5)
    quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    noise = rng.standard_normal(sharp.shape, dtype=np.float32)
    out = sharp
    if use_noise:
        signal = sharp.astype(np.float32) / 255.0
        # variance = read + shot * signal, scaled so the std at mid-grey is ``level``
        var = level**2 * (read_share + (1.0 - read_share) * signal / 0.5)
        noisy = sharp.astype(np.float32) + np.sqrt(var) * noise
        out = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    if use_jpeg:
        from ..synth.stills import jpeg_roundtrip  # lazy: synthesis is an optional room

        out = jpeg_roundtrip(out, quality)
    return out


def identity_photos(root: Path) -> list[Path]:
    """The photos of ``identity:DIR``: DIR's images, or those of DIR/sharp (a pairs folder)."""
    folder = root / "sharp" if (root / "sharp").is_dir() else root
    return list_images(folder)


def size_identity(sources: Sequence, fraction: float) -> None:
    """Give the identity sources a length so that they make ``fraction`` of all items.

    TrainSet draws every item once per epoch, so item counts are sampling weights. With
    ``fraction`` 0 the identity sources keep one item per photo.
    """
    if not 0.0 <= fraction < 1.0:
        raise InputError(f"--identity-fraction must be in [0, 1), got {fraction}")
    ident = [s for s in sources if s.kind == "identity"]
    if fraction == 0.0:
        return
    if not ident:
        raise InputError("--identity-fraction needs identity:DIR data (a folder of sharp photos)")
    others = sum(len(s) for s in sources if s.kind != "identity")
    if others == 0:
        return
    wanted = max(1, round(fraction / (1.0 - fraction) * others))
    photos = sum(s.photo_count for s in ident)
    for s in ident:
        s.length = max(1, round(wanted * s.photo_count / photos))


class IdentitySource(Source):
    """Sharp photos as their own targets, the input mildly noisy and JPEG'd (see module)."""

    kind = "identity"

    def __init__(self, root: Path, paths: Sequence[Path], length: int | None = None) -> None:
        super().__init__(root)
        self.paths = list(paths)
        self.length = len(self.paths) if length is None else length

    @property
    def photo_count(self) -> int:
        return len(self.paths)

    def __len__(self) -> int:
        return self.length if self.paths else 0

    def _photo(self, index: int) -> np.ndarray:
        return as_uint8(load_rgb(self.paths[index % len(self.paths)]))

    def sample(self, index, rng, patch):
        photo = self._photo(index)
        h, w = photo.shape[:2]
        if h < patch or w < patch:
            path = self.paths[index % len(self.paths)]
            raise InputError(f"{path}: {w}x{h} is smaller than the {patch}px patch")
        _, sharp = random_crop(photo, photo, patch, rng)
        return degrade(sharp, rng), sharp

    def val_pair(self, index, crop, seed):
        target = center_crop(self._photo(index), crop)
        return degrade(target, np.random.default_rng([seed, 3, index]), always=True), target

    def split(self, n_val):
        keep, val = spread_split(self.paths, n_val)
        return IdentitySource(self.root, keep), IdentitySource(self.root, val)

    def describe(self) -> str:
        return f"identity:{self.root} ({self.photo_count} photos, {len(self)} items)"
