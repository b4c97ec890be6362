"""The parts folder beside the output: its manifest of finished segments, and clean-up."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_path

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


@dataclass
class Manifest:
    """The parts folder's record: what job it belongs to and which segments are finished."""

    key: dict[str, Any]
    offset_pts: int | None = None
    segments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frames(self) -> int:
        return sum(s["frames"] for s in self.segments)

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
