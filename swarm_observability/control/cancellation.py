"""Cooperative cancel, pause and resume of a scan at safe points.

A :class:`CancellationManager` holds the control state of one scan (keyed by run id). The instrumentation
calls :meth:`~CancellationManager.checkpoint` (async) or :meth:`~CancellationManager.checkpoint_sync` at
every *safe point* (node entry and exit, probe entry and exit); that is where requests take effect:

* **cancel** - the safe point raises :class:`ScanCancelled`. Like anyio's ``CancelScope.cancel()``, the
  request is idempotent (the first reason sticks) and valid before the scan starts: the first safe point
  of the next invocation raises. ``cancel(hard=True)`` also cancels the asyncio tasks registered with
  :meth:`~CancellationManager.cancel_scope` at once (see :mod:`.hard_cancel`).
* **pause** / **resume** - a paused scan waits at its next safe point without busy-looping: sync callers
  on a :class:`threading.Condition`, async callers on a per-call future resolved with
  ``call_soon_threadsafe``, so the event loop keeps running. ``on_pause`` is called once per pause
  episode however many parallel branches reach a safe point, and ``on_resume`` once when the pause ends;
  cancelling a paused scan releases its waiters, which raise ``ScanCancelled``.
* **drain** - a *durable* pause built on LangGraph's ``RunControl``: pass
  :meth:`~CancellationManager.run_control` as ``control=`` to ``invoke``/``astream``;
  :meth:`~CancellationManager.drain` makes LangGraph stop at the
  next superstep boundary with ``GraphDrained`` and its checkpoint saved, so the process may exit and any
  process can resume later with ``graph.invoke(None, config)``.

All methods are thread-safe; :meth:`~CancellationManager.cancel` may be called from a signal handler (the
lock is re-entrant, so a handler that interrupts a safe point of the same thread cannot deadlock).
Managers live in a process-wide registry (:func:`~.registry.get_manager`) so the instrumentation and
the caller find the same object by run id; requests from other processes arrive through a
:class:`~.channel.ControlChannel`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from langgraph.runtime import RunControl

from ..events import validate_run_id
from ..exceptions import InstrumentationError, ScanCancelled
from .actions import ControlAction, RequestCursor, parse_action
from .channel import ControlWatcher
from .hard_cancel import CancelScope, HardCancel

if TYPE_CHECKING:
    from .channel import ChannelBase

logger = logging.getLogger("swarm_observability")

SafePointCallback = Callable[[], object]
"""A zero-argument callable run at a pause transition (the instrumentation emits an event in it)."""


class CancellationManager:
    """Cancel, pause, resume and drain requests for one scan, honoured at safe points.

    Args:
        scan_id: the run id of the scan (validated like every run id).
    """

    def __init__(self, scan_id: str) -> None:
        self.scan_id = validate_run_id(scan_id)
        self._cond = threading.Condition(threading.RLock())
        self._cancel_called = False
        self._cancel_reason: str | None = None
        self._paused = False
        self.needs_safe_point = False
        """``is_cancelled or is_paused``, as a plain attribute: read around every node execution."""
        self._episode = 0
        self._announced_pause = 0
        self._announced_resume = 0
        self._async_waiters: dict[asyncio.Future[None], asyncio.AbstractEventLoop] = {}
        self._sync_waiting = 0
        self._hard = HardCancel(self._cond)
        self._snapshot: Any = None
        self._control: RunControl | None = None
        self._drain_reason: str | None = None
        self._cursor = RequestCursor(self.scan_id)

    def __repr__(self) -> str:
        return (
            f"CancellationManager({self.scan_id!r}, cancelled={self._cancel_called}, "
            f"paused={self._paused}, drain={self._drain_reason!r})"
        )

    @property
    def is_cancelled(self) -> bool:
        """Whether cancellation was requested (anyio's ``cancel_called``)."""
        return self._cancel_called

    @property
    def cancel_reason(self) -> str | None:
        """The reason given to the first :meth:`cancel` call."""
        return self._cancel_reason

    @property
    def is_paused(self) -> bool:
        """Whether a pause is in effect (safe points wait)."""
        return self._paused

    @property
    def waiting(self) -> int:
        """How many safe points (threads and tasks) are waiting in a pause right now."""
        with self._cond:
            return self._sync_waiting + len(self._async_waiters)

    @property
    def is_drain_requested(self) -> bool:
        """Whether :meth:`drain` was called since the last :meth:`reset`."""
        return self._drain_reason is not None

    @property
    def drain_reason(self) -> str | None:
        """The reason given to :meth:`drain`, if any."""
        return self._drain_reason

    def cancel(self, reason: str | None = None, *, hard: bool = False) -> None:
        """Request cancellation; the next safe point raises :class:`ScanCancelled`.

        Idempotent: later calls keep the first reason. Valid before the scan starts. Releases paused
        waiters. With ``hard=True`` the asyncio tasks inside :meth:`cancel_scope` are cancelled at once,
        instead of at their next safe point.
        """
        with self._cond:
            if not self._cancel_called:
                self._cancel_called = True
                self._cancel_reason = reason
            self.needs_safe_point = True
            tasks = self._hard.request_locked() if hard else []
            self._wake_locked()
        self._hard.cancel_tasks(self, tasks)

    def pause(self) -> None:
        """Make safe points wait until :meth:`resume`, :meth:`cancel` or :meth:`drain`. Idempotent."""
        with self._cond:
            if not self._paused:
                self._paused = True
                self.needs_safe_point = True
                self._episode += 1

    def resume(self) -> None:
        """End a pause and release every waiting safe point. Idempotent."""
        with self._cond:
            if self._paused:
                self._paused = False
                self.needs_safe_point = self._cancel_called
                self._wake_locked()

    def reset(self) -> None:
        """Forget cancel, pause and drain requests so the next invocation starts clean.

        The instrumentation calls this when an invocation has ended (its terminal event is written), so
        a cancelled or drained scan can be resumed later in the same process. Snapshots are kept.
        """
        with self._cond:
            self._cancel_called = False
            self._cancel_reason = None
            self._hard.reset_locked()
            self._paused = False
            self.needs_safe_point = False
            self._announced_resume = self._announced_pause = self._episode
            self._control = None
            self._drain_reason = None
            self._wake_locked()

    def end_invocation(self) -> CancellationManager | None:
        """An invocation is ending (right before its terminal event): reset for the next one.

        Reset before the terminal event, so a request made by anyone who has seen that event (a
        subscriber, a stream consumer, a reader of the store) applies to the next invocation. Returns
        what branches of the ending invocation that are still running (sync node bodies cannot be
        interrupted) should consult from now on: a private cancelled manager if this one was
        cancelled or paused, so they stop at their next safe point as they would have without the
        reset, else ``None``.
        """
        stopped = None
        if self.is_cancelled or self.is_paused:
            stopped = CancellationManager(self.scan_id)
            stopped.cancel(self.cancel_reason)
        self.reset()
        return stopped

    @property
    def is_idle(self) -> bool:
        """No request pending for the next invocation (cancel, pause, drain) and no snapshot."""
        return not (
            self.is_cancelled or self.is_paused or self.is_drain_requested or self.get_snapshot() is not None
        )

    async def checkpoint(
        self,
        node: str | None = None,
        *,
        on_pause: SafePointCallback | None = None,
        on_resume: SafePointCallback | None = None,
    ) -> None:
        """Async safe point: raise if cancelled, wait (without blocking the loop) while paused.

        Raises:
            ScanCancelled: cancellation was requested, before or while waiting.
        """
        loop = asyncio.get_running_loop()
        while True:
            with self._cond:
                episode = self._safe_point_locked(node, on_pause, on_resume, may_block=True)
                if episode is None:
                    return
                future: asyncio.Future[None] = loop.create_future()
                self._async_waiters[future] = loop
            try:
                await future
            finally:
                with self._cond:
                    self._async_waiters.pop(future, None)

    def checkpoint_sync(
        self,
        node: str | None = None,
        *,
        on_pause: SafePointCallback | None = None,
        on_resume: SafePointCallback | None = None,
    ) -> None:
        """Sync safe point: raise if cancelled, wait on a condition while paused.

        Raises:
            ScanCancelled: cancellation was requested, before or while waiting.
            InstrumentationError: the scan is paused and this thread runs an event loop, which a
                blocking wait would freeze; use ``await checkpoint()`` there.
        """
        may_block = _running_loop() is None
        with self._cond:
            while True:
                episode = self._safe_point_locked(node, on_pause, on_resume, may_block=may_block)
                if episode is None:
                    return
                self._sync_waiting += 1
                try:
                    self._cond.wait_for(
                        lambda e=episode: self._cancel_called or not self._paused or self._episode != e  # type: ignore[misc]
                    )
                finally:
                    self._sync_waiting -= 1

    def cancel_scope(self, node: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Register the current asyncio task for ``cancel(hard=True)`` while the block runs.

        A hard cancel delivers ``CancelledError`` to the task inside the block; the scope converts it to
        :class:`ScanCancelled` (and un-counts the cancel request, as anyio does) so the scan reads as
        cancelled rather than failed. Any other ``CancelledError`` passes through unchanged. Outside an
        event loop (a sync node) the scope only checks for cancellation on entry.
        """
        return CancelScope(self._hard, self, node)

    def attach_task(self, task: asyncio.Task[Any]) -> Callable[[], None]:
        """Register an asyncio task for ``cancel(hard=True)``; return a function that detaches it.

        Prefer :meth:`cancel_scope`, which also reports the cancellation as :class:`ScanCancelled`. A task
        attached here simply receives ``task.cancel()``. A task attached after a hard cancel is cancelled
        at once.
        """
        return self._hard.attach(self, task)

    def save_snapshot(self, state: Any) -> None:
        """Keep ``state`` (by reference) so a controller can inspect what a paused scan was doing."""
        with self._cond:
            self._snapshot = state

    def get_snapshot(self) -> Any:
        """The last value given to :meth:`save_snapshot`, or ``None``."""
        with self._cond:
            return self._snapshot

    def run_control(self) -> RunControl:
        """A fresh LangGraph ``RunControl`` for one invocation; pass it as ``control=``.

        LangGraph documents that a drained control stays drained, so every invocation needs its own. A
        :meth:`drain` requested before this call applies to the new control at once.
        """
        control = RunControl()
        with self._cond:
            self._control = control
            if self._drain_reason is not None:
                control.request_drain(self._drain_reason)
        return control

    def drain(self, reason: str = "drain") -> None:
        """Ask LangGraph to stop at the next superstep boundary, checkpoint saved (a durable pause).

        The invocation then raises ``GraphDrained``; resuming is ``graph.invoke(None, config)``, from this
        or any other process. A pause in effect is lifted so the running superstep can finish.
        """
        with self._cond:
            if self._drain_reason is None:
                self._drain_reason = reason
            if self._control is not None and not self._control.drain_requested:
                self._control.request_drain(self._drain_reason)
            if self._paused:
                self._paused = False
                self.needs_safe_point = self._cancel_called
                self._wake_locked()

    def apply(self, action: str, reason: str | None = None) -> None:
        """Apply a control action by name: ``cancel``, ``pause``, ``resume`` or ``drain``.

        Raises:
            ValueError: ``action`` is none of those.
        """
        parsed = parse_action(action)
        if parsed is ControlAction.CANCEL:
            self.cancel(reason)
        elif parsed is ControlAction.PAUSE:
            self.pause()
        elif parsed is ControlAction.RESUME:
            self.resume()
        else:
            self.drain(reason or "drain")

    def sync_from(self, channel: ChannelBase, *, min_interval: float = 0.0) -> int:
        """Apply this scan's pending requests from ``channel`` now; return how many were applied.

        Each request is claimed atomically in the database, so it is applied by exactly one process.
        With ``min_interval`` (seconds) calls closer together than that return 0 without touching the
        database, which keeps the call cheap enough for every safe point.
        """
        return self._cursor.apply_pending(channel, self.apply, min_interval=min_interval)

    def watch(self, channel: ChannelBase, interval: float = 0.2) -> ControlWatcher:
        """Start a background thread applying ``channel`` requests for this scan every ``interval`` s.

        Returns the started :class:`~swarm_observability.control.channel.ControlWatcher`; stop it (or use
        it as a context manager) when the scan ends.
        """
        return ControlWatcher(channel, [self], interval=interval).start()

    def _safe_point_locked(
        self,
        node: str | None,
        on_pause: SafePointCallback | None,
        on_resume: SafePointCallback | None,
        *,
        may_block: bool,
    ) -> int | None:
        """Under the lock: raise if cancelled, announce pause transitions; the episode to wait for or None."""
        if self._cancel_called:
            raise ScanCancelled(self.scan_id, self._cancel_reason, node)
        if self._announced_resume < self._announced_pause and (
            not self._paused or self._episode != self._announced_pause
        ):
            self._announced_resume = self._announced_pause
            _run_callback(on_resume, "on_resume")
        if not self._paused:
            return None
        if not may_block:
            raise InstrumentationError(
                f"scan {self.scan_id!r} is paused and checkpoint_sync() was called on a thread running an "
                "event loop; waiting would freeze the loop, use 'await manager.checkpoint()' instead"
            )
        if self._announced_pause != self._episode:
            self._announced_pause = self._episode
            _run_callback(on_pause, "on_pause")
        return self._episode

    def _wake_locked(self) -> None:
        self._cond.notify_all()
        for future, loop in list(self._async_waiters.items()):
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _run_callback(callback: SafePointCallback | None, what: str) -> None:
    if callback is None:
        return
    try:
        callback()
    except Exception:
        logger.exception("swarm_observability: %s callback failed; the scan continues", what)
