"""How a scope or an invocation ended, as event data: body outcomes and terminal events."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from langgraph.errors import GraphBubbleUp, GraphDrained, GraphInterrupt, ParentCommand

from ..events import EMPTY_SHAPE, EventType, Outcome, Shape, data_shape
from ..exceptions import ScanCancelled

_OUTCOME_TEXT = {outcome: outcome.value for outcome in Outcome}  # plain str: the fast path's data
_ATTEMPT_SHAPE = data_shape({"attempt": 1})
_CLOSED: dict[Outcome, Shape] = {}  # outcome -> the shape of its closing data, without and with an attempt
_CLOSED_ATTEMPT: dict[Outcome, Shape] = {}
for _outcome, _text in _OUTCOME_TEXT.items():
    _CLOSED[_outcome] = data_shape({"outcome": _text, "duration_ms": 0.0})
    _CLOSED_ATTEMPT[_outcome] = data_shape({"outcome": _text, "duration_ms": 0.0, "attempt": 1})


def attempt_shape(data: dict[str, Any]) -> Shape | None:
    """``data_shape(data)`` if ``data`` is empty or a node's ``{"attempt": n}`` (``n`` an int of at most
    53 bits: plain as it is, a JSON number a float holds too), else ``None`` (checked as any data is)."""
    if not data:
        return EMPTY_SHAPE
    attempt = data.get("attempt")
    if attempt.__class__ is int and len(data) == 1 and attempt.bit_length() < 54:
        return _ATTEMPT_SHAPE
    return None


def closing_data(
    outcome: Outcome, started: float, data: dict[str, Any]
) -> tuple[dict[str, Any], Shape | None]:
    """The data of a scope's closing event: ``outcome``, ``duration_ms`` since ``started``
    (``time.perf_counter()``: a finite float), then ``data``; and its ``data_shape`` if ``data`` is one
    :func:`attempt_shape` knows (checked here, inlined: per node), else ``None``."""
    elapsed = round((time.perf_counter() - started) * 1000.0, 3)
    text = _OUTCOME_TEXT[outcome]
    if not data:
        return {"outcome": text, "duration_ms": elapsed}, _CLOSED[outcome]
    attempt = data.get("attempt")
    if attempt.__class__ is int and len(data) == 1 and attempt.bit_length() < 54:
        return {"outcome": text, "duration_ms": elapsed, "attempt": attempt}, _CLOSED_ATTEMPT[outcome]
    return {"outcome": text, "duration_ms": elapsed, **data}, None


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
