"""``SwarmObserver``: instruments LangGraph graphs and turns their execution into ``StreamEvent``s.

One observer per graph (or per application) rather than global patching::

    observer = SwarmObserver()                      # in-memory store, default processors
    graph = observer.instrument(builder.compile(checkpointer=InMemorySaver()))
    graph.invoke({"targets": [...]}, {"configurable": {"thread_id": "scan-1"}})
    observer.store.load("scan-1")                   # scan_started, node_enter, ..., scan_complete

``instrument`` wraps every node (see :mod:`.nodes`) and gives the compiled graph
a scan lifecycle (see :mod:`.lifecycle`). Every event goes ``emitter.emit`` (seq,
processors, store, subscribers) and then, inside nodes, into LangGraph's custom stream, all under one
lock so the stream and the store see the same order.

Seams for the other parts of the product:

* Control: at every safe point (node entry and exit, probe entry and exit) the wrappers call
  :meth:`SwarmObserver._safe_point` / :meth:`_safe_point_sync`, which run the scan's
  ``CancellationManager.checkpoint`` (from :mod:`swarm_observability.control.cancellation`, when
  installed). A pause emits ``scan_paused`` (``data.reason="pause"``) and, when it ends,
  ``scan_resumed`` (``data.reason="pause"``), both on the invocation scope; neither ends the invocation.
  When an invocation ends, :meth:`SwarmObserver._end_control` resets the manager (so the scan can be
  resumed in this process) and :meth:`SwarmObserver._release_managers` drops managers the observer
  created that nobody uses any more.
* OpenTelemetry: :meth:`_scope_opened` runs right after a scope's opening event is emitted and
  :meth:`_scope_closed` right before its closing event is emitted, with the scope current
  (:func:`.recorder.current_scope`) and in the context its body runs in; what
  ``_scope_opened`` returns is kept in ``scope.token`` and passed to ``_scope_closed``. Both do
  nothing here; a tracer overrides them. A failing hook is logged, never raised into the graph.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.runnables.config import var_child_runnable_config
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from .._fork import reinit_after_fork
from ..emitter import EventEmitter
from ..events import EventType, Outcome, StreamEvent, make_event
from ..exceptions import EventValidationError, InstrumentationError
from ..processors import Processor
from ..stores.base import EventStore
from .callbacks import CallbackSettings, capture_content_from_env, check_prices
from .nodes import unwrap_nodes, wrap_nodes
from .recorder import RunState, Scope

if TYPE_CHECKING:
    from .lifecycle import EventStream

logger = logging.getLogger("swarm_observability")

G = TypeVar("G")

DEFAULT_HEARTBEAT_INTERVAL = 15.0
"""Seconds between heartbeats of a node or probe that is still running."""

_HEARTBEAT_KINDS = frozenset({"node", "probe"})
_RUNTIME_KEY = "__pregel_runtime"


def _load_control() -> Any:
    try:
        from ..control import cancellation
    except ImportError:  # control is an optional part of the product
        return None
    return cancellation


def _context_writer() -> Any:
    """The stream writer of the LangGraph node the current context runs in, if any."""
    config = var_child_runnable_config.get()
    runtime = ((config or {}).get("configurable") or {}).get(_RUNTIME_KEY)
    return getattr(runtime, "stream_writer", None)


class SwarmObserver:
    """Instrument LangGraph graphs; persist and stream their events.

    Args:
        store: where events are kept; an in-memory store when omitted (ignored if ``emitter`` is given).
        emitter: the :class:`EventEmitter` to emit through; one on ``store`` when omitted.
        tracer_provider: an OpenTelemetry ``TracerProvider``: node, agent, probe and scan spans go
            there live (:func:`swarm_observability.tracing.trace_observer` is wired in); kept as
            :attr:`tracer_provider`. Without it no spans are made.
        heartbeat_interval: seconds between ``heartbeat`` events of nodes and probes that are still
            running (default 15 s), from one shared timer thread; ``None`` or ``0`` turns them off.
        processors: the emitter's processor pipeline (default redaction + size cap); only without
            ``emitter``.
        durable_node_exit: make every node wait, before it returns to LangGraph, until its
            ``node_exit`` is stored (kept as :attr:`durable_node_exit`). LangGraph checkpoints a
            node's writes only after the node returns, so the event log never lags behind the
            checkpoint: after a crash (SIGKILL, an OOM kill) every node the checkpoint records as
            finished has its ``node_exit`` in the log. The price is one store commit per node
            (parallel nodes share a group commit) that the node's thread waits for (an async node
            awaits it without blocking the event loop). Off by default: the background writer then
            commits without holding nodes up, and a crash may lose the last events of nodes the
            checkpoint already has (the log stays gapless; a resumed scan continues it and re-runs
            nothing on their account). Cancelled nodes never wait; a synchronous emitter (the
            in-memory store) has stored every event when ``emit`` returns, so there is nothing to wait for.
        meter_provider: an OpenTelemetry ``MeterProvider``: the GenAI semconv histograms
            ``gen_ai.client.token.usage`` and ``gen_ai.client.operation.duration`` are recorded there
            for every model call (:mod:`swarm_observability.tracing.metrics`).
        capture_content: record prompts, completions, tool arguments and results in the model and tool
            events (they pass the emitter's processors like every payload). Default: off, unless
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``.
        detect_agents: give agent subgraph nodes (``create_agent``, ``create_react_agent``, the agents
            of ``create_swarm``/``create_supervisor``) an agent scope of their own (default on).
        prices: model name -> (US$ per million input tokens, US$ per million output tokens); each
            ``llm_end`` then carries ``cost_usd`` (``None`` for a model missing from the table) and the
            run state sums it.
        hash_chain: chain every run's events by hash for tamper evidence (``prev_hash``, checked by
            ``swarm-obs verify``; see :mod:`swarm_observability.chain`); only without ``emitter``
            (pass ``EventEmitter(hash_chain=True)`` then).

    Raises:
        ValueError: ``emitter`` together with a different ``store``, ``processors`` or
            ``hash_chain``, a negative ``heartbeat_interval``, or a malformed ``prices`` table.
    """

    def __init__(
        self,
        store: EventStore | None = None,
        emitter: EventEmitter | None = None,
        *,
        tracer_provider: Any = None,
        heartbeat_interval: float | None = DEFAULT_HEARTBEAT_INTERVAL,
        processors: Iterable[Processor] | None = None,
        durable_node_exit: bool = False,
        meter_provider: Any = None,
        capture_content: bool | None = None,
        detect_agents: bool = True,
        prices: Mapping[str, tuple[float, float]] | None = None,
        hash_chain: bool = False,
    ) -> None:
        if emitter is not None:
            if store is not None and store is not emitter.store:
                raise ValueError("pass either store or emitter (the emitter already has a store), not both")
            if processors is not None:
                raise ValueError("processors belong to the emitter; pass them to EventEmitter instead")
            if hash_chain:
                raise ValueError("hash_chain belongs to the emitter; pass EventEmitter(hash_chain=True)")
        if heartbeat_interval is not None and heartbeat_interval < 0:
            raise ValueError(f"heartbeat_interval must be >= 0 seconds, got {heartbeat_interval!r}")
        self.emitter = (
            emitter
            if emitter is not None
            else EventEmitter(store, processors=processors, hash_chain=hash_chain)
        )
        self.tracer_provider = tracer_provider
        self.heartbeat_interval = heartbeat_interval or None
        self.durable_node_exit = durable_node_exit
        self.detect_agents = detect_agents
        self.callback_settings = CallbackSettings(
            capture_content=capture_content_from_env() if capture_content is None else capture_content,
            prices=check_prices(prices),
        )
        self._lock = threading.RLock()
        self._heartbeats = _HeartbeatTimer(self, self.heartbeat_interval) if self.heartbeat_interval else None
        self._classes: dict[type, type] = {}
        self._control = _load_control()
        self._created: dict[str, weakref.ref[Any]] = {}
        if tracer_provider is not None:
            from ..tracing.live import trace_observer

            trace_observer(self, tracer_provider)
        if meter_provider is not None:
            from ..tracing.metrics import GenAIMetrics

            GenAIMetrics(meter_provider).install(self.emitter)

    @property
    def store(self) -> EventStore:
        """The event store the emitter writes to."""
        return self.emitter.store

    # -- instrumenting ----------------------------------------------------------------------------

    def instrument(self, graph: G) -> G:
        """Wrap every node of ``graph`` and give it a scan lifecycle; returns ``graph`` itself.

        Accepts a ``StateGraph`` (every graph it compiles is instrumented) or a compiled graph
        (changed in place; its subgraphs too). Idempotent: instrumenting again changes nothing.

        Raises:
            InstrumentationError: not a LangGraph graph, or already instrumented by another observer.
        """
        if isinstance(graph, StateGraph):
            self._instrument_builder(graph)
        elif isinstance(graph, Pregel):
            self._instrument_compiled(graph)
        else:
            raise InstrumentationError(
                f"cannot instrument {type(graph).__name__}: expected a StateGraph or a compiled graph"
            )
        return graph

    def uninstrument(self, graph: G) -> G:
        """Restore the original nodes and methods of a graph this observer instrumented.

        Subgraphs are restored too. A graph that is not instrumented is returned unchanged.

        Raises:
            InstrumentationError: the graph is instrumented by another observer.
        """
        if isinstance(graph, StateGraph):
            hook = graph.__dict__.get("compile")
            owner = getattr(hook, "_swarm_observer", None)
            self._check_owner(owner, graph)
            if owner is self:
                previous = hook._swarm_previous  # type: ignore[union-attr]
                if previous is None:
                    del graph.compile  # type: ignore[method-assign]
                else:
                    graph.compile = previous  # type: ignore[method-assign]
        elif isinstance(graph, Pregel):
            owner = getattr(type(graph), "_swarm_observer", None)
            if owner is not None:
                self._check_owner(owner, graph)
                graph.__class__ = type(graph)._swarm_original_class  # type: ignore[attr-defined]
                for sub in unwrap_nodes(graph):
                    if isinstance(sub, Pregel) and getattr(type(sub), "_swarm_observer", None) is self:
                        self.uninstrument(sub)
        return graph

    def is_instrumented(self, graph: Any) -> bool:
        """Whether this observer instruments ``graph``."""
        if isinstance(graph, StateGraph):
            return getattr(graph.__dict__.get("compile"), "_swarm_observer", None) is self
        return getattr(type(graph), "_swarm_observer", None) is self

    def events(self, graph: Pregel, input: Any, config: Any = None, **kwargs: Any) -> EventStream:
        """Run ``graph`` (instrumenting it if needed) and yield only its :class:`StreamEvent`s, live.

        See :func:`.lifecycle.stream_events`; use the result as an async context
        manager (``async with observer.events(...) as events:``) to end the run when you stop early.
        """
        from .lifecycle import stream_events

        if not isinstance(graph, Pregel):
            raise InstrumentationError(f"events() needs a compiled graph, got {type(graph).__name__}")
        return stream_events(self.instrument(graph), input, config, **kwargs)

    def close(self) -> None:
        """Stop the heartbeat thread, end spans still open (if tracing), flush the emitter.

        The store stays open: it is the caller's.
        """
        if self._heartbeats is not None:
            self._heartbeats.close()
        tracer = getattr(self, "_swarm_live_tracer", None)
        if tracer is not None:
            tracer.close()
        self.emitter.flush()

    def __enter__(self) -> SwarmObserver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_owner(self, owner: Any, graph: Any) -> None:
        if owner is not None and owner is not self:
            raise InstrumentationError(
                f"{type(graph).__name__} {getattr(graph, 'name', '')!r} is instrumented by another "
                "SwarmObserver; uninstrument it with that observer first"
            )

    def _instrument_builder(self, builder: StateGraph) -> None:
        hook = builder.__dict__.get("compile")
        owner = getattr(hook, "_swarm_observer", None)
        self._check_owner(owner, builder)
        if owner is self:
            return
        original = builder.compile

        @functools.wraps(original)
        def compile(*args: Any, **kwargs: Any) -> Any:
            return self.instrument(original(*args, **kwargs))

        compile._swarm_observer = self  # type: ignore[attr-defined]
        compile._swarm_previous = hook  # type: ignore[attr-defined]
        builder.compile = compile  # type: ignore[method-assign]

    def _instrument_compiled(self, graph: Pregel) -> None:
        from .lifecycle import observed_class

        owner = getattr(type(graph), "_swarm_observer", None)
        self._check_owner(owner, graph)
        if owner is self:
            return
        subgraphs = wrap_nodes(self, graph)
        graph.__class__ = observed_class(self, type(graph))
        for sub in subgraphs:
            if isinstance(sub, Pregel):
                self._instrument_compiled(sub)

    # -- the OpenTelemetry seam -------------------------------------------------------------------

    def _scope_opened(self, event: StreamEvent) -> Any:
        """Called right after a scope's opening event was emitted; a tracer starts a span here.

        Runs in the context the scope's body runs in, with the scope current. The return value (for
        example the token of an attached OpenTelemetry context) is kept in ``scope.token`` and handed
        back to :meth:`_scope_closed`.
        """
        return None

    def _scope_closed(self, event: StreamEvent, token: Any) -> None:
        """Called right before a scope's closing event is emitted, in the context of :meth:`_scope_opened`."""

    # -- emitting ---------------------------------------------------------------------------------

    def _emit(
        self,
        scope: Scope,
        type: EventType,
        *,
        strict: bool = False,
        fields: dict[str, Any] | None = None,
        **extra: Any,
    ) -> StreamEvent | None:
        """Emit one event in ``scope``; ``strict`` lets validation errors reach the (user) caller."""
        base = scope.fields if fields is None else fields
        with self._lock:
            try:
                stored = self.emitter.emit(type, scope.run.run_id, **({**base, **extra} if extra else base))
            except Exception as exc:
                return self._emit_failed(exc, type, strict)
            if stored is not None and scope.kind != "scan":
                self._write(stored, scope.writer, scope.config)
        return stored

    def _emit_built(self, event: StreamEvent, scope: Scope) -> StreamEvent | None:
        with self._lock:
            try:
                stored = self.emitter.emit_event(event)
            except Exception as exc:
                return self._emit_failed(exc, event.type, False)
            if stored is not None and scope.kind != "scan":
                self._write(stored, scope.writer, scope.config)
        return stored

    def _emit_failed(self, exc: Exception, type: EventType | str, strict: bool) -> None:
        """Telemetry never breaks the graph: log; only a caller's own invalid input is raised (strict)."""
        if strict and isinstance(exc, EventValidationError):
            raise exc
        logger.error("swarm_observability: a %s event was not recorded: %r", type, exc, exc_info=exc)
        return None

    def _write(self, event: StreamEvent, writer: Any, config: Any) -> None:
        """Put ``event`` into LangGraph's custom stream of a node through its ``writer``.

        The writer is the node's ``runtime.stream_writer`` (what ``get_stream_writer()`` returns in
        the node); it reads the namespace from the current runnable config, which a thread without one
        (the heartbeat timer) borrows from the scope (``config``) for the call.
        """
        if writer is None:
            return
        try:
            if var_child_runnable_config.get() is not None or config is None:
                writer(event)
                return
            token = var_child_runnable_config.set(config)
            try:
                writer(event)
            finally:
                var_child_runnable_config.reset(token)
        except Exception:  # the stream is gone (consumer finished, loop closed)
            logger.debug("swarm_observability: %s not written to the stream", event.type_name, exc_info=True)

    def _open_scope(self, scope: Scope, type: EventType, data: dict[str, Any]) -> StreamEvent | None:
        event = self._emit(scope, type, data=data) if data else self._emit(scope, type)
        if event is not None:
            scope.token = self._call_hook(self._scope_opened, event)
        if self._heartbeats is not None and scope.kind in _HEARTBEAT_KINDS:
            self._heartbeats.register(scope)
        return event

    def _close_scope(
        self, scope: Scope, type: EventType, outcome: Outcome, data: dict[str, Any], **fields: Any
    ) -> StreamEvent | None:
        if self._heartbeats is not None and scope.kind in _HEARTBEAT_KINDS:
            self._heartbeats.unregister(scope)
        payload = {"outcome": outcome.value, "duration_ms": scope.elapsed_ms(), **data}
        if getattr(self._scope_closed, "__func__", None) is SwarmObserver._scope_closed:
            with self._lock:  # no hook to show the event to first: let the emitter build it
                scope.closed = True
                return self._emit(scope, type, data=payload, **fields)
        try:
            event = make_event(type, scope.run.run_id, **{**scope.fields, **fields, "data": payload})
        except EventValidationError:
            logger.exception("swarm_observability: could not build a %s event", type)
            scope.closed = True
            return None
        self._call_hook(self._scope_closed, event, scope.token)
        with self._lock:
            scope.closed = True
            return self._emit_built(event, scope)

    def _call_hook(self, hook: Any, event: StreamEvent, *args: Any) -> Any:
        try:
            return hook(event, *args)
        except Exception:
            logger.exception(
                "swarm_observability: scope hook %s failed on %s", hook.__name__, event.type_name
            )
            return None

    def _node_exit_stored(self) -> Future[None] | None:
        """With :attr:`durable_node_exit`, a future done once the ``node_exit`` just emitted is stored.

        ``None`` when the node need not wait (the option is off, or nothing is pending). The wait
        never raises: a failed write is logged by the emitter and raised by its next ``flush()``.
        """
        if not self.durable_node_exit:
            return None
        return self.emitter.wait_stored()

    def _beat(self, scope: Scope, now: float) -> None:
        with self._lock:
            if scope.closed:
                return
            self._emit(scope, EventType.HEARTBEAT, data={"elapsed_s": round(now - scope.started, 3)})

    # -- the control seam -------------------------------------------------------------------------

    def _manager_for(self, run_id: str) -> Any:
        """The run's ``CancellationManager``; remembered if this call created it (see _release_managers)."""
        control = self._control
        if control is None:
            return None
        try:
            created = run_id not in control._registry
            manager = control.get_manager(run_id)
        except Exception:
            logger.exception("swarm_observability: no cancellation manager for %r; control is off", run_id)
            return None
        if created:
            self._created[run_id] = weakref.ref(manager)
        return manager

    def _end_control(self, run: RunState) -> None:
        """An invocation is ending (right before its terminal event): reset its manager for the next one.

        Reset before the terminal event, so a request made by anyone who has seen that event (a
        subscriber, a stream consumer, a reader of the store) applies to the next invocation. Branches
        of this invocation still running (sync node bodies cannot be interrupted) lose their link to
        the manager; if it was cancelled or paused they get a private cancelled one instead, so they
        stop at their next safe point as they would have without the reset.
        """
        manager = run.manager
        if manager is None or self._control is None:
            return
        if manager.is_cancelled or manager.is_paused:
            stopped = self._control.CancellationManager(run.run_id)
            stopped.cancel(manager.cancel_reason)
            run.manager = stopped
        else:
            run.manager = None
        manager.reset()

    def _release_managers(self) -> None:
        """Drop from the control registry the managers this observer created that nobody uses any more.

        Called when an invocation has ended. A manager stays while it has a request pending for the
        next invocation (cancel, pause, drain), a snapshot, or any reference besides the registry's: a
        running invocation, a caller or a ``ControlWatcher`` holding it. The check and the removal
        happen under the registry's lock, so a concurrent ``get_manager`` either gets the manager
        before (and holds it, so it stays) or a fresh one after.
        """
        control = self._control
        if control is None or not self._created:
            return
        with control._registry_lock:
            registry = control._registry
            for run_id, ref in list(self._created.items()):
                manager = registry.get(run_id)
                if manager is None or manager is not ref():
                    self._created.pop(run_id, None)
                    continue
                if (
                    manager.is_cancelled
                    or manager.is_paused
                    or manager.is_drain_requested
                    or manager.get_snapshot() is not None
                ):
                    continue
                # the registry's reference, ``manager`` and getrefcount's argument: nobody else's
                if sys.getrefcount(manager) <= 3:
                    del registry[run_id]
                    self._created.pop(run_id, None)

    def _pause_callbacks(self, scope: Scope, node: str | None) -> tuple[Any, Any]:
        run = scope.run
        fields = dict(run.root.fields) if run.root is not None else {"thread_id": run.thread_id}
        if node is not None:
            fields["node"] = node

        def emit(type: EventType, data: dict[str, Any]) -> None:
            with self._lock:
                event = self._emit(scope, type, fields=fields, data=data)
                if event is not None and scope.kind == "scan":
                    # at a node's entry, before its scope opens: the node's own writer streams it
                    self._write(event, _context_writer(), None)

        def on_pause() -> None:
            emit(EventType.SCAN_PAUSED, {"reason": "pause", "outcome": "paused"})

        def on_resume() -> None:
            emit(EventType.SCAN_RESUMED, {"reason": "pause"})

        return on_pause, on_resume

    def _safe_point_sync(self, scope: Scope, node: str | None = None) -> None:
        """A safe point in sync code: raises ``ScanCancelled`` if cancelled, blocks while paused."""
        manager = scope.run.manager
        if manager is None or not (manager.is_cancelled or manager.is_paused):
            return
        node = node or scope.fields.get("node")
        on_pause, on_resume = self._pause_callbacks(scope, node)
        try:
            manager.checkpoint_sync(node=node, on_pause=on_pause, on_resume=on_resume)
        except InstrumentationError:
            # Paused, but this thread runs an event loop (a sync ``with probe()`` in an async node):
            # blocking would freeze the loop, so the pause takes effect at the next async safe point.
            logger.debug("swarm_observability: pause deferred at a sync safe point on an event loop")

    async def _safe_point(self, scope: Scope, node: str | None = None) -> None:
        """A safe point in async code: raises ``ScanCancelled`` if cancelled, waits while paused."""
        manager = scope.run.manager
        if manager is None or not (manager.is_cancelled or manager.is_paused):
            return
        node = node or scope.fields.get("node")
        on_pause, on_resume = self._pause_callbacks(scope, node)
        await manager.checkpoint(node=node, on_pause=on_pause, on_resume=on_resume)


