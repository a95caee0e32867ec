"""Live streams over Server-Sent Events, following a store that any process may be writing.

One :class:`StoreWatcher` thread per app notices appends (``store.runs()`` compared with what it saw,
after :func:`~swarm_observability.stores.base.wait_for_append`) and wakes the streams that care.

* **Run streams** (``/api/runs/{id}/stream``) read the run's log from the store themselves, one page
  after the seq they last sent: the SSE ``id`` is the event's seq, so a reconnect with
  ``Last-Event-ID`` resumes exactly after it. A slow client only falls behind in the store; its
  memory is one page, and its lag is visible in ``/api/health``.
* **The all-events stream** (``/api/events/stream``) is served from a ring of the newest events the
  watcher saw (shared by every client, bounded). Its ids are ``<server instance>-<position>``; a
  client that falls out of the ring (too slow, or away too long) is told how many events it missed
  (an ``event: gap`` message), counted in ``/api/health``, and goes on from the oldest kept event. A
  client holding an id of another server instance gets ``event: reset`` and continues from now.

Heartbeats (an SSE comment) go out when nothing else was sent for ``heartbeat`` seconds, so proxies
keep the connection and dead clients are noticed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..events import StreamEvent
from ..stores.base import EventStore, wait_for_append

logger = logging.getLogger("swarm_observability.server")

PAGE = 500
"""Events a run stream reads from the store at a time (its memory per client)."""
_PAGE_CACHE = 32


@dataclass(eq=False)
class _Waiter:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event
    run_id: str | None
    """The run this client follows, ``None`` for the all-events stream."""
    sent: int = 0
    """Last seq (run stream) or ring position (all-events stream) sent."""
    connected_at: float = field(default_factory=time.time)


class StoreWatcher:
    """Notices appends to ``store`` in one background thread and wakes the subscribed streams.

    Args:
        store: the store to follow (another process may be writing it).
        ring_size: events kept for the all-events stream.
        poll_timeout: longest wait for an append between two looks at the store.
    """

    def __init__(self, store: EventStore, *, ring_size: int = 10_000, poll_timeout: float = 1.0) -> None:
        self.store = store
        self.instance = secrets.token_hex(4)
        self.ring: deque[tuple[int, StreamEvent]] = deque(maxlen=ring_size)
        self.position = 0
        self.gaps = 0
        self.missed_events = 0
        self.errors = 0
        self._poll_timeout = poll_timeout
        self._known: dict[str, int] | None = None
        self._waiters: set[_Waiter] = set()
        self._pages: OrderedDict[tuple[str, int], tuple[int, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.last_look: float | None = None

    # -- subscriptions ----------------------------------------------------------------------------

    def subscribe(self, run_id: str | None) -> _Waiter:
        """Register the calling coroutine's stream; the thread runs while any stream is subscribed."""
        waiter = _Waiter(asyncio.get_running_loop(), asyncio.Event(), run_id)
        with self._start_lock:
            with self._lock:
                self._waiters.add(waiter)
                running = self._thread is not None and self._thread.is_alive()
            if not running:
                # Catch up before the first read, so a resuming client sees the ring as it is now.
                self.look(initial=self._known is None)
                self._stop.clear()
                thread = threading.Thread(target=self._run, name="swarm-obs-watcher", daemon=True)
                with self._lock:
                    self._thread = thread
                thread.start()
        return waiter

    def unsubscribe(self, waiter: _Waiter) -> None:
        """Forget a stream (its client went away)."""
        with self._lock:
            self._waiters.discard(waiter)

    def clients(self) -> list[_Waiter]:
        """The streams connected now."""
        with self._lock:
            return list(self._waiters)

    @property
    def running(self) -> bool:
        """Whether the thread is following the store (only while a stream is subscribed)."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def stop(self) -> None:
        """Stop the thread (the app shuts down)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)

    # -- pages of run streams ---------------------------------------------------------------------

    def run_page(self, run_id: str, after: int) -> tuple[int, str]:
        """The SSE text of the next page of ``run_id`` after seq ``after``, and the last seq in it.

        Clients replaying the same run read the same pages, so full pages (which can no longer change:
        the log is append-only) are kept in a small cache and serialized once for all of them.
        """
        key = (run_id, after)
        with self._lock:
            cached = self._pages.get(key)
            if cached is not None:
                self._pages.move_to_end(key)
                return cached
        page = read_page(self.store, run_id, after)
        if not page:
            return after, ""
        result = (page[-1].seq or after, "".join(sse(_event_json(e), id=str(e.seq)) for e in page))
        if len(page) == PAGE:
            with self._lock:
                self._pages[key] = result
                while len(self._pages) > _PAGE_CACHE:
                    self._pages.popitem(last=False)
        return result

    # -- the ring of the all-events stream ----------------------------------------------------------

    def since(self, position: int) -> tuple[int, list[tuple[int, StreamEvent]]]:
        """Events after ``position`` in the ring, and how many were dropped from it in between."""
        with self._lock:
            if not self.ring:
                return 0, []
            oldest = self.ring[0][0]
            missed = max(0, oldest - position - 1)
            start = max(0, position + 1 - oldest)
            return missed, list(itertools.islice(self.ring, start, None))

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if not self._waiters:
                    self._thread = None
                    return
            try:
                wait_for_append(self.store, self._poll_timeout)
                if self._stop.is_set():
                    return
                self.look()
            except Exception:
                self.errors += 1
                logger.exception("swarm-obs server: reading the store failed; retrying")
                time.sleep(0.5)

    def look(self, *, initial: bool = False) -> None:
        """Put what was appended since the last look into the ring, once each, and wake the streams.

        A run can grow between reading the run list and reading its events; what was read is
        remembered by its last seq, so the next look does not put those events in the ring again.
        """
        self.last_look = time.time()
        current = {info.run_id: info.event_count for info in self.store.runs()}
        if initial or self._known is None:
            self._known = current
            return
        changed = [run for run, last in current.items() if last > self._known.get(run, 0)]
        if not changed:
            return
        fresh: list[StreamEvent] = []
        for run in changed:
            events = self.store.load_since(run, self._known.get(run, 0))
            fresh += events
            self._known[run] = max(current[run], events[-1].seq or 0) if events else current[run]
        fresh.sort(key=lambda e: (e.timestamp, e.run_id, e.seq or 0))
        with self._lock:
            for event in fresh:
                self.position += 1
                self.ring.append((self.position, event))
            waiters = [w for w in self._waiters if w.run_id is None or w.run_id in changed]
        for waiter in waiters:
            waiter.loop.call_soon_threadsafe(waiter.event.set)


