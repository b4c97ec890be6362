"""File-to-file generation behind ``deblur synth``: plans, resume and per-pair seeds.

Kept out of the CLI so scripts can write datasets the same way; the callbacks let the CLI
draw progress without this module knowing about terminals.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..io.images import read_image
from .frames import FrameSource, Window, average_frames, frame_windows, list_images, plan_windows
from .frames import to_rgb8 as to_rgb8
from .layout import SceneWriter
from .response import Response
from .stills import StillOptions, render_still

Progress = Callable[[str, bool], None]  # (pair name, was it skipped) after each pair


@dataclass
class FramesJob:
    """One frames folder or video → one scene."""

    source: FrameSource
    writer: SceneWriter
    sizes: tuple[int, int]
    gap: int
    seed: int
    response: Response
    plain: bool
    max_pairs: int | None = None

    def windows(self) -> Iterator[Window]:
        planned = plan_windows(self.sizes, self.seed, self.gap)
        for i, window in enumerate(planned):
            if self.max_pairs is not None and i >= self.max_pairs:
                return
            yield window

    def expected(self) -> int | None:
        """How many pairs this source will give, when its length is known."""
        total = self.source.count
        if total is None:
            return self.max_pairs
        n = 0
        for window in self.windows():
            if window.stop > total:
                break
            n += 1
        return n

    def run(self, progress: Progress | None = None) -> list[dict]:
        self.writer.open()
        records = []
        for window, frames in frame_windows(self.source, self.windows(), self.writer.done):
            if frames is not None:
                blur_gamma = average_frames(frames, response=self.response)
                blur = average_frames(frames, gamma=1.0) if self.plain else None
                self.writer.write(window.name, frames[window.size // 2], blur_gamma, blur)
            records.append(
                {
                    "name": window.name,
                    "frames": [self.source.frame_name(i) for i in range(window.start, window.stop)],
                    "sharp": self.source.frame_name(window.middle),
                }
            )
            if progress:
                progress(window.name, frames is None)
        if not records:
            raise InputError(f"{self.source.path}: fewer frames than one window of {self.sizes[0]}")
        self.writer.finish(records)
        return records


def response_settings(response: Response) -> dict:
    if response.gamma is not None:
        return {"gamma": response.gamma}
    digest = hashlib.sha256(np.ascontiguousarray(response.table).tobytes()).hexdigest()
    return {"crf_sha256": digest[:16]}


@dataclass
class StillItem:
    """One source photo, the scene it goes to and its first pair number there."""

    path: Path
    scene: str
    index: int  # 0-based position within the scene


def plan_stills(
    inputs: list[Path], scene: str | None = None, exclude: Path | None = None
) -> list[StillItem]:
    """Photos → scenes: a folder's own photos form a scene named after it, each subfolder
    its own; single files go to a scene named after their folder; ``scene`` overrides."""
    groups: dict[str, list[Path]] = {}
    for path in inputs:
        if path.is_dir():
            for file in list_images(path, recursive=True):
                if exclude is not None and _inside(file, exclude):
                    continue
                parts = file.relative_to(path).parent.parts
                name = scene or ("_".join(parts) if parts else path.resolve().name)
                groups.setdefault(name, []).append(file)
        elif path.is_file():
            groups.setdefault(scene or path.resolve().parent.name, []).append(path)
        else:
            raise InputError(f"{path}: no such file or folder")
    items = []
    for name, files in groups.items():
        seen = set()
        for file in files:
            if file.resolve() in seen:
                continue
            seen.add(file.resolve())
            items.append(StillItem(file, name, len(seen) - 1))
    if not items:
        raise InputError("no photos found in the inputs")
    return items


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def load_photo(path: Path, max_side: int | None) -> np.ndarray:
    pixels, _ = read_image(path)
    rgb = to_rgb8(pixels)
    if max_side and max(rgb.shape[:2]) > max_side:
        scale = max_side / max(rgb.shape[:2])
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return rgb


def pair_rng(seed: int, scene: str, number: int) -> np.random.Generator:
    """Each pair's randomness depends only on (seed, scene, number): resume-safe."""
    return np.random.default_rng([seed, zlib.crc32(scene.encode("utf-8")), number])


