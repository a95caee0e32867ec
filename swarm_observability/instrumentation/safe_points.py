"""Safe points: where a cancel takes effect and a pause waits (node and probe entry/exit, ``progress()``).

Each runs the scan's ``CancellationManager.checkpoint`` (``checkpoint_sync`` in sync code) when the
manager is cancelled or paused; otherwise it costs one attribute read. A pause emits
``scan_paused`` (``data.reason="pause"``) and, when it ends, ``scan_resumed`` (``data.reason="pause"``),
both on the invocation scope; neither ends the invocation.
"""

from __future__ import annotations

import logging
from typing import Any

from ..events import EventType
from ..exceptions import InstrumentationError
from ._langgraph import node_runtime
from .recorder import Scope

logger = logging.getLogger("swarm_observability")


def _pause_callbacks(scope: Scope, node: str | None, config: Any) -> tuple[Any, Any]:
    invocation = scope.invocation
    recorder = invocation.recorder
    root = invocation.root
    fields = dict(root.fields) if root is not None else {"thread_id": invocation.thread_id}
    if node is not None:
        fields["node"] = node

    def emit(type: EventType, data: dict[str, Any]) -> None:
        event = recorder.emit(scope, type, fields=fields, data=data)
        if event is not None and scope.writer is None and invocation.streams and config is not None:
            # at a node's entry, before its scope opens (in the scan or a root agent, which have no
            # writer of their own): the node's own writer streams it
            recorder.write(event, getattr(node_runtime(config), "stream_writer", None), config)

    def on_pause() -> None:
        emit(EventType.SCAN_PAUSED, {"reason": "pause", "outcome": "paused"})

    def on_resume() -> None:
        emit(EventType.SCAN_RESUMED, {"reason": "pause"})

    return on_pause, on_resume


def safe_point_sync(scope: Scope, node: str | None = None, config: Any = None) -> None:
    """A safe point in sync code: raises ``ScanCancelled`` if cancelled, blocks while paused.

    ``node`` and ``config`` are the node about to open (at a node's entry, ``scope`` is its parent).
    """
    manager = scope.invocation.manager
    if manager is None or not manager.needs_safe_point:
        return
    node = node or scope.fields.get("node")
    on_pause, on_resume = _pause_callbacks(scope, node, config)
    try:
        manager.checkpoint_sync(node=node, on_pause=on_pause, on_resume=on_resume)
    except InstrumentationError:
        # Paused, but this thread runs an event loop (a sync ``with probe()`` in an async node):
        # blocking would freeze the loop, so the pause takes effect at the next async safe point.
        logger.debug("swarm_observability: pause deferred at a sync safe point on an event loop")


async def safe_point(scope: Scope, node: str | None = None, config: Any = None) -> None:
    """A safe point in async code: raises ``ScanCancelled`` if cancelled, waits while paused."""
    manager = scope.invocation.manager
    if manager is None or not manager.needs_safe_point:
        return
    node = node or scope.fields.get("node")
    on_pause, on_resume = _pause_callbacks(scope, node, config)
    await manager.checkpoint(node=node, on_pause=on_pause, on_resume=on_resume)
