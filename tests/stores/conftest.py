"""Fixtures of the store tests: every backend behind one harness, and an event factory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from swarm_observability.events import EventType, StreamEvent, make_event
from swarm_observability.stores import EventStore, InMemoryEventStore, JSONLEventStore, SQLiteEventStore

BACKENDS = ("memory", "sqlite", "jsonl")
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class StoreHarness:
    """Opens one backend in a temp folder and can reopen it (the memory store "reopens" as itself)."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.folder = folder
        self.store: EventStore = self._open()

    def _open(self) -> EventStore:
        if self.kind == "memory":
            return InMemoryEventStore()
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
    """Each backend in turn, closed after the test."""
    h = StoreHarness(request.param, tmp_path)
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
