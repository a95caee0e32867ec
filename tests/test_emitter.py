"""EventEmitter: seq assignment, delivery to subscribers, replay, background group commit, durability."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest

from swarm_observability import (
    EventEmitter,
    EventStore,
    EventStoreError,
    EventType,
    EventValidationError,
    InMemoryEventStore,
)
from swarm_observability.events import StreamEvent, make_event
from swarm_observability.processors import REDACTED
from swarm_observability.stores.jsonl import JSONLEventStore
from swarm_observability.stores.sqlite import SQLiteEventStore
from tests._threads import run_in_threads


class ControlledStore:
    """An InMemoryEventStore whose appends can be held at a gate or made to fail (failure injection)."""

    backend = "controlled"

    def __init__(self) -> None:
        self.inner = InMemoryEventStore()
        self.batches: list[int] = []
        self.writer_threads: set[str] = set()
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.gate.set()
        self.fail_with: BaseException | None = None

    def append(self, event: StreamEvent) -> None:
        self.append_batch([event])

    def append_batch(self, events: Sequence[StreamEvent]) -> None:
        self.writer_threads.add(threading.current_thread().name)
        self.entered.set()
        assert self.gate.wait(10), "test gate never opened"
        if self.fail_with is not None:
            raise self.fail_with
        self.inner.append_batch(events)
        self.batches.append(len(events))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _seqs(store: EventStore, run_id: str) -> list[int | None]:
    return [e.seq for e in store.load(run_id)]


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)


# -- emit ----------------------------------------------------------------------------------------------


def test_emit_assigns_id_timestamp_and_seq_and_persists_before_notifying() -> None:
    """Each emit gets a new id, a timestamp and the next seq, and is stored before subscribers see it."""
    store = InMemoryEventStore()
    emitter = EventEmitter(store)
    stored_when_notified: list[bool] = []
    emitter.subscribe(lambda e: stored_when_notified.append(store.load(e.run_id)[-1] is e))
    first = emitter.emit(EventType.NODE_ENTER, "r", node="plan", step=1, namespace=("sub:1",))
    second = emitter.emit(EventType.NODE_EXIT, "r", node="plan", data={"outcome": "ok"})
    other = emitter.emit(EventType.LOG, "other-run", message="hi")
    assert first is not None and second is not None and other is not None
    assert (first.seq, second.seq, other.seq) == (1, 2, 1)
    assert first.id != second.id and first.timestamp <= second.timestamp
    assert (first.node, first.step, first.namespace) == ("plan", 1, ("sub:1",))
    assert store.load("r") == [first, second]
    assert stored_when_notified == [True, True, True]
    assert emitter.next_sequence("r") == 3


def test_subscribers_run_synchronously_in_subscription_order() -> None:
    """Every subscriber has seen the event, in subscription order, when emit returns."""
    emitter = EventEmitter()
    calls: list[tuple[str, int | None]] = []
    for name in ("a", "b", "c"):
        emitter.subscribe(lambda e, name=name: calls.append((name, e.seq)))
    emitter.emit(EventType.LOG, "r")
    assert calls == [("a", 1), ("b", 1), ("c", 1)]
    emitter.emit(EventType.LOG, "r")
    assert calls[3:] == [("a", 2), ("b", 2), ("c", 2)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"nod": "x"}, "unknown StreamEvent field.*nod"), ({"seq": 5}, "seq is assigned by the emitter")],
    ids=["typo", "seq"],
)
def test_unknown_field_raises_and_uses_no_seq(fields: dict[str, Any], message: str) -> None:
    """A misspelled or reserved field name raises EventValidationError; nothing is stored."""
    store = InMemoryEventStore()
    emitter = EventEmitter(store)
    with pytest.raises(EventValidationError, match=message):
        emitter.emit(EventType.LOG, "r", **fields)
    assert store.load("r") == []
    assert emitter.emit(EventType.LOG, "r").seq == 1  # type: ignore[union-attr]


def test_emit_event_keeps_the_callers_event_unchanged() -> None:
    """emit_event stores a copy with the assigned seq and leaves the caller's object as it was."""
    emitter = EventEmitter()
    mine = make_event(EventType.LOG, "r", message="x")
    stored = emitter.emit_event(mine)
    assert stored is not None and stored.seq == 1 and stored.id == mine.id
    assert mine.seq is None
    with pytest.raises(TypeError):
        emitter.emit_event({"type": "log"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "fields",
    [
        {"node": "n1", "step": 3, "scope_id": "s1", "namespace": ("outer:t1",)},
        {"node": "bad\udc80name", "step": 3},  # not storable as given: the validated path marks it
    ],
    ids=["plain", "sanitized"],
)
def test_emit_scoped_stores_what_emit_stores(fields: dict[str, Any]) -> None:
    """emit_scoped (fields checked once per scope) stores the same event as emit with those fields."""
    emitter = EventEmitter()
    checked = emitter.scope_fields("r", fields)
    fields["node"] = "changed later"  # the checked fields are a snapshot
    for data in (None, {"outcome": "ok", "duration_ms": 1.5, "nested": {"a": (1, 2)}}):
        ours = emitter.emit_scoped(EventType.NODE_EXIT, checked, data)
        kwargs = {**checked.fields, **({} if data is None else {"data": data})}
        theirs = emitter.emit(EventType.NODE_EXIT, "r", **kwargs)
        assert ours is not None and theirs is not None
        assert ours.model_dump(exclude={"id", "seq", "timestamp", "time_unix_nano"}) == theirs.model_dump(
            exclude={"id", "seq", "timestamp", "time_unix_nano"}
        )
        assert ours.__pydantic_fields_set__ == theirs.__pydantic_fields_set__
    assert [e.seq for e in emitter.store.load("r")] == [1, 2, 3, 4]
    with pytest.raises(EventValidationError, match=r"unknown StreamEvent field.*nod"):
        emitter.scope_fields("r", {"nod": "x"})


def _comparable(event: StreamEvent) -> dict[str, Any]:
    return {k: v for k, v in event.to_dict().items() if k not in {"id", "seq", "timestamp", "time_unix_nano"}}


def test_emit_scoped_checks_values_of_a_shape_it_has_seen() -> None:
    """A data shape found plain before still gets its numbers, key types and texts checked per event."""

    class Key(StrEnum):
        ATTEMPT = "attempt"

    emitter = EventEmitter()
    checked = emitter.scope_fields("r", {"node": "n"})
    seen = {"outcome": "ok", "duration_ms": 1.5, "attempt": 1, "note": "fine"}
    for data in (
        seen,
        seen,  # the shape is known now
        {**seen, "duration_ms": float("nan")},
        {**seen, "duration_ms": float("inf")},
        {**seen, "attempt": 10**700},
        {**seen, "attempt": 2**1100},  # no float holds it, yet short enough to stay a number
        {"attempt": 1e308, "n": 1e308},
        {"outcome": "ok", "duration_ms": 1.5, Key.ATTEMPT: 1, "note": "fine"},
        {**seen, "password": "hunter2"},
        {**seen, "note": "bad\udc80"},
    ):
        for _ in range(2):  # the first of a shape and a known one
            ours = emitter.emit_scoped(EventType.NODE_EXIT, checked, data)
            theirs = emitter.emit(EventType.NODE_EXIT, "r", node="n", data=data)
            assert ours is not None and theirs is not None
            assert _comparable(ours) == _comparable(theirs), data
            assert [type(key) for key in ours.data] == [str] * len(data)
    stored = emitter.store.load("r")[::4]  # ours, the first of each case
    assert stored[2].data["duration_ms"] is None and stored[4].sanitized == {"/data/attempt": "int_as_string"}
    assert stored[5].data["attempt"] == 2**1100 and stored[8].data["password"] == REDACTED
    assert stored[9].sanitized == {"/data/note": "surrogates_escaped"}


def test_emit_event_fresh_hands_the_event_over() -> None:
    """emit_event(fresh=True) stores the caller's own object with its seq assigned in place."""
    emitter = EventEmitter(processors=[])
    mine = make_event(EventType.LOG, "r", message="x")
    stored = emitter.emit_event(mine, fresh=True)
    assert stored is mine and mine.seq == 1
    assert emitter.store.load("r") == [mine]


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[int | None] = []

    def on_event(self, event: StreamEvent) -> None:
        self.seen.append(event.seq)


@pytest.mark.parametrize("how", ["returned-function", "unsubscribe-bound-method"])
def test_unsubscribe_stops_delivery(how: str) -> None:
    """After unsubscribing (by the returned function or by a fresh bound method) no event arrives."""
    emitter = EventEmitter()
    recorder = _Recorder()
    other = _Recorder()
    stop = emitter.subscribe(recorder.on_event)
    emitter.subscribe(other.on_event)
    emitter.emit(EventType.LOG, "r")
    if how == "returned-function":
        stop()
    else:
        emitter.unsubscribe(recorder.on_event)
    emitter.emit(EventType.LOG, "r")
    assert recorder.seen == [1]
    assert other.seen == [1, 2]
    emitter.unsubscribe(lambda e: None)


def test_failing_subscriber_is_logged_and_isolated(caplog: pytest.LogCaptureFixture) -> None:
    """A subscriber that raises is logged with its traceback; the others still run and emit succeeds."""
    emitter = EventEmitter()
    after: list[int | None] = []

    def broken(event: StreamEvent) -> None:
        raise RuntimeError("subscriber bug")

    emitter.subscribe(broken)
    emitter.subscribe(lambda e: after.append(e.seq))
    with caplog.at_level(logging.ERROR, logger="swarm_observability"):
        event = emitter.emit(EventType.LOG, "r")
    assert event is not None and event.seq == 1
    assert after == [1]
    (record,) = [r for r in caplog.records if "subscriber" in r.getMessage()]
    assert record.exc_info is not None and "subscriber bug" in str(record.exc_info[1])


def test_subscribe_refuses_non_callables() -> None:
    """Subscribing something that cannot be called raises TypeError at once."""
    with pytest.raises(TypeError, match="callable"):
        EventEmitter().subscribe("not a function")  # type: ignore[arg-type]


@pytest.mark.timeout(10)
@pytest.mark.parametrize("emit_from", ["loop", "worker-thread"])
async def test_async_subscriber_runs_on_its_loop_without_blocking_emit(emit_from: str) -> None:
    """emit returns while an async subscriber still waits; the subscriber then runs on the loop thread."""
    emitter = EventEmitter()
    release = asyncio.Event()
    finished: list[int | None] = []
    threads: list[int] = []

    async def slow(event: StreamEvent) -> None:
        threads.append(threading.get_ident())
        await release.wait()
        finished.append(event.seq)

    emitter.subscribe(slow)
    if emit_from == "loop":
        emitter.emit(EventType.LOG, "r")
    else:
        await asyncio.to_thread(emitter.emit, EventType.LOG, "r")
    assert finished == []
    release.set()
    await _until(lambda: bool(finished))
    assert finished == [1]
    assert threads == [threading.get_ident()]


@pytest.mark.timeout(10)
async def test_failing_async_subscriber_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """An exception inside an async subscriber is logged, not raised into emit."""
    emitter = EventEmitter()
    ran = asyncio.Event()

    async def broken(event: StreamEvent) -> None:
        ran.set()
        raise ValueError("async bug")

    emitter.subscribe(broken)
    with caplog.at_level(logging.ERROR, logger="swarm_observability"):
        assert emitter.emit(EventType.LOG, "r") is not None
        await ran.wait()
        await _until(lambda: any("async event subscriber" in r.getMessage() for r in caplog.records))
    (record,) = [r for r in caplog.records if "async event subscriber" in r.getMessage()]
    assert record.exc_info is not None and "async bug" in str(record.exc_info[1])


# -- replay --------------------------------------------------------------------------------------------


@pytest.mark.timeout(10)
@pytest.mark.parametrize("write", ["sync", "background"])
def test_replay_redelivers_stored_events_in_seq_order(write: str) -> None:
    """replay hands a run's stored events to the callback in seq order and returns how many it sent."""
    store = ControlledStore()
    emitter = EventEmitter(store, write=write)  # type: ignore[arg-type]
    for i in range(6):
        emitter.emit(EventType.LOG, "a" if i % 2 else "b", message=str(i))
    seen: list[StreamEvent] = []
    assert emitter.replay("a", seen.append) == 3
    assert [e.seq for e in seen] == [1, 2, 3] and [e.message for e in seen] == ["1", "3", "5"]
    assert emitter.replay("a", seen.append, after_seq=2) == 1
    assert emitter.replay("unknown", seen.append) == 0


@pytest.mark.timeout(10)
async def test_async_replay() -> None:
    """replay refuses an async callback; areplay awaits it for every event in order."""
    emitter = EventEmitter()
    for _ in range(3):
        emitter.emit(EventType.LOG, "r")
    seen: list[int | None] = []

    async def collect(event: StreamEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event.seq)

    with pytest.raises(TypeError, match="areplay"):
        emitter.replay("r", collect)
    assert await emitter.areplay("r", collect) == 3
    assert seen == [1, 2, 3]


# -- background writes ---------------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("flush", ["flush", "aflush"])
async def test_background_emit_does_not_wait_for_the_store_and_commits_in_groups(flush: str) -> None:
    """With the store stuck emits still return; then the backlog lands in one batch and flush waits for it."""
    store = ControlledStore()
    emitter = EventEmitter(store)
    assert emitter.write == "background"
    store.gate.clear()
    emitter.emit(EventType.SCAN_STARTED, "r")
    assert await asyncio.to_thread(store.entered.wait, 5)
    for i in range(50):
        emitter.emit(EventType.LOG, "r", message=str(i))
    assert store.inner.last_sequence("r") == 0
    store.gate.set()
    if flush == "flush":
        emitter.flush()
    else:
        await emitter.aflush()
    assert store.batches == [1, 50]
    assert _seqs(store, "r") == list(range(1, 52))
    assert store.writer_threads == {"swarm-obs-writer"}
    emitter.close()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("surface", ["flush", "aflush", "close"])
async def test_failed_background_write_surfaces_and_the_run_recovers(
    surface: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing background write raises EventStoreError on flush/aflush/close and is logged; seq resumes."""
    store = ControlledStore()
    emitter = EventEmitter(store)
    store.fail_with = OSError("disk full")
    with caplog.at_level(logging.ERROR, logger="swarm_observability"):
        for _ in range(3):
            emitter.emit(EventType.LOG, "r")
        with pytest.raises(EventStoreError, match="disk full") as info:
            if surface == "flush":
                emitter.flush()
            elif surface == "aflush":
                await emitter.aflush()
            else:
                emitter.close()
    assert isinstance(info.value.__cause__, OSError)
    assert any("could not store" in r.getMessage() and "'r'" in r.getMessage() for r in caplog.records)
    assert store.inner.load("r") == []
    assert emitter.stats().write_failures == 3
    store.fail_with = None
    if surface == "close":
        with pytest.raises(EventStoreError, match="closed"):
            emitter.emit(EventType.LOG, "r")
        return
    assert emitter.emit(EventType.LOG, "r").seq == 1  # type: ignore[union-attr]
    emitter.flush()
    assert _seqs(store, "r") == [1]
    emitter.close()


@pytest.mark.timeout(20)
async def test_cancelled_aflush_leaves_the_writer_working() -> None:
    """Cancelling an aflush() waiting on a stuck store does not kill the writer: later emits are stored."""
    store = ControlledStore()
    emitter = EventEmitter(store)
    store.gate.clear()
    emitter.emit(EventType.LOG, "r")
    assert await asyncio.to_thread(store.entered.wait, 5)
    waiting = asyncio.create_task(emitter.aflush())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    store.gate.set()
    emitter.emit(EventType.LOG, "r")
    await asyncio.to_thread(emitter.flush, 5)
    assert _seqs(store, "r") == [1, 2]
    emitter.close()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("write", ["sync", "background"])
def test_wait_stored_is_done_once_earlier_events_are_stored(write: str) -> None:
    """wait_stored() is None with nothing pending, else a future done once the store has the events."""
    store = ControlledStore()
    emitter = EventEmitter(store, write=write)  # type: ignore[arg-type]
    assert emitter.wait_stored() is None
    if write == "background":
        store.gate.clear()
    emitter.emit(EventType.LOG, "r")
    done = emitter.wait_stored()
    if write == "sync":
        assert done is None and _seqs(store, "r") == [1]
        return
    assert done is not None
    assert store.entered.wait(5)
    assert not done.done() and _seqs(store, "r") == []
    store.gate.set()
    done.result(5)
    assert _seqs(store, "r") == [1]
    emitter.close()


@pytest.mark.timeout(20)
async def test_wait_stored_does_not_raise_a_failed_write(caplog: pytest.LogCaptureFixture) -> None:
    """A failed background write completes wait_stored()'s future normally; the next flush raises it."""
    store = ControlledStore()
    emitter = EventEmitter(store)
    store.fail_with = OSError("disk full")
    with caplog.at_level(logging.CRITICAL, logger="swarm_observability"):
        emitter.emit(EventType.LOG, "r")
        done = emitter.wait_stored()
        assert done is not None
        await asyncio.shield(asyncio.wrap_future(done))
    assert done.exception() is None
    with pytest.raises(EventStoreError, match="disk full"):
        emitter.flush()
    emitter.close()


@pytest.mark.timeout(20)
def test_close_flushes_then_refuses_new_events() -> None:
    """close waits for every pending event to be stored, is idempotent, and later emits raise."""
    store = ControlledStore()
    emitter = EventEmitter(store)
    store.gate.clear()
    for _ in range(10):
        emitter.emit(EventType.LOG, "r")
    closer = threading.Thread(target=emitter.close)
    closer.start()
    assert store.entered.wait(5)
    assert store.inner.load("r") == []
    store.gate.set()
    closer.join(10)
    assert not closer.is_alive()
    assert _seqs(store, "r") == list(range(1, 11))
    emitter.close()
    with pytest.raises(EventStoreError, match="closed"):
        emitter.emit(EventType.LOG, "r")


@pytest.mark.timeout(20)
def test_idle_writer_exits_and_restarts_so_a_dropped_emitter_is_collected() -> None:
    """The writer thread stops when idle and restarts on the next emit, so a forgotten emitter is freed."""
    store = ControlledStore()
    emitter = EventEmitter(store)
    background = emitter._writer
    background.idle_timeout = 0.02
    emitter.emit(EventType.LOG, "r")
    writer = background.thread
    assert writer is not None
    writer.join(10)
    assert not writer.is_alive() and background.thread is None
    emitter.emit(EventType.LOG, "r")
    emitter.flush()
    assert _seqs(store, "r") == [1, 2]
    assert background.thread is not None and background.thread is not writer
    background.thread.join(10)
    del background
    ref = weakref.ref(emitter)
    del emitter
    gc.collect()
    assert ref() is None


@pytest.mark.timeout(20)
def test_a_dropped_emitter_stays_alive_while_its_writer_commits() -> None:
    """A background emitter dropped with events pending is kept by its writer thread until they are stored."""
    store = ControlledStore()
    store.gate.clear()
    emitter = EventEmitter(store, linger=0)
    emitter._writer.idle_timeout = 0.02
    emitter.emit(EventType.LOG, "r")
    assert store.entered.wait(10)
    writer = emitter._writer.thread
    assert writer is not None
    ref = weakref.ref(emitter)
    del emitter
    gc.collect()
    assert ref() is not None  # the writer thread holds it: the exit-time close would still see it
    store.gate.set()
    writer.join(10)
    gc.collect()
    assert ref() is None and _seqs(store, "r") == [1]


# -- sequence numbers ----------------------------------------------------------------------------------


@pytest.fixture(params=["memory", "sqlite", "jsonl"])
def reopenable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], EventStore]]:
    """A function that opens the same store again (the same object for the in-memory one)."""
    opened: list[EventStore] = []
    memory = InMemoryEventStore()

    def open_store() -> EventStore:
        if request.param == "memory":
            return memory
        store: EventStore = (
            SQLiteEventStore(tmp_path / "events.db")
            if request.param == "sqlite"
            else JSONLEventStore(tmp_path)
        )
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("write", ["sync", "background"])
def test_new_emitter_continues_the_stored_sequence(reopenable: Callable[[], EventStore], write: str) -> None:
    """An emitter on a store that already holds a run continues that run's seq (also after reopening)."""
    first_store = reopenable()
    with EventEmitter(first_store, write=write) as first:  # type: ignore[arg-type]
        for _ in range(3):
            first.emit(EventType.LOG, "r")
    if not isinstance(first_store, InMemoryEventStore):
        first_store.close()
    store = reopenable()
    with EventEmitter(store, write=write) as second:  # type: ignore[arg-type]
        assert second.next_sequence("r") == 4
        assert second.emit(EventType.LOG, "r").seq == 4  # type: ignore[union-attr]
        assert second.emit(EventType.LOG, "fresh").seq == 1  # type: ignore[union-attr]
    assert _seqs(store, "r") == [1, 2, 3, 4]


