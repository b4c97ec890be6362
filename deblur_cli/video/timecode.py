"""Times typed by people (``--start``/``--end``) into seconds."""

from __future__ import annotations

import re

from ..errors import InputError


def parse_time(text: str | float | None) -> float | None:
    """Seconds from ``12.5``, ``1:02.5`` or ``0:01:02.5``; None stays None."""
    if text is None or isinstance(text, (int, float)):
        return None if text is None else float(text)
    m = re.fullmatch(r"\s*(?:(?:(\d+):)?(\d+):)?(\d+(?:\.\d*)?|\.\d+)\s*", text)
    if not m:
        raise InputError(f"cannot read time {text!r} (use seconds, MM:SS or HH:MM:SS)")
    hours, minutes, seconds = m.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)
