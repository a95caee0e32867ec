"""The ``EventStore`` protocol and the rules every backend shares.

A store is a durable, append-only log of :class:`~swarm_observability.events.StreamEvent` per run.
The rules (checked by the one conformance suite in ``tests/stores``):

* ``seq`` is per run, starts at 1 and is gapless: appending an event whose seq is not
  ``last_sequence(run_id) + 1`` raises :class:`SequenceConflictError`; a stored event id raises
  :class:`DuplicateEventError`. A failed append changes nothing.
* ``append_batch`` is all-or-nothing, may span several runs (each run's events consecutive, in order),
  and returns only when the batch is as durable as the backend promises (``append`` likewise):
  returned means acknowledged.
* Reads return events in seq order and refuse damage rather than skip it (:class:`StoreCorruptionError`).
  Every way a store's file can be damaged ends in that error, naming the file and where (byte offset,
  table, run and seq) on one line; the backend's own exceptions (``sqlite3.DatabaseError``,
  ``UnicodeDecodeError`` ...) never escape.
* Appends from many threads are safe; appends to one run are serialized.
* Optional: ``check_integrity()`` checks the whole store (every page, not only those a read touches)
  and raises :class:`StoreCorruptionError`; ``swarm-obs verify --all`` calls it when a backend has it.
"""

from __future__ import annotations

import gc
import heapq
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, Self, runtime_checkable

from ..events import EventType, StreamEvent, validate_run_id
from ..exceptions import DuplicateEventError, SequenceConflictError


@dataclass(frozen=True, slots=True)
class RunInfo:
    """Summary of one run in a store."""

    run_id: str
    """The run (scan) id."""
    event_count: int
    """Number of stored events, equal to the last seq."""
    first_timestamp: datetime
    """Timestamp of seq 1."""
    last_timestamp: datetime
    """Timestamp of the last event."""
    last_type: str
    """Type of the last event, e.g. ``scan_complete``."""


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Size figures of a store, for dashboards and ``swarm-obs``."""

    backend: str
    """``memory``, ``sqlite``, ``jsonl`` or ``postgres``."""
    runs: int
    """Number of runs."""
    events: int
    """Number of events over all runs."""
    location: str | None = None
    """Path of the store's file, if it has one."""
    size_bytes: int | None = None
    """Bytes on disk, if the store is on disk."""


