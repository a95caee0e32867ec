"""The helpers node code calls without parameters: ``progress``, ``log``, ``probe``, ``plan``, ``agent``.

Inside a node of an instrumented graph, plain function calls report what the node is doing::

    from swarm_observability import agent, log, plan, probe, progress

    async def scan_hosts(state):
        with plan(steps=["resolve", "probe"]):
            log("resolving", hosts=len(state["hosts"]))
        async with probe("port-scan", host="10.0.0.5") as p:
            p.result(port=443, open=True)
            progress(0.5, "half the ports done")

Each helper finds the innermost open scope from the recorder's context variable (see
:mod:`.recorder`), so nothing has to be threaded through; outside an instrumented run a helper raises
:class:`~swarm_observability.exceptions.NoActiveRunError` rather than dropping the event silently.

Scopes (``probe``, ``agent``, ``plan``) emit an opening and a closing event with the same
``scope_id``; the closing one carries ``data.outcome`` and ``data.duration_ms``, also when the body
raises (outcome ``error``, or ``cancelled`` for cancellation), and the exception propagates unchanged.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from contextvars import Token
from typing import Any, TypeVar

from ..events import EventType, StreamEvent
from ..exceptions import EventValidationError, InstrumentationError, NoActiveRunError
from .outcomes import outcome_of
from .recorder import Scope, enter_scope, exit_scope, require_scope
from .safe_points import safe_point, safe_point_sync

F = TypeVar("F", bound=Callable[..., Any])


# -- point events -----------------------------------------------------------------------------------


def progress(fraction: float, message: str | None = None) -> StreamEvent | None:
    """Report how far the current node (or probe) has got: a ``node_progress`` event.

    Also a safe point, so a long loop that reports progress honours control promptly: a cancelled scan
    raises :class:`~swarm_observability.exceptions.ScanCancelled` here (before the event), a paused one
    waits here (in sync code off an event loop; on a loop the pause waits for the next async safe point).

    Args:
        fraction: done so far, from 0.0 to 1.0.
        message: optional human-readable text.

    Returns:
        The emitted event (``None`` if a processor dropped it or the store failed; that is logged).

    Raises:
        NoActiveRunError: outside an instrumented run.
        EventValidationError: ``fraction`` is not a number between 0 and 1.
        ScanCancelled: the scan was cancelled.
    """
    scope = require_scope("progress")
    safe_point_sync(scope)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0.0 <= fraction <= 1.0:
        raise EventValidationError(f"progress fraction must be a number from 0 to 1, got {fraction!r}")
    if message is not None and not isinstance(message, str):
        raise EventValidationError(f"progress message must be a string, got {type(message).__name__}")
    return scope.invocation.recorder.emit(
        scope, EventType.NODE_PROGRESS, strict=True, progress=float(fraction), message=message
    )


def log(message: str, **data: Any) -> StreamEvent | None:
    """Record a ``log`` event with ``message`` and ``data`` in the current scope.

    Raises:
        NoActiveRunError: outside an instrumented run.
        EventValidationError: ``message`` is not a string, or the payload is refused by the processors.
    """
    scope = require_scope("log")
    if not isinstance(message, str):
        raise EventValidationError(f"log message must be a string, got {type(message).__name__}")
    return scope.invocation.recorder.emit(scope, EventType.LOG, strict=True, message=message, data=data)


# -- scopes -----------------------------------------------------------------------------------------


class _ScopeBlock:
    """Shared open/close logic of probe, agent and plan; a sync and an async context manager."""

    kind = ""
    field: str | None = None
    open_type = EventType.LOG
    close_type = EventType.LOG
    safe_points = False

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        if not isinstance(name, str) or not name:
            raise EventValidationError(f"{self.kind} name must be a non-empty string, got {name!r}")
        self.name = name
        self._data = data
        self._scope: Scope | None = None
        self._token: Token[Scope | None] | None = None

    @property
    def scope(self) -> Scope:
        """The open scope (only inside the ``with`` block)."""
        if self._scope is None or self._scope.closed:
            raise NoActiveRunError(f"{self.kind} {self.name!r} is not open")
        return self._scope

    def _close_data(self) -> dict[str, Any]:
        return {}

    def _open(self) -> None:
        if self._scope is not None:
            raise InstrumentationError(f"{self.kind} {self.name!r} was already entered; create a new one")
        parent = require_scope(self.kind)
        scope = parent.child(self.kind, self.name, **({self.field: self.name} if self.field else {}))
        self._scope = scope
        self._token = enter_scope(scope)
        scope.invocation.recorder.open(scope, self.open_type, self._data)

    def _close(self, exc: BaseException | None) -> None:
        scope = self._scope
        assert scope is not None and self._token is not None
        outcome, extra = outcome_of(exc)
        data = {**self._close_data(), **extra}
        try:
            scope.invocation.recorder.close(scope, self.close_type, outcome, data)
        finally:
            exit_scope(self._token)
            self._token = None

    def __enter__(self) -> Any:
        if self.safe_points:
            parent = require_scope(self.kind)
            safe_point_sync(parent)
        self._open()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None and self.safe_points:
            try:
                safe_point_sync(self.scope)
            except BaseException as late:
                self._close(late)
                raise
        self._close(exc)

    async def __aenter__(self) -> Any:
        if self.safe_points:
            parent = require_scope(self.kind)
            await safe_point(parent)
        self._open()
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None and self.safe_points:
            try:
                await safe_point(self.scope)
            except BaseException as late:
                self._close(late)
                raise
        self._close(exc)


class Probe(_ScopeBlock):
    """An open probe: report results with :meth:`result`. Returned by :func:`probe`."""

    kind = "probe"
    field = "probe"
    open_type = EventType.PROBE_START
    close_type = EventType.PROBE_COMPLETE
    safe_points = True

    def result(self, **data: Any) -> StreamEvent | None:
        """Emit a ``probe_result`` event with ``data`` as its payload; call it any number of times.

        Raises:
            NoActiveRunError: the probe is not open (outside its ``with`` block).
        """
        scope = self.scope
        return scope.invocation.recorder.emit(scope, EventType.PROBE_RESULT, strict=True, data=data)


class Plan(_ScopeBlock):
    """An open plan; set :attr:`steps` to record the plan's steps in ``plan_complete``."""

    kind = "plan"
    open_type = EventType.PLAN_START
    close_type = EventType.PLAN_COMPLETE

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        super().__init__(name, data)
        self.steps: list[Any] | None = None

    def _close_data(self) -> dict[str, Any]:
        return {} if self.steps is None else {"steps": list(self.steps)}