def test_forget_run_rereads_the_store_after_another_writer() -> None:
    """After forget_run the next emit continues from the store, without a conflict on the way."""
    store = InMemoryEventStore()
    mine, theirs = EventEmitter(store), EventEmitter(store)
    mine.emit(EventType.LOG, "r")
    theirs.emit(EventType.LOG, "r")
    mine.forget_run("r")
    assert mine.emit(EventType.LOG, "r").seq == 3  # type: ignore[union-attr]
    assert mine.stats().sequence_conflicts == 0


@pytest.mark.timeout(60)
@pytest.mark.parametrize("write", ["sync", "background"])
def test_concurrent_emits_from_eight_threads_give_a_gapless_log(write: str) -> None:
    """8 threads emitting to one run produce seqs 1..N with no gap or duplicate, each thread's in order."""
    store = ControlledStore()
    emitter = EventEmitter(store, write=write)  # type: ignore[arg-type]
    threads, per_thread = 8, 250
    start = threading.Barrier(threads)

    def work(worker: int) -> None:
        start.wait()
        for i in range(per_thread):
            emitter.emit(EventType.LOG, "r", agent=f"w{worker}", data={"i": i})

    try:
        run_in_threads(work, threads)
    finally:
        emitter.close()
    events = store.load("r")
    assert [e.seq for e in events] == list(range(1, threads * per_thread + 1))
    assert len({e.id for e in events}) == threads * per_thread
    for worker in range(threads):
        assert [e.data["i"] for e in events if e.agent == f"w{worker}"] == list(range(per_thread))


