"""Where training pairs come from: GOPRO folders, paired folders, or synthesised on the fly.

Every source answers the same three questions: how many items it has, a random training
patch for item *i* given a random generator, and a fixed validation pair for item *i*.
Samples are pure functions of ``(seed, sample id)``, never of hidden global state, so a run
resumed from a checkpoint, or split across DDP processes and DataLoader workers, sees exactly
the pairs an uninterrupted single-process run would have seen.

Layouts recognised by :func:`open_source` (``KIND:PATH`` forces a kind):

* ``gopro``  — ``ROOT/<scene>/{blur_gamma|blur}/*.png`` + ``ROOT/<scene>/sharp/*.png``
  (GOPRO_Large ``train/`` or ``test/``; ``ROOT`` may also be one scene);
* ``pairs``  — ``ROOT/blur/*`` + ``ROOT/sharp/*`` matched by file name (extension ignored);
* ``frames`` — high-frame-rate sequences, ``ROOT/*.png`` or ``ROOT/<sequence>/*.png``:
  7–13 consecutive frames are averaged in linear light, the middle frame is the target;
* ``stills`` — sharp photos, blurred by ``deblur_cli.synth.synth_still`` (camera shake,
  moving segments, highlights, noise...), with ``synth.TRAIN_MIX`` unless told otherwise;
* ``identity`` — sharp photos as their own targets (``train/identity.py``; never guessed);
* ``blurry`` — real blurry photos without ground truth, for a teacher to label
  (``train/bank.py``; never guessed);
* ``bank`` — crops restored by a teacher, ``ROOT/{blur,teacher[,sharp]}/`` (``train/bank.py``).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DeblurError, InputError
from .augment import AugmentConfig, augment_pair, center_crop, random_crop
from .bank import BankSource, BlurrySource, is_bank, open_bank
from .identity import IdentitySource, identity_photos
from .source import (
    DecodedCache,
    Source,
    as_uint8,
    decode_rgb,
    list_images,
    load_rgb,
    spread_split,
)

__all__ = [
    "BankSource",
    "DecodedCache",
    "Source",
    "as_uint8",
    "decode_rgb",
    "list_images",
    "load_rgb",
]

KINDS = ("gopro", "pairs", "frames", "stills", "identity", "blurry", "bank")
BLUR_DIRS = ("blur_gamma", "blur")
FRAMES_MIN, FRAMES_MAX = 7, 13  # GOPRO: 7-13 frames at 240 fps per blurry image
STILL_MARGIN = 64  # extra context around a still crop so blur does not see the crop border


class PairSource(Source):
    """Aligned blurry/sharp files (GOPRO scenes or a paired folder)."""

    def __init__(self, root: Path, pairs: Sequence[tuple[Path, Path]], kind: str) -> None:
        super().__init__(root)
        self.pairs = list(pairs)
        self.kind = kind

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        blur_path, sharp_path = self.pairs[index]
        blur, sharp = load_rgb(blur_path), load_rgb(sharp_path)
        if blur.shape != sharp.shape:
            raise InputError(
                f"{blur_path.name}: blurry {blur.shape[1]}x{blur.shape[0]} and sharp "
                f"{sharp.shape[1]}x{sharp.shape[0]} differ in size"
            )
        return blur, sharp

    def sample(self, index, rng, patch):
        return random_crop(*self._load(index), patch, rng)

    def val_pair(self, index, crop, seed):
        blur, sharp = self._load(index)
        return center_crop(blur, crop), center_crop(sharp, crop)

    def split(self, n_val):
        keep, val = spread_split(self.pairs, n_val)  # GOPRO lists are sorted by scene
        return PairSource(self.root, keep, self.kind), PairSource(self.root, val, self.kind)

    def names(self) -> list[str]:
        return [blur.name for blur, _ in self.pairs]


class FrameSource(Source):
    """High-frame-rate sequences averaged into GOPRO-style blur (``synth.average_frames``)."""

    kind = "frames"

    def __init__(
        self,
        root: Path,
        sequences: Sequence[Sequence[Path]],
        gamma: float | Sequence[float] = 2.2,
        crf: str | os.PathLike | None = None,
        count: tuple[int, int] = (FRAMES_MIN, FRAMES_MAX),
    ) -> None:
        super().__init__(root)
        # Frames per average, drawn per pair: GOPRO's 7-13; more frames = longer exposure,
        # i.e. the larger blur of faster motion than the footage has.
        self.count = (int(count[0]), int(count[1]))
        if not 2 <= self.count[0] <= self.count[1]:
            raise InputError(f"frames per average {count}: need 2 <= A <= B")
        self.sequences = [list(s) for s in sequences if len(s) >= self.count[0]]
        # Several gammas: each pair draws one. Real cameras average in linear light (2.2),
        # but GOPRO's ``blur`` variant and datasets built like it average code values (1.0);
        # a model that saw only one learns a brightness shift on the other. A measured
        # camera response (``crf``, e.g. the GoPro HERO6 table of REDS) replaces the
        # linear-light gammas; gamma 1 (code values) stays, so 1,2.2 + crf mixes the two.
        self.gamma = tuple(gamma) if isinstance(gamma, Sequence) else (float(gamma),)
        self.crf = os.fspath(crf) if crf is not None else None
        if self.crf is not None:
            from ..synth import load_crf  # lazy: synthesis is an optional room

            load_crf(self.crf)  # a bad file fails here, in the main process
            # Each listed gamma other than 1 stands for the CRF (repeats still weight).
            self.gamma = tuple(1.0 if g == 1 else 2.2 for g in self.gamma)
        self._starts = [0]
        for seq in self.sequences:
            self._starts.append(self._starts[-1] + len(seq))

    def __len__(self) -> int:
        return self._starts[-1]

    def _window(self, index: int, n: int) -> list[Path]:
        s = bisect.bisect_right(self._starts, index) - 1
        seq = self.sequences[s]
        n = min(n, len(seq))
        start = min(max(index - self._starts[s] - n // 2, 0), len(seq) - n)
        return seq[start : start + n]

    def _average(self, paths: list[Path], crop, gamma: float) -> tuple[np.ndarray, np.ndarray]:
        from ..synth import average_frames, load_crf  # lazy: synthesis is an optional room

        frames = [crop(load_rgb(p)) for p in paths]
        shapes = {f.shape for f in frames}
        if len(shapes) != 1:
            raise InputError(f"{paths[0].parent}: frames differ in size")
        frames = [as_uint8(f) for f in frames]
        response = load_crf(self.crf) if self.crf is not None and gamma != 1 else None
        return average_frames(frames, gamma=gamma, response=response), frames[len(frames) // 2]

    def sample(self, index, rng, patch):
        n = int(rng.integers(self.count[0], self.count[1] + 1))
        paths = self._window(index, n)
        first = load_rgb(paths[0])
        h, w = first.shape[:2]
        if h < patch or w < patch:
            raise InputError(f"{paths[0]}: {w}x{h} is smaller than the {patch}px patch")
        y, x = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
        # One gamma draws nothing, so single-gamma runs keep their random stream.
        gamma = self.gamma[0]
        if len(self.gamma) > 1:
            gamma = self.gamma[int(rng.integers(len(self.gamma)))]
        return self._average(paths, lambda im: im[y : y + patch, x : x + patch], gamma)

    def describe(self) -> str:
        if self.crf is not None:
            code = "code values or " if 1.0 in self.gamma else ""
            return f"{super().describe()[:-1]}, {code}CRF {Path(self.crf).name})"
        gammas = " or ".join(f"{g:g}" for g in self.gamma)
        return f"{super().describe()[:-1]}, gamma {gammas})"

    def val_gamma(self, index: int) -> float:
        """Validation cycles through the gammas, so every response is measured."""
        return self.gamma[index % len(self.gamma)]

    def val_pair(self, index, crop, seed):
        n = sum(self.count) // 2
        window = self._window(index, n)
        return self._average(window, lambda im: center_crop(im, crop), self.val_gamma(index))

    def split(self, n_val):
        # Validation = the last frames of each sequence: neighbouring frames are nearly
        # identical, so a random split would leak.
        if n_val <= 0 or not self.sequences:
            return self, FrameSource(self.root, [], self.gamma, self.crf, self.count)
        per_seq = -(-n_val // len(self.sequences))
        take = per_seq * self.count[1]
        train, val = [], []
        for seq in self.sequences:
            if len(seq) - take >= self.count[0]:
                train.append(seq[:-take])
                # One validation item per window of the most frames averaged.
                val.append(seq[-take:])
            else:
                train.append(seq)
        val_source = _SparseFrames(self.root, val, self.gamma, self.crf, self.count)
        return FrameSource(self.root, train, self.gamma, self.crf, self.count), val_source


class _SparseFrames(FrameSource):
    """Validation over held-back frames: one item per window of the most frames averaged."""

    def __len__(self) -> int:
        return sum(len(s) // self.count[1] for s in self.sequences)

    def val_pair(self, index, crop, seed):
        gamma = self.val_gamma(index)
        most = self.count[1]
        for seq in self.sequences:
            k = len(seq) // most
            if index < k:
                n = sum(self.count) // 2
                window = seq[index * most : index * most + n]
                return self._average(window, lambda im: center_crop(im, crop), gamma)
            index -= k
        raise IndexError(index)


class StillSource(Source):
    """Sharp photos blurred on the fly by ``synth.synth_still`` (camera-shake trajectories)."""

    kind = "stills"

    def __init__(
        self, root: Path, paths: Sequence[Path], options: dict[str, Any] | None = None
    ) -> None:
        super().__init__(root)
        self.paths = list(paths)
        self.options = dict(options or {})

    def __len__(self) -> int:
        return len(self.paths)

    def describe(self) -> str:
        if not self.options:
            return super().describe()
        shown = ", ".join(f"{k} {_show(v)}" for k, v in self.options.items())
        return f"{super().describe()[:-1]}; {shown})"

    def _synth(self, sharp: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        from ..synth import synth_still  # lazy: synthesis is an optional room

        sharp = as_uint8(sharp)
        try:
            return synth_still(sharp, rng, **self.options)
        except ValueError as err:  # bad options or a photo the generator cannot use
            raise InputError(f"{self.root}: synth_still: {err}") from None

    def sample(self, index, rng, patch):
        image = load_rgb(self.paths[index])
        h, w = image.shape[:2]
        if h < patch or w < patch:
            raise InputError(f"{self.paths[index]}: {w}x{h} is smaller than the {patch}px patch")
        side_h, side_w = min(h, patch + 2 * STILL_MARGIN), min(w, patch + 2 * STILL_MARGIN)
        y, x = int(rng.integers(0, h - side_h + 1)), int(rng.integers(0, w - side_w + 1))
        blur, sharp = self._synth(image[y : y + side_h, x : x + side_w], rng)
        blur, sharp = center_crop(blur, patch, 1), center_crop(sharp, patch, 1)
        if blur.shape[:2] != (patch, patch):
            raise InputError(f"synth_still returned {blur.shape[1]}x{blur.shape[0]} < {patch}px")
        return blur, sharp

    def val_pair(self, index, crop, seed):
        image = load_rgb(self.paths[index])
        region = center_crop(image, crop + 2 * STILL_MARGIN if crop else 0)
        blur, sharp = self._synth(region, np.random.default_rng([seed, 1, index]))
        return center_crop(blur, crop), center_crop(sharp, crop)

    def split(self, n_val):
        keep, val = spread_split(self.paths, n_val)
        return StillSource(self.root, keep, self.options), StillSource(self.root, val, self.options)


def _show(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return "-".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return Path(value).name if isinstance(value, str) else f"{value:g}"


def still_options(synth_options: dict[str, Any] | None) -> dict[str, Any]:
    """The options ``stills:`` renders with (:func:`deblur_cli.synth.with_train_mix`)."""
    from ..synth import with_train_mix

    try:
        return with_train_mix(synth_options or {})
    except ValueError as err:
        raise InputError(f"--synth-opt: {err}") from None


# --------------------------------------------------------------------------- discovery


def _match_by_name(blur_dir: Path, sharp_dir: Path) -> list[tuple[Path, Path]]:
    blurs = list_images(blur_dir)
    sharps = {p.stem: p for p in list_images(sharp_dir)}
    missing = [b.name for b in blurs if b.stem not in sharps]
    if missing:
        raise InputError(
            f"{sharp_dir}: no sharp image for {len(missing)} blurry file(s), e.g. {missing[0]}"
        )
    return [(b, sharps[b.stem]) for b in blurs]


def _scene_blur_dir(scene: Path, blur_dir: str) -> Path | None:
    names = BLUR_DIRS if blur_dir == "auto" else (blur_dir,)
    for name in names:
        if (scene / name).is_dir():
            return scene / name
    return None


def gopro_pairs(root: Path, blur_dir: str = "auto") -> list[tuple[Path, Path]]:
    """Pairs of a GOPRO_Large split (``ROOT/<scene>/...``) or of one scene folder."""
    scenes = (
        [root]
        if (root / "sharp").is_dir()
        else sorted(d for d in root.iterdir() if d.is_dir() and (d / "sharp").is_dir())
    )
    pairs: list[tuple[Path, Path]] = []
    for scene in scenes:
        blur = _scene_blur_dir(scene, blur_dir)
        if blur is None:
            want = " or ".join(BLUR_DIRS) if blur_dir == "auto" else blur_dir
            raise InputError(f"{scene}: no {want}/ folder beside sharp/")
        pairs += _match_by_name(blur, scene / "sharp")
    return pairs


def detect_kind(root: Path) -> str:
    """Guess the layout of a folder (see the module docstring); ``blurry`` is never guessed."""
    if is_bank(root):
        return "bank"
    if (root / "blur").is_dir() and (root / "sharp").is_dir():
        return "pairs"
    subdirs = [d for d in root.iterdir() if d.is_dir()]
    if (root / "sharp").is_dir() or any((d / "sharp").is_dir() for d in subdirs):
        return "gopro"
    if list_images(root):
        return "stills"
    if any(list_images(d) for d in subdirs):
        return "frames"
    raise InputError(f"{root}: no images, blur/+sharp/ pairs or GOPRO scenes found")


def parse_spec(spec: str) -> tuple[str | None, Path]:
    """``KIND:PATH`` or ``PATH`` → (kind or None, path)."""
    kind, sep, rest = spec.partition(":")
    if sep and kind in KINDS:
        return kind, Path(rest)
    return None, Path(spec)


def open_source(
    spec: str,
    blur_dir: str = "auto",
    synth_options: dict[str, Any] | None = None,
    gamma: float | Sequence[float] = 2.2,
    frames_crf: str | os.PathLike | None = None,
    frames_count: tuple[int, int] = (FRAMES_MIN, FRAMES_MAX),
    teacher_share: float = 1.0,
) -> Source:
    """A :class:`Source` for ``[KIND:]PATH``; raises :class:`InputError` with a clear line.

    ``synth_options`` are :class:`deblur_cli.synth.StillOptions` fields for ``stills``
    (over ``synth.TRAIN_MIX``, see :func:`still_options`);
    ``gamma`` (one or several) or ``frames_crf`` (a camera response file), and
    ``frames_count`` (frames per average, drawn in A..B) for ``frames``;
    ``teacher_share`` (the share of crops with ground truth that train on the teacher's
    output instead) for ``bank``.
    """
    kind, root = parse_spec(spec)
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    kind = kind or detect_kind(root)
    if kind == "bank":
        source: Source = open_bank(root, teacher_share)
    elif kind == "blurry":
        source = BlurrySource(root, list_images(root))
    elif kind == "identity":
        source = IdentitySource(root, identity_photos(root))
    elif kind == "pairs":
        source = PairSource(root, _match_by_name(root / "blur", root / "sharp"), kind)
    elif kind == "gopro":
        source = PairSource(root, gopro_pairs(root, blur_dir), kind)
    elif kind == "frames":
        sequences = [list_images(root)] + [
            list_images(d) for d in sorted(root.iterdir()) if d.is_dir()
        ]
        source = FrameSource(root, [s for s in sequences if s], gamma, frames_crf, frames_count)
    else:
        from ..synth import make_options

        options = still_options(synth_options)
        try:
            make_options(**options)
        except (TypeError, ValueError) as err:
            raise InputError(f"--synth-opt: {err}") from None
        source = StillSource(root, list_images(root), options)
    if len(source) == 0:
        raise InputError(f"{root}: no usable {kind} data found")
    return source


# --------------------------------------------------------------------------- datasets


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)


@dataclass
class TrainSet(Dataset):
    """Patches indexed by a global sample id; item ``k`` depends only on ``(seed, k)``.

    Ids run over epochs: epoch ``k // len`` visits every item once in a permutation drawn
    from the seed, so a run sees all data evenly without any sampler state to checkpoint.
    """

    sources: list[Source]
    patch: int = 256
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        self._starts = [0]
        for source in self.sources:
            self._starts.append(self._starts[-1] + len(source))
        if self._starts[-1] == 0:
            raise InputError("no training data")

    def __len__(self) -> int:
        return self._starts[-1]

    def _permutation(self, epoch: int) -> np.ndarray:
        cached = getattr(self, "_perm_cache", None)
        if cached is None or cached[0] != epoch:
            cached = (epoch, np.random.default_rng([self.seed, 2, epoch]).permutation(len(self)))
            self._perm_cache = cached
        return cached[1]

    def locate(self, sample_id: int) -> tuple[Source, int]:
        """The source and item index that sample ``sample_id`` draws from."""
        epoch, pos = divmod(int(sample_id), len(self))
        item = int(self._permutation(epoch)[pos])
        s = bisect.bisect_right(self._starts, item) - 1
        return self.sources[s], item - self._starts[s]

    def _draw(self, sample_id: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator, Source]:
        source, index = self.locate(sample_id)
        rng = np.random.default_rng([self.seed, 0, int(sample_id)])
        blur, sharp = source.sample(index, rng, self.patch)
        return blur, sharp, rng, source

    def raw_sample(self, sample_id: int) -> tuple[np.ndarray, np.ndarray, bool]:
        """Sample ``sample_id`` before augmentation, and whether its target is ground truth."""
        blur, sharp, _, source = self._draw(sample_id)
        return blur, sharp, source.has_truth

    def __getitem__(self, sample_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        blur, sharp, rng, _ = self._draw(sample_id)
        blur, sharp = augment_pair(blur, sharp, rng, self.augment)
        return to_tensor(blur), to_tensor(sharp)


@dataclass
class ValSet(Dataset):
    """Fixed validation pairs (central crops of held-back items), one at a time."""

    sources: list[Source]
    crop: int = 256
    seed: int = 0
    limit: int | None = None

    def __post_init__(self) -> None:
        self.items = [(s, i) for s in self.sources for i in range(len(s))]
        if self.limit is not None:
            self.items = self.items[: self.limit]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        source, i = self.items[index]
        blur, sharp = source.val_pair(i, self.crop, self.seed)
        return to_tensor(blur), to_tensor(sharp)


class StepBatches(torch.utils.data.Sampler):
    """Batch sampler: at step ``s`` this rank takes ids ``s*B + rank*b .. + b`` (B = b*world).

    Starting at ``start_step`` is all that resuming needs, and the union over ranks of one
    step's batches is the same global batch whatever the number of processes.
    """

    def __init__(self, start_step: int, end_step: int, per_rank: int, rank: int, world: int):
        self.start, self.end = start_step, end_step
        self.per_rank, self.rank, self.world = per_rank, rank, world

    def __len__(self) -> int:
        return max(0, self.end - self.start)

    def ids(self, step: int) -> range:
        """The sample ids this rank takes at ``step``."""
        first = (step * self.world + self.rank) * self.per_rank
        return range(first, first + self.per_rank)

    def __iter__(self):
        for step in range(self.start, self.end):
            yield list(self.ids(step))


def one_line(err: BaseException) -> str:
    """DataLoader workers wrap errors in a traceback; users need its last line."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else type(err).__name__
    head, sep, tail = last.partition(": ")
    return tail if sep and "." in head and " " not in head else last


def guard_loader(loader: Iterable) -> Iterator:
    """Re-raise errors from DataLoader workers as one-line DeblurErrors."""
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except DeblurError as err:
            if "Traceback" in str(err):  # raised in a worker: keep only the message
                raise type(err)(one_line(err)) from None
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:
            text = str(err)
            if "DeblurError" in text or "InputError" in text:
                raise InputError(one_line(err)) from None
            raise
        yield batch