class _HeartbeatTimer:
    """One daemon thread per observer that beats for every open node and probe past its interval."""

    def __init__(self, observer: SwarmObserver, interval: float) -> None:
        self._observer = observer
        self._interval = interval
        self._due: dict[Scope, float] = {}
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._closed = False
        self._idle = False
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: the thread is gone and the open scopes are the parent's; start afresh."""
        self._due = {}
        self._cond = threading.Condition(threading.Lock())
        self._thread = None
        self._idle = False

    def register(self, scope: Scope) -> None:
        # Runs on every node open and close: the dict operations alone are atomic under the GIL, and
        # the lock is taken only to start the thread or wake it from its untimed wait. _loop sets
        # _idle before it looks at _due, and this writes _due before it reads _idle, so either the
        # timer sees the new scope or this sees the timer idle.
        self._due[scope] = scope.started + self._interval
        if self._thread is None or self._idle:
            with self._cond:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(
                        target=self._loop, name="swarm-obs-heartbeat", daemon=True
                    )
                    self._thread.start()
                elif self._idle:
                    self._idle = False
                    self._cond.notify()

    def unregister(self, scope: Scope) -> None:
        self._due.pop(scope, None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        next_beat: dict[Scope, float] = {}  # this thread's own schedule: _due is written by others
        while True:
            with self._cond:
                while True:
                    self._idle = True
                    if self._due or self._closed:
                        break
                    next_beat.clear()
                    self._cond.wait()
                self._idle = False
                if self._closed:
                    return
            now = time.perf_counter()
            open_scopes = list(self._due.items())
            schedule = {scope: next_beat.get(scope, at) for scope, at in open_scopes}
            due = [scope for scope, at in schedule.items() if at <= now]
            for scope in due:
                schedule[scope] = now + self._interval
            next_beat = schedule
            for scope in due:
                with contextlib.suppress(Exception):
                    self._observer._beat(scope, now)
            wait = min(schedule.values()) - now if schedule else None
            if wait is not None and wait > 0:
                with self._cond:
                    if not self._closed:
                        self._cond.wait(wait)


def instrument(graph: G, **observer_kwargs: Any) -> SwarmObserver:
    """Instrument ``graph`` with a new :class:`SwarmObserver` (``observer_kwargs`` go to it); return it.

    The graph is changed in place, as with :meth:`SwarmObserver.instrument`; keep the returned
    observer to reach its :attr:`~SwarmObserver.store`.
    """
    observer = SwarmObserver(**observer_kwargs)
    observer.instrument(graph)
    return observer
