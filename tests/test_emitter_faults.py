"""EventEmitter under faults: seq conflicts, another process's write lock, slow async subscribers."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from swarm_observability import EventEmitter, EventType, SequenceConflictError
from swarm_observability.events import StreamEvent
from swarm_observability.stores.sqlite import SQLiteEventStore


def _seqs(store: SQLiteEventStore, run_id: str) -> list[int | None]:
    return [event.seq for event in store.load(run_id)]


def test_sync_emitter_recovers_after_a_sequence_conflict(tmp_path: Path) -> None:
    """Another writer appends to the run: the next emit re-reads the seq and succeeds, as do later ones."""
    db = tmp_path / "events.db"
    with SQLiteEventStore(db) as mine_store, SQLiteEventStore(db) as theirs_store:
        mine = EventEmitter(mine_store, write="sync")
        theirs = EventEmitter(theirs_store, write="sync")
        mine.emit(EventType.LOG, "r", message="mine 1")
        theirs.emit(EventType.LOG, "r", message="theirs 2")
        third = mine.emit(EventType.LOG, "r", message="mine 3")
        assert third is not None and third.seq == 3
        assert [mine.emit(EventType.LOG, "r").seq for _ in range(3)] == [4, 5, 6]  # type: ignore[union-attr]
        assert mine.stats().sequence_conflicts == 1
        assert _seqs(mine_store, "r") == [1, 2, 3, 4, 5, 6]
        assert [e.message for e in mine_store.load("r")[:3]] == ["mine 1", "theirs 2", "mine 3"]


def test_sync_emitter_gives_up_after_a_second_conflict_and_still_recovers() -> None:
    """A store that conflicts twice in a row raises once; the next emit starts from the store again."""
    from swarm_observability.stores.memory import InMemoryEventStore

    class Racing(InMemoryEventStore):
        """Another writer slips in before each of the next ``races`` appends."""

        races = 0

        def append(self, event: StreamEvent) -> None:
            if self.races:
                self.races -= 1
                other = event.model_copy(update={"seq": self.last_sequence(event.run_id) + 1, "id": None})
                other = other.model_copy(update={"id": f"other-{self.races}-{event.id}"})
                super().append(other)
            super().append(event)

    store = Racing()
    emitter = EventEmitter(store, write="sync")
    emitter.emit(EventType.LOG, "r")
    store.races = 2
    with pytest.raises(SequenceConflictError):
        emitter.emit(EventType.LOG, "r")
    assert emitter.emit(EventType.LOG, "r").seq == 4  # type: ignore[union-attr]
    assert [e.seq for e in store.load("r")] == [1, 2, 3, 4]


class _LockHolder:
    """Another process holding a SQLite file's write lock until :meth:`release`."""

    def __init__(self, db: Path) -> None:
        code = textwrap.dedent(
            f"""
            import sqlite3, sys
            conn = sqlite3.connect({str(db)!r}, isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            print("locked", flush=True)
            sys.stdin.readline()
            conn.execute("ROLLBACK")
            """
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None and self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.write("go\n")
            self.process.stdin.flush()
        self.process.wait(30)


@pytest.mark.timeout(120)
def test_first_emit_of_a_run_never_waits_for_another_process_lock(tmp_path: Path) -> None:
    """With the writer stuck behind another process's lock, a new run's first emit and a forgotten run's
    next emit return while the lock is still held; once it is released every event is stored in order."""
    db = tmp_path / "events.db"
    store = SQLiteEventStore(db, busy_timeout=60)
    holder = _LockHolder(db)
    try:
        emitter = EventEmitter(store, write="background", linger=0)
        emitter.emit(EventType.LOG, "busy")  # the writer thread now waits for the other process's lock
        returned = threading.Event()
        seqs: list[int | None] = []

        def first_emits() -> None:
            seqs.append(emitter.emit(EventType.LOG, "fresh").seq)  # type: ignore[union-attr]
            emitter.forget_run("busy")  # as every new invocation of a thread does
            seqs.append(emitter.emit(EventType.LOG, "busy").seq)  # type: ignore[union-attr]
            returned.set()

        threading.Thread(target=first_emits, daemon=True).start()
        # A liveness check, not a timing one: the other process holds the lock until we release it.
        assert returned.wait(30), "the first emit of a run waited for another process's write lock"
        assert seqs == [1, 2]
        assert store.last_sequence("busy") == 0  # nothing could be written meanwhile
    finally:
        holder.release()
    emitter.flush()
    assert _seqs(store, "busy") == [1, 2] and _seqs(store, "fresh") == [1]
    assert emitter.stats().write_failures == 0
    emitter.close()
    store.close()


async def test_a_slow_async_subscriber_is_capped_and_its_drops_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Past max_pending unfinished deliveries an async subscriber is skipped (counted, logged once);
    the store and sync subscribers still get every event, and delivery resumes once it catches up."""
    emitter = EventEmitter(max_pending=10)
    gate = asyncio.Event()
    slow: list[int | None] = []
    fast: list[int | None] = []

    async def slow_subscriber(event: StreamEvent) -> None:
        await gate.wait()
        slow.append(event.seq)

    emitter.subscribe(slow_subscriber)
    emitter.subscribe(lambda event: fast.append(event.seq))
    with caplog.at_level(logging.WARNING, logger="swarm_observability"):
        for _ in range(50):
            emitter.emit(EventType.LOG, "r")
        await asyncio.sleep(0)
    stats = emitter.stats()
    assert (stats.async_pending, stats.async_dropped) == (10, 40)
    assert len([r for r in caplog.records if "skipping it" in r.getMessage()]) == 1
    gate.set()
    for _ in range(100):
        if emitter.stats().async_pending == 0:
            break
        await asyncio.sleep(0.01)
    assert sorted(slow) == list(range(1, 11))
    assert fast == list(range(1, 51)) and len(emitter.store.load("r")) == 50
    emitter.emit(EventType.LOG, "r")
    await asyncio.sleep(0.05)
    assert slow[-1] == 51 and emitter.stats().async_dropped == 40
    emitter.close()


def test_max_pending_is_validated() -> None:
    """max_pending under 1 is refused with a clear message."""
    with pytest.raises(ValueError, match="max_pending"):
        EventEmitter(max_pending=0)


@pytest.mark.parametrize("close", ["never", "closed"])
def test_events_queued_at_interpreter_exit_are_written(tmp_path: Path, close: str) -> None:
    """A background emitter left open at exit (its writer lingering) is flushed by the atexit hook."""
    db = tmp_path / "events.db"
    code = textwrap.dedent(
        f"""
        from swarm_observability import EventEmitter, EventType
        from swarm_observability.stores.sqlite import SQLiteEventStore
        emitter = EventEmitter(SQLiteEventStore({str(db)!r}), write="background", linger=30)
        for n in range(50):
            emitter.emit(EventType.LOG, "r", message=f"event {{n}}")
        if {close == "closed"}:
            emitter.close()  # the hook then has nothing to do for it
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with SQLiteEventStore(db) as store:
        assert _seqs(store, "r") == list(range(1, 51))
