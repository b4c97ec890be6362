"""Typed errors for people: the CLI prints the message on one line and exits with the code."""

from __future__ import annotations


class DeblurError(Exception):
    """A failure the user can act on; ``str(err)`` is the one-line message."""

    exit_code = 1


class InputError(DeblurError):
    """Missing, unreadable, corrupt, empty or unsupported input."""

    exit_code = 2


class OutputError(DeblurError):
    """The output cannot be written (permissions, disk full, would overwrite the input)."""

    exit_code = 3


class WeightsError(DeblurError):
    """Weights missing, not recognised, failing their checksum, or unsafe to load."""

    exit_code = 4


class ResourceError(DeblurError):
    """Out of memory even at the smallest tile, or the requested device is absent."""

    exit_code = 5
