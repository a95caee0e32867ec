"""``BackgroundWriter``: the thread that group-commits a background :class:`EventEmitter`'s events.

An emitter with ``write="background"`` appends each event, seq assigned, to
:attr:`BackgroundWriter.pending` under its own lock, and neither sync nor async callers wait on disk
I/O: the writer thread commits everything pending in one ``append_batch``.
:meth:`~BackgroundWriter.waiter` (behind the emitter's ``flush``) gives a future done once every
event queued before it is durable. The thread exits after a few idle seconds and restarts with the
next event, so an emitter that is dropped without ``close()``
does not keep a thread (or itself) alive. It lingers a moment (``linger``, 10 ms by default) after
the first event of a burst, so that a run's events land in a few commits rather than one commit per
event, each of which would also wake the thread and take the GIL from the emitting thread; while the
burst stays dense (16 or more events a linger) it lingers again, up to five lingers in all. Flush
and close never wait for the linger. A store with a ``maintain()`` method (SQLite's WAL checkpoint)
gets it called after a commit whose waiters are answered, when nothing else is pending.

A failed commit is logged, counted, kept for the next :meth:`~BackgroundWriter.raise_errors` (the
emitter's ``flush``), and reported to the emitter through ``on_failure(run_id)`` so it forgets the
run's cached seq; the run continues from what the store has.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import queue
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from .event_model import StreamEvent
from .exceptions import EventStoreError
from .stores.base import EventStore

logger = logging.getLogger("swarm_observability")

IDLE_EXIT_S = 5.0
"""Seconds the writer thread waits for work before it exits."""
_MAX_LINGERS = 5
_DENSE = 16
FAILED = -1
"""The value of :attr:`BackgroundWriter.committed` for a run whose last commit failed."""


class BackgroundWriter:
    """The writer thread of one emitter and what it shares with the emitting threads.

    ``lock`` is the emitter's lock: the emitter assigns a seq and queues the event under it, so seqs
    reach the store in order, and this thread takes the pending events and the waiters at once
    under it, so every waiter comes after the events queued before it. ``pending`` holds the events
    of the next commit: the emitter appends to it, calling :meth:`start_batch` first when it is
    empty. ``committed`` is where it records the last seq committed per run (or :data:`FAILED`).
    ``thread`` is the running writer thread, ``None`` while idle (so never while ``pending`` has
    events); ``failures`` the number of events a commit could not store.
    The thread holds ``owner`` (the emitter; only a weak reference otherwise) while it runs, so an
    emitter dropped with events still pending stays alive for its exit-time close to commit them.
    """

    def __init__(
        self,
        store: EventStore,
        lock: threading.Lock,
        committed: dict[str, int],
        *,
        owner: object,
        max_batch: int,
        linger: float,
        on_failure: Callable[[str], None],
    ) -> None:
        self.store = store
        self._maintain: Callable[[], None] | None = getattr(store, "maintain", None)
        self._owner = weakref.ref(owner)
        self.max_batch = max_batch
        self.linger = linger
        self.on_failure = on_failure
        self.idle_timeout = IDLE_EXIT_S
        self.committed = committed
        self.failures = 0
        self.after_fork(lock)

    def after_fork(self, lock: threading.Lock) -> None:
        """Start afresh with ``lock`` (in a forked child: the parent's queued events stay the parent's)."""
        self.lock = lock
        self._wake = threading.Event()
        self._bell: queue.SimpleQueue[None] = queue.SimpleQueue()
        self.pending: list[StreamEvent] = []
        self._in_flight = False
        self._waiters: list[Future[None]] = []
        self._stopping = False
        self._errors: list[BaseException] = []
        self.thread: threading.Thread | None = None

    def start_batch(self) -> None:
        """Ring for a new batch, starting the thread if idle: the caller, holding ``lock``, is about to
        append the first event to an empty :attr:`pending` (while it is not empty the thread runs)."""
        if self.thread is None:
            self.thread = threading.Thread(
                target=self._write_loop, args=(self._owner(),), name="swarm-obs-writer", daemon=True
            )
            self.thread.start()
        self._bell.put(None)

    def waiter(self) -> Future[None] | None:
        """A future done once every event queued so far is stored; ``None`` if all of them already are.

        Idle is read first without the lock (then again under it): the thread is ``None`` only while
        nothing queued is pending, and a sync emitter, whose thread never starts, flushes for free.
        Under the lock, nothing pending and no commit in flight means the same, so a flush right after
        a run's events were committed (``invoke`` waited for them) does not wake the thread again.
        """
        if self.thread is None:
            return None
        with self.lock:
            if self.thread is None or not (self.pending or self._in_flight):
                return None
            done: Future[None] = Future()
            self._waiters.append(done)
            self._bell.put(None)
            self._wake.set()
            return done

    def stop(self) -> threading.Thread | None:
        """Make the thread commit what is pending and exit; returns it to join. The caller holds ``lock``."""
        thread, self.thread = self.thread, None
        if thread is not None:
            self._stopping = True
            self._bell.put(None)
            self._wake.set()
        return thread

    def raise_errors(self) -> None:
        """Raise :class:`EventStoreError` for the commits that failed since the last call, if any."""
        if self._errors:
            errors, self._errors = self._errors, []
            raise EventStoreError(
                f"{len(errors)} background write(s) failed; first: {errors[0]!r}"
            ) from errors[0]

    def _write_loop(self, owner: object) -> None:
        """Commit what is pending, then complete the waiters that came before; until stopped or idle
        (holding ``owner`` meanwhile).

        Emitters append to ``pending`` and flushes to ``_waiters`` under the lock, ringing
        ``_bell`` (a queue of ``None``, C-level on both sides; an event rings it only when its list
        was empty); this thread
        takes both lists at once under that lock, so every waiter comes after the events emitted
        before it, and a batch changes hands in one step rather than one queue operation an event.
        """
        while True:
            try:
                self._bell.get(timeout=self.idle_timeout)
            except queue.Empty:
                if self._idle_exit():
                    return
                continue
            if self.linger and self.pending and not self._waiters and not self._stopping:
                self._gather()
            # Cleared before taking the lists, so a flush that comes later sets it again; a wake left
            # set by a flush answered without lingering would end the next burst's linger at once.
            self._wake.clear()
            with self.lock:
                events, self.pending = self.pending, []
                self._in_flight = bool(events)
                waiters, self._waiters = self._waiters, []
                stop = self._stopping
                while not self._bell.empty():  # the rings of what is taken now (rung under this lock)
                    self._bell.get_nowait()
            for start in range(0, len(events), self.max_batch):
                self._commit(events[start : start + self.max_batch])
            self._in_flight = False  # committed (or failed and recorded): what a waiter waits for
            for waiter in waiters:
                if not waiter.done():  # a cancelled aflush() cancels its waiter
                    waiter.set_result(None)
            if stop:
                return
            if self._maintain is not None and events and not self.pending:
                self._housekeeping(self._maintain)

    def _gather(self) -> None:
        """Linger after the first event of a burst; keep lingering (up to ``_MAX_LINGERS`` in all)
        while the burst is dense, at least ``_DENSE`` new events a linger, and under ``max_batch``.

        A commit costs the emitting thread more than its events' share (a transaction's GIL
        hand-offs, page writes and fsync compete with it), so a fast run's events go in one or two
        commits; a sparse stream (a model call's few events a second) still waits one linger only.
        Ends at once when flush or close sets ``_wake``.
        """
        seen = 1  # the burst's first event; those after it, queued before this thread woke, count
        for _ in range(_MAX_LINGERS):
            if self._wake.wait(self.linger):
                return
            queued = len(self.pending)
            if queued - seen < _DENSE or queued >= self.max_batch:
                return
            seen = queued

    @staticmethod
    def _housekeeping(maintain: Callable[[], None]) -> None:
        """The store's ``maintain()`` (e.g. SQLite's WAL checkpoint), run once the waiters of a commit
        are answered and nothing is pending, so no one waits for it; it never stops the writer."""
        try:
            maintain()
        except Exception:
            logger.exception("event store maintenance failed")

    def _idle_exit(self) -> bool:
        if not self.lock.acquire(blocking=False):  # an emit is on its way: not idle
            return False
        try:
            if self.pending or self._waiters or self._stopping:
                return False
            if self.thread is threading.current_thread():
                self.thread = None
            return True
        finally:
            self.lock.release()

    def _commit(self, events: Sequence[StreamEvent]) -> None:
        try:
            self.store.append_batch(events)
        except Exception as exc:
            first = exc
        else:
            self.committed.update({event.run_id: event.seq for event in events})  # type: ignore[misc]
            return
        by_run: dict[str, list[StreamEvent]] = {}
        for event in events:
            by_run.setdefault(event.run_id, []).append(event)
        if len(by_run) == 1:
            self._fail(first, events)
            return
        for run_events in by_run.values():
            try:
                self.store.append_batch(run_events)
            except Exception as exc:
                self._fail(exc, run_events)
            else:
                self.committed[run_events[-1].run_id] = run_events[-1].seq  # type: ignore[assignment]

    def _fail(self, exc: BaseException, events: Sequence[StreamEvent]) -> None:
        run_id = events[0].run_id
        logger.error("could not store %d event(s) of run %r: %s", len(events), run_id, exc)
        self._errors.append(exc)
        self.failures += len(events)
        self.committed[run_id] = FAILED
        self.on_failure(run_id)


_open_emitters: weakref.WeakSet[Any] = weakref.WeakSet()


def close_at_exit(emitter: Any) -> None:
    """Have ``emitter`` closed (so flushed) at interpreter exit if it is still open then; weakly held."""
    _open_emitters.add(emitter)


def closed_in_time(emitter: Any) -> None:
    """``emitter`` was closed: nothing to do for it at exit."""
    _open_emitters.discard(emitter)


@atexit.register
def _close_open_emitters() -> None:
    for emitter in list(_open_emitters):
        with contextlib.suppress(Exception):
            emitter.close()
