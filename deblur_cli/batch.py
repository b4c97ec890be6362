"""Deblur a whole folder tree: resumable, sharded across ranks, with I/O overlapping the model.

This is the library behind ``deblur batch``. The job list is the sorted relative paths of all
images under the input folder, so every process (one per GPU under ``torchrun``, or one per
``--shard I/N``) computes the same list and takes every N-th file: no coordination needed.
Outputs are written atomically, so "the output exists" means "the output is complete", and a
rerun after a crash or SIGKILL simply skips what is already there.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .batch_plan import BatchSummary, FileResult, Job, failed_result
from .engine import (
    MAX_PER_PASS,
    Deblurrer,
    deblur_array,
    deblur_frames,
    frames_per_batch,
)
from .errors import InputError
from .io.images import ImageInfo, write_image
from .io.sniff import SOFTWARE
from .photos import read_input
from .runtime import yield_to_network

Decoded = tuple[np.ndarray, ImageInfo]


def run_batch(
    model: Deblurrer,
    jobs: list[Job],
    *,
    quality: int = 95,
    png_compression: str = "fast",
    workers: int = 2,
    max_megapixels: float | None = None,
    on_result: Callable[[FileResult], None] | None = None,
) -> BatchSummary:
    """Deblur ``jobs`` in order. Decoding runs ahead and encoding trails behind in worker
    threads (OpenCV and zlib release the GIL), so the model rarely waits for the disk.
    A file that fails is reported through ``on_result`` and the rest carry on."""
    summary = BatchSummary(total=len(jobs))
    workers = max(1, workers)
    start = time.perf_counter()

    def record(result: FileResult) -> None:
        if result.status == "done":
            summary.done += 1
            summary.megapixels += result.megapixels
        else:
            summary.failed.append(result)
        summary.seconds = time.perf_counter() - start
        if on_result:
            on_result(result)

    # I/O threads yield to the network's (runtime.yield_to_network)
    readers = ThreadPoolExecutor(workers, "deblur-read", initializer=yield_to_network)
    writers = ThreadPoolExecutor(workers, "deblur-write", initializer=yield_to_network)
    reads: deque[tuple[Job, Future[Decoded]]] = deque()
    writes: deque[tuple[Job, float, Future[Path]]] = deque()
    pending = iter(jobs)
    read = functools.partial(read_input, max_megapixels=max_megapixels)
    write = functools.partial(write_image, quality=quality, png_compression=png_compression)

    on_gpu = model.device.type == "cuda"
    ahead = workers + (model.frames_per_batch or (MAX_PER_PASS if on_gpu else 1))  # group size

    def refill() -> None:
        while len(reads) < ahead:
            job = next(pending, None)
            if job is None:
                return
            reads.append((job, readers.submit(read, job.src)))

    def drain(limit: int) -> None:
        while writes and (len(writes) > limit or writes[0][2].done()):
            job, mp, future = writes.popleft()
            try:
                future.result()
            except Exception as err:  # one bad file must not stop the batch
                record(failed_result(job, err))
            else:
                record(FileResult(job, "done", megapixels=mp))

    def take() -> tuple[Job, Decoded | None, Exception | None]:
        job, future = reads.popleft()
        refill()
        try:
            return job, future.result(), None
        except Exception as err:  # reported by the caller, then on to the next file
            return job, None, err

    def deblur_group(group: list[tuple[Job, Decoded]]) -> None:
        """Several same-size pictures in one forward pass (a GPU); one by one otherwise,
        and one by one again if the pass fails, so an error names its own file."""
        results: list[np.ndarray | Exception] = []
        if len(group) > 1:
            try:
                results = list(deblur_frames(model, [pixels for _job, (pixels, _info) in group]))
            except Exception:  # noqa: BLE001 - retried file by file just below
                results = []
        if not results:
            for _job, (pixels, _info) in group:
                try:
                    results.append(deblur_array(model, pixels))
                except Exception as err:  # noqa: BLE001 - recorded for its own file
                    results.append(err)
        for (job, (pixels, info)), result in zip(group, results, strict=True):
            if isinstance(result, Exception):
                record(failed_result(job, result))
                continue
            mp = pixels.shape[0] * pixels.shape[1] / 1e6
            marked = dataclasses.replace(info, software=SOFTWARE)  # batch knows its own files
            writes.append((job, mp, writers.submit(write, job.dst, result, marked)))

    try:
        refill()
        held: tuple[Job, Decoded | None, Exception | None] | None = None
        while reads or held:
            job, decoded, err = held or take()
            held = None
            if decoded is None:
                record(failed_result(job, err or InputError(f"{job.src}: not decoded")))
                drain(limit=workers)
                continue
            group = [(job, decoded)]
            pixels = decoded[0]
            per_call = frames_per_batch(model, pixels.shape[0], pixels.shape[1])
            while len(group) < per_call and reads:
                held = take()
                other = held[1]
                same = other is not None and other[0].shape == pixels.shape
                if not same or other[0].dtype != pixels.dtype:
                    break  # a failure or another size: it starts the next group
                group.append((held[0], other))
                held = None
            del pixels, decoded
            deblur_group(group)
            del group
            drain(limit=workers)
        drain(limit=0)
    finally:
        readers.shutdown(wait=True, cancel_futures=True)
        writers.shutdown(wait=True)  # let started writes finish: they are atomic anyway
    summary.seconds = time.perf_counter() - start
    return summary
