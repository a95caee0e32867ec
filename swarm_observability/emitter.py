"""``EventEmitter``: gives events their id, timestamp and seq, runs processors, persists, notifies.

Order of work in :meth:`EventEmitter.emit`: build and validate the event -> run the processors (a
processor may drop it, before a seq is used) -> under one lock, so seqs reach the store in order,
assign ``seq = last + 1`` and hand the event to the store. Then, outside the lock, every subscriber is
called synchronously in subscription order; a subscriber that raises is logged and skipped. Events of
one thread reach subscribers in seq order; events emitted concurrently by several threads may reach
them in a different order than their seqs (the store always has seq order; :meth:`replay` uses it).

What is durable when ``emit`` returns:

* ``write="sync"`` (the default for the in-memory store): the event is in the store.
* ``write="background"`` (the default for persistent stores): the event is queued for a writer thread
  that group-commits everything pending in one ``append_batch``, so neither sync nor async callers
  wait on disk I/O. :meth:`flush` (or ``await`` :meth:`aflush`) returns once every event emitted
  before it is durable, and raises :class:`EventStoreError` if a background write failed.
  :meth:`close` flushes; an ``atexit`` hook flushes emitters still open at interpreter exit. The
  writer thread exits after a few idle seconds and restarts on the next emit, so an emitter that is
  dropped without ``close()`` does not keep a thread (or itself) alive. The writer lingers a moment
  (``linger``, 10 ms by default) after the first event of a burst, so that a run's events land in a
  few commits rather than one commit per event, each of which would also wake the writer thread
  and take the GIL from the emitting thread; while the burst stays dense (16 or more events a
  linger) it lingers again, up to five lingers in all. Flush and close never wait for the linger.

Async subscribers (``async def`` callbacks) are scheduled as tasks on the event loop they were
subscribed from (or else the loop running ``emit``), so a slow one never blocks ``emit``; an emit
from another thread hands the coroutine to that loop thread-safely. Their backlog is bounded: an
async subscriber with ``max_pending`` deliveries still running gets no new ones until it catches
up; each skipped delivery is counted (:meth:`EventEmitter.stats`, ``async_dropped``), the first and
every 10,000th logged. The store and sync subscribers never miss an event.

The first emit of a run the emitter has no cached seq for reads ``store.last_sequence`` once; it
never waits for the background writer (which may be blocked on another process's lock): if the
emitter's own events of that run are still queued, their last seq is the answer. A sync emitter
that meets a :class:`SequenceConflictError` (another process appended to the run) re-reads the
last seq and retries the event once, so the run continues instead of failing from then on.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import inspect
import logging
import queue
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from ._fork import reinit_after_fork
from .chain import event_hash, genesis_hash
from .event_fast import plain_event
from .events import (
    EventType,
    ScopeFields,
    StreamEvent,
    copy_event,
    make_event,
    make_scope_event,
    mark_set,
    storable_event,
)
from .exceptions import EventStoreError, EventValidationError, SequenceConflictError
from .processors import Pipeline, Processor, default_processors
from .stores.base import EventStore
from .stores.memory import InMemoryEventStore

logger = logging.getLogger("swarm_observability")

Subscriber = Callable[[StreamEvent], Any]
"""A sync callable, or an ``async def`` callable, taking the event."""

_FIELDS = frozenset(StreamEvent.model_fields) - {"type", "run_id", "seq", "sanitized", "prev_hash"}
_ASSIGNED = {"seq": "the emitter", "sanitized": "validation", "prev_hash": "the hash chain"}
_IDLE_EXIT_S = 5.0
_LINGER_S = 0.01
_MAX_LINGERS = 5
_DENSE = 16
_MAX_PENDING = 1000
_FAILED = -1
_live_emitters: weakref.WeakSet[EventEmitter] = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class EmitterStats:
    """Counters of one :class:`EventEmitter` since it was created (for health checks and dashboards)."""

    emitted: int
    """Events accepted (given a seq and handed to the store)."""
    sanitized_events: int
    """Events stored with values replaced by their marked form (lone surrogates escaped, over-long
    integers as strings; see the event's ``sanitized`` field)."""
    write_failures: int
    """Events a background write could not store (each also raised by the next :meth:`flush`)."""
    sequence_conflicts: int
    """Sync appends that met another writer's seq and were retried with a fresh one."""
    subscriber_errors: int
    """Subscriber calls (sync or async) that raised; logged and skipped."""
    async_pending: int
    """Async subscriber deliveries scheduled and not finished yet."""
    async_dropped: int
    """Async subscriber deliveries skipped because that subscriber had ``max_pending`` unfinished."""


class _Backlog:
    """The unfinished deliveries of one async subscriber, capped (threads emit, its loop finishes)."""

    __slots__ = ("dropped", "limit", "lock", "pending")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending = 0
        self.dropped = 0
        self.lock = threading.Lock()

    def admit(self) -> bool:
        with self.lock:
            if self.pending >= self.limit:
                self.dropped += 1
                return False
            self.pending += 1
            return True

    def release(self, *_: object) -> None:
        with self.lock:
            self.pending -= 1


class EventEmitter:
    """Create, persist and deliver :class:`StreamEvent` records.

    Args:
        store: where events go; an :class:`InMemoryEventStore` when omitted.
        processors: the processor pipeline; :func:`default_processors` when omitted, ``[]`` for none.
        write: ``"sync"`` or ``"background"``; by default sync for the in-memory store and
            background for the others.
        max_batch: the most events one background commit takes.
        linger: seconds the background writer waits after the first pending event before it commits,
            to gather more (again while 16 or more events arrive a linger, five lingers at most);
            :meth:`flush` and :meth:`close` do not wait for it, but an event nobody flushes is
            stored up to five lingers later (a crash in between loses it). ``0``: at once.
        max_pending: the most unfinished deliveries one async subscriber may have; later events
            skip it (counted in :meth:`stats`) until it catches up.
        hash_chain: give every event the hash of the previous event of its run in ``prev_hash``
            (tamper evidence checked by ``swarm-obs verify``; see :mod:`swarm_observability.chain`).
            Costs one more serialization and a SHA-256 per event, and on the first event of a run
            that already has events, a read of its last one.

    Raises:
        ValueError: an unknown ``write`` mode, a ``max_batch`` or ``max_pending`` under 1 or a
            negative ``linger``.
    """

    def __init__(
        self,
        store: EventStore | None = None,
        *,
        processors: Iterable[Processor] | None = None,
        write: Literal["sync", "background"] | None = None,
        max_batch: int = 2000,
        linger: float = _LINGER_S,
        max_pending: int = _MAX_PENDING,
        hash_chain: bool = False,
    ) -> None:
        self.store: EventStore = store if store is not None else InMemoryEventStore()
        self.hash_chain = bool(hash_chain)
        self._heads: dict[str, tuple[int, str]] = {}
        self.processors: list[Processor] = list(default_processors() if processors is None else processors)
        self._pipeline = Pipeline(self.processors)
        if write is None:
            write = "sync" if getattr(self.store, "backend", None) == "memory" else "background"
        if write not in ("sync", "background"):
            raise ValueError(f"write must be 'sync' or 'background', not {write!r}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        if not linger >= 0:
            raise ValueError(f"linger must be a number of seconds >= 0, not {linger!r}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending}")
        self.write = write
        self._max_batch = max_batch
        self._linger = linger
        self._wake = threading.Event()
        self._idle_timeout = _IDLE_EXIT_S
        self._lock = threading.Lock()
        self._max_pending = max_pending
        self._last: dict[str, int] = {}
        self._forgotten: dict[str, int] = {}
        self._committed: dict[str, int] = {}
        self._emitted = 0
        self._write_failures = 0
        self._conflicts = 0
        self._subscriber_errors = 0
        self._subscribers: list[tuple[Subscriber, asyncio.AbstractEventLoop | None, _Backlog | None]] = []
        self._retired_drops = 0
        self._tasks: set[asyncio.Future[Any] | Future[Any]] = set()
        self._pending: list[StreamEvent] = []
        self._waiters: list[Future[None]] = []
        self._stopping = False
        self._bell: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._errors: list[BaseException] = []
        self._writer: threading.Thread | None = None
        self._closed = False
        self._stats_lock = threading.Lock()
        self._sanitized = 0
        _live_emitters.add(self)
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: fresh locks, queue and writer; the parent's queued events stay the parent's.

        The parent commits what it had queued, so the child dropping its copy means nothing is written
        twice; cached seqs are forgotten, since the parent may go on appending to the same runs.
        Async subscribers lose the parent's event loop (they run on the loop of the emitting code).
        """
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()
        self._wake = threading.Event()
        self._bell = queue.SimpleQueue()
        self._pending = []
        self._waiters = []
        self._stopping = False
        self._writer = None
        self._tasks = set()
        self._errors = []
        self._last.clear()
        self._forgotten.clear()
        self._committed.clear()
        self._heads.clear()
        self._subscribers = [
            (cb, None, None if backlog is None else _Backlog(backlog.limit))
            for cb, _, backlog in self._subscribers
        ]

    # -- emitting ---------------------------------------------------------------------------------

    def emit(self, type: EventType | str, run_id: str, **fields: Any) -> StreamEvent | None:
        """Create, persist and deliver one event; returns it, or ``None`` if a processor dropped it.

        ``fields`` are :class:`StreamEvent` fields (``node``, ``message``, ``data``, ``progress`` ...).

        Raises:
            EventValidationError: an invalid value, or an unknown field name (rather than storing it
                as an extra); ``seq`` is refused too, as the emitter assigns it.
            PayloadTooLargeError: a payload over the cap of a rejecting :class:`PayloadLimit`.
            EventStoreError: the emitter is closed, or a synchronous store append failed.
        """
        if not _FIELDS.issuperset(fields):
            fields = _without_unset_assigned(fields)
        event = plain_event(type, run_id, fields)
        if event is None:
            event = make_event(type, run_id, **fields)
            if event.sanitized is not None:
                self._count_sanitized(event)
        return self._publish(event, owned=True)

    def scope_fields(self, run_id: str, fields: dict[str, Any]) -> ScopeFields:
        """The fields shared by several events (one scope's), checked once, for :meth:`emit_scoped`.

        Raises:
            EventValidationError: an unknown field name, or an assigned one (``seq``) given a value.
        """
        if not _FIELDS.issuperset(fields):
            fields = _without_unset_assigned(fields)
        return ScopeFields(run_id, fields)

    def emit_scoped(
        self, type: EventType | str, fields: ScopeFields, data: dict[str, Any] | None = None
    ) -> StreamEvent | None:
        """:meth:`emit` of ``type`` with ``fields`` (see :meth:`scope_fields`) and ``data``, cheaper.

        The hot path of the instrumentation: a node's ``node_enter`` and ``node_exit`` share every
        field but ``data``, so they are validated once, not per event. Raises as :meth:`emit` does.
        """
        event = make_scope_event(type, fields, data)
        if event.sanitized is not None:
            self._count_sanitized(event)
        return self._publish(event, owned=True)

    def emit_event(self, event: StreamEvent, *, fresh: bool = False) -> StreamEvent | None:
        """Like :meth:`emit` for an event built by the caller; its ``seq`` is (re)assigned.

        The caller's object is not changed: the stored event is a copy carrying the new seq. With
        ``fresh=True`` the event was just built by :func:`make_event` or :func:`make_scope_event` and
        is handed over: it is not validated again, and it gets its seq in place (one object shared
        by the caller, the store and the subscribers, unless a processor replaces it).
        """
        if not isinstance(event, StreamEvent):
            raise TypeError(f"emit_event expects a StreamEvent, got {type(event).__name__}")
        if fresh and event.seq is None:
            return self._publish(event, owned=True)
        checked = storable_event(event)
        if checked is not event and checked.sanitized != event.sanitized:
            self._count_sanitized(checked)
        return self._publish(checked, owned=checked is not event)

    def _publish(self, event: StreamEvent, *, owned: bool) -> StreamEvent | None:
        if self._closed:
            raise EventStoreError("the emitter is closed")
        original = event
        processors: Sequence[Processor] = self.processors
        if processors:
            pipeline = self._pipeline
            if pipeline.processors != processors:  # the list was replaced or changed
                pipeline = self._pipeline = Pipeline(processors)
            values = event.__dict__
            if not values["message"]:
                processors = pipeline.for_data(values["data"])
            for processor in processors:
                processed = processor(event)
                if processed is None:
                    return None
                event = processed
        if event is not original:
            owned = True
            checked = storable_event(event)  # a processor's copy was not validated
            if checked is not event and checked.sanitized != event.sanitized:
                self._count_sanitized(checked)
            event = checked
        with self._lock:
            if self._closed:
                raise EventStoreError("the emitter is closed")
            values = event.__dict__
            run_id = values["run_id"]
            last = self._last.get(run_id)
            if last is None:
                last = self._sync_last(run_id)
            seq = last + 1
            if owned:  # built here and unseen: assigning seq in place is part of its construction
                values["seq"] = seq
                mark_set(event, "seq")
            else:
                event = copy_event(event, seq=seq)
            if self.hash_chain:
                self._set_link(event, last)
            elif values["prev_hash"] is not None:  # a link of another log means nothing at this seq
                event = copy_event(event, prev_hash=None)
            if self.write == "sync":
                try:
                    self.store.append(event)
                except SequenceConflictError:
                    event = self._retry_after_conflict(event)
                    seq = event.seq  # type: ignore[assignment]
                except BaseException:
                    self._last.pop(run_id, None)
                    raise
            else:
                self._ensure_writer()
                pending = self._pending
                if not pending:
                    self._bell.put(None)
                pending.append(event)
            self._last[run_id] = seq
            self._emitted += 1
            if self.hash_chain:
                self._heads[run_id] = (event.seq, event_hash(event))  # type: ignore[assignment]
        if self._subscribers:
            self._notify(event)
        return event

    def _retry_after_conflict(self, event: StreamEvent) -> StreamEvent:
        """Another writer appended to the run: re-read its last seq and append once more (locked).

        Safe to re-number: nobody has seen the event yet (subscribers are called after the append).
        A second conflict raises, and the next emit of the run reads the store again.
        """
        self._last.pop(event.run_id, None)
        self._conflicts += 1
        event.__dict__["seq"] = seq = self.store.last_sequence(event.run_id) + 1  # its seq is in place
        if self.hash_chain:
            self._set_link(event, seq - 1)
        self.store.append(event)
        return event

    def _set_link(self, event: StreamEvent, last: int) -> None:
        """Set ``event.prev_hash`` to the link to seq ``last`` of its run (the emitter owns ``event``)."""
        run_id = event.run_id
        cached = self._heads.get(run_id)
        if cached is not None and cached[0] == last:
            previous = cached[1]
        elif last == 0:
            previous = genesis_hash(run_id)
        else:
            stored = self.store.load_since(run_id, last - 1)
            previous = event_hash(stored[-1]) if stored else genesis_hash(run_id)
        event.__dict__["prev_hash"] = previous
        mark_set(event, "prev_hash")

    def _sync_last(self, run_id: str) -> int:
        """The last seq of a run missing from the cache, never waiting for the background writer."""
        if self.write == "background":
            queued = self._forgotten.pop(run_id, None)
            committed = self._committed.get(run_id)
            if queued is not None and committed != queued and committed != _FAILED:
                return queued  # our own events of the run are still on their way to the store
        return self.store.last_sequence(run_id)

    def next_sequence(self, run_id: str) -> int:
        """The seq the next event of ``run_id`` will get."""
        with self._lock:
            last = self._last.get(run_id)
            if last is None:
                last = self._last[run_id] = self._sync_last(run_id)
            return last + 1

    def forget_run(self, run_id: str) -> None:
        """Drop the cached last seq of a run, so the next emit reads it from the store again.

        Needed when another process may have appended to the run since (a resumed thread).
        """
        with self._lock:
            last = self._last.pop(run_id, None)
            if last is not None and self.write == "background":
                self._forgotten[run_id] = last

    def _count_sanitized(self, event: StreamEvent) -> None:
        with self._stats_lock:
            self._sanitized += 1
            first = self._sanitized == 1
        log = logger.warning if first else logger.debug
        log(
            "a %s event of run %r held values no store can keep as they are; stored in a marked form: %s",
            event.type_name,
            event.run_id,
            event.sanitized,
        )

    def stats(self) -> EmitterStats:
        """Counters since creation: events, sanitized events, failed writes, seq retries, subscriber
        errors and skipped async deliveries (see :class:`EmitterStats`)."""
        backlogs = [backlog for _, _, backlog in self._subscribers if backlog is not None]
        with self._stats_lock:
            sanitized = self._sanitized
        return EmitterStats(
            emitted=self._emitted,
            sanitized_events=sanitized,
            write_failures=self._write_failures,
            sequence_conflicts=self._conflicts,
            subscriber_errors=self._subscriber_errors,
            async_pending=sum(b.pending for b in backlogs),
            async_dropped=self._retired_drops + sum(b.dropped for b in backlogs),
        )

    # -- subscribers ------------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Deliver every later event to ``callback``; returns a function that unsubscribes it."""
        if not callable(callback):
            raise TypeError(f"subscriber must be callable, got {type(callback).__name__}")
        loop = None
        backlog = None
        if _is_async(callback):
            backlog = _Backlog(self._max_pending)
            with contextlib.suppress(RuntimeError):
                loop = asyncio.get_running_loop()
        self._subscribers = [*self._subscribers, (callback, loop, backlog)]
        return lambda: self.unsubscribe(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        """Stop delivering to ``callback`` (compared with ``==``, so bound methods match); unknown: no-op."""
        kept = [entry for entry in self._subscribers if entry[0] != callback]
        self._retired_drops += sum(b.dropped for cb, _, b in self._subscribers if cb == callback and b)
        self._subscribers = kept

    def _notify(self, event: StreamEvent) -> None:
        for callback, loop, backlog in self._subscribers:
            if backlog is not None and not backlog.admit():
                if backlog.dropped == 1 or backlog.dropped % 10_000 == 0:
                    logger.warning(
                        "async subscriber %r has %d deliveries pending; skipping it (%d skipped so far)",
                        callback,
                        backlog.limit,
                        backlog.dropped,
                    )
                continue
            try:
                result = callback(event)
                if result is not None and inspect.isawaitable(result):
                    self._schedule(result, loop, callback, backlog)
                elif backlog is not None:
                    backlog.release()
            except Exception:
                if backlog is not None:
                    backlog.release()
                self._subscriber_errors += 1
                logger.exception(
                    "event subscriber %r failed on %s; it was skipped", callback, event.type_name
                )

    def _schedule(
        self,
        awaitable: Awaitable[Any],
        loop: asyncio.AbstractEventLoop | None,
        cb: Subscriber,
        backlog: _Backlog | None,
    ) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        target = loop or running
        if target is None or target.is_closed():
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            if backlog is not None:
                backlog.release()
            logger.warning("async subscriber %r skipped: no event loop to run it on", cb)
            return
        fut: asyncio.Future[Any] | Future[Any]
        if target is running:
            fut = asyncio.ensure_future(awaitable)
        else:
            fut = asyncio.run_coroutine_threadsafe(_as_coro(awaitable), target)
        self._tasks.add(fut)
        fut.add_done_callback(partial(self._task_done, cb, backlog))

    def _task_done(
        self, cb: Subscriber, backlog: _Backlog | None, fut: asyncio.Future[Any] | Future[Any]
    ) -> None:
        self._tasks.discard(fut)
        if backlog is not None:
            backlog.release()
        if not fut.cancelled() and fut.exception() is not None:
            self._subscriber_errors += 1
            logger.error("async event subscriber %r failed", cb, exc_info=fut.exception())

    # -- replay -----------------------------------------------------------------------------------

    def replay(self, run_id: str, callback: Subscriber, *, after_seq: int = 0) -> int:
        """Re-deliver the stored events of a run to ``callback`` in seq order; returns the count.

        Flushes first, so every event emitted before the call is included. Unlike a live subscriber,
        an exception from ``callback`` propagates and stops the replay.

        Raises:
            TypeError: ``callback`` is async; use :meth:`areplay`.
        """
        if _is_async(callback):
            raise TypeError(f"replay() needs a sync callback; await areplay() for {callback!r}")
        self.flush()
        count = 0
        for event in self.store.iter_events(run_id, after_seq):
            result = callback(event)
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise TypeError(f"replay() callback {callback!r} returned an awaitable; use areplay()")
            count += 1
        return count

    async def areplay(self, run_id: str, callback: Subscriber, *, after_seq: int = 0) -> int:
        """:meth:`replay` for async code: awaits ``callback`` (sync or async) for each event in turn."""
        await self.aflush()
        count = 0
        for event in self.store.iter_events(run_id, after_seq):
            result = callback(event)
            if inspect.isawaitable(result):
                await result
            count += 1
        return count

    # -- durability -------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event emitted so far is durable.

        Raises:
            EventStoreError: a background write failed since the last flush (the error is also logged;
                the events of that batch are lost, later events of the run continue from the store).
            TimeoutError: ``timeout`` seconds passed first.
        """
        done = self._enqueue_waiter()
        if done is not None:
            done.result(timeout)
        self._raise_errors()

    async def aflush(self) -> None:
        """:meth:`flush` for async code: waits without blocking the event loop."""
        done = self._enqueue_waiter()
        if done is not None:
            await asyncio.wrap_future(done)
        self._raise_errors()

    def wait_stored(self) -> Future[None] | None:
        """A future done once every event emitted so far is stored; ``None`` if nothing is pending.

        A non-blocking, non-raising :meth:`flush`: wait with ``future.result()`` in sync code or
        ``await asyncio.shield(asyncio.wrap_future(future))`` in async code. A failed background write
        also completes the future; the error is logged and left for the next :meth:`flush` to raise.
        A sync emitter (and a background one whose writer is idle) has nothing pending: ``None``.
        """
        return self._enqueue_waiter()

    def close(self) -> None:
        """Flush, stop the writer thread and close nothing else (the store is the caller's). Idempotent."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            with self._lock:
                self._closed = True
                writer, self._writer = self._writer, None
                if writer is not None:
                    self._stopping = True
                    self._bell.put(None)
                    self._wake.set()
            if writer is not None and writer is not threading.current_thread():
                writer.join()
            _live_emitters.discard(self)

    def __enter__(self) -> EventEmitter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _raise_errors(self) -> None:
        if self._errors:
            errors, self._errors = self._errors, []
            raise EventStoreError(
                f"{len(errors)} background write(s) failed; first: {errors[0]!r}"
            ) from errors[0]

    def _enqueue_waiter(self) -> Future[None] | None:
        with self._lock:
            if self._writer is None:
                return None
            done: Future[None] = Future()
            self._waiters.append(done)
            self._bell.put(None)
            self._wake.set()
            return done

    def _ensure_writer(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_loop, name="swarm-obs-writer", daemon=True)
            self._writer.start()

    def _write_loop(self) -> None:
        """Commit what is pending, then complete the waiters that came before; until stopped or idle.

        Emitters append to ``_pending`` and flushes to ``_waiters`` under the emitter's lock, ringing
        ``_bell`` (a queue of ``None``, C-level on both sides; an event rings it only when its list
        was empty); this thread
        takes both lists at once under that lock, so every waiter comes after the events emitted
        before it, and a batch changes hands in one step rather than one queue operation an event.
        """
        while True:
            try:
                self._bell.get(timeout=self._idle_timeout)
            except queue.Empty:
                if self._idle_exit():
                    return
                continue
            if self._linger and self._pending and not self._waiters and not self._stopping:
                self._gather()
            # Cleared before taking the lists, so a flush that comes later sets it again; a wake left
            # set by a flush answered without lingering would end the next burst's linger at once.
            self._wake.clear()
            with self._lock:
                events, self._pending = self._pending, []
                waiters, self._waiters = self._waiters, []
                stop = self._stopping
                while not self._bell.empty():  # the rings of what is taken now (rung under this lock)
                    self._bell.get_nowait()
            for start in range(0, len(events), self._max_batch):
                self._commit(events[start : start + self._max_batch])
            for waiter in waiters:
                if not waiter.done():  # a cancelled aflush() cancels its waiter
                    waiter.set_result(None)
            if stop:
                return

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
            if self._wake.wait(self._linger):
                return
            queued = len(self._pending)
            if queued - seen < _DENSE or queued >= self._max_batch:
                return
            seen = queued

    def _idle_exit(self) -> bool:
        if not self._lock.acquire(blocking=False):  # an emit is on its way: not idle
            return False
        try:
            if self._pending or self._waiters or self._stopping:
                return False
            if self._writer is threading.current_thread():
                self._writer = None
            return True
        finally:
            self._lock.release()

    def _commit(self, events: Sequence[StreamEvent]) -> None:
        try:
            self.store.append_batch(events)
        except Exception as exc:
            first = exc
        else:
            self._committed.update({event.run_id: event.seq for event in events})  # type: ignore[misc]
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
                self._committed[run_events[-1].run_id] = run_events[-1].seq  # type: ignore[assignment]

    def _fail(self, exc: BaseException, events: Sequence[StreamEvent]) -> None:
        run_id = events[0].run_id
        logger.error("could not store %d event(s) of run %r: %s", len(events), run_id, exc)
        self._errors.append(exc)
        self._write_failures += len(events)
        self._committed[run_id] = _FAILED
        self._last.pop(run_id, None)
        self._forgotten.pop(run_id, None)
        self._heads.pop(run_id, None)


def _without_unset_assigned(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` without the assigned fields left ``None`` (as ``event.model_dump()`` has them), or
    :class:`EventValidationError` for an unknown field or an assigned one given a value."""
    unknown = {name for name in fields.keys() - _FIELDS if name not in _ASSIGNED or fields[name] is not None}
    if unknown:
        reserved = sorted(unknown & _ASSIGNED.keys())
        hint = "".join(f" ({name} is assigned by {_ASSIGNED[name]})" for name in reserved)
        raise EventValidationError(f"unknown StreamEvent field(s): {', '.join(sorted(unknown))}{hint}")
    return {name: value for name, value in fields.items() if name in _FIELDS}


def _is_async(callback: Subscriber) -> bool:
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        getattr(callback, "__call__", None)  # noqa: B004
    )


async def _as_coro(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


@atexit.register
def _flush_at_exit() -> None:
    for emitter in list(_live_emitters):
        with contextlib.suppress(Exception):
            emitter.close()
