"""The process-wide registry of :class:`CancellationManager`s, keyed by run id, and its leases.

The instrumentation and the caller find the same manager by run id (:func:`get_manager`), so a
``cancel`` may precede the scan. :class:`ManagerLeases` is the instrumentation's side: it remembers
the managers it created and drops those nobody uses any more when an invocation ends, so a
long-lived process that runs many scans does not keep one manager per run forever.
"""

from __future__ import annotations

import sys
import threading
import weakref

from .cancellation import CancellationManager

_registry: dict[str, CancellationManager] = {}
_lock = threading.RLock()
"""Reentrant: an abandoned stream's generator, finalized by the garbage collector while this thread
is inside the registry (a collection can run at any allocation), releases its managers here too."""


def get_manager(scan_id: str) -> CancellationManager:
    """The manager of ``scan_id``, created on first use (so ``cancel`` may precede the scan)."""
    with _lock:
        manager = _registry.get(scan_id)
        if manager is None:
            manager = _registry[scan_id] = CancellationManager(scan_id)
        return manager


def remove_manager(scan_id: str) -> CancellationManager | None:
    """Drop ``scan_id`` from the registry and return its manager, if there was one."""
    with _lock:
        return _registry.pop(scan_id, None)


def managers() -> dict[str, CancellationManager]:
    """A copy of the registry: run id -> manager."""
    with _lock:
        return dict(_registry)


class ManagerLeases:
    """The managers one observer created; :meth:`release_idle` drops the unused ones."""

    def __init__(self) -> None:
        self._created: dict[str, weakref.ref[CancellationManager]] = {}

    def __deepcopy__(self, memo: dict[int, object]) -> ManagerLeases:
        return self

    def lease(self, run_id: str) -> CancellationManager:
        """The run's manager (:func:`get_manager`); remembered if this call created it."""
        with _lock:
            manager = _registry.get(run_id)
            if manager is None:
                manager = _registry[run_id] = CancellationManager(run_id)
                self._created[run_id] = weakref.ref(manager)
        return manager

    def release_idle(self) -> None:
        """Drop from the registry the managers leased here that nobody uses any more.

        Called when an invocation has ended. A manager stays while it has a request pending for the
        next invocation, a snapshot, or any reference besides the registry's: a running invocation,
        a caller or a ``ControlWatcher`` holding it. The check and the removal happen under the
        registry's lock, so a concurrent :func:`get_manager` either gets the manager before (and
        holds it, so it stays) or a fresh one after.
        """
        if not self._created:
            return
        with _lock:
            for run_id, ref in list(self._created.items()):
                manager = _registry.get(run_id)
                if manager is None or manager is not ref():
                    self._created.pop(run_id, None)
                    continue
                if not manager.is_idle:
                    continue
                # the registry's reference, ``manager`` and getrefcount's argument: nobody else's
                if sys.getrefcount(manager) <= 3:
                    del _registry[run_id]
                    self._created.pop(run_id, None)
