"""The control vocabulary shared by the manager and the transports: actions and what a watcher serves.

Its own module so that :mod:`.cancellation` (which applies actions) and :mod:`.channel` (which carries
them between processes) both depend on it and not on each other.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol


class ControlAction(StrEnum):
    """What a control request asks of a scan."""

    CANCEL = "cancel"
    """Stop at the next safe point (``ScanCancelled``); resumable from the last checkpoint."""
    PAUSE = "pause"
    """Wait at the next safe point until resumed (in memory; the process keeps running)."""
    RESUME = "resume"
    """End a pause."""
    DRAIN = "drain"
    """Stop at the next superstep boundary with the checkpoint saved, so the process can exit."""


def parse_action(action: object) -> ControlAction:
    """Return ``action`` as a :class:`ControlAction`; raise ``ValueError`` naming it if unknown."""
    try:
        if not isinstance(action, str):
            raise ValueError(action)
        return ControlAction(action)
    except ValueError:
        choices = ", ".join(a.value for a in ControlAction)
        raise ValueError(f"unknown control action {action!r}; expected one of: {choices}") from None


class Syncable(Protocol):
    """What a :class:`~.channel.ControlWatcher` serves (a ``CancellationManager``)."""

    @property
    def scan_id(self) -> str: ...

    def sync_from(self, channel: Any, *, min_interval: float = 0.0) -> int:
        """Apply the pending requests ``channel`` holds for this scan; return how many."""
        ...
