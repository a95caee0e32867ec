"""``@emit_event``: domain functions record an event when they return or raise, without an emitter.

::

    @emit_event("order_checked", fields=["order_id", "total"])
    def check_order(order) -> dict: ...            # -> order_checked {order_id, total, outcome: ok, ...}

    @emit_event(EventType.LOG, message="reindexed")
    async def reindex() -> None: ...               # -> log "reindexed" {outcome: ok, duration_ms}

Inside an instrumented run the event goes to the current scope (node, probe, agent) as
:func:`~swarm_observability.log` does: stored, in the live stream, on the span as a span event.
Outside one, pass ``emitter=`` and ``run_id=``; without them the call raises
:class:`NoActiveRunError` *before* the function runs, so nothing happens unrecorded.

The event's ``data``: the selected ``fields`` of the return value (dict keys or attributes), else the
return value itself when it is a dict, else ``{"result": value}`` (nothing for ``None``); then
``outcome`` (``ok``) and ``duration_ms``. When the function raises, the event has ``outcome`` ``error``,
``error_type`` and ``error_message`` and the exception propagates unchanged; LangGraph's own control
flow (an ``interrupt()``, a drain, a cancellation) records its outcome (``interrupted``, ``paused``,
``cancelled``) the same way. Nested decorated calls each emit their own event, innermost first.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..emitter import EventEmitter
from ..events import EventType, StreamEvent
from ..exceptions import EventValidationError, NoActiveRunError
from .outcomes import outcome_of
from .recorder import active_scope

F = TypeVar("F", bound=Callable[..., Any])
logger = logging.getLogger("swarm_observability")

_ALLOWED_BUILTIN = frozenset({EventType.LOG})
_RESERVED = frozenset(t.value for t in EventType) - _ALLOWED_BUILTIN


def emit_event(
    type: EventType | str,
    *,
    message: str | Callable[[Any], str] | None = None,
    fields: Sequence[str] | None = None,
    emitter: EventEmitter | None = None,
    run_id: str | None = None,
) -> Callable[[F], F]:
    """Decorate a sync or async function to emit one ``type`` event when it returns or raises.

    Args:
        type: a custom event type (any name that is not one of the instrumentation's own types) or
            ``EventType.LOG``.
        message: the event's ``message``: a string, or a function of the return value.
        fields: names to copy from the return value into ``data`` (dict keys or attributes);
            default: the whole return value (see the module docstring).
        emitter: emit through this :class:`EventEmitter` (with ``run_id``) instead of the current
            run; for code that runs outside an instrumented graph.
        run_id: the run the events belong to, with ``emitter``.

    Raises:
        EventValidationError: at decoration, an empty or reserved type (``node_enter``,
            ``scan_complete`` ... are the instrumentation's), ``emitter`` without ``run_id`` or the
            reverse, or a generator function.
        NoActiveRunError: at call time, outside an instrumented run without ``emitter``.
    """
    name = type.value if isinstance(type, EventType) else type
    if not isinstance(name, str) or not name.strip():
        raise EventValidationError(f"emit_event needs an event type name, got {type!r}")
    if name in _RESERVED:
        raise EventValidationError(
            f"emit_event({name!r}): that type is emitted by the instrumentation itself; "
            "use a name of your own (e.g. 'order_checked') or EventType.LOG"
        )
    if (emitter is None) != (run_id is None):
        raise EventValidationError("emit_event: pass emitter= and run_id= together (or neither)")
    if message is not None and not (isinstance(message, str) or callable(message)):
        raise EventValidationError(f"emit_event message must be a string or a function, got {message!r}")
    selected = None if fields is None else tuple(fields)
    event_type: EventType | str = EventType(name) if name in _ALLOWED_BUILTIN else name

    def decorate(fn: F) -> F:
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            raise EventValidationError(f"emit_event cannot decorate the generator function {fn.__qualname__}")
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                sink = _sink(event_type, fn, emitter, run_id)
                started = time.perf_counter()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    sink(_failed(exc, started), _text(message, None, exc))
                    raise
                sink(_payload(result, selected, started), _text(message, result, None))
                return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            sink = _sink(event_type, fn, emitter, run_id)
            started = time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                sink(_failed(exc, started), _text(message, None, exc))
                raise
            sink(_payload(result, selected, started), _text(message, result, None))
            return result

        return wrapper  # type: ignore[return-value]

    return decorate


def _sink(
    type: EventType | str, fn: Callable[..., Any], emitter: EventEmitter | None, run_id: str | None
) -> Callable[[dict[str, Any], str | None], StreamEvent | None]:
    """Where this call's event goes: the explicit emitter, else the current scope (checked now)."""
    if emitter is not None and run_id is not None:
        explicit = emitter

        def emit_to(data: dict[str, Any], text: str | None) -> StreamEvent | None:
            try:
                return explicit.emit(type, run_id, message=text, data=data)
            except Exception:  # telemetry never breaks the caller's function
                logger.exception("swarm_observability: a %s event was not recorded", type)
                return None

        return emit_to
    scope = active_scope()
    if scope is None:
        raise NoActiveRunError(
            f"{fn.__qualname__} is decorated with @emit_event({str(type)!r}) and was called outside an "
            "instrumented run; call it from a node of a graph instrumented by SwarmObserver, or pass "
            "emit_event(..., emitter=EventEmitter(store), run_id='...')"
        )
    recorder = scope.invocation.recorder

    def emit(data: dict[str, Any], text: str | None) -> StreamEvent | None:
        fields: dict[str, Any] = {"data": data}
        if text is not None:
            fields["message"] = text
        return recorder.emit(scope, type, **fields)

    return emit


def _payload(result: Any, selected: tuple[str, ...] | None, started: float) -> dict[str, Any]:
    if selected is not None:
        data = {key: _pick(result, key) for key in selected}
    elif isinstance(result, dict):
        data = dict(result)
    elif result is None:
        data = {}
    else:
        data = {"result": result}
    data["outcome"] = "ok"
    data["duration_ms"] = _elapsed(started)
    return data


def _pick(result: Any, key: str) -> Any:
    if isinstance(result, dict):
        return result.get(key)
    return getattr(result, key, None)


def _failed(exc: BaseException, started: float) -> dict[str, Any]:
    outcome, extra = outcome_of(exc)
    return {"outcome": outcome.value, **extra, "duration_ms": _elapsed(started)}


def _text(message: str | Callable[[Any], str] | None, result: Any, exc: BaseException | None) -> str | None:
    if message is None:
        return None if exc is None else f"{type(exc).__name__}: {exc}"
    if isinstance(message, str):
        return message
    if exc is not None:
        return f"{type(exc).__name__}: {exc}"
    try:
        return str(message(result))
    except Exception as error:  # telemetry never breaks the caller
        return f"<message function failed: {type(error).__name__}: {error}>"


def _elapsed(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
