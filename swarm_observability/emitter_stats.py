"""``EmitterStats``, the counters an :class:`EventEmitter` reports, and the count of sanitized events.

The other counters live with what they count (the background writer's failures, the subscribers'
errors and backlogs, the seq conflicts); :meth:`EventEmitter.stats` gathers them into one record.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from .event_model import StreamEvent

logger = logging.getLogger("swarm_observability")


@dataclass(frozen=True, slots=True)
class EmitterStats:
    """Counters of one :class:`EventEmitter` since it was created (for health checks and dashboards)."""

    emitted: int
    """Events accepted (given a seq and handed to the store)."""
    sanitized_events: int
    """Events stored with values replaced by their marked form (lone surrogates escaped, over-long
    integers as strings; see the event's ``sanitized`` field)."""
    write_failures: int
    """Events a background write could not store (each also raised by the next :meth:`flush`)."""
    sequence_conflicts: int
    """Sync appends that met another writer's seq and were retried with a fresh one."""
    subscriber_errors: int
    """Subscriber calls (sync or async) that raised; logged and skipped."""
    async_pending: int
    """Async subscriber deliveries scheduled and not finished yet."""
    async_dropped: int
    """Async subscriber deliveries skipped because that subscriber had ``max_pending`` unfinished."""


class SanitizedCount:
    """The events an emitter stored in a marked form; the first is logged as a warning, later ones at
    debug level (emitting threads count concurrently, hence the lock)."""

    def __init__(self) -> None:
        self.value = 0
        self.after_fork()

    def after_fork(self) -> None:
        """A fresh lock (in a forked child the parent's may be held); the count stays."""
        self._lock = threading.Lock()

    def add(self, event: StreamEvent) -> None:
        """Count ``event``, whose ``sanitized`` names the values replaced, and log it."""
        with self._lock:
            self.value += 1
            first = self.value == 1
        log = logger.warning if first else logger.debug
        log(
            "a %s event of run %r held values no store can keep as they are; stored in a marked form: %s",
            event.type_name,
            event.run_id,
            event.sanitized,
        )