@dataclass
class StillsJob:
    """Photos → pairs in one or more scenes."""

    items: list[StillItem]
    out: Path
    options: StillOptions
    seed: int
    per_image: int = 1
    max_side: int | None = None
    extra: dict = field(default_factory=dict)
    # Processes rendering photos at once (0: one per core). Not a setting: each pair's
    # randomness depends only on (seed, scene, number), so any count writes the same files.
    workers: int = 1

    def settings(self) -> dict:
        opts = asdict(self.options)
        opts.pop("object_sources")
        for key, value in opts.items():
            if isinstance(value, tuple):
                opts[key] = list(value)
        return {
            "seed": self.seed,
            "per_image": self.per_image,
            "max_side": self.max_side,
            **opts,
            **self.extra,
        }

    def names(self, item: StillItem) -> list[str]:
        first = item.index * self.per_image
        return [f"{first + k + 1:06d}" for k in range(self.per_image)]

    def expected(self) -> int:
        return len(self.items) * self.per_image

    def writers(self) -> dict[str, SceneWriter]:
        scenes = dict.fromkeys(item.scene for item in self.items)
        return {s: SceneWriter(self.out / s, "stills", self.settings()) for s in scenes}

    def run(self, progress: Progress | None = None) -> dict[str, list[dict]]:
        writers = self.writers()
        for writer in writers.values():
            writer.open()
        plans = []
        for item in self.items:
            names = self.names(item)
            writer = writers[item.scene]
            plans.append((item, names, [n for n in names if not writer.done(n)]))

        def report(item: StillItem, names: list[str], todo: list[str]) -> None:
            if progress:
                for name in names:
                    progress(name, name not in todo)

        workers = min(self.workers or os.cpu_count() or 1, sum(1 for p in plans if p[2]))
        if workers > 1:
            self._run_in_processes(plans, writers, workers, report)
        else:
            for item, names, todo in plans:
                self._make_item(item, todo, writers[item.scene])
                report(item, names, todo)
        records: dict[str, list[dict]] = {s: [] for s in writers}
        for item, names, _ in plans:
            source = os.fspath(item.path)
            records[item.scene] += [{"name": name, "source": source} for name in names]
        for scene, writer in writers.items():
            writer.finish(records[scene])
        return records

    def _run_in_processes(
        self, plans: list, writers: dict[str, SceneWriter], workers: int, report: Callable
    ) -> None:
        """Photos rendered in ``workers`` processes; progress as each photo finishes. The
        first error cancels what has not started, and is raised as it is."""
        context = multiprocessing.get_context("spawn")  # no forked copies of parent threads
        with ProcessPoolExecutor(workers, context, _worker_init, (self, writers)) as pool:
            pending = {}
            for index, (item, names, todo) in enumerate(plans):
                if todo:
                    pending[pool.submit(_worker_make_item, index, todo)] = (item, names, todo)
                else:
                    report(item, names, todo)
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()
                        report(*pending.pop(future))
            except BaseException:
                for future in pending:
                    future.cancel()
                raise

    def _make_item(self, item: StillItem, todo: list[str], writer: SceneWriter) -> None:
        if todo:
            photo = load_photo(item.path, self.max_side)
            for name in todo:
                self._make(photo, item, name, writer)

    def _make(self, photo: np.ndarray, item: StillItem, name: str, writer: SceneWriter) -> None:
        rng = pair_rng(self.seed, item.scene, int(name))
        opts = self.options
        if opts.objects and not opts.object_sources and len(self.items) > 1:
            others = [i.path for i in self.items if i.path != item.path]
            picks = rng.choice(len(others), size=min(opts.objects, len(others)), replace=False)
            sources = [load_photo(others[int(i)], self.max_side) for i in picks]
            opts = StillOptions(**{**_shallow(opts), "object_sources": sources})
        try:
            pair = render_still(photo, rng, opts)
        except ValueError as err:
            raise InputError(f"{item.path}: {err}") from None
        writer.write(name, pair.sharp, pair.blurry)


def _shallow(opts: StillOptions) -> dict:
    return {name: getattr(opts, name) for name in opts.__dataclass_fields__}


# Per worker process: the job and its scene writers, set once by the pool's initializer.
_WORKER_JOB: tuple[StillsJob, dict[str, SceneWriter]] | None = None


def _worker_init(job: StillsJob, writers: dict[str, SceneWriter]) -> None:
    global _WORKER_JOB
    _WORKER_JOB = (job, writers)
    cv2.setNumThreads(1)  # the processes are the parallelism


def _worker_make_item(index: int, todo: list[str]) -> None:
    job, writers = _WORKER_JOB
    item = job.items[index]
    job._make_item(item, todo, writers[item.scene])
