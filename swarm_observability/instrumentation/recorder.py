"""The current run, found from contextvars, and the helpers node code calls without parameters.

Inside a node of an instrumented graph, plain function calls report what the node is doing::

    from swarm_observability import agent, log, plan, probe, progress

    async def scan_hosts(state):
        with plan(steps=["resolve", "probe"]):
            log("resolving", hosts=len(state["hosts"]))
        async with probe("port-scan", host="10.0.0.5") as p:
            p.result(port=443, open=True)
            progress(0.5, "half the ports done")

Each helper finds the innermost open scope (scan invocation, node, agent, plan or probe) from a
:class:`contextvars.ContextVar` that the node wrapper sets, so nothing has to be threaded through.
Contextvars are copied into ``asyncio.create_task`` and ``asyncio.to_thread``, so helpers work there
too and their events carry the scope they were started from. A raw ``threading.Thread`` or
``loop.run_in_executor`` does *not* copy the context: there, as anywhere outside an instrumented run,
a helper raises :class:`~swarm_observability.exceptions.NoActiveRunError` rather than dropping the
event silently.

Scopes (``probe``, ``agent``, ``plan``) emit an opening and a closing event with the same
``scope_id``; the closing one carries ``data.outcome`` and ``data.duration_ms``, also when the body
raises (outcome ``error``, or ``cancelled`` for cancellation), and the exception propagates unchanged.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar, Token
from random import getrandbits
from typing import TYPE_CHECKING, Any, TypeVar

from langgraph.errors import GraphDrained, GraphInterrupt, ParentCommand

from ..events import EventType, Outcome, StreamEvent
from ..exceptions import EventValidationError, InstrumentationError, NoActiveRunError, ScanCancelled

if TYPE_CHECKING:
    from .observer import SwarmObserver

F = TypeVar("F", bound=Callable[..., Any])

_current: ContextVar[Scope | None] = ContextVar("swarm_observability_scope", default=None)

_NO_RUN_HINT = (
    "{what}() was called outside an instrumented run: call it from a node of a graph instrumented with "
    "SwarmObserver.instrument() (or a function decorated with @observe_node), from the node's own "
    "thread or from asyncio tasks/to_thread started there; raw threads do not inherit the run"
)


_NODE_OWN_FIELDS = frozenset({"agent", "probe", "step", "task_id", "checkpoint_id", "namespace"})

_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_scope_id() -> str:
    """A random UUID4 as 32 hex digits, the format of every ``scope_id`` and ``invocation_id``."""
    # random (seeded from os.urandom, re-seeded after fork), not os.urandom per call: that releases
    # the GIL, and winning it back from LangGraph's worker threads cost more than the whole wrapper.
    return f"{getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


class RunState:
    """What one scan invocation (one outermost graph call) shares with every scope inside it.

    Attributes:
        observer: the observer that emits the invocation's events.
        run_id: the scan id (thread id, ``configurable["scan_id"]`` or a fresh uuid).
        thread_id: the LangGraph thread id, if any.
        invocation_id: uuid4 hex of this invocation, or ``None`` for nodes decorated with
            :func:`~swarm_observability.observe_node` in a graph that is not instrumented.
        manager: the scan's ``CancellationManager`` (control), or ``None`` when control is unavailable.
        root: the invocation's own scope, or ``None`` when there is no invocation.
        interrupts: ``Interrupt`` objects raised by nodes of this invocation (paused, not failed).
    """

    __slots__ = ("interrupts", "invocation_id", "manager", "observer", "root", "run_id", "thread_id")

    def __init__(
        self,
        observer: SwarmObserver,
        run_id: str,
        thread_id: str | None,
        invocation_id: str | None,
        manager: Any = None,
    ) -> None:
        self.observer = observer
        self.run_id = run_id
        self.thread_id = thread_id
        self.invocation_id = invocation_id
        self.manager = manager
        self.root: Scope | None = None
        self.interrupts: list[Any] = []


class Scope:
    """One open scope: the scan invocation, a node execution, an agent, a plan or a probe.

    Seams for the OpenTelemetry mapping: ``token`` holds what ``SwarmObserver._scope_opened``
    returned (for example the token of an attached context) until ``_scope_closed`` gets it back, and
    ``span`` is a free slot. Both hooks run in the context the scope's body runs in, with this scope
    current (:func:`current_scope`), except for the ``"scan"`` scope, whose hooks run in the
    consumer's context between stream items: never attach a context there.

    Attributes:
        kind: ``"scan"``, ``"node"``, ``"agent"``, ``"plan"`` or ``"probe"``.
        name: graph name, node, agent, plan or probe name.
        scope_id: the id every event of this scope carries.
        parent: the enclosing scope, or ``None`` for the invocation.
        run: the invocation this scope belongs to.
        fields: the :class:`StreamEvent` fields every event of this scope carries (except run_id);
            owned by the scope, without ``None`` values.
        started: ``time.perf_counter()`` at open.
    """

    __slots__ = (
        "_node_base",
        "closed",
        "config",
        "fields",
        "kind",
        "name",
        "parent",
        "run",
        "scope_id",
        "span",
        "started",
        "token",
        "writer",
    )

    def __init__(
        self,
        kind: str,
        name: str | None,
        run: RunState,
        parent: Scope | None,
        fields: dict[str, Any],
        *,
        scope_id: str | None = None,
        config: Any = None,
        writer: Callable[[Any], None] | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.run = run
        self.parent = parent
        self.scope_id = scope_id or new_scope_id()
        fields["scope_id"] = self.scope_id
        if parent is not None:
            fields["parent_scope_id"] = parent.scope_id
        else:
            fields.pop("parent_scope_id", None)
        self.fields = fields
        self.config = config if config is not None else (parent.config if parent is not None else None)
        self.writer = writer if writer is not None else (parent.writer if parent is not None else None)
        self.started = time.perf_counter()
        self.closed = False
        self.span: Any = None
        self.token: Any = None
        self._node_base: dict[str, Any] | None = None

    def node_fields(self) -> dict[str, Any]:
        """A new dict of the fields a node scope opened in this one starts from (before its own).

        Everything but what belongs to one node execution or to an agent or probe around it: a node
        inside an agent or probe (a subgraph) is not in that agent. Computed once per scope, as every
        node of an invocation starts from the same fields.
        """
        base = self._node_base
        if base is None:
            base = self._node_base = {k: v for k, v in self.fields.items() if k not in _NODE_OWN_FIELDS}
        return base.copy()

    def child(self, kind: str, name: str, **overrides: Any) -> Scope:
        """A new scope nested in this one; it inherits node/agent/probe fields unless overridden."""
        fields = dict(self.fields)
        fields.update(overrides)
        return Scope(kind, name, self.run, self, fields)

    def elapsed_ms(self) -> float:
        """Milliseconds since the scope opened, rounded to microseconds."""
        return round((time.perf_counter() - self.started) * 1000.0, 3)

    def __repr__(self) -> str:
        return f"<Scope {self.kind} {self.name!r} {self.scope_id[:8]} run={self.run.run_id!r}>"


def current_scope() -> Scope:
    """The innermost open scope of the current context.

    Raises:
        NoActiveRunError: outside an instrumented run.
    """
    return _require("current_scope")


def active_scope() -> Scope | None:
    """The innermost open scope of the current context, or ``None`` outside an instrumented run."""
    return _current.get()


def enter_scope(scope: Scope) -> Token[Scope | None]:
    """Make ``scope`` the current one; pass the token to :func:`exit_scope` in the same context."""
    return _current.set(scope)


def exit_scope(token: Token[Scope | None]) -> None:
    """Restore the scope that was current before :func:`enter_scope` returned ``token``."""
    _current.reset(token)


def _require(what: str) -> Scope:
    scope = _current.get()
    if scope is None:
        raise NoActiveRunError(_NO_RUN_HINT.format(what=what))
    return scope


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
    if isinstance(exc, ScanCancelled):
        return Outcome.CANCELLED, {"reason": exc.reason or "cancelled"}
    if isinstance(exc, asyncio.CancelledError):
        return Outcome.CANCELLED, {"reason": "cancelled"}
    return Outcome.ERROR, {"error_type": type(exc).__name__, "error_message": str(exc)}


# -- point events -----------------------------------------------------------------------------------


def progress(fraction: float, message: str | None = None) -> StreamEvent | None:
    """Report how far the current node (or probe) has got: a ``node_progress`` event.

    Args:
        fraction: done so far, from 0.0 to 1.0.
        message: optional human-readable text.

    Returns:
        The emitted event (``None`` if a processor dropped it or the store failed; that is logged).

    Raises:
        NoActiveRunError: outside an instrumented run.
        EventValidationError: ``fraction`` is not a number between 0 and 1.
    """
    scope = _require("progress")
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0.0 <= fraction <= 1.0:
        raise EventValidationError(f"progress fraction must be a number from 0 to 1, got {fraction!r}")
    if message is not None and not isinstance(message, str):
        raise EventValidationError(f"progress message must be a string, got {type(message).__name__}")
    return scope.run.observer._emit(
        scope, EventType.NODE_PROGRESS, strict=True, progress=float(fraction), message=message
    )


def log(message: str, **data: Any) -> StreamEvent | None:
    """Record a ``log`` event with ``message`` and ``data`` in the current scope.

    Raises:
        NoActiveRunError: outside an instrumented run.
        EventValidationError: ``message`` is not a string, or the payload is refused by the processors.
    """
    scope = _require("log")
    if not isinstance(message, str):
        raise EventValidationError(f"log message must be a string, got {type(message).__name__}")
    return scope.run.observer._emit(scope, EventType.LOG, strict=True, message=message, data=data)


# -- scopes -----------------------------------------------------------------------------------------


class _Block:
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
        parent = _require(self.kind)
        scope = parent.child(self.kind, self.name, **({self.field: self.name} if self.field else {}))
        self._scope = scope
        self._token = _current.set(scope)
        scope.run.observer._open_scope(scope, self.open_type, self._data)

    def _close(self, exc: BaseException | None) -> None:
        scope = self._scope
        assert scope is not None and self._token is not None
        outcome, extra = outcome_of(exc)
        data = {**self._close_data(), **extra}
        try:
            scope.run.observer._close_scope(scope, self.close_type, outcome, data)
        finally:
            _current.reset(self._token)
            self._token = None

    def __enter__(self) -> Any:
        if self.safe_points:
            parent = _require(self.kind)
            parent.run.observer._safe_point_sync(parent)
        self._open()
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None and self.safe_points:
            try:
                self.scope.run.observer._safe_point_sync(self.scope)
            except BaseException as late:
                self._close(late)
                raise
        self._close(exc)

    async def __aenter__(self) -> Any:
        if self.safe_points:
            parent = _require(self.kind)
            await parent.run.observer._safe_point(parent)
        self._open()
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is None and self.safe_points:
            try:
                await self.scope.run.observer._safe_point(self.scope)
            except BaseException as late:
                self._close(late)
                raise
        self._close(exc)


class Probe(_Block):
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
        return scope.run.observer._emit(scope, EventType.PROBE_RESULT, strict=True, data=data)


class Plan(_Block):
    """An open plan; set :attr:`steps` to record the plan's steps in ``plan_complete``."""

    kind = "plan"
    open_type = EventType.PLAN_START
    close_type = EventType.PLAN_COMPLETE

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        super().__init__(name, data)
        self.steps: list[Any] | None = None

    def _close_data(self) -> dict[str, Any]:
        return {} if self.steps is None else {"steps": list(self.steps)}


class Agent(_Block):
    """An open agent scope; also usable as a decorator (see :func:`agent`)."""

    kind = "agent"
    field = "agent"
    open_type = EventType.AGENT_START
    close_type = EventType.AGENT_COMPLETE
    _joined = False

    def _open(self) -> None:
        # Inside an agent of the same name (an agent subgraph the observer detected, whose node also
        # says ``with agent(name)``), this is that agent: join its scope instead of counting it twice.
        outer = _require(self.kind)
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
