"""What an earlier run left behind, and whether this run may carry it on.

Re-running the same command resumes (as ``batch``, ``train`` and ``synth`` do): a video's
finished segments live in a parts folder beside the output with a manifest; PNG frames carry
a small key file in their folder. Both record the run's *key* (input, range, encoder, model),
and work made under another key is never mixed into this run's output: it is refused with a
line that names what changed, and ``force`` (``--force``) starts over.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..atomic import atomic_path
from ..errors import DeblurError

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
FRAMES_KEY = ".deblur_frames.json"  # beside exported PNG frames: the key they were made with


class ResumeConflict(DeblurError):
    """Finished work of a run with other settings is where this run would write."""

    exit_code = 2


# How the fields of a run's key read to someone who typed the command.
KEY_NAMES = {
    "codec": "--codec",
    "crf": "--crf",
    "preset": "--preset",
    "pix_fmt": "--pix-fmt",
    "start": "--start",
    "end": "--end",
    "segment_frames": "frames per segment (--segment)",
    "format": "container",
    "weights": "model",
    "file": "weights file",
    "tile": "--tile",
    "overlap": "--overlap",
}


@dataclass
class Manifest:
    """The parts folder's record: what job it belongs to and which segments are finished."""

    key: dict[str, Any]
    offset_pts: int | None = None
    segments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(s["frames"] for s in self.segments)

    def describe(self, seconds: float | None = None) -> str:
        """``3 finished segments (frames 0–359)``, with ``seconds`` ``(frames 0–359, 12.0 s
        of video)``: what a resumed run reuses."""
        n = len(self.segments)
        span = f", {seconds:.1f} s of video" if seconds is not None else ""
        return f"{n} finished segment{'s' if n != 1 else ''} (frames 0–{self.frames - 1}{span})"

    def seconds(self, time_base: Fraction, rate: Fraction) -> float:
        """How much of the output the finished segments hold: from the first frame to the
        end of the last one (its timestamp plus one frame at the nominal rate)."""
        if not self.segments or self.offset_pts is None:
            return 0.0
        last = self.segments[-1]["last_pts"] - self.offset_pts
        return float(last * time_base) + (1 / float(rate) if rate else 0.0)

    def save(self, folder: Path) -> None:
        data = {
            "version": MANIFEST_VERSION,
            "key": self.key,
            "offset_pts": self.offset_pts,
            "segments": self.segments,
        }
        with atomic_path(folder / MANIFEST) as tmp:
            tmp.write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, folder: Path) -> Manifest | None:
        try:
            data = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        if data.get("version") != MANIFEST_VERSION:
            return None
        segments = [s for s in data.get("segments", []) if (folder / s["file"]).is_file()]
        if len(segments) != len(data.get("segments", [])):
            return None  # a part went missing: its successors cannot be trusted either
        return cls(data["key"], data.get("offset_pts"), segments)


def why_starting_over(folder: Path) -> str | None:
    """Why the work in ``folder`` (a parts folder that exists) cannot be carried on, in
    words for the person who re-runs the command; None when there is nothing to say (no
    folder, or finished segments that ``Manifest.load`` accepts)."""
    if not folder.is_dir():
        return None
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return f"{folder} has no {MANIFEST} (the earlier run stopped before its first segment)"
    except (OSError, ValueError):
        return f"{folder}/{MANIFEST} is unreadable"
    if data.get("version") != MANIFEST_VERSION:
        return f"{folder} was left by another version of deblur"
    segments = data.get("segments", [])
    if not segments:
        return "the earlier run stopped before it finished a segment"
    missing = [s["file"] for s in segments if not (folder / s["file"]).is_file()]
    if missing:
        return f"a finished segment ({missing[0]}) is missing from {folder}"
    return None


def parts_folder(dst: Path) -> Path:
    """Where segments of an unfinished run live: beside the output, hidden."""
    return dst.with_name(f".{dst.name}.parts")


def remove_parts(folder: Path) -> None:
    """Delete only what this module writes there, then the folder if it is empty."""
    if not folder.is_dir():
        return
    for child in folder.iterdir():
        if child.name == MANIFEST or child.name.startswith(("seg_", ".seg_", f".{MANIFEST}")):
            with contextlib.suppress(OSError):
                child.unlink()
    with contextlib.suppress(OSError):
        folder.rmdir()


def remove_stray_temps(folder: Path) -> None:
    """Temporary files of a run that was killed (SIGKILL skips every clean-up)."""
    for child in folder.glob(".seg_*.tmp*"):
        with contextlib.suppress(OSError):
            child.unlink()


def source_key(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _leaves(key: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested key as flat ``name: value`` pairs; the input's identity stays one value."""
    flat: dict[str, Any] = {}
    for name, value in key.items():
        if isinstance(value, dict) and name != "source":
            flat.update(_leaves(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _shown(value: Any) -> str:
    return "not set" if value is None else str(value)


def key_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What changed between two runs' keys, as ``--crf 18 → 20``."""
    before, after = _leaves(old), _leaves(new)
    changes = []
    for name in sorted(set(before) | set(after), key=lambda n: (n != "source", n)):
        if before.get(name) == after.get(name):
            continue
        if name == "source":
            changes.append("the input file changed")
            continue
        label = KEY_NAMES.get(name.rsplit(".", 1)[-1], name)
        changes.append(f"{label} {_shown(before.get(name))} → {_shown(after.get(name))}")
    return changes


def conflict(where: Path, what: str, old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """The one line that says why finished work cannot be carried on, and what to do."""
    why = "; ".join(key_differences(old, new)) if old is not None else "made by an unknown run"
    return (
        f"{where} holds {what} of a run with other settings ({why}): run the same command "
        "as before to resume it, or add --overwrite to start over"
    )


def _as_stored(key: dict[str, Any]) -> dict[str, Any]:
    """The key as it reads back from JSON (tuples become lists), so equal keys compare equal."""
    return json.loads(json.dumps(key))


def resumable_manifest(folder: Path, key: dict[str, Any]) -> Manifest | None:
    """The finished segments of an earlier run with this very key, or None when there are
    none; raises ResumeConflict rather than splice in segments made under another key."""
    key = _as_stored(key)
    manifest = Manifest.load(folder)
    if manifest is None or not manifest.segments:
        return None
    if manifest.key != key:
        raise ResumeConflict(conflict(folder, manifest.describe(), manifest.key, key))
    return manifest


def frame_files(folder: Path) -> list[Path]:
    """PNG frames an export wrote into ``folder`` (``frame_000000.png``...), in order."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("frame_*.png") if p.stem[6:].isdigit())


def resumable_frames(folder: Path, key: dict[str, Any]) -> int:
    """How many PNG frames of an earlier export with this key are already in ``folder``;
    raises ResumeConflict when frames of an export with another key are there."""
    key = _as_stored(key)
    frames = frame_files(folder)
    if not frames:
        return 0
    try:
        old = json.loads((folder / FRAMES_KEY).read_text())
    except (OSError, ValueError):
        old = None
    if old != key:
        what = f"{len(frames)} finished frames"
        raise ResumeConflict(conflict(folder, what, old, key))
    return len(frames)


def save_frames_key(folder: Path, key: dict[str, Any]) -> None:
    with atomic_path(folder / FRAMES_KEY) as tmp:
        tmp.write_text(json.dumps(key, indent=1))


def remove_frames(folder: Path) -> None:
    """Start an export over: delete the frames, timestamps and key an export wrote."""
    for path in [*frame_files(folder), folder / "timestamps.txt", folder / FRAMES_KEY]:
        with contextlib.suppress(OSError):
            path.unlink()