def test_emitter_settings_are_validated() -> None:
    """An unknown write mode or a max_batch under 1 raises ValueError."""
    with pytest.raises(ValueError, match="write"):
        EventEmitter(write="later")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_batch"):
        EventEmitter(max_batch=0)
    assert EventEmitter().write == "sync"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("flush", ["flush", "aflush", "close"])
async def test_writer_lingers_to_commit_a_burst_at_once_but_flush_does_not_wait(flush: str) -> None:
    """A burst of emits lands in one commit; flush, aflush and close end the linger, not wait it out."""
    store = ControlledStore()
    emitter = EventEmitter(store, write="background", linger=600)
    emitter.emit(EventType.LOG, "r", message="first")
    await asyncio.sleep(0.2)  # time for a writer that did not linger to commit the first event alone
    for i in range(19):
        emitter.emit(EventType.LOG, "r", message=str(i))
    if flush == "flush":
        emitter.flush()
    elif flush == "aflush":
        await emitter.aflush()
    else:
        emitter.close()
    assert store.batches == [20]
    assert _seqs(store, "r") == list(range(1, 21))
    emitter.close()


@pytest.mark.timeout(20)
def test_a_flush_with_nothing_to_commit_does_not_cut_the_next_linger_short() -> None:
    """A flush the writer answers without lingering (only a waiter queued) leaves no wake-up behind:
    the next burst still lingers and lands in one commit."""
    store = ControlledStore()
    emitter = EventEmitter(store, write="background", linger=600)
    emitter.emit(EventType.LOG, "r", message="first")
    emitter.flush()
    emitter.flush()  # the writer is alive and idle: this waiter arrives alone
    emitter.emit(EventType.LOG, "r", message="second")
    time.sleep(0.2)  # time for a writer whose linger ended at once to commit "second" alone
    emitter.emit(EventType.LOG, "r", message="third")
    emitter.flush()
    assert store.batches == [1, 2]
    emitter.close()