class Agent(_ScopeBlock):
    """An open agent scope; also usable as a decorator (see :func:`agent`)."""

    kind = "agent"
    field = "agent"
    open_type = EventType.AGENT_START
    close_type = EventType.AGENT_COMPLETE
    _joined = False

    def _open(self) -> None:
        # Inside an agent of the same name (an agent subgraph the observer detected, whose node also
        # says ``with agent(name)``), this is that agent: join its scope instead of counting it twice.
        outer: Scope | None = require_scope(self.kind)
        while outer is not None and outer.kind != "agent":
            outer = outer.parent
        if self._scope is None and outer is not None and outer.name == self.name:
            self._scope, self._joined = outer, True
            return
        super()._open()

    def _close(self, exc: BaseException | None) -> None:
        if not self._joined:
            super()._close(exc)

    def __call__(self, fn: F) -> F:
        """Decorate a sync or async function so every call runs inside a fresh agent scope."""
        name, data = self.name, self._data
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                async with Agent(name, data):
                    return await fn(*args, **kwargs)

            return awrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with Agent(name, data):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def probe(name: str, **attrs: Any) -> Probe:
    """Open a probe: ``with probe(name, **attrs) as p:`` or ``async with``.

    Emits ``probe_start`` (``data`` = ``attrs``), a ``probe_result`` per :meth:`Probe.result` call and
    ``probe_complete`` (outcome, duration_ms; error_type and error_message when the body raised).
    Probe entry and exit are control safe points: a cancelled scan raises ``ScanCancelled`` there and
    a paused one waits. Long probes emit heartbeats.

    Raises:
        NoActiveRunError: on entering the block outside an instrumented run.
    """
    return Probe(name, attrs)


def plan(*, steps: Sequence[Any] | None = None, **attrs: Any) -> Plan:
    """Open a planning scope: ``with plan(steps=[...]) as p:`` (or ``async with``).

    Emits ``plan_start`` (``data`` = ``attrs`` plus ``steps`` if given) and ``plan_complete``
    (outcome, duration_ms, and ``steps`` if :attr:`Plan.steps` was set inside the block). The plan
    belongs to the enclosing agent or node: its events carry their ``agent``/``node`` fields.

    Raises:
        NoActiveRunError: on entering the block outside an instrumented run.
    """
    data = dict(attrs)
    if steps is not None:
        data["steps"] = list(steps)
    return Plan("plan", data)


def agent(name: str, **attrs: Any) -> Agent:
    """An agent scope: ``with agent("researcher"):``, ``async with``, or ``@agent("researcher")``.

    Emits ``agent_start`` (``data`` = ``attrs``) and ``agent_complete`` (outcome, duration_ms). Events
    inside carry ``agent=name``. As a decorator each call of the function opens its own scope.

    Raises:
        NoActiveRunError: on entering the block (or calling the decorated function) outside a run.
    """
    return Agent(name, attrs)
