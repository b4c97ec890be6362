"""Process-wide start-up tuning that must happen before the first large tensor."""

from __future__ import annotations

import ctypes
import os
import sys
import threading

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_tuned = False


def tune_allocator() -> bool:
    """Stop glibc from unmapping large activations after every call.

    With default settings glibc returns each big buffer to the OS and re-maps it on the next
    forward, which halves PyTorch's CPU speed at 720p (performance.md). Linux/glibc only; a
    no-op elsewhere and when the user already set MALLOC_* variables.
    """
    global _tuned
    if _tuned or not sys.platform.startswith("linux"):
        return _tuned
    if "MALLOC_MMAP_MAX_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_MAX, 0)
        libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    except (OSError, AttributeError):
        return False
    _tuned = True
    return True


IO_THREAD_NICENESS = 19


def yield_to_network() -> bool:
    """Lower the calling thread's scheduling priority (Linux: threads have their own nice).

    For the decode/encode threads of ``deblur batch`` and ``deblur video``: the network's
    OpenMP threads fill every core, and an I/O thread that preempts one of them stalls the
    whole team at its next barrier. At a lower priority the I/O runs in the gaps the network
    leaves instead (batch of 720p PNGs: 1.15x -> 1.12x the engine alone, benchmarks/bench_io.py).
    Threads it starts (FFmpeg's) inherit it. A no-op elsewhere; never raises."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), IO_THREAD_NICENESS)
    except (OSError, AttributeError):
        return False
    return True
