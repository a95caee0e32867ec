"""The heartbeat timer: beats for open keys, and no wake-up per node in a run of short nodes."""

from __future__ import annotations

import threading
import time

from swarm_observability.instrumentation._heartbeat import HeartbeatTimer


def _wait_until(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def test_short_keys_in_a_row_do_not_wake_the_timer_each_time() -> None:
    """Keys registered one after another (short nodes) find the timer awake, not parked."""
    timer: HeartbeatTimer[object] = HeartbeatTimer(5.0, lambda key, now: None)
    try:
        first = object()
        timer.register(first, time.perf_counter())
        timer.unregister(first)
        assert _wait_until(lambda: timer._thread is not None and not timer._due)
        time.sleep(0.05)  # the timer has looked at the empty schedule at least once by now
        parked = 0
        for _ in range(200):
            key = object()
            parked += timer._idle
            timer.register(key, time.perf_counter())
            timer.unregister(key)
        assert parked == 0
    finally:
        timer.close()


def test_timer_parks_after_an_interval_without_keys_and_still_beats() -> None:
    """With no key for a whole interval the timer parks; a new key wakes it and gets its beats."""
    beats: list[object] = []
    seen = threading.Event()

    def beat(key: object, now: float) -> None:
        beats.append(key)
        seen.set()

    timer: HeartbeatTimer[object] = HeartbeatTimer(0.05, beat)
    try:
        early = object()
        timer.register(early, time.perf_counter())
        timer.unregister(early)
        assert _wait_until(lambda: timer._idle)
        late = object()
        timer.register(late, time.perf_counter())
        assert seen.wait(5.0)
        assert beats and all(b is late for b in beats)
    finally:
        timer.close()
    assert timer._thread is not None and not timer._thread.is_alive()
