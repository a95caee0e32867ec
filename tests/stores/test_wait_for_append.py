"""The live-tail seam: ``wait_for_append`` returns when something may have been appended."""

from __future__ import annotations

import threading
import time

from swarm_observability.events import make_event
from swarm_observability.stores import InMemoryEventStore
from swarm_observability.stores.base import POLL_INTERVAL_S, wait_for_append


def test_memory_store_wakes_a_waiter_on_append_from_another_thread() -> None:
    """A waiter on the in-memory store returns True once another thread appends."""
    store = InMemoryEventStore()
    timer = threading.Timer(0.05, lambda: store.append(make_event("log", "r", seq=1)))
    timer.start()
    try:
        assert wait_for_append(store, 30.0) is True
        assert store.last_sequence("r") == 1
    finally:
        timer.join()


def test_memory_store_wait_times_out_without_appends() -> None:
    """With nothing appended the wait returns False after the timeout."""
    assert wait_for_append(InMemoryEventStore(), 0.01) is False


def test_default_is_a_short_poll_for_stores_without_their_own_wait() -> None:
    """A store without ``wait_for_append`` gets a sleep of at most the poll interval, then True."""

    class Plain:
        pass

    started = time.monotonic()
    assert wait_for_append(Plain(), 60.0) is True
    assert time.monotonic() - started < 5.0
    assert wait_for_append(Plain(), 0.0) is True
    assert POLL_INTERVAL_S < 1.0
