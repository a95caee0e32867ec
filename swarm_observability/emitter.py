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
  that group-commits everything pending in one ``append_batch`` (lingering a moment to gather a
  burst; see :mod:`swarm_observability.emitter_writer`), so neither sync nor async callers wait on
  disk I/O. :meth:`flush` (or ``await`` :meth:`aflush`) returns once every event emitted before it is
  durable, and raises :class:`EventStoreError` if a background write failed. :meth:`close` flushes;
  an ``atexit`` hook flushes emitters still open at interpreter exit.

Async subscribers run on an event loop, a bounded backlog each (skips counted in :meth:`EventEmitter.stats`;
see :mod:`swarm_observability.emitter_subscribers`); the store and sync subscribers never miss an event.

How seqs are found and kept (runs other processes append to as well): :mod:`swarm_observability.emitter_seq`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from typing import Any, Literal

from ._fork import reinit_after_fork
from .emitter_seq import RunSequences
from .emitter_stats import EmitterStats, SanitizedCount
from .emitter_subscribers import Subscriber, Subscribers, areplay, is_async, replay
from .emitter_writer import BackgroundWriter, close_at_exit, closed_in_time
from .event_fast import Shape, mark_seq, plain_event
from .events import (
    CALLER_FIELDS,
    EventType,
    ScopeFields,
    StreamEvent,
    caller_fields,
    copy_event,
    make_event,
    shaped_scope_event,
    storable_event,
    validate_run_id,
)
from .exceptions import EventStoreError, SequenceConflictError
from .processors import Processor, default_processors
from .processors_pipeline import Pipeline
from .stores.base import EventStore
from .stores.memory import store_or_memory

__all__ = ["EmitterStats", "EventEmitter", "Subscriber"]

