"""Fixtures of the store tests: every backend behind one harness, and an event factory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from swarm_observability.events import EventType, StreamEvent, make_event
from swarm_observability.stores import (
    EventStore,
    InMemoryEventStore,
    JSONLEventStore,
    PostgresEventStore,
    SQLiteEventStore,
)
from tests._postgres import fresh_schema, server_url

BACKENDS = ("memory", "sqlite", "jsonl", pytest.param("postgres", marks=pytest.mark.postgres))
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class StoreHarness:
    """Opens one backend in a temp folder (PostgreSQL: a schema of its own) and can reopen it.

    The memory store "reopens" as itself. ``location`` is where ``stats().location`` must point.
    """

    def __init__(
        self, kind: str, folder: Path, pg_url: str | None = None, pg_schema: str | None = None
    ) -> None:
        self.kind = kind
        self.folder = folder
        self.pg_url = pg_url
        self.pg_schema = pg_schema
        self.store: EventStore = self._open()
        self.location = str(folder) if kind != "postgres" else f"{pg_url}#{pg_schema}"

    def _open(self) -> EventStore:
        if self.kind == "memory":
            return InMemoryEventStore()
        if self.kind == "postgres":
            assert self.pg_url is not None
            return PostgresEventStore(self.pg_url, schema=self.pg_schema, pool_size=8)
        if self.kind == "sqlite":
            return SQLiteEventStore(self.folder / "events.db", durability="normal")
        return JSONLEventStore(self.folder / "jsonl")

    def reopen(self) -> EventStore:
        """Close the store and open it again from disk; the same object for the memory backend."""
        if self.kind != "memory":
            self.store.close()
            self.store = self._open()
        return self.store

    def close(self) -> None:
        self.store.close()


@pytest.fixture(params=BACKENDS)
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreHarness]:
    """Each backend in turn, closed after the test (PostgreSQL's schema dropped)."""
    if request.param != "postgres":
        h = StoreHarness(request.param, tmp_path)
        yield h
        h.close()
        return
    url = server_url()
    with fresh_schema(url) as schema:
        h = StoreHarness("postgres", tmp_path, url, schema)
        yield h
        h.close()


@pytest.fixture
def store(harness: StoreHarness) -> EventStore:
    """The harness's store."""
    return harness.store


def ev(
    run: str, seq: int | None, type: EventType | str = EventType.LOG, *, at: int | None = None, **fields: Any
) -> StreamEvent:
    """An event of ``run`` with ``seq``; ``at`` = seconds after ``T0`` for a deterministic timestamp."""
    if at is not None:
        fields["timestamp"] = T0 + timedelta(seconds=at)
    return make_event(type, run, seq=seq, **fields)


def run_events(run: str, count: int, first_seq: int = 1, **fields: Any) -> list[StreamEvent]:
    """``count`` consecutive events of ``run`` starting at ``first_seq``."""
    return [ev(run, seq, message=f"{run} #{seq}", **fields) for seq in range(first_seq, first_seq + count)]


def as_bytes(events: list[StreamEvent]) -> list[bytes]:
    """The stored form of events, for byte-identical comparisons."""
    return [event.to_json_bytes() for event in events]
