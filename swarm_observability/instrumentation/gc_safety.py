"""Work that must not run inside a garbage collection: a stream the collector finalizes.

A sync ``stream`` abandoned in a reference cycle is closed by the garbage collector, and a collection
starts at whatever allocation crosses the threshold: possibly on a thread that is inside the
emitter, a store or the control registry, holding a lock that is not reentrant. Emitting the
invocation's terminal event there would wait for that lock forever (a deadlock found by a
``gc.collect()`` inside a store's ``append``). So the close of such a stream hands our part of it
(terminal event, waiting for the store) to one worker thread and returns at once; LangGraph's own
cleanup still runs where it would without us.

Two hooks, nothing patched: a ``gc.callbacks`` entry notes which thread is collecting, and the worker
reads a ``SimpleQueue`` (whose ``put`` is safe inside ``__del__`` and collector callbacks). The
worker is started outside any collection (:func:`prepare`, called as an invocation starts), so a
collection only ever puts to the queue; a forked child starts its own on its first invocation.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["outside_collection", "prepare"]

logger = logging.getLogger("swarm_observability")

_collecting: int | None = None
_work: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.SimpleQueue()
_worker: threading.Thread | None = None
_starting = threading.Lock()


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    global _collecting
    _collecting = threading.get_ident() if phase == "start" else None


def prepare() -> None:
    """Install the collector hook and start the worker, unless done (cheap: called per invocation)."""
    worker = _worker
    if worker is not None and worker.is_alive():
        return
    if not _starting.acquire(blocking=False):
        return  # another thread is starting it
    try:
        _start()
    finally:
        _starting.release()


def _start() -> None:
    global _worker
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)
    if _worker is None or not _worker.is_alive():
        _worker = threading.Thread(target=_drain, name="swarm-obs-finalizer", daemon=True)
        _worker.start()


def outside_collection(function: Callable[..., Any], *args: Any) -> None:
    """``function(*args)`` now, or, inside a collection on this thread, soon on the worker (in order)."""
    if _collecting is not None and _collecting == threading.get_ident():
        _work.put((function, args))
    else:
        function(*args)


def _drain() -> None:
    while True:
        function, args = _work.get()
        try:
            function(*args)
        except Exception:
            logger.exception("swarm_observability: closing a stream the garbage collector finalized failed")
