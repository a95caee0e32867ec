"""Reading the event log as stored JSON, the projection's only input.

The projection hands DuckDB the events' JSON text and lets its vectorized reader parse it: building
``StreamEvent`` objects first would cost several microseconds an event, the whole budget of a
200k events/s rebuild. A SQLite store is read directly through its documented table layout
(``swarm_events.data`` holds ``to_json_bytes()``), on a separate read-only connection; any other
backend (JSONL, in-memory, PostgreSQL) is read through the ``EventStore`` protocol and serialized
back with ``to_json_bytes()``, the same bytes those backends store.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..stores.base import EventStore


class EventSource:
    """The stored JSON of a store's events, per run and in bulk.

    Args:
        store: any :class:`EventStore`.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        path = getattr(store, "path", None)
        self._sqlite: sqlite3.Connection | None = None
        if getattr(store, "backend", None) == "sqlite" and path is not None:
            uri = f"{Path(path).as_uri()}?mode=ro"
            self._sqlite = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
            self._sqlite.execute("PRAGMA busy_timeout = 5000")

    def heads(self) -> dict[str, int]:
        """The last stored seq of every run."""
        if self._sqlite is not None:
            return dict(self._sqlite.execute("SELECT run_id, last_seq FROM swarm_runs").fetchall())
        return {info.run_id: info.event_count for info in self.store.runs()}

    def read(self, run_id: str, after_seq: int, limit: int) -> list[bytes]:
        """Up to ``limit`` events of ``run_id`` with ``seq > after_seq``, in seq order, as JSON."""
        if self._sqlite is not None:
            rows = self._sqlite.execute(
                "SELECT data FROM swarm_events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (run_id, after_seq, limit),
            ).fetchall()
            return [_bytes(data) for (data,) in rows]
        events = itertools.islice(self.store.iter_events(run_id, after_seq), limit)
        return [event.to_json_bytes() for event in events]

    def read_all(self, chunk: int) -> Iterator[list[bytes]]:
        """Every event of every run, in chunks of about ``chunk`` events, from one consistent snapshot
        (SQLite: one read transaction; other backends: each run up to its last seq when first read)."""
        if self._sqlite is not None:
            cursor = self._sqlite.execute("SELECT data FROM swarm_events")
            while rows := cursor.fetchmany(chunk):
                yield [_bytes(data) for (data,) in rows]
            return
        batch: list[bytes] = []
        for run_id, last in self.heads().items():
            for event in self.store.iter_events(run_id, 0):
                if event.seq is not None and event.seq > last:
                    break
                batch.append(event.to_json_bytes())
                if len(batch) >= chunk:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def close(self) -> None:
        """Close the private SQLite connection (the store itself stays open)."""
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None


def _bytes(data: Any) -> bytes:
    return data if isinstance(data, bytes) else str(data).encode()
