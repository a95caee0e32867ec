"""The background writer's housekeeping hook: a store's maintain() runs after answered commits."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from swarm_observability.emitter import EventEmitter
from swarm_observability.events import EventType
from swarm_observability.stores.memory import InMemoryEventStore


class MaintainedStore(InMemoryEventStore):
    """An in-memory store with a ``maintain()`` that records when it ran (and can fail)."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.maintained = threading.Event()
        self.stored_when_maintained: list[int] = []

    def maintain(self) -> None:
        self.stored_when_maintained.append(self.last_sequence("r"))
        self.maintained.set()
        if self.fail:
            raise OSError("disk gone")


@pytest.mark.timeout(20)
def test_maintain_runs_after_a_flushed_commit() -> None:
    """After a commit whose flush was answered, the writer calls maintain() with every event stored."""
    store = MaintainedStore()
    emitter = EventEmitter(store, write="background")
    for i in range(5):
        emitter.emit(EventType.LOG, "r", message=str(i))
    emitter.flush()
    assert store.maintained.wait(5)
    assert store.stored_when_maintained[0] == 5
    emitter.close()


@pytest.mark.timeout(20)
def test_a_failing_maintain_is_logged_and_writing_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    """maintain() raising is logged; the writer keeps committing and flush still succeeds."""
    store = MaintainedStore(fail=True)
    emitter = EventEmitter(store, write="background")
    emitter.emit(EventType.LOG, "r", message="one")
    emitter.flush()
    assert store.maintained.wait(5)
    emitter.emit(EventType.LOG, "r", message="two")
    emitter.flush()
    assert store.last_sequence("r") == 2
    emitter.close()
    assert "event store maintenance failed" in caplog.text


class GatedStore(InMemoryEventStore):
    """An in-memory store whose appends wait for ``gate``."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def append_batch(self, events: Any) -> None:
        self.entered.set()
        assert self.gate.wait(10)
        super().append_batch(events)


@pytest.mark.timeout(20)
def test_wait_stored_is_none_once_everything_is_committed_and_waits_for_a_commit_in_flight() -> None:
    """wait_stored() gives no future when every event is committed (writer still running), and waits
    for a commit in flight even though nothing is pending any more."""
    store = GatedStore()
    emitter = EventEmitter(store, write="background", linger=0)
    emitter.emit(EventType.LOG, "r", message="one")
    assert store.entered.wait(5)  # taken from pending, commit in flight
    done = emitter.wait_stored()
    assert done is not None and not done.done()
    store.gate.set()
    done.result(5)
    assert store.last_sequence("r") == 1
    assert emitter._writer.thread is not None
    assert emitter.wait_stored() is None
    emitter.close()
