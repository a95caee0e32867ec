"""Scopes and the :class:`Recorder` that turns them into events: the runtime every other module gets.

A *scope* is one open unit of work: the scan invocation (one outermost graph call), a node
execution, an agent, a plan or a probe. It carries the :class:`StreamEvent` fields its events share
and a link to its :class:`Invocation`, which holds the :class:`Recorder` (emit, open, close, hooks)
and the run's ``CancellationManager``. Node wrappers, helpers and the lifecycle receive the recorder
this way; nothing below reaches back into the ``SwarmObserver``.

The innermost open scope of the current context lives in a :class:`contextvars.ContextVar`, copied
into ``asyncio.create_task`` and ``asyncio.to_thread`` (a raw ``threading.Thread`` does not inherit it).

Hooks (:class:`ScopeHooks`, the OpenTelemetry seam): ``scope_opened`` runs right after a scope's
opening event is emitted and ``scope_closed`` right before its closing event, with the scope current
and in the context its body runs in; what ``scope_opened`` returns is kept in ``scope.token`` for
``scope_closed``, and the ids ``scope_ids`` gives join the fields of the scope's later events.
A failing hook is logged, never raised into the graph.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextvars import ContextVar, Token
from typing import Any, Protocol

from .._clock import new_scope_id
from ..emitter import EventEmitter
from ..events import EventType, Outcome, ScopeFields, Shape, StreamEvent, make_event, shaped_scope_event
from ..exceptions import EventValidationError, NoActiveRunError
from ._heartbeat import HeartbeatTimer
from ._langgraph import write_custom
from .outcomes import attempt_shape, closing_data

logger = logging.getLogger("swarm_observability")

_current: ContextVar[Scope | None] = ContextVar("swarm_observability_scope", default=None)

_NO_RUN_HINT = (
    "{what}() was called outside an instrumented run: call it from a node of a graph instrumented with "
    "SwarmObserver.instrument() (or a function decorated with @observe_node), from the node's own "
    "thread or from asyncio tasks/to_thread started there; raw threads do not inherit the run"
)
_NODE_OWN_FIELDS = frozenset({"agent", "probe", "step", "task_id", "checkpoint_id", "namespace"})
_HEARTBEAT_KINDS = frozenset({"node", "probe"})


class ScopeHooks(Protocol):
    """What a tracer implements to follow scopes (``LiveTracer`` does)."""

    def scope_opened(self, event: StreamEvent) -> object | None: ...

    def scope_ids(self, event: StreamEvent) -> dict[str, str] | None: ...  # optional

    def scope_closed(self, event: StreamEvent, token: object | None) -> None: ...


class Invocation:
    """What one scan invocation (one outermost graph call) shares with every scope inside it.

    Attributes:
        recorder: the recorder that emits the invocation's events.
        run_id: the scan id (``configurable["scan_id"]``, the thread id or a fresh uuid; an id the
            log cannot store is mapped to a safe one, see :func:`~swarm_observability.events.safe_run_id`).
        thread_id: the LangGraph thread id, as given, if any.
        invocation_id: uuid4 hex of this invocation, or ``None`` for nodes decorated with
            :func:`~swarm_observability.observe_node` in a graph that is not instrumented.
        manager: the scan's ``CancellationManager``, or ``None`` when control is off.
        root: the invocation's own scope, or ``None`` when there is no invocation.
        interrupts: ``Interrupt`` objects raised by nodes of this invocation (paused, not failed).
        streams: whether events emitted in nodes also go into LangGraph's ``stream_mode="custom"``.
    """

    __slots__ = (
        "interrupts",
        "invocation_id",
        "manager",
        "recorder",
        "root",
        "run_id",
        "streams",
        "thread_id",
    )

    def __init__(
        self,
        recorder: Recorder,
        run_id: str,
        thread_id: str | None,
        invocation_id: str | None,
        manager: Any = None,
        *,
        streams: bool = False,
    ) -> None:
        self.recorder = recorder
        self.run_id = run_id
        self.thread_id = thread_id
        self.invocation_id = invocation_id
        self.manager = manager
        self.root: Scope | None = None
        self.interrupts: list[Any] = []
        self.streams = streams


class Scope:
    """One open scope: the scan invocation, a node execution, an agent, a plan or a probe.

    Attributes:
        kind: ``"scan"``, ``"node"``, ``"agent"``, ``"plan"`` or ``"probe"``.
        name: graph name, node, agent, plan or probe name.
        scope_id: the id every event of this scope carries.
        parent: the enclosing scope, or ``None`` for the invocation.
        invocation: the invocation this scope belongs to.
        fields: the :class:`StreamEvent` fields every event of this scope carries (except run_id);
            owned by the scope, without ``None`` values; fixed once the scope emitted its first event
            (the recorder checks them then, once for all of the scope's events).
        started: ``time.perf_counter()`` at open.
        token: what ``ScopeHooks.scope_opened`` returned, until ``scope_closed`` gets it back.
        attempt: LangGraph's attempt number of a node execution (set when retried), else ``None``.
    """

    __slots__ = (
        "_checked", "_node_base", "attempt", "closed", "config", "fields", "invocation",
        "kind", "name", "parent", "scope_id", "started", "token", "writer",
    )  # fmt: skip

    def __init__(
        self,
        kind: str,
        name: str | None,
        invocation: Invocation,
        parent: Scope | None,
        fields: dict[str, Any],
        *,
        scope_id: str | None = None,
        config: Any = None,
        writer: Callable[[Any], None] | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.invocation = invocation
        self.parent = parent
        self.scope_id = scope_id or new_scope_id()
        fields["scope_id"] = self.scope_id
        if parent is not None:
            fields["parent_scope_id"] = parent.scope_id
        else:
            fields.pop("parent_scope_id", None)
        self.fields = fields
        self.config: Any = config if config is not None else (parent.config if parent is not None else None)
        self.writer: Callable[[Any], None] | None = (
            writer if writer is not None else (parent.writer if parent is not None else None)
        )
        self.started = time.perf_counter()
        self.closed = False
        self.token: Any = None
        self._node_base: tuple[dict[str, Any], ScopeFields | None] | None = None
        self._checked: ScopeFields | None = None
        self.attempt: int | None = None

    def node_child(self, name: str, own: dict[str, Any], config: Any, writer: Any, *, plain: bool) -> Scope:
        """A node scope opened here: this scope's fields but an agent's, a probe's and one node execution's
        (a node in an agent, a subgraph, is not in it), checked once per scope, then ``own`` (no ``None``s),
        checked now if ``plain`` (:func:`~swarm_observability.events.plain_node_fields` found it so)."""
        nodes = self._node_base
        if nodes is None:
            base = {k: v for k, v in self.fields.items() if k not in _NODE_OWN_FIELDS}
            nodes = self._node_base = (base, ScopeFields.of_plain(self.invocation.run_id, base))
        scope = object.__new__(Scope)  # Scope.__init__ inlined (per node): every slot is set here too
        scope.kind, scope.name, scope.parent = "node", name, self
        scope.invocation = invocation = self.invocation
        scope.scope_id = own["scope_id"] = new_scope_id()
        if self.kind != "scan" or invocation.root is not None:  # else a decorated node, alone
            own["parent_scope_id"] = self.scope_id
        scope.fields = fields = {**nodes[0], **own}
        scope.config = config if config is not None else self.config
        scope.writer = writer if writer is not None else self.writer
        scope.started, scope.closed = time.perf_counter(), False
        scope.token = scope._node_base = scope.attempt = None
        scope._checked = nodes[1].derived(fields) if plain and nodes[1] is not None else None
        return scope

    def child(self, kind: str, name: str, **overrides: Any) -> Scope:
        """A new scope nested in this one; it inherits node/agent/probe fields unless overridden."""
        return Scope(kind, name, self.invocation, self, {**self.fields, **overrides})

    def __repr__(self) -> str:
        return f"<Scope {self.kind} {self.name!r} {self.scope_id[:8]} run={self.invocation.run_id!r}>"


# The scope context, used on every node execution: the ContextVar's own methods, with no Python frame.
# active_scope() -> innermost open scope or None; enter_scope(scope) -> token for exit_scope(token).
active_scope: Callable[[], Scope | None] = _current.get
enter_scope: Callable[[Scope | None], Token[Scope | None]] = _current.set
exit_scope: Callable[[Token[Scope | None]], None] = _current.reset


def require_scope(what: str) -> Scope:
    """The current scope; ``what`` names the caller in the error.

    Raises:
        NoActiveRunError: outside an instrumented run.
    """
    scope = _current.get()
    if scope is None:
        raise NoActiveRunError(_NO_RUN_HINT.format(what=what))
    return scope


def current_scope() -> Scope:
    """The innermost open scope of the current context; :class:`NoActiveRunError` outside a run."""
    return require_scope("current_scope")


class Recorder:
    """Emit the events of scopes: the one runtime node wrappers, helpers and the lifecycle share.

    Args:
        emitter: where events go (seq, processors, store, subscribers).
        heartbeat_interval: seconds between ``heartbeat`` events of open nodes and probes (``None``: off).
        durable_node_exit: see ``SwarmObserver``; :meth:`node_exit_stored` honours it.

    Attributes:
        hooks: a :class:`ScopeHooks` (a tracer), or ``None``; set it to follow scopes.
    """

    def __init__(
        self, emitter: EventEmitter, *, heartbeat_interval: float | None, durable_node_exit: bool
    ) -> None:
        self.emitter = emitter
        self.durable_node_exit = durable_node_exit
        self.hooks: ScopeHooks | None = None
        self._lock = threading.RLock()
        self._heartbeats: HeartbeatTimer[Scope] | None = (
            HeartbeatTimer(heartbeat_interval, self._beat) if heartbeat_interval else None
        )

    def __deepcopy__(self, memo: dict[int, Any]) -> Recorder:
        return self  # a service shared by every copy of an instrumented graph, like its emitter

    def emit(
        self,
        scope: Scope,
        type: EventType | str,
        *,
        strict: bool = False,
        fields: dict[str, Any] | None = None,
        **extra: Any,
    ) -> StreamEvent | None:
        """Emit one event in ``scope``; ``strict`` lets validation errors reach the (user) caller.

        Never raises otherwise: a failure is logged and ``None`` returned.
        """
        if scope.invocation.streams and scope.kind != "scan":
            with self._lock:  # the stream and the store see the same order
                stored = self._emit(scope, type, strict, fields, extra)
                if stored is not None:
                    self.write(stored, scope.writer, scope.config)
            return stored
        return self._emit(scope, type, strict, fields, extra)

    def _emit(
        self, scope: Scope, type: EventType | str, strict: bool, fields: dict[str, Any] | None, extra: Any
    ) -> StreamEvent | None:
        try:
            if fields is None and (not extra or (len(extra) == 1 and "data" in extra)):
                return self.emitter.emit_scoped(type, self._scope_fields(scope), extra.get("data"))
            base = scope.fields if fields is None else fields
            return self.emitter.emit(type, scope.invocation.run_id, **({**base, **extra} if extra else base))
        except Exception as exc:
            self._failed(exc, type, strict)
            return None

    def _scoped(
        self,
        scope: Scope,
        type: EventType,
        data: dict[str, Any] | None,
        fields: dict[str, Any] | None = None,
        shape: Shape | None = None,
    ) -> StreamEvent | None:
        """:meth:`emit` of an event with ``data`` (and ``fields``) beyond the scope's fields (open, close);
        ``shape``: ``data``'s, known plain (see :func:`~swarm_observability.events.shaped_scope_event`)."""
        if fields or (scope.invocation.streams and scope.kind != "scan"):
            return self.emit(scope, type, data=data, **(fields or {}))  # data=None: no data, as emit has it
        try:
            return self.emitter.emit_scoped(type, scope._checked or self._scope_fields(scope), data, shape)
        except Exception as exc:
            self._failed(exc, type, False)
            return None

    def _scope_fields(self, scope: Scope) -> ScopeFields:
        if scope._checked is None:
            scope._checked = self.emitter.scope_fields(scope.invocation.run_id, scope.fields)
        return scope._checked

    def emit_event(
        self, event: StreamEvent, scope: Scope, *, fresh: bool = False, shape: Shape | None = None
    ) -> StreamEvent | None:
        """Emit an event the caller built in ``scope`` (``fresh``, ``shape``: the emitter's); never raises."""
        with self._lock:
            try:
                stored = self.emitter.emit_event(event, fresh=fresh, shape=shape)
            except Exception as exc:
                self._failed(exc, event.type, False)
                return None
            if stored is not None and scope.invocation.streams and scope.kind != "scan":
                self.write(stored, scope.writer, scope.config)
        return stored

    def write(self, event: StreamEvent, writer: Any, config: Any) -> None:
        """Put ``event`` into LangGraph's custom stream of a node through its ``writer`` (if any)."""
        write_custom(writer, config, event, event.type_name)

    def open(self, scope: Scope, type: EventType, data: dict[str, Any]) -> StreamEvent | None:
        """Emit the opening event of ``scope``, run the ``scope_opened`` hook, start its heartbeats."""
        event = self._scoped(scope, type, data or None, None, attempt_shape(data))
        hooks = self.hooks
        if event is not None and hooks is not None:
            try:  # one frame for both hooks (per node); after a failed open, a processor stamps ids
                scope.token = hooks.scope_opened(event)
                ids_of = getattr(hooks, "scope_ids", None)  # optional: hooks that predate it lack it
                ids = ids_of(event) if ids_of is not None else None
            except Exception:
                logger.exception("swarm_observability: a scope hook failed on %s", event.type_name)
                ids = None
            if ids:  # the scope's later events carry its span's ids: nothing for a processor to stamp
                scope._checked = self._scope_fields(scope).extended(**ids)
        if self._heartbeats is not None and scope.kind in _HEARTBEAT_KINDS:
            self._heartbeats.register(scope, scope.started)
        return event

    def close(
        self, scope: Scope, type: EventType, outcome: Outcome, data: dict[str, Any], **fields: Any
    ) -> StreamEvent | None:
        """Run the ``scope_closed`` hook and emit the closing event (outcome, duration_ms, ``data``)."""
        if self._heartbeats is not None and scope.kind in _HEARTBEAT_KINDS:
            self._heartbeats.unregister(scope)
        payload, shape = closing_data(outcome, scope.started, data)
        hooks = self.hooks
        if hooks is None:  # the lock is against a heartbeat of this scope (none without heartbeats)
            if self._heartbeats is None:
                scope.closed = True
                return self._scoped(scope, type, payload, fields, shape)
            with self._lock:
                scope.closed = True
                return self._scoped(scope, type, payload, fields, shape)
        try:
            if fields:
                merged = {**scope.fields, **fields, "data": payload}
                event, shape = make_event(type, scope.invocation.run_id, **merged), None
            else:
                event, shape = shaped_scope_event(type, self._scope_fields(scope), payload, shape)
        except EventValidationError:
            logger.exception("swarm_observability: could not build a %s event", type)
            scope.closed = True
            return None
        self._call(hooks.scope_closed, event, scope.token)
        with self._lock:
            scope.closed = True
        return self.emit_event(event, scope, fresh=True, shape=shape)  # takes the lock: no heartbeat between

    def node_exit_stored(self) -> Future[None] | None:
        """With ``durable_node_exit``, a future done once the ``node_exit`` just emitted is stored.

        ``None`` when the node need not wait (the option is off, or nothing is pending). The wait
        never raises: a failed write is logged by the emitter and raised by its next ``flush()``.
        """
        if not self.durable_node_exit:
            return None
        return self.emitter.wait_stored()

    def close_timer(self) -> None:
        """Stop the heartbeat thread."""
        if self._heartbeats is not None:
            self._heartbeats.close()

    def _beat(self, scope: Scope, now: float) -> None:
        with self._lock:
            if not scope.closed:
                self.emit(scope, EventType.HEARTBEAT, data={"elapsed_s": round(now - scope.started, 3)})

    def _failed(self, exc: Exception, type: EventType | str, strict: bool) -> None:
        """Telemetry never breaks the graph: log; only a caller's own invalid input is raised (strict)."""
        if strict and isinstance(exc, EventValidationError):
            raise exc
        logger.error("swarm_observability: a %s event was not recorded: %r", type, exc, exc_info=exc)

    def _call(self, hook: Callable[..., Any], event: StreamEvent, *args: Any) -> Any:
        try:
            return hook(event, *args)
        except Exception:
            name = getattr(hook, "__name__", hook)
            logger.exception("swarm_observability: scope hook %s failed on %s", name, event.type_name)
            return None