_LINGER_S = 0.01
_MAX_PENDING = 1000


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
        self.store: EventStore = store_or_memory(store)
        self.hash_chain = bool(hash_chain)
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
        self._lock = threading.Lock()
        self._seqs = RunSequences(self.store, background=write == "background")
        self._last = self._seqs.last  # read and set on the hot path: one attribute read
        self._emitted = 0
        self._writer = BackgroundWriter(
            self.store,
            self._lock,
            self._seqs.committed,
            owner=self,
            max_batch=max_batch,
            linger=linger,
            on_failure=self._seqs.forget_failed,
        )
        self._delivery = Subscribers(max_pending)
        self._notify = self._delivery.notify
        self._subscribers = self._delivery.entries  # the hot path's test: one attribute read
        self._closed = False
        self._sanitized = SanitizedCount()
        close_at_exit(self)
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: fresh locks, queue and writer; the parent's queued events stay the parent's.

        The parent commits what it had queued, so the child dropping its copy means nothing is written
        twice; cached seqs are forgotten, since the parent may go on appending to the same runs.
        Async subscribers lose the parent's event loop (they run on the loop of the emitting code).
        """
        self._lock = threading.Lock()
        self._sanitized.after_fork()
        self._writer.after_fork(self._lock)
        self._seqs.after_fork()
        self._delivery.after_fork()
        self._subscribers = self._delivery.entries

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
        if not CALLER_FIELDS.issuperset(fields):
            fields = caller_fields(fields)
        event = plain_event(type, run_id, fields)
        if event is None:
            event = make_event(type, run_id, **fields)
            if event.sanitized is not None:
                self._sanitized.add(event)
        return self._publish(event, owned=True)

    def scope_fields(self, run_id: str, fields: dict[str, Any]) -> ScopeFields:
        """The fields shared by several events (one scope's), checked once, for :meth:`emit_scoped`.

        Raises:
            EventValidationError: an unknown field name, or an assigned one (``seq``) given a value.
        """
        if not CALLER_FIELDS.issuperset(fields):
            fields = caller_fields(fields)
        return ScopeFields(run_id, fields)

    def emit_scoped(
        self,
        type: EventType | str,
        fields: ScopeFields,
        data: dict[str, Any] | None = None,
        shape: Shape | None = None,
    ) -> StreamEvent | None:
        """:meth:`emit` of ``type`` with ``fields`` (see :meth:`scope_fields`) and ``data``, cheaper.

        The hot path of the instrumentation: a node's ``node_enter`` and ``node_exit`` share every field
        but ``data``, so they are validated once, not per event; ``shape``: see :func:`shaped_scope_event`.
        """
        event, shape = shaped_scope_event(type, fields, data, shape)
        if event.sanitized is not None:
            self._sanitized.add(event)
        return self._publish(event, owned=True, shape=shape)

    def emit_event(
        self, event: StreamEvent, *, fresh: bool = False, shape: Shape | None = None
    ) -> StreamEvent | None:
        """Like :meth:`emit` for an event built by the caller; its ``seq`` is (re)assigned.

        The caller's object is not changed: the stored event is a copy carrying the new seq. With
        ``fresh=True`` the event was just built by :func:`make_event` or :func:`make_scope_event` and
        is handed over: it is not validated again, and it gets its seq in place (one object shared
        by the caller, the store and the subscribers, unless a processor replaces it); ``shape``, if the
        caller has it, is its data's (see :func:`shaped_scope_event`), so the emitter need not find it.
        """
        if not isinstance(event, StreamEvent):
            raise TypeError(f"emit_event expects a StreamEvent, got {type(event).__name__}")
        if fresh and event.seq is None:
            if event.sanitized is not None:
                self._sanitized.add(event)
            return self._publish(event, owned=True, shape=shape)
        checked = storable_event(event)
        if checked is not event and checked.sanitized != event.sanitized:
            self._sanitized.add(checked)
        return self._publish(checked, owned=checked is not event)

    def _publish(self, event: StreamEvent, *, owned: bool, shape: Shape | None = None) -> StreamEvent | None:
        if self._closed:
            raise EventStoreError("the emitter is closed")
        processors: Sequence[Processor] = self.processors
        if processors:
            pipeline = self._pipeline
            if pipeline.processors != processors:  # the list was replaced or changed
                pipeline = self._pipeline = Pipeline(processors)
            processors = pipeline.for_event(event.__dict__, shape)
            if processors:  # else none can change it (most events)
                original = event
                for processor in processors:
                    processed = processor(event)
                    if processed is None:
                        return None
                    event = processed
                if event is not original:
                    owned = True
                    checked = storable_event(event)  # a processor's copy was not validated
                    if checked is not event and checked.sanitized != event.sanitized:
                        self._sanitized.add(checked)
                    event = checked
        with self._lock:
            if self._closed:
                raise EventStoreError("the emitter is closed")
            values = event.__dict__
            run_id = values["run_id"]
            last = self._last.get(run_id)
            if last is None:
                last = self._seqs.read_last(run_id)
            seq = last + 1
            if owned:  # built here and unseen: assigning seq in place is part of its construction
                values["seq"] = seq
                mark_seq(event)
            else:
                event = copy_event(event, seq=seq)
            if self.hash_chain:
                self._seqs.link(event, last)
            elif values["prev_hash"] is not None:  # a link of another log means nothing at this seq
                event = copy_event(event, prev_hash=None)
            if self.write == "sync":
                try:
                    self.store.append(event)
                except SequenceConflictError:
                    event = self._seqs.retry(event, hash_chain=self.hash_chain)
                    seq = event.seq  # type: ignore[assignment]
                except BaseException:
                    self._last.pop(run_id, None)
                    raise
            else:
                pending = self._writer.pending
                if not pending:
                    self._writer.start_batch()
                pending.append(event)
            self._last[run_id] = seq
            self._emitted += 1
            if self.hash_chain:
                self._seqs.record_head(event)
        if self._subscribers:
            self._notify(event)
        return event

    def next_sequence(self, run_id: str) -> int:
        """The seq the next event of ``run_id`` will get."""
        with self._lock:
            return self._seqs.next(run_id)

    def forget_run(self, run_id: str, *, reload: bool = False) -> None:
        """Drop a run's cached last seq (another process may have appended: a resumed thread), so the next
        emit reads the store; ``reload`` reads it now (off the loop). InvalidRunIdError for a bad id."""
        validate_run_id(run_id)
        with self._lock:
            if reload:
                self._seqs.reload(run_id, hash_chain=self.hash_chain)
            else:
                self._seqs.forget(run_id)

    def stats(self) -> EmitterStats:
        """Counters since creation: events, sanitized events, failed writes, seq retries, subscriber
        errors and skipped async deliveries (see :class:`EmitterStats`)."""
        return EmitterStats(
            emitted=self._emitted,
            sanitized_events=self._sanitized.value,
            write_failures=self._writer.failures,
            sequence_conflicts=self._seqs.conflicts,
            subscriber_errors=self._delivery.errors,
            async_pending=self._delivery.pending(),
            async_dropped=self._delivery.dropped(),
        )

    # -- subscribers ------------------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Deliver every later event to ``callback``; returns a function that unsubscribes it."""
        if not callable(callback):
            raise TypeError(f"subscriber must be callable, got {type(callback).__name__}")
        self._delivery.add(callback)
        self._subscribers = self._delivery.entries
        return lambda: self.unsubscribe(callback)

    def unsubscribe(self, callback: Subscriber) -> None:
        """Stop delivering to ``callback`` (compared with ``==``, so bound methods match); unknown: no-op."""
        self._delivery.remove(callback)
        self._subscribers = self._delivery.entries

    # -- replay -----------------------------------------------------------------------------------

    def replay(self, run_id: str, callback: Subscriber, *, after_seq: int = 0) -> int:
        """Re-deliver the stored events of a run to ``callback`` in seq order; returns the count.

        Flushes first, so every event emitted before the call is included. Unlike a live subscriber,
        an exception from ``callback`` propagates and stops the replay.

        Raises:
            TypeError: ``callback`` is async; use :meth:`areplay`.
        """
        if is_async(callback):
            raise TypeError(f"replay() needs a sync callback; await areplay() for {callback!r}")
        self.flush()
        return replay(self.store.iter_events(run_id, after_seq), callback)

    async def areplay(self, run_id: str, callback: Subscriber, *, after_seq: int = 0) -> int:
        """:meth:`replay` for async code: awaits ``callback`` (sync or async) for each event in turn."""
        await self.aflush()
        return await areplay(self.store.iter_events(run_id, after_seq), callback)

    # -- durability -------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event emitted so far is durable.

        Raises:
            EventStoreError: a background write failed since the last flush (the error is also logged;
                the events of that batch are lost, later events of the run continue from the store).
            TimeoutError: ``timeout`` seconds passed first.
        """
        done = self._writer.waiter()
        if done is not None:
            done.result(timeout)
        self._writer.raise_errors()

    async def aflush(self) -> None:
        """:meth:`flush` for async code: waits without blocking the event loop."""
        done = self._writer.waiter()
        if done is not None:
            await asyncio.wrap_future(done)
        self._writer.raise_errors()

    def wait_stored(self) -> Future[None] | None:
        """A future done once every event emitted so far is stored; ``None`` if nothing is pending.

        A non-blocking, non-raising :meth:`flush` (``future.result()`` in sync code, ``await
        asyncio.shield(asyncio.wrap_future(future))`` in async code); a failed background write completes
        it too (logged, raised by the next :meth:`flush`). A sync emitter, or an idle writer: ``None``.
        """
        return self._writer.waiter()

    def close(self) -> None:
        """Flush, stop the writer thread and close nothing else (the store is the caller's). Idempotent."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            with self._lock:
                self._closed = True
                writer = self._writer.stop()
            if writer is not None and writer is not threading.current_thread():
                writer.join()
            closed_in_time(self)

    def __enter__(self) -> EventEmitter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
