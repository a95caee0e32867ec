"""Fork safety: objects that own threads, locks or SQLite connections repair themselves in a child.

After ``os.fork`` (gunicorn ``--preload``, multiprocessing's ``fork`` start method) the child has only
the forking thread: writer and heartbeat threads are gone, a lock another thread held stays held
forever, and an SQLite connection must not be used by both processes. Every such object calls
:func:`reinit_after_fork` once when it is made; in the child, right after the fork, each one's
``_after_fork_in_child()`` runs (in creation order). It must not do I/O or wait: it replaces
locks, forgets work that belongs to the parent (the parent finishes it, so nothing is written
twice) and marks connections to be re-opened on first use.
"""

from __future__ import annotations

import logging
import os
import weakref

logger = logging.getLogger("swarm_observability")

_tracked: weakref.WeakValueDictionary[int, object] = weakref.WeakValueDictionary()
_counter = 0
_abandoned: list[object] = []


def reinit_after_fork(instance: object) -> None:
    """Call ``instance._after_fork_in_child()`` in every child forked while ``instance`` is alive."""
    global _counter
    _counter += 1
    _tracked[_counter] = instance


def abandon(resource: object) -> None:
    """Keep a resource inherited from the parent alive, unused, so its finalizer never runs here.

    Closing an inherited SQLite connection in the child could roll back or checkpoint the parent's
    database behind its back; the child just never touches it again.
    """
    if resource is not None:
        _abandoned.append(resource)


def _after_fork_in_child() -> None:
    for key in sorted(_tracked.keys()):
        instance = _tracked.get(key)
        if instance is None:
            continue
        try:
            instance._after_fork_in_child()  # type: ignore[attr-defined]
        except Exception:
            logger.exception("swarm_observability: could not re-initialise %r after fork", instance)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