@pytest.mark.timeout(20)
def test_a_dense_burst_keeps_the_writer_lingering_a_sparse_event_does_not() -> None:
    """16+ events arriving within a linger extend it (a fast run lands in one commit); a lone event
    is committed after one linger, without a flush."""
    store = ControlledStore()
    emitter = EventEmitter(store, write="background", linger=0.3)
    for i in range(20):
        emitter.emit(EventType.LOG, "r", message=str(i))
    time.sleep(0.45)  # the first linger ended with 19 more events queued: the writer lingers again
    for i in range(20):
        emitter.emit(EventType.LOG, "r", message=str(i))
    deadline = time.monotonic() + 10
    while not store.batches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.batches == [40]
    emitter.emit(EventType.LOG, "r", message="alone")
    while len(store.batches) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.batches == [40, 1]
    emitter.close()


def test_a_backlog_is_committed_max_batch_events_at_a_time_before_the_flush_returns() -> None:
    """Events pending when the writer takes them go in commits of at most max_batch, in seq order."""
    store = ControlledStore()
    store.gate.clear()
    emitter = EventEmitter(store, write="background", max_batch=3, linger=0)
    emitter.emit(EventType.LOG, "r", message="held")
    assert store.entered.wait(10)  # the writer is inside the first commit: the rest piles up
    for i in range(7):
        emitter.emit(EventType.LOG, "r", message=str(i))
    store.gate.set()
    emitter.flush()
    assert store.batches == [1, 3, 3, 1]
    assert _seqs(store, "r") == list(range(1, 9))
    emitter.close()


def test_linger_must_not_be_negative() -> None:
    """A negative or NaN linger raises ValueError naming it."""
    for bad in (-0.001, float("nan")):
        with pytest.raises(ValueError, match="linger"):
            EventEmitter(linger=bad)


def test_a_store_of_another_kind_is_refused_at_once() -> None:
    """EventEmitter(store="events.db") is a TypeError naming the value, not a failed write per event later."""
    with pytest.raises(TypeError, match=r"^store must be an event store .*'events\.db' \(str\)$"):
        EventEmitter(store="events.db")  # type: ignore[arg-type]
