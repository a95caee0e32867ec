"""The emitter's per-run caches hold the runs in flight, not every run a long-lived process has seen."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from swarm_observability import EventEmitter, EventType, InvalidRunIdError, StreamEvent, SwarmObserver
from swarm_observability.stores.memory import InMemoryEventStore
from swarm_observability.stores.sqlite import SQLiteEventStore


class _State(TypedDict):
    n: int


def _graph() -> Any:
    builder = StateGraph(_State)
    builder.add_node("step", lambda state: {"n": state["n"] + 1})
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder


def _cached(emitter: EventEmitter) -> dict[str, int]:
    seqs = emitter._seqs
    return {
        "last": len(seqs.last),
        "committed": len(seqs.committed),
        "forgotten": len(seqs._forgotten),
        "heads": len(seqs.heads),
    }


class _GatedStore(InMemoryEventStore):
    """An in-memory store written in the background whose batch appends wait at a gate the test opens."""

    backend = "gated"

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def append_batch(self, events: Sequence[StreamEvent]) -> None:
        assert self.gate.wait(10), "test gate never opened"
        super().append_batch(events)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("chained", [False, True], ids=["plain", "hash_chain"])
def test_caches_stay_bounded_over_many_runs(kind: str, chained: bool, tmp_path: Path) -> None:
    """300 invocations of 300 threads leave at most one run cached, and every run's log is gapless."""
    store = InMemoryEventStore() if kind == "memory" else SQLiteEventStore(tmp_path / "events.db")
    emitter = EventEmitter(store, hash_chain=chained)
    observer = SwarmObserver(emitter=emitter, heartbeat_interval=None)
    graph = observer.instrument(_graph().compile())
    try:
        for i in range(300):
            assert graph.invoke({"n": i}, {"configurable": {"thread_id": f"t{i}"}}) == {"n": i + 1}
        sizes = _cached(emitter)
        assert all(size <= 1 for size in sizes.values()), sizes
        for i in (0, 150, 299):
            events = store.load(f"t{i}")
            assert [e.seq for e in events] == list(range(1, len(events) + 1))
            assert events[-1].type_name == "scan_complete"
    finally:
        observer.close()
        store.close()


def test_a_run_forgotten_with_events_queued_continues_from_them() -> None:
    """Forgotten while its events wait for the writer, a run resumes at the next seq; once they are
    stored, the next forget drops its entries."""
    store = _GatedStore()
    emitter = EventEmitter(store, write="background", linger=0)
    try:
        for _ in range(3):
            emitter.emit(EventType.LOG, "r")
        emitter.forget_run("r")
        assert _cached(emitter)["forgotten"] == 1
        assert emitter.emit(EventType.LOG, "r").seq == 4  # type: ignore[union-attr]
        emitter.forget_run("r")
        store.gate.set()
        emitter.flush()
        emitter.forget_run("other")  # any later forget finds r's events stored
        assert _cached(emitter) == {"last": 0, "committed": 0, "forgotten": 0, "heads": 0}
        assert emitter.emit(EventType.LOG, "r").seq == 5  # type: ignore[union-attr]
        emitter.flush()
        assert [e.seq for e in store.load("r")] == [1, 2, 3, 4, 5]
    finally:
        store.gate.set()
        emitter.close()


def test_a_failed_run_leaves_nothing_cached_once_forgotten(tmp_path: Path) -> None:
    """A run whose background commit failed is marked FAILED; forgetting it drops the mark too."""
    store = _GatedStore()
    emitter = EventEmitter(store, write="background", linger=0)
    original = store.append_batch

    def failing(events: Sequence[StreamEvent]) -> None:
        raise OSError("disk gone")

    store.append_batch = failing  # type: ignore[method-assign]
    try:
        emitter.emit(EventType.LOG, "r")
        with pytest.raises(Exception, match="disk gone"):
            emitter.flush()
        emitter.forget_run("r")
        assert _cached(emitter) == {"last": 0, "committed": 0, "forgotten": 0, "heads": 0}
        store.append_batch = original  # type: ignore[method-assign]
        store.gate.set()
        assert emitter.emit(EventType.LOG, "r").seq == 1  # type: ignore[union-attr]
    finally:
        store.gate.set()
        emitter.close()


@pytest.mark.parametrize("run_id", ["", "x" * 257, "a\nb", 7])
@pytest.mark.parametrize("reload", [False, True])
def test_forget_run_refuses_what_is_no_run_id(run_id: object, reload: bool) -> None:
    """forget_run of a value no store could hold as a run id raises InvalidRunIdError naming it."""
    emitter = EventEmitter(InMemoryEventStore())
    emitter.emit(EventType.LOG, "r")
    with pytest.raises(InvalidRunIdError):
        emitter.forget_run(run_id, reload=reload)  # type: ignore[arg-type]
    assert emitter.emit(EventType.LOG, "r").seq == 2  # type: ignore[union-attr]
