"""How a scope or an invocation ended, as event data: body outcomes and terminal events."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.errors import GraphBubbleUp, GraphDrained, GraphInterrupt, ParentCommand

from ..events import EventType, Outcome
from ..exceptions import ScanCancelled


def outcome_of(exc: BaseException | None) -> tuple[Outcome, dict[str, Any]]:
    """The outcome a scope ends with when its body raised ``exc`` (``None``: it returned)."""
    if exc is None:
        return Outcome.OK, {}
    if isinstance(exc, GraphInterrupt):
        return Outcome.INTERRUPTED, {}
    if isinstance(exc, GraphDrained):
        return Outcome.PAUSED, {"reason": exc.reason}
    if isinstance(exc, ParentCommand):
        return Outcome.OK, {}
    if isinstance(exc, GraphBubbleUp):  # any other control flow LangGraph raises on purpose
        return Outcome.OK, {"control_flow": type(exc).__name__}
    if isinstance(exc, ScanCancelled):
        return Outcome.CANCELLED, {"reason": exc.reason or "cancelled"}
    if isinstance(exc, asyncio.CancelledError):
        return Outcome.CANCELLED, {"reason": "cancelled"}
    return Outcome.ERROR, {"error_type": type(exc).__name__, "error_message": str(exc)}


def terminal_event(
    exc: BaseException | None, interrupts: list[Any], next_nodes: tuple[str, ...]
) -> tuple[EventType, Outcome, dict[str, Any], dict[str, Any]]:
    """The terminal event type, outcome, data and extra fields for an invocation that ended with ``exc``."""
    if exc is None or (isinstance(exc, GeneratorExit) and interrupts) or isinstance(exc, GraphInterrupt):
        if interrupts or next_nodes or isinstance(exc, GraphInterrupt):
            data: dict[str, Any] = {
                "reason": "interrupt",
                "interrupts": [{"id": i.id, "value": i.value} for i in interrupts],
            }
            if next_nodes:
                data["next"] = list(next_nodes)
            return EventType.SCAN_PAUSED, Outcome.INTERRUPTED, data, {}
        return EventType.SCAN_COMPLETE, Outcome.OK, {}, {}
    if isinstance(exc, GraphDrained):
        return EventType.SCAN_PAUSED, Outcome.PAUSED, {"reason": "drain", "drain_reason": exc.reason}, {}
    if isinstance(exc, ScanCancelled):
        fields = {"node": exc.node} if exc.node else {}
        return EventType.SCAN_CANCELLED, Outcome.CANCELLED, {"reason": exc.reason or "cancelled"}, fields
    if isinstance(exc, GeneratorExit):
        return EventType.SCAN_CANCELLED, Outcome.CANCELLED, {"reason": "abandoned"}, {}
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        reason = "cancelled" if isinstance(exc, asyncio.CancelledError) else "KeyboardInterrupt"
        return EventType.SCAN_CANCELLED, Outcome.CANCELLED, {"reason": reason}, {}
    data = {"error_type": type(exc).__name__, "error_message": str(exc)}
    return EventType.SCAN_ERROR, Outcome.ERROR, data, {}


def unique_interrupts(interrupts: list[Any]) -> list[Any]:
    """``interrupts`` without repeats (by ``Interrupt.id``), in first-seen order."""
    seen: dict[Any, Any] = {}
    for interrupt in interrupts:
        seen.setdefault(getattr(interrupt, "id", id(interrupt)), interrupt)
    return list(seen.values())
