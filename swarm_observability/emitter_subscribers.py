"""``Subscribers``: delivering an emitter's events to its sync and async subscribers, and replays.

Every subscriber is called synchronously in subscription order; a subscriber that raises is logged and
skipped. Async subscribers (``async def`` callbacks) are scheduled as tasks on the event loop they
were subscribed from (or else the loop running ``emit``), so a slow one never blocks ``emit``; an
emit from another thread hands the coroutine to that loop thread-safely. Their backlog is bounded:
an async subscriber with ``max_pending`` deliveries still running gets no new ones until it catches
up; each skipped delivery is counted (``async_dropped`` in the emitter's stats), the first and every
10,000th logged. Sync subscribers never miss an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future
from functools import partial
from typing import Any

from .event_model import StreamEvent

logger = logging.getLogger("swarm_observability")

Subscriber = Callable[[StreamEvent], Any]
"""A sync callable, or an ``async def`` callable, taking the event."""


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


_Entry = tuple[Subscriber, asyncio.AbstractEventLoop | None, _Backlog | None]


class Subscribers:
    """The subscribers of one emitter and their deliveries.

    ``entries`` is replaced, never changed, on every subscribe and unsubscribe, so :meth:`notify`
    iterates a consistent list while other threads subscribe. ``errors`` counts the deliveries
    (sync or async) that raised.
    """

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self.entries: list[_Entry] = []
        self.errors = 0
        self._retired_drops = 0
        self._tasks: set[asyncio.Future[Any] | Future[Any]] = set()

    def after_fork(self) -> None:
        """In a forked child: async subscribers lose the parent's loop and unfinished deliveries."""
        self._tasks = set()
        self.entries = [
            (cb, None, None if backlog is None else _Backlog(backlog.limit))
            for cb, _, backlog in self.entries
        ]

    def add(self, callback: Subscriber) -> None:
        """Deliver every later event to ``callback`` (an async one on the running loop, if any)."""
        loop = None
        backlog = None
        if is_async(callback):
            backlog = _Backlog(self.max_pending)
            with contextlib.suppress(RuntimeError):
                loop = asyncio.get_running_loop()
        self.entries = [*self.entries, (callback, loop, backlog)]

    def remove(self, callback: Subscriber) -> None:
        """Stop delivering to ``callback`` (compared with ``==``); its skipped deliveries stay counted."""
        kept = [entry for entry in self.entries if entry[0] != callback]
        self._retired_drops += sum(b.dropped for cb, _, b in self.entries if cb == callback and b)
        self.entries = kept

    def pending(self) -> int:
        """Async deliveries scheduled and not finished yet."""
        return sum(b.pending for b in self._backlogs())

    def dropped(self) -> int:
        """Async deliveries skipped because their subscriber had ``max_pending`` unfinished."""
        return self._retired_drops + sum(b.dropped for b in self._backlogs())

    def _backlogs(self) -> Iterable[_Backlog]:
        return [backlog for _, _, backlog in self.entries if backlog is not None]

    def notify(self, event: StreamEvent) -> None:
        """Deliver ``event`` to every subscriber in order; one that raises is logged and skipped."""
        for callback, loop, backlog in self.entries:
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
                self.errors += 1
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
            self.errors += 1
            logger.error("async event subscriber %r failed", cb, exc_info=fut.exception())


def replay(events: Iterable[StreamEvent], callback: Subscriber) -> int:
    """Call sync ``callback`` (checked by the caller) with each of ``events`` in turn; returns the count.

    An exception from ``callback`` propagates and stops the replay; one that returns an awaitable
    raises :class:`TypeError`.
    """
    count = 0
    for event in events:
        result = callback(event)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise TypeError(f"replay() callback {callback!r} returned an awaitable; use areplay()")
        count += 1
    return count


async def areplay(events: Iterable[StreamEvent], callback: Subscriber) -> int:
    """:func:`replay` for async code: awaits ``callback`` (sync or async) for each event in turn."""
    count = 0
    for event in events:
        result = callback(event)
        if inspect.isawaitable(result):
            await result
        count += 1
    return count


def is_async(callback: Subscriber) -> bool:
    """Whether ``callback`` is an ``async def`` function or an object with an ``async def __call__``."""
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        getattr(callback, "__call__", None)  # noqa: B004
    )


async def _as_coro(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