@runtime_checkable
class EventStore(Protocol):
    """What every event-store backend offers. See the module docstring for the rules.

    A read given a run id no store could hold (empty, not a string, ...: :func:`validate_run_id`)
    raises :class:`InvalidRunIdError` instead of answering as for an unknown run.
    """

    def append(self, event: StreamEvent) -> None:
        """Append one event; its ``seq`` must be ``last_sequence(run_id) + 1``."""

    def append_batch(self, events: Sequence[StreamEvent]) -> None:
        """Append events atomically: all are stored, or none and the error is raised."""

    def load(self, run_id: str) -> list[StreamEvent]:
        """All events of a run in seq order (empty for an unknown run)."""

    def load_since(self, run_id: str, after_seq: int) -> list[StreamEvent]:
        """Events of a run with ``seq > after_seq``, in seq order."""

    def iter_events(self, run_id: str, after_seq: int = 0) -> Iterator[StreamEvent]:
        """Stream the events of a run with ``seq > after_seq`` without holding them all in memory."""

    def last_sequence(self, run_id: str) -> int:
        """The last seq of a run, 0 for an unknown run."""

    def query(
        self,
        run_id: str | None = None,
        types: Iterable[EventType | str] | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[StreamEvent]:
        """Newest-first events (by timestamp, then seq, then run id), filtered by run and types.

        ``since`` keeps events with ``timestamp >= since`` and must be timezone-aware; ``limit`` caps
        the number of events returned.
        """

    def runs(self) -> list[RunInfo]:
        """Every run with its event count and first/last timestamps, oldest first."""

    def stats(self) -> StoreStats:
        """Size figures of the store."""

    def close(self) -> None:
        """Release files and connections; idempotent."""


POLL_INTERVAL_S = 0.05
"""How long :func:`wait_for_append` sleeps for a store that cannot tell when something was appended."""


def wait_for_append(store: object, timeout: float) -> bool:
    """Block until something may have been appended to ``store``, or ``timeout`` seconds passed.

    The seam of live tails (the server's SSE streams, ``tail --follow``): a store may offer its own
    ``wait_for_append(timeout) -> bool`` (the in-memory store wakes on its own appends, PostgreSQL on
    LISTEN/NOTIFY); for any other store this sleeps ``min(timeout, POLL_INTERVAL_S)`` and returns
    ``True``, so callers simply re-read after it returns. ``True`` means "look again"; ``False`` means
    the timeout passed with nothing appended. Appends from another process are seen by re-reading,
    which is why the default is a short poll rather than a long wait.
    """
    waiter = getattr(store, "wait_for_append", None)
    if callable(waiter):
        return bool(waiter(timeout))
    time.sleep(max(0.0, min(timeout, POLL_INTERVAL_S)))
    return True


def one_line(exc: BaseException, limit: int = 300) -> str:
    """``exc`` as one line of at most ``limit`` characters: the reason part of a damage report."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def batch_events(events: Iterable[StreamEvent]) -> tuple[StreamEvent, ...]:
    """The argument of ``append_batch`` as a tuple, checked before any backend work.

    Raises:
        TypeError: an item is not a :class:`StreamEvent` (nothing is stored).
    """
    batch = tuple(events)
    if set(map(type, batch)) - {StreamEvent}:  # one C-level pass for the usual case
        for event in batch:
            if not isinstance(event, StreamEvent):
                raise TypeError(f"append expects StreamEvent objects, got {type(event).__name__}")
    return batch


def check_batch(
    events: Sequence[StreamEvent],
    last_sequence: dict[str, int] | None = None,
    *,
    lookup_last: object = None,
) -> dict[str, int]:
    """Validate a batch against per-run last sequences; return each run's new last seq.

    ``events`` come from :func:`batch_events`. ``lookup_last`` is a callable ``run_id -> int`` used for
    runs missing from ``last_sequence``.
    Raises :class:`SequenceConflictError` on the first out-of-order event and
    :class:`DuplicateEventError` on an id repeated inside the batch. Backends check stored ids
    themselves (an index lookup or a unique constraint).
    """
    last = dict(last_sequence or {})
    count = len(events)
    runs = {event.run_id for event in events}
    if len(runs) == 1 and len({event.id for event in events}) == count:
        # The usual batch (one run, distinct ids) in comprehensions; any doubt goes the long way,
        # which raises for the first offending event.
        (run,) = runs
        if run not in last:
            validate_run_id(run)
            last[run] = lookup_last(run) if callable(lookup_last) else 0
        first = last[run] + 1
        if [event.seq for event in events] == list(range(first, first + count)):
            last[run] = first + count - 1
            return last
    seen: set[str] = set()
    for event in events:
        run = event.run_id
        if run not in last:
            validate_run_id(run)
            last[run] = lookup_last(run) if callable(lookup_last) else 0
        expected = last[run] + 1
        if event.seq != expected:
            raise SequenceConflictError(run, expected, event.seq)
        if event.id in seen:
            raise DuplicateEventError(event.id)
        seen.add(event.id)
        last[run] = expected
    return last


def option_value(value: object, kind: type) -> Any:
    """A store option as ``kind``: a URL's text (``?read_only=yes&pool_size=8``) or a value given as such.

    Booleans are ``1/true/yes/on`` or ``0/false/no/off`` in any case.

    Raises:
        ValueError: ``value`` is not a ``kind``.
    """
    if kind is not bool:
        return kind(value)
    if isinstance(value, bool):
        return value
    lowered = str(value).lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def check_since(since: datetime | None) -> datetime | None:
    """Refuse a naive ``since`` for :meth:`EventStore.query`: stored timestamps are UTC-aware."""
    if since is not None and (not isinstance(since, datetime) or since.utcoffset() is None):
        raise ValueError(f"query(since=...) needs a timezone-aware datetime, got {since!r}")
    return since


@dataclass(frozen=True, slots=True)
class QueryFilter:
    """The checked arguments of :meth:`EventStore.query`, shared by every backend (:func:`query_filter`)."""

    types: frozenset[str] | None
    """Wanted type names; ``None`` means every type, an empty set means none."""
    since: datetime | None
    """Keep events with ``timestamp >= since`` (timezone-aware)."""
    limit: int | None
    """At most this many events (never negative); ``None`` means no cap."""

    def matches(self, event: StreamEvent) -> bool:
        """Whether ``event`` passes the type and ``since`` filters."""
        return (self.types is None or event.type_name in self.types) and (
            self.since is None or event.timestamp >= self.since
        )

    def newest_first(self, events: Iterable[StreamEvent]) -> list[StreamEvent]:
        """Matching ``events`` in query order (:func:`query_order_key`, descending), capped at ``limit``."""
        matches = filter(self.matches, events)
        if self.limit is not None:
            return heapq.nlargest(self.limit, matches, key=query_order_key)
        return sorted(matches, key=query_order_key, reverse=True)


def query_filter(
    types: Iterable[EventType | str] | None, since: datetime | None, limit: int | None
) -> QueryFilter:
    """Check and normalize the filter arguments of :meth:`EventStore.query`.

    Raises:
        ValueError: ``since`` is naive or not a datetime.
    """
    check_since(since)
    return QueryFilter(type_names(types), since, None if limit is None else max(int(limit), 0))


def query_order_key(event: StreamEvent) -> tuple[datetime, int, str]:
    """Sort key of :meth:`EventStore.query` (used descending): timestamp, then seq, then run id."""
    return (event.timestamp, event.seq or 0, event.run_id)


def type_names(types: Iterable[EventType | str] | None) -> frozenset[str] | None:
    """Normalize a ``types`` filter to plain strings (``None`` means every type)."""
    if types is None:
        return None
    if isinstance(types, str):
        types = [types]
    return frozenset(t.value if isinstance(t, EventType) else str(t) for t in types)


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a store materializes many events.

    Each parsed event is several container objects, and CPython's collector re-traverses everything
    still alive as a list of them grows: about half the time of loading 100k events. Nothing of ours
    is cyclic garbage, so the pause only postpones collection. Nested and concurrent pauses (several
    threads loading) are counted; the collector is re-enabled when the last one ends, and only if it
    was enabled when the first one began.

    At that point the objects made during the pause are handed to the oldest generation
    (``gc.freeze()`` + ``gc.unfreeze()``, two list splices) instead of being traversed by the young
    collection the first allocation after re-enabling would run (~15% of a 100k-event load). They are
    still collected, by the next full collection. Skipped if the application froze objects itself,
    since ``unfreeze`` would release those too.
    """
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                if gc.get_freeze_count() == 0:
                    gc.freeze()
                    gc.unfreeze()
                gc.enable()


class StoreBase:
    """What every backend does alike: ``append`` as a batch of one, ``query``'s checks, ``with store:``.

    A backend provides ``append_batch``, ``close`` and ``_query(run_id, wanted)``, which gets the
    arguments of :meth:`EventStore.query` already checked (:func:`query_filter`). A backend whose single
    append is a hot path overrides ``append``.
    """

    def append(self, event: StreamEvent) -> None:
        """Append one event; its ``seq`` must be ``last_sequence(run_id) + 1``."""
        self.append_batch((event,))

    def append_batch(self, events: Sequence[StreamEvent]) -> None:
        raise NotImplementedError

    def query(
        self,
        run_id: str | None = None,
        types: Iterable[EventType | str] | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[StreamEvent]:
        """Newest-first (timestamp, seq, run id) events filtered by run, types and ``timestamp >= since``."""
        if run_id is not None:
            validate_run_id(run_id)
        return self._query(run_id, query_filter(types, since, limit))

    def _query(self, run_id: str | None, wanted: QueryFilter) -> list[StreamEvent]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def oldest_first(infos: Iterable[RunInfo]) -> list[RunInfo]:
    """``infos`` in the order of :meth:`EventStore.runs`: by first timestamp, then run id."""
    return sorted(infos, key=lambda info: (info.first_timestamp, info.run_id))


class PagedReads(StoreBase):
    """``load``, ``load_since`` and ``iter_events`` for backends that read a run in pages.

    A backend provides ``_pages(run_id, after_seq)``, yielding lists of events in seq order (and raising
    :class:`StoreCorruptionError` on damage or a gap); bulk loads run with the collector paused.
    """

    def _pages(self, run_id: str, after_seq: int) -> Iterator[list[StreamEvent]]:
        raise NotImplementedError

    def load(self, run_id: str) -> list[StreamEvent]:
        """All events of a run in seq order (empty for an unknown run)."""
        return self.load_since(run_id, 0)

    def load_since(self, run_id: str, after_seq: int) -> list[StreamEvent]:
        """Events of a run with ``seq > after_seq``, in seq order."""
        validate_run_id(run_id)
        events: list[StreamEvent] = []
        with gc_paused():
            for page in self._pages(run_id, after_seq):
                events += page
        return events

    def iter_events(self, run_id: str, after_seq: int = 0) -> Iterator[StreamEvent]:
        """Stream a run's events with ``seq > after_seq`` a page at a time, in constant memory.

        A bad run id is refused by the call itself, not at the first ``next()``.
        """
        validate_run_id(run_id)
        return (event for page in self._pages(run_id, after_seq) for event in page)
