"""One daemon thread that calls ``beat(key, now)`` for every registered key past its interval.

Generic over the key (the recorder passes scopes); of ours it imports only the fork registry.
Between wake-ups the thread holds no key: its own schedule is keyed by ``id(key)`` and the start
time, and every look at the keys happens inside :meth:`HeartbeatTimer._tick`, whose locals are gone
when it returns. So a finished run's scopes (and through them its config, state and checkpointer)
are not kept alive by a sleeping timer.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from .._fork import reinit_after_fork

K = TypeVar("K", bound=Hashable)


class HeartbeatTimer(Generic[K]):
    """Beat for every key registered longer than ``interval`` seconds, every ``interval`` seconds."""

    def __init__(self, interval: float, beat: Callable[[K, float], None]) -> None:
        self._interval = interval
        self._beat = beat
        self._due: dict[K, float] = {}
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._closed = False
        self._idle = False
        self._seen = False
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: the thread is gone and the open keys are the parent's; start afresh."""
        self._due = {}
        self._cond = threading.Condition(threading.Lock())
        self._thread = None
        self._idle = False
        self._seen = False

    def register(self, key: K, started: float) -> None:
        """Start beating for ``key`` (opened at ``started``, a ``perf_counter`` time)."""
        # Runs on every node open: the dict operations alone are atomic under the GIL, and the lock
        # is taken only to start the thread or wake it from its untimed wait. _loop sets _idle
        # before it looks at _due, and this writes _due before it reads _idle, so either the timer
        # sees the new key or this sees the timer idle.
        self._due[key] = started + self._interval
        self._seen = True
        if self._thread is None or self._idle:
            with self._cond:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(
                        target=self._loop, name="swarm-obs-heartbeat", daemon=True
                    )
                    self._thread.start()
                elif self._idle:
                    self._idle = False
                    self._cond.notify()

    def unregister(self, key: K) -> None:
        """Stop beating for ``key``."""
        self._due.pop(key, None)

    def close(self) -> None:
        """Stop the thread (waits up to 5 s for it)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        schedule: dict[tuple[int, float], float] = {}  # this thread's own: _due is written by others
        while True:
            with self._cond:
                while True:
                    self._idle = True
                    if self._due or self._closed:
                        break
                    schedule.clear()
                    if self._seen:  # keys came and went since the last look: stay awake one interval
                        self._seen = False
                        self._idle = False
                        self._cond.wait(self._interval)
                        continue
                    self._cond.wait()
                self._idle = False
                if self._closed:
                    return
            wait = self._tick(schedule)
            if wait is not None and wait > 0:
                with self._cond:
                    if not self._closed:
                        self._cond.wait(wait)

    def _tick(self, schedule: dict[tuple[int, float], float]) -> float | None:
        now = time.perf_counter()
        current: dict[tuple[int, float], float] = {}
        due = []
        for key, at in list(self._due.items()):
            slot = (id(key), at)
            next_at = schedule.get(slot, at)
            if next_at <= now:
                due.append(key)
                next_at = now + self._interval
            current[slot] = next_at
        schedule.clear()
        schedule.update(current)
        for key in due:
            with contextlib.suppress(Exception):
                self._beat(key, now)
        return min(schedule.values()) - now if schedule else None
