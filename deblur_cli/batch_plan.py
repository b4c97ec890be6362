"""What ``deblur batch`` (and ``deblur image`` with several files) will do, without torch.

Sharding, the job list, output checks, stale temporaries and the per-file results are plain
file-system work: they live here so every refusal happens before numpy, OpenCV or torch load
(:mod:`deblur_cli.batch` runs the jobs).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from .errors import DeblurError, InputError, OutputError
from .io.sniff import IMAGE_EXTENSIONS
from .outputs import check_unique_outputs, check_writable, is_own_output, with_format

TMP_MARK = ".tmp"  # atomic_path names temporaries ".STEM.RANDOM.tmpSUFFIX"


# --------------------------------------------------------------------------- sharding


@dataclass(frozen=True)
class Shard:
    """This process's share of the files: every ``count``-th one starting at ``index``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise DeblurError(f"invalid shard {self.index}/{self.count} (need 0 <= I < N)")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def take(self, items: list) -> list:
        return items[self.index :: self.count]


def parse_shard(text: str) -> Shard:
    """``"I/N"`` (0-based I) → :class:`Shard`; one clear error for anything else."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise DeblurError(f"--shard expects I/N, e.g. 0/4, not {text!r}") from None
    return Shard(index, count)


def shard_from_env(env: Mapping[str, str] | None = None) -> Shard | None:
    """The shard torchrun (or any launcher setting RANK and WORLD_SIZE) gave this process."""
    env = os.environ if env is None else env
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    try:
        return Shard(int(env["RANK"]), int(env["WORLD_SIZE"]))
    except ValueError:
        raise DeblurError("RANK and WORLD_SIZE must be integers") from None


def rank_device(device: str, env: Mapping[str, str] | None = None) -> str:
    """Under torchrun each rank takes its own GPU: ``auto`` becomes ``cuda:LOCAL_RANK``."""
    env = os.environ if env is None else env
    if device != "auto" or "LOCAL_RANK" not in env:
        return device
    import torch

    if not torch.cuda.is_available():
        return device
    return f"cuda:{int(env['LOCAL_RANK']) % torch.cuda.device_count()}"


def join_ranks(env: Mapping[str, str] | None = None) -> None:
    """Under torchrun, wait until every rank has finished its shard.

    torchrun stops all ranks as soon as one exits non-zero, so a rank that had a bad file
    would otherwise kill the others half way. Joining the process group is itself a
    rendezvous of all ranks; best effort (any failure to join is ignored).
    """
    env = os.environ if env is None else env
    if int(env.get("WORLD_SIZE", "1") or 1) < 2 or "MASTER_ADDR" not in env:
        return
    try:
        import torch.distributed as dist

        if not dist.is_available():
            return
        if not dist.is_initialized():
            dist.init_process_group("gloo", timeout=timedelta(days=7))
        dist.barrier()
        dist.destroy_process_group()
    except Exception:  # a missing peer must not turn a finished shard into a failure
        return


# --------------------------------------------------------------------------- the job list


@dataclass(frozen=True)
class Job:
    src: Path
    dst: Path


def find_images(root: Path, exclude: Path | None = None) -> list[Path]:
    """Image files under ``root``, sorted by relative path (the same list on every rank).

    Hidden files and folders are skipped (they include our own temporaries), symlinked
    folders are not followed (no cycles), and ``exclude`` (an output folder inside the input
    folder) is left out so a rerun never deblurs its own results.
    """
    if not root.exists():
        raise InputError(f"{root}: no such folder")
    if not root.is_dir():
        raise InputError(f"{root}: is a file, not a folder (use 'deblur image' for files)")
    skip = exclude.resolve() if exclude is not None else None
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, onerror=None, followlinks=False):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != skip)
        found += [
            here / f
            for f in files
            if not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS
        ]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def plan_batch(
    root: str | os.PathLike,
    out_root: str | os.PathLike,
    *,
    shard: Shard | None = None,
    output_format: str = "keep",
    include_deblurred: bool = False,
    left_out: list[Path] | None = None,
) -> list[Job]:
    """This shard's (input, output) pairs; the output tree mirrors the input tree, and
    ``output_format`` (keep | png | jpg | webp | tif) picks the outputs' suffix.

    Pictures deblur wrote itself (``*_deblurred.*`` names, or its mark in their metadata:
    ``outputs.is_own_output``) are not inputs unless ``include_deblurred``; they are
    appended to ``left_out`` when it is given."""
    root, out_root = Path(root), Path(out_root)
    if out_root.exists() and not out_root.is_dir():
        raise OutputError(f"{out_root}: exists and is not a folder")
    if root.exists() and root.resolve().is_relative_to(out_root.resolve()):
        raise OutputError(
            f"{out_root}: is or contains the input folder {root}; outputs could replace "
            "inputs, choose a folder outside it"
        )
    found = find_images(root, exclude=out_root)
    sources = found if include_deblurred else [p for p in found if not is_own_output(p)]
    if left_out is not None:
        kept = set(sources)
        left_out += [p for p in found if p not in kept]
    if not sources:
        why = " but deblur's own outputs (--include-deblurred takes them)" if found else ""
        raise InputError(f"{root}: no images found{why} ({', '.join(IMAGE_EXTENSIONS)})")
    jobs = [
        Job(src, with_format(out_root / src.relative_to(root), output_format)) for src in sources
    ]
    check_unique_outputs((job.src, job.dst) for job in jobs)
    return (shard or Shard()).take(jobs)


def check_output_root(out_root: str | os.PathLike) -> None:
    """The output folder (or the nearest existing folder above it) takes new files: checked
    before the model loads, so a read-only destination costs nothing."""
    check_writable([Path(out_root) / "any-output"])


def _temp_target(tmp: Path) -> Path | None:
    """The output an abandoned ``.STEM.RANDOM.tmpSUFFIX`` temporary was meant to become."""
    name = tmp.name
    if not name.startswith(".") or TMP_MARK not in name:
        return None
    head, _, suffix = name[1:].rpartition(TMP_MARK)
    stem, dot, _random = head.rpartition(".")
    if not dot or not stem:
        return None
    return tmp.with_name(stem + suffix)


def remove_stale_temporaries(jobs: list[Job]) -> int:
    """Delete temporaries a killed run left beside *this shard's* outputs (other ranks may be
    writing theirs right now, so only our own targets are touched)."""
    targets = {job.dst for job in jobs}
    removed = 0
    for folder in {job.dst.parent for job in jobs}:
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if _temp_target(entry) in targets:
                with contextlib.suppress(OSError):
                    entry.unlink()
                    removed += 1
    return removed


# --------------------------------------------------------------------------- running


@dataclass
class FileResult:
    """What happened to one file; ``error`` is the one-line message when it failed."""

    job: Job
    status: str  # "done" | "failed"
    megapixels: float = 0.0
    error: str | None = None
    exit_code: int = 0  # the code this failure alone would exit with (2 input, 3 output...)


@dataclass
class BatchSummary:
    total: int = 0
    skipped: int = 0
    done: int = 0
    failed: list[FileResult] = field(default_factory=list)
    megapixels: float = 0.0
    seconds: float = 0.0

    @property
    def images_per_s(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def megapixels_per_s(self) -> float:
        return self.megapixels / self.seconds if self.seconds > 0 else 0.0

    def failure(self) -> DeblurError | None:
        """The error to exit with when files failed: their common exit code (2 when every
        failure was a bad input), else 1."""
        if not self.failed:
            return None
        rest = "the others were written" if self.done else "nothing was written"
        err = DeblurError(
            f"{len(self.failed)} of {self.total} file(s) failed (listed above); {rest}"
        )
        codes = {result.exit_code for result in self.failed}
        err.exit_code = codes.pop() if len(codes) == 1 and 0 not in codes else 1
        return err


def split_done(jobs: list[Job], force: bool = False) -> tuple[list[Job], list[Job]]:
    """(to do, already done): an existing output is complete because writes are atomic."""
    if force:
        return list(jobs), []
    todo = [job for job in jobs if not job.dst.exists()]
    done = [job for job in jobs if job.dst.exists()]
    return todo, done


def _exit_code(err: BaseException) -> int:
    if isinstance(err, DeblurError):
        return err.exit_code
    return 5 if isinstance(err, MemoryError) else 1


def failed_result(job: Job, err: BaseException) -> FileResult:
    """How ``err`` is reported for ``job``: one line naming the file, and its exit code."""
    return FileResult(job, "failed", error=_message(err, job), exit_code=_exit_code(err))


def _message(err: BaseException, job: Job) -> str:
    if isinstance(err, DeblurError):
        text = str(err)
        return text if str(job.src) in text or str(job.dst) in text else f"{job.src}: {text}"
    if isinstance(err, MemoryError):
        return f"{job.src}: out of memory"
    detail = " ".join(str(err).split()) or type(err).__name__
    return f"{job.src}: {detail}"
