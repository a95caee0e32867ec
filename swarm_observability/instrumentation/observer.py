"""``SwarmObserver``: the facade that instruments LangGraph graphs and owns what their events go through.

One observer per graph (or per application) rather than global patching::

    observer = SwarmObserver()                      # in-memory store, default processors
    graph = observer.instrument(builder.compile(checkpointer=InMemorySaver()))
    graph.invoke({"targets": [...]}, {"configurable": {"thread_id": "scan-1"}})
    observer.store.load("scan-1")                   # scan_started, node_enter, ..., scan_complete

The observer builds the runtime and hands it down; nothing below calls back into it:

* :attr:`recorder` (:class:`~.recorder.Recorder`): emits the events of every scope through
  :attr:`emitter`; a tracer follows scopes through ``recorder.hooks``;
* :attr:`lifecycle` (:class:`~.lifecycle.Lifecycle`): one invocation per outermost graph call;
* :attr:`leases` (:class:`~swarm_observability.control.registry.ManagerLeases`): the control
  managers this observer created, released when unused.

``instrument`` wraps what LangGraph runs for every node (:mod:`.nodes`) and shadows the graph's
``stream``/``astream``/``copy`` on the instance (:mod:`.lifecycle`); the graph's class, its nodes'
``bound`` runnables, its drawing and its streams stay LangGraph's own.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from langgraph.graph import StateGraph

from ..control.registry import ManagerLeases
from ..emitter import EventEmitter
from ..events import EventType, StreamEvent
from ..exceptions import InstrumentationError
from ..processors import Processor
from ..stores.base import EventStore
from ._langgraph import is_instrumentable, shadow_methods, shadowed_by, unshadow_methods
from .agents import detect_agents as find_agents
from .callback_settings import CallbackSettings, capture_content_from_env, check_prices
from .callbacks import SwarmCallbackHandler
from .event_stream import EventStream, stream_events
from .lifecycle import GraphEntry, Lifecycle, RunCallback
from .nodes import unwrap_nodes, wrap_nodes
from .recorder import Invocation, Recorder

if TYPE_CHECKING:
    from ..tracing.live import LiveTracer

G = TypeVar("G")

DEFAULT_HEARTBEAT_INTERVAL = 15.0
"""Seconds between heartbeats of a node or probe that is still running."""


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
        custom_stream: also put our events into LangGraph's ``stream_mode="custom"`` (interleaved
            with the graph's own custom payloads, which stay untouched and in order), as
            ``SwarmObserver`` did before 0.2. Off by default: an instrumented graph streams exactly
            what the plain graph streams; :func:`~swarm_observability.stream_events` always yields
            our events whatever this says.
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
            of ``create_swarm``/``create_supervisor``) an agent scope of their own, and every
            invocation of a graph that is itself such an agent one around it (default on).
        prices: model name -> (US$ per million input tokens, US$ per million output tokens); each
            ``llm_end`` then carries ``cost_usd`` (``None`` for a model missing from the table) and the
            run state sums it.
        hash_chain: chain every run's events by hash for tamper evidence (``prev_hash``, checked by
            ``swarm-obs verify``; see :mod:`swarm_observability.chain`); only without ``emitter``
            (pass ``EventEmitter(hash_chain=True)`` then).

    Raises:
        ValueError: ``emitter`` together with a different ``store``, ``processors`` or
            ``hash_chain``, a negative or infinite ``heartbeat_interval``, or a malformed ``prices`` table.
        TypeError: ``store`` or ``emitter`` of another kind (a URL string instead of a store, say).
    """

    def __init__(
        self,
        store: EventStore | None = None,
        emitter: EventEmitter | None = None,
        *,
        tracer_provider: Any = None,
        heartbeat_interval: float | None = DEFAULT_HEARTBEAT_INTERVAL,
        processors: Iterable[Processor] | None = None,
        custom_stream: bool = False,
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
        if heartbeat_interval is not None and not 0 <= heartbeat_interval < math.inf:
            raise ValueError(
                f"heartbeat_interval must be >= 0 seconds and finite, got {heartbeat_interval!r}"
            )
        if emitter is not None and not isinstance(emitter, EventEmitter):
            raise TypeError(f"emitter must be an EventEmitter, not {emitter!r} ({type(emitter).__name__})")
        self.emitter = (
            emitter
            if emitter is not None
            else EventEmitter(store, processors=processors, hash_chain=hash_chain)
        )
        self.tracer_provider = tracer_provider
        self.heartbeat_interval = heartbeat_interval or None
        self.durable_node_exit = durable_node_exit
        self.custom_stream = custom_stream
        self.detect_agents = detect_agents
        self.callback_settings = CallbackSettings(
            capture_content=capture_content_from_env() if capture_content is None else capture_content,
            prices=check_prices(prices),
        )
        self.recorder = Recorder(
            self.emitter, heartbeat_interval=self.heartbeat_interval, durable_node_exit=durable_node_exit
        )
        self.leases = ManagerLeases()
        self.lifecycle = Lifecycle(
            self.recorder, self.leases, custom_stream=custom_stream, owner=self, agents=detect_agents
        )
        self.tracer: LiveTracer | None = None
        """The live tracer wired in (with ``tracer_provider``, or by ``trace_observer``), else ``None``."""
        self.lifecycle.model_handler = self._model_and_tool_callbacks
        if tracer_provider is not None:
            from ..tracing.live import trace_observer

            trace_observer(self, tracer_provider)
        if meter_provider is not None:
            from ..tracing.metrics import GenAIMetrics

            GenAIMetrics(meter_provider).install(self.emitter)

    def __deepcopy__(self, memo: dict[int, Any]) -> SwarmObserver:
        return self  # a service, like a logger: a copied graph reports to the same observer

    @property
    def store(self) -> EventStore:
        """The event store the emitter writes to."""
        return self.emitter.store

    def add_run_callback(self, factory: RunCallback) -> Callable[[], None]:
        """Attach extra LangChain callbacks to every invocation; returns a function that detaches them.

        ``factory(scope)`` is called as each invocation starts, with its scan :class:`~.recorder.Scope`
        (``scope.invocation`` has the run id, thread id and the :attr:`recorder`); the handler it
        returns (``None``: none this time) is added to the config of that one call, so LangGraph hands
        it to every node, model and tool below. A failing factory is logged and skipped.
        """
        self.lifecycle.run_callbacks.append(factory)

        def remove() -> None:
            if factory in self.lifecycle.run_callbacks:
                self.lifecycle.run_callbacks.remove(factory)

        return remove

    def _model_and_tool_callbacks(self, invocation: Invocation) -> SwarmCallbackHandler:
        return SwarmCallbackHandler(invocation, self.callback_settings)

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
        elif is_instrumentable(graph):
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
                    del graph.compile
                else:
                    graph.compile = previous  # type: ignore[method-assign]
        elif is_instrumentable(graph):
            owner = _owner(graph)
            if owner is not None:
                self._check_owner(owner, graph)
                unshadow_methods(graph)
                for sub in unwrap_nodes(graph):
                    if _owner(sub) is self:
                        self.uninstrument(sub)
        return graph

    def is_instrumented(self, graph: Any) -> bool:
        """Whether this observer instruments ``graph``."""
        if isinstance(graph, StateGraph):
            return getattr(graph.__dict__.get("compile"), "_swarm_observer", None) is self
        return _owner(graph) is self

    def events(self, graph: Any, input: Any, config: Any = None, **kwargs: Any) -> EventStream:
        """Run ``graph`` (instrumenting it if needed) and yield only its :class:`StreamEvent`s, live.

        See :func:`~.event_stream.stream_events`; use the result as an async context manager
        (``async with observer.events(...) as events:``) to end the run when you stop early.
        """
        if not is_instrumentable(graph):
            raise InstrumentationError(f"events() needs a compiled graph, got {type(graph).__name__}")
        return stream_events(self.instrument(graph), input, config, **kwargs)

    def create_checkpoint(
        self, run_id: str, label: str, *, graph: Any = None, checkpoint_id: str | None = None
    ) -> StreamEvent | None:
        """Name a checkpoint of thread ``run_id`` ``label``, from outside the graph (a ``checkpoint`` event).

        The checkpoint is ``checkpoint_id``, else the thread's newest one read from ``graph``'s
        checkpointer. The event is stored before this returns. Resume or fork from the label with
        ``resume_from_checkpoint``; inside a node use :func:`swarm_observability.checkpoint`.

        Raises:
            InstrumentationError: neither ``graph`` nor ``checkpoint_id``, or the thread has no checkpoint.
            EventValidationError: an empty or over-long label, or an invalid run id.
        """
        from .checkpoints import check_label

        check_label(label)
        if checkpoint_id is None:
            if graph is None:
                raise InstrumentationError(
                    "create_checkpoint needs graph= (to read the thread) or checkpoint_id="
                )
            snapshot = graph.get_state({"configurable": {"thread_id": run_id}})
            checkpoint_id = (snapshot.config or {}).get("configurable", {}).get("checkpoint_id")
            if not checkpoint_id:
                raise InstrumentationError(f"thread {run_id!r} has no checkpoint to name {label!r}")
        event = self.emitter.emit(
            EventType.CHECKPOINT,
            run_id,
            thread_id=run_id,
            checkpoint_id=str(checkpoint_id),
            message=label,
            data={"label": label},
        )
        self.emitter.flush()
        return event

    def resume_from_checkpoint(
        self, graph: Any, thread_id: str, checkpoint: str, *, input: Any = None, config: Any = None
    ) -> Any:
        """Fork ``thread_id`` from an earlier checkpoint (id or label) with ``graph`` (instrumented
        here if needed); labels are looked up in :attr:`store`. See
        :func:`swarm_observability.timetravel.resume_from_checkpoint`."""
        from ..timetravel import resume_from_checkpoint

        return resume_from_checkpoint(
            self.instrument(graph), thread_id, checkpoint, store=self.store, input=input, config=config
        )

    def close(self) -> None:
        """Stop the heartbeat thread, end spans still open (if tracing), flush the emitter.

        The store stays open: it is the caller's.
        """
        self.recorder.close_timer()
        if self.tracer is not None:
            self.tracer.close()
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

    def _instrument_builder(self, builder: StateGraph[Any]) -> None:
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

    def _instrument_compiled(self, graph: Any) -> None:
        owner = _owner(graph)
        self._check_owner(owner, graph)
        if owner is self:
            return
        subgraphs = wrap_nodes(graph, find_agents(graph) if self.detect_agents else None)
        shadow_methods(graph, self.lifecycle.methods)
        for sub in subgraphs:
            # A subgraph another observer instruments (shared between graphs) stays as it is: its nodes
            # report into whichever invocation runs them, so refusing would only break the compile.
            if is_instrumentable(sub) and _owner(sub) is None:
                self._instrument_compiled(sub)


def _owner(graph: Any) -> Any:
    """The observer instrumenting a compiled graph, or ``None``."""
    entry = shadowed_by(graph)
    return entry.lifecycle.owner if isinstance(entry, GraphEntry) else None


def instrument(graph: G, **observer_kwargs: Any) -> SwarmObserver:
    """Instrument ``graph`` with a new :class:`SwarmObserver` (``observer_kwargs`` go to it); return it.

    The graph is changed in place, as with :meth:`SwarmObserver.instrument`; keep the returned
    observer to reach its :attr:`~SwarmObserver.store`.
    """
    observer = SwarmObserver(**observer_kwargs)
    observer.instrument(graph)
    return observer
