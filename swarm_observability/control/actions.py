"""The control vocabulary shared by the manager and the transports: actions, how a scan reads its
requests from a channel, and what a watcher serves.

Its own module so that :mod:`.cancellation` (which applies actions) and :mod:`.channel` (which carries
them between processes) both depend on it and not on each other.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
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


class RequestCursor:
    """How far one scan has read a control channel: the last request id seen and when it last read.

    Args:
        scan_id: the scan whose requests are read.
    """

    def __init__(self, scan_id: str) -> None:
        self.scan_id = scan_id
        self._lock = threading.RLock()
        self._after = 0
        self._last_read = -math.inf

    def apply_pending(
        self, channel: Any, apply: Callable[[str, str | None], object], *, min_interval: float = 0.0
    ) -> int:
        """Claim and ``apply(action, reason)`` the pending requests; see ``CancellationManager.sync_from``."""
        now = time.monotonic()
        with self._lock:
            if now - self._last_read < min_interval:
                return 0
            self._last_read = now
            after = self._after
        applied = 0
        for request in channel.pending(self.scan_id, after):
            if channel.claim(request.id):
                apply(request.action, request.reason)
                applied += 1
            with self._lock:
                self._after = max(self._after, request.id)
        return applied
