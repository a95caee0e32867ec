"""The background writer's housekeeping hook: a store's maintain() runs after answered commits."""

from __future__ import annotations

import threading

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
