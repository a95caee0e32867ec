"""``InMemoryEventStore``: the thread-safe in-process backend, for tests and the default observer."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from ..events import StreamEvent, validate_run_id
from ..exceptions import DuplicateEventError, SequenceConflictError, StoreClosedError
from .base import (
    EventStore,
    QueryFilter,
    RunInfo,
    StoreBase,
    StoreStats,
    batch_events,
    check_batch,
    oldest_first,
)


class InMemoryEventStore(StoreBase):
    """Events kept in process memory behind one lock; same rules as the persistent stores.

    Events are immutable, so the store keeps the objects themselves: no serialization on append.
    """

    backend = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._appended = threading.Condition(self._lock)
        self._tail_waiters = 0
        self._runs: dict[str, list[StreamEvent]] = {}
        self._ids: set[str] = set()
        self._closed = False

    def append(self, event: StreamEvent) -> None:
        # The emitter's synchronous hot path: the checks of append_batch for a batch of one.
        if event.__class__ is not StreamEvent:
            self.append_batch((event,))
            return
        values = event.__dict__
        run_id = values["run_id"]
        event_id = values["id"]
        with self._lock:
            if self._closed:
                self._check_open()
            events = self._runs.get(run_id)
            if events is None:
                validate_run_id(run_id)
                events = []
            if values["seq"] != len(events) + 1:
                raise SequenceConflictError(run_id, len(events) + 1, values["seq"])
            ids = self._ids
            if event_id in ids:
                raise DuplicateEventError(event_id)
            if not events:
                self._runs[run_id] = events
            events.append(event)
            ids.add(event_id)
            if self._tail_waiters:
                self._appended.notify_all()

    def append_batch(self, events: Sequence[StreamEvent]) -> None:
        events = batch_events(events)
        if not events:
            return
        with self._lock:
            self._check_open()
            check_batch(events, lookup_last=lambda run: len(self._runs.get(run, ())))
            for event in events:
                if event.id in self._ids:
                    raise DuplicateEventError(event.id)
            for event in events:
                self._runs.setdefault(event.run_id, []).append(event)
                self._ids.add(event.id)
            if self._tail_waiters:
                self._appended.notify_all()

    def load(self, run_id: str) -> list[StreamEvent]:
        return self.load_since(run_id, 0)

    def load_since(self, run_id: str, after_seq: int) -> list[StreamEvent]:
        validate_run_id(run_id)
        with self._lock:
            self._check_open()
            return list(self._runs.get(run_id, ())[max(after_seq, 0) :])

    def iter_events(self, run_id: str, after_seq: int = 0) -> Iterator[StreamEvent]:
        return iter(self.load_since(run_id, after_seq))

    def last_sequence(self, run_id: str) -> int:
        validate_run_id(run_id)
        with self._lock:
            self._check_open()
            return len(self._runs.get(run_id, ()))

    def _query(self, run_id: str | None, wanted: QueryFilter) -> list[StreamEvent]:
        with self._lock:
            self._check_open()
            pool = [self._runs.get(run_id, [])] if run_id is not None else list(self._runs.values())
            found = [event for events in pool for event in events]
        return wanted.newest_first(found)

    def runs(self) -> list[RunInfo]:
        with self._lock:
            self._check_open()
            infos = [
                RunInfo(run, len(evs), evs[0].timestamp, evs[-1].timestamp, evs[-1].type_name)
                for run, evs in self._runs.items()
            ]
        return oldest_first(infos)

    def stats(self) -> StoreStats:
        with self._lock:
            self._check_open()
            return StoreStats(self.backend, len(self._runs), len(self._ids))

    def wait_for_append(self, timeout: float) -> bool:
        """Block until another thread appends (``True``) or ``timeout`` seconds pass (``False``)."""
        with self._lock:
            self._tail_waiters += 1
            try:
                return self._appended.wait(max(0.0, timeout))
            finally:
                self._tail_waiters -= 1

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the in-memory store is closed")


def store_or_memory(store: object) -> EventStore:
    """``store`` if it is an event store, a new :class:`InMemoryEventStore` for ``None``.

    Raises:
        TypeError: anything else (a URL string, say: open it with ``open_store``), at once rather than as
            a failed write per event later.
    """
    if store is None:
        return InMemoryEventStore()
    if not isinstance(store, EventStore):
        raise TypeError(
            f"store must be an event store (open one from a URL with open_store), not {store!r}"
            f" ({type(store).__name__})"
        )
    return store