def sse(data: str, *, id: str | None = None, event: str | None = None) -> str:
    """One SSE message (``data`` must be one line: compact JSON is)."""
    head = (f"id: {id}\n" if id is not None else "") + (f"event: {event}\n" if event else "")
    return f"{head}data: {data}\n\n"


def _event_json(event: StreamEvent) -> str:
    return event.to_json()


def read_page(store: EventStore, run_id: str, after: int, limit: int = PAGE) -> list[StreamEvent]:
    """At most ``limit`` events of ``run_id`` with ``seq > after``, read lazily (constant memory)."""
    return list(itertools.islice(store.iter_events(run_id, after), limit))


async def _wait(waiter: _Waiter, heartbeat: float) -> bool:
    """Wait for the watcher's wake-up; ``False`` when the heartbeat interval passed first."""
    try:
        await asyncio.wait_for(waiter.event.wait(), heartbeat)
        return True
    except TimeoutError:
        return False


async def run_stream(
    watcher: StoreWatcher, run_id: str, after: int, *, heartbeat: float, retry_ms: int = 1000
) -> AsyncIterator[str]:
    """SSE messages of one run's events with ``seq > after``, then live ones, forever."""
    waiter = watcher.subscribe(run_id)
    waiter.sent = after
    try:
        yield f"retry: {retry_ms}\n\n"
        while True:
            waiter.event.clear()
            last, text = await asyncio.to_thread(watcher.run_page, run_id, waiter.sent)
            if text:
                yield text
                waiter.sent = last
                continue
            if not await _wait(waiter, heartbeat):
                yield ": heartbeat\n\n"
    finally:
        watcher.unsubscribe(waiter)


def parse_global_id(last_event_id: str | None, instance: str) -> int | None:
    """The ring position in a ``Last-Event-ID`` of the all-events stream; ``None`` if not ours."""
    if not last_event_id:
        return None
    owner, _, position = last_event_id.partition("-")
    if owner != instance or not position.isdigit():
        return None
    return int(position)


async def all_events_stream(
    watcher: StoreWatcher, last_event_id: str | None, *, heartbeat: float, retry_ms: int = 1000
) -> AsyncIterator[str]:
    """SSE messages of every run's new events (see the module docstring for ids, gaps and resets)."""
    waiter = watcher.subscribe(None)
    try:
        yield f"retry: {retry_ms}\n\n"
        resumed = parse_global_id(last_event_id, watcher.instance)
        if resumed is None:
            waiter.sent = watcher.position
            if last_event_id:
                yield sse(json.dumps({"instance": watcher.instance}), event="reset")
        else:
            waiter.sent = resumed
        while True:
            waiter.event.clear()
            missed, items = watcher.since(waiter.sent)
            if missed:
                watcher.gaps += 1
                watcher.missed_events += missed
                yield sse(json.dumps({"missed": missed}), event="gap")
            if items:
                yield "".join(sse(_event_json(e), id=f"{watcher.instance}-{pos}") for pos, e in items)
                waiter.sent = items[-1][0]
                continue
            if not await _wait(waiter, heartbeat):
                yield ": heartbeat\n\n"
    finally:
        watcher.unsubscribe(waiter)


def health(watcher: StoreWatcher) -> dict[str, Any]:
    """Stream figures for ``/api/health``: clients, their lag, gaps of slow all-events clients."""
    clients = []
    lasts: dict[str, int] = {}
    for waiter in watcher.clients():
        if waiter.run_id is None:
            lag = watcher.position - waiter.sent
        else:
            if waiter.run_id not in lasts:
                try:
                    lasts[waiter.run_id] = watcher.store.last_sequence(waiter.run_id)
                except Exception:
                    lasts[waiter.run_id] = waiter.sent
            lag = lasts[waiter.run_id] - waiter.sent
        clients.append(
            {
                "stream": "all" if waiter.run_id is None else "run",
                "run_id": waiter.run_id,
                "sent": waiter.sent,
                "lag_events": max(0, lag),
                "connected_s": round(time.time() - waiter.connected_at, 3),
            }
        )
    return {
        "clients": len(clients),
        "streams": clients,
        "ring": {"size": len(watcher.ring), "capacity": watcher.ring.maxlen, "position": watcher.position},
        "slow_client_gaps": watcher.gaps,
        "missed_events": watcher.missed_events,
        "watcher_errors": watcher.errors,
        "watcher_running": watcher.running,
        "last_look_age_s": None if watcher.last_look is None else round(time.time() - watcher.last_look, 3),
    }


def iter_sse(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Parse SSE text lines into messages (``id``, ``event``, ``data``); used by tests and benchmarks."""
    message: dict[str, str] = {}
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if "data" in message:
                yield message
            message = {}
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if key == "data" and "data" in message:
            message["data"] += "\n" + value
        elif key in ("id", "event", "data", "retry"):
            message[key] = value
