"""Hard cancel: the asyncio tasks that ``cancel(hard=True)`` interrupts at once, not at their next safe point.

A :class:`~.cancellation.CancellationManager` owns one :class:`HardCancel` and shares its lock with it.
A task registered after a hard-cancel request is refused (or cancelled) at once: a scope registers
without the lock (it runs around every async node) in an order that cannot miss a request (see
:class:`CancelScope`). A task is cancelled on its own loop (``call_soon_threadsafe``) and only
while it is still inside a scope, never somewhere in LangGraph. The scope turns the ``CancelledError`` it
caused into :class:`~swarm_observability.ScanCancelled` (and un-counts the cancel request, as anyio does),
so the node is recorded as cancelled, not failed. Sync node bodies cannot be interrupted (Python threads
cannot be killed); they stop at their next safe point.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, Protocol

from ..exceptions import ScanCancelled

Tasks = list[tuple[asyncio.Task[Any], asyncio.AbstractEventLoop]]
"""Registered tasks with their loops, as :meth:`HardCancel.request_locked` hands them out."""


class _Owner(Protocol):
    """What a :class:`HardCancel` reads of the manager that owns it."""

    @property
    def scan_id(self) -> str: ...

    @property
    def cancel_reason(self) -> str | None: ...

    @property
    def is_cancelled(self) -> bool: ...


class HardCancel:
    """The asyncio tasks of one scan that a hard cancel interrupts, and whether one was requested.

    The owning manager is passed to each call rather than kept, so that a manager nobody holds any more
    is freed at once (the registry holds managers weakly) instead of at the next garbage collection.

    Args:
        lock: the owner's lock, held by the owner around :meth:`request_locked` and :meth:`reset_locked`.
    """

    def __init__(self, lock: threading.Condition) -> None:
        self._lock = lock
        self._tasks: dict[asyncio.Task[Any], asyncio.AbstractEventLoop] = {}
        self._cancelled: set[asyncio.Task[Any]] = set()
        self.requested = False

    def request_locked(self) -> Tasks:
        """Under the lock: a hard cancel is requested; the tasks to hand to :meth:`cancel_tasks` unlocked."""
        self.requested = True
        return list(self._tasks.items())

    def reset_locked(self) -> None:
        """Under the lock: forget the request (the next invocation starts clean)."""
        self.requested = False
        self._cancelled.clear()

    def cancel_tasks(self, owner: _Owner, tasks: Tasks) -> None:
        """Cancel each task on its loop, if it is still inside a scope by then."""
        for task, loop in tasks:
            self._schedule(owner, task, loop)

    def attach(self, owner: _Owner, task: asyncio.Task[Any]) -> Callable[[], None]:
        """The body of ``CancellationManager.attach_task`` (see there)."""
        loop = task.get_loop()
        with self._lock:
            self._tasks[task] = loop
            hard = self.requested and owner.is_cancelled
        if hard:
            self._schedule(owner, task, loop)

        def detach() -> None:
            with self._lock:
                self._tasks.pop(task, None)
                self._cancelled.discard(task)

        return detach

    def _schedule(self, owner: _Owner, task: asyncio.Task[Any], loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._cancel_if_attached, owner, task)

    def _cancel_if_attached(self, owner: _Owner, task: asyncio.Task[Any]) -> None:
        """On the task's loop: cancel it only if it is still inside a scope (not somewhere in LangGraph)."""
        with self._lock:
            if task not in self._tasks or task.done():
                return
            self._cancelled.add(task)
        task.cancel(f"scan {owner.scan_id!r} cancelled: {owner.cancel_reason or 'hard cancel'}")

    def _take(self, task: asyncio.Task[Any]) -> bool:
        """Whether this hard cancel cancelled ``task`` (and forget it); on the task's own loop."""
        if task not in self._cancelled:  # added on this same thread (see _cancel_if_attached)
            return False
        self._cancelled.discard(task)
        return True


class CancelScope:
    """One ``CancellationManager.cancel_scope`` block: the current task is registered while it runs.

    Runs around every async node, so the uncontended path takes no lock. Registering is one dict
    write, atomic under the GIL, made *before* reading ``requested``; :meth:`HardCancel.request_locked`
    sets ``requested`` before it copies the registered tasks. So either this block sees the request
    (and refuses to start) or the request sees the task (and cancels it): never neither. Unregistering
    and :meth:`HardCancel._take` run on the task's loop, the only thread that marks it cancelled.
    """

    __slots__ = ("hard", "node", "owner", "task")

    def __init__(self, hard: HardCancel, owner: _Owner, node: str | None) -> None:
        self.hard = hard
        self.owner = owner
        self.node = node
        self.task: asyncio.Task[Any] | None = None

    def __enter__(self) -> None:
        owner = self.owner
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        if task is None:
            if owner.is_cancelled:
                raise _stopped(owner, self.node)
            return
        hard = self.hard
        hard._tasks[task] = task.get_loop()
        if hard.requested and owner.is_cancelled:
            hard._tasks.pop(task, None)
            raise _stopped(owner, self.node)
        self.task = task

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        task = self.task
        if task is None:
            return
        hard = self.hard
        hard._tasks.pop(task, None)
        if (exc_type is None or issubclass(exc_type, asyncio.CancelledError)) and hard._take(task):
            task.uncancel()
            raise _stopped(self.owner, self.node) from exc


def _stopped(owner: _Owner, node: str | None) -> ScanCancelled:
    return ScanCancelled(owner.scan_id, owner.cancel_reason, node)
