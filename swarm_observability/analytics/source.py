"""Reading the event log as stored JSON, the projection's only input.

The projection hands DuckDB the events' JSON text and lets its vectorized reader parse it: building
``StreamEvent`` objects first would cost several microseconds an event, the whole budget of a
200k events/s rebuild. Two stores have a fast path that never parses an event in Python:

* SQLite is read directly through its documented table layout (``swarm_events.data`` holds
  ``to_json_bytes()``) on a separate read-only connection; a rebuild asks SQLite for whole chunks
  already joined into NDJSON (``group_concat`` over primary-key ranges, one read transaction), so
  Python handles one ``bytes`` per ~100k events and the GIL is free while SQLite reads.
* JSONL hands out its lines' event JSON, CRC-checked (:meth:`JSONLEventStore.read_json`,
  :meth:`JSONLEventStore.iter_json`).

Any other backend (in-memory, PostgreSQL) is read through the ``EventStore`` protocol and serialized
back with ``to_json_bytes()``, the same bytes those backends store.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..stores.base import EventStore
from ..stores.jsonl import JSONLEventStore

_CHUNK_SQL = (
    "SELECT count(*), CAST(group_concat(data, x'0a') AS BLOB) FROM swarm_events WHERE (run_id, seq) > (?, ?)"
)


class EventSource:
    """The stored JSON of a store's events, per run and in bulk.

    Args:
        store: any :class:`EventStore`.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        path = getattr(store, "path", None)
        self._sqlite: sqlite3.Connection | None = None
        self._jsonl = store if isinstance(store, JSONLEventStore) else None
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
        if self._jsonl is not None:
            return self._jsonl.read_json(run_id, after_seq, limit)
        events = itertools.islice(self.store.iter_events(run_id, after_seq), limit)
        return [event.to_json_bytes() for event in events]

    def read_all(self, chunk: int) -> Iterator[tuple[bytes, int]]:
        """Every event of every run as NDJSON, in chunks of about ``chunk`` events (the text and its
        event count), from one consistent snapshot (SQLite: one read transaction; JSONL: the file as
        indexed when the read starts; other backends: each run up to its last seq when first read)."""
        if self._sqlite is not None:
            yield from self._sqlite_chunks(chunk)
            return
        if self._jsonl is not None:
            for lines in self._jsonl.iter_json(chunk):
                yield b"\n".join(lines), len(lines)
            return
        batch: list[bytes] = []
        for run_id, last in self.heads().items():
            for event in self.store.iter_events(run_id, 0):
                if event.seq is not None and event.seq > last:
                    break
                batch.append(event.to_json_bytes())
                if len(batch) >= chunk:
                    yield b"\n".join(batch), len(batch)
                    batch = []
        if batch:
            yield b"\n".join(batch), len(batch)

    def _sqlite_chunks(self, chunk: int) -> Iterator[tuple[bytes, int]]:
        """Primary-key ranges of about ``chunk`` events (cut from ``swarm_runs``' counts, a long run
        split by seq), each one ``group_concat`` query, all in one read transaction."""
        assert self._sqlite is not None
        conn = self._sqlite
        conn.execute("BEGIN")
        try:
            cuts: list[tuple[str, int]] = []
            filled = 0
            for run_id, last in conn.execute("SELECT run_id, last_seq FROM swarm_runs ORDER BY run_id"):
                seq = 0
                while last - seq > chunk - filled:
                    seq += chunk - filled
                    cuts.append((run_id, seq))
                    filled = 0
                filled += last - seq
            low: tuple[str, int] = ("", 0)
            for high in [*cuts, None]:
                if high is None:
                    count, text = conn.execute(_CHUNK_SQL, low).fetchone()
                else:
                    count, text = conn.execute(
                        f"{_CHUNK_SQL} AND (run_id, seq) <= (?, ?)", (*low, *high)
                    ).fetchone()
                    low = high
                if count:
                    yield _bytes(text), count
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close the private SQLite connection (the store itself stays open)."""
        if self._sqlite is not None:
            self._sqlite.close()
            self._sqlite = None


def _bytes(data: Any) -> bytes:
    return data if isinstance(data, bytes) else str(data).encode()
