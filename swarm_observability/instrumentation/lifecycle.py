"""The scan lifecycle of an instrumented graph: one outermost ``stream``/``astream`` call is one invocation.

An instrumented compiled graph keeps its class; its ``stream``, ``astream`` and ``copy`` are shadowed
on the instance (see :mod:`._langgraph`), and ``invoke``/``ainvoke``/``batch``/``astream_events``
all go through them. The outermost call is one *scan invocation*:

* it emits ``scan_started``, or ``scan_resumed`` when the input is ``None`` or a ``Command``, the call
  has a thread id and the run already has an invocation in the event log
  (``data.previous_invocation_id`` names it). The log answers, not the checkpointer, so resuming
  reads the checkpointer exactly as often as without instrumentation;
* it ends with exactly one of ``scan_complete``; ``scan_paused`` (``reason`` ``"interrupt"`` when a
  node called ``interrupt()`` or a static ``interrupt_before/after`` stopped it, ``"drain"`` on
  ``GraphDrained``, which is re-raised); ``scan_cancelled`` (``ScanCancelled``, ``CancelledError``,
  ``KeyboardInterrupt``, or ``reason="abandoned"`` when the consumer closes the stream early);
  ``scan_error`` (the exception is re-raised).

Graph calls inside a running invocation (a subgraph node, ``graph.invoke()`` inside a node) pass
straight through: their nodes report into the enclosing invocation. The nodes of a graph that is
itself an agent (see :mod:`.agents`) run in one agent scope inside the invocation's.

Streams are untouched by default: nothing of ours is added to any ``stream_mode``. With
``SwarmObserver(custom_stream=True)`` (and always for :func:`~.event_stream.stream_events`) events
emitted in nodes go into ``stream_mode="custom"`` through LangGraph's stream writer, and the
invocation's own events are yielded here, shaped like LangGraph's custom items; the terminal event of
a failed invocation is yielded before the exception is raised.

Control: unless the caller passes ``control=`` (or an enclosing LangGraph run provides one), each
invocation runs with a fresh ``RunControl`` from the scan's ``CancellationManager``, so
``manager.drain()`` works without extra wiring. The manager is reset as the invocation ends.

Run callbacks: factories registered with ``SwarmObserver.add_run_callback`` are called with the
invocation's scope as it starts; the LangChain callback handlers they return are added to the
config of that one call. The observer's own model and tool handler is not (see :mod:`.callbacks`).

Durability: the outermost invocation waits, after its terminal event, until the emitter has stored
every event, so ``store.load()`` right after ``invoke``/``ainvoke``/the end of ``astream`` sees the
whole invocation. A failed write is logged there, never raised into the graph's caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from langgraph.types import Command

from .._clock import new_scope_id
from ..control.registry import ManagerLeases
from ..events import EventType, StreamEvent
from . import gc_safety
from ._langgraph import (
    config_checkpointer,
    copy_graph,
    custom_item_shape,
    enclosing_control,
    graph_shape,
    run_identity,
    shadow_methods,
)
from .agents import close_root_agent, open_root_agent, root_agent_name
from .callbacks import SwarmCallbackHandler, with_run_callbacks
from .checkpoints import resumed_from
from .outcomes import terminal_event, unique_interrupts
from .recorder import Invocation, Recorder, Scope, active_scope, enter_scope, exit_scope

logger = logging.getLogger("swarm_observability")
_NOT_SETTLED = "swarm_observability: could not wait for the events of %r"

RunCallback = Callable[[Scope], Any]
"""Called with an invocation's scope as it starts; returns a LangChain callback handler or ``None``."""


class Lifecycle:
    """One observer's invocation driver: binds the shadowing methods of the graphs it instruments."""

    def __init__(
        self,
        recorder: Recorder,
        leases: ManagerLeases,
        *,
        custom_stream: bool,
        owner: Any,
        agents: bool = True,
    ) -> None:
        self.recorder = recorder
        self.leases = leases
        self.custom_stream = custom_stream
        self.agents = agents
        self.owner = owner
        self.run_callbacks: list[RunCallback] = []
        self.model_handler: Callable[[Invocation], SwarmCallbackHandler] | None = None
        """Builds each invocation's model and tool handler (see :mod:`.callbacks`)."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Lifecycle:
        return self  # copies of an instrumented graph are instrumented by the same observer

    def methods(self, graph: Any) -> dict[str, Callable[..., Any]]:
        """The ``stream``/``astream``/``copy`` that shadow ``graph``'s own."""
        entry = GraphEntry(self, graph)
        return {"stream": entry.stream, "astream": entry.astream, "copy": entry.copy}


class GraphEntry:
    """The entry points of one instrumented graph (bound to it; see :meth:`Lifecycle.methods`)."""

    __slots__ = ("agent", "graph", "lifecycle")

    def __init__(self, lifecycle: Lifecycle, graph: Any) -> None:
        self.lifecycle = lifecycle
        self.graph = graph
        self.agent = root_agent_name(graph) if lifecycle.agents else None  # the graph is this agent

    def stream(self, input: Any, config: Any = None, **kwargs: Any) -> Iterator[Any]:
        return self.run_stream(input, config, kwargs, streams=self.lifecycle.custom_stream)

    def astream(self, input: Any, config: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
        return self.run_astream(input, config, kwargs, streams=self.lifecycle.custom_stream)

    def copy(self, update: dict[str, Any] | None = None) -> Any:
        new = copy_graph(self.graph, update)
        shadow_methods(new, self.lifecycle.methods)
        return new

    def run_stream(self, input: Any, config: Any, kwargs: dict[str, Any], *, streams: bool) -> Iterator[Any]:
        """``stream``, with our events in ``stream_mode="custom"`` if ``streams``."""
        original = type(self.graph).stream
        if active_scope() is not None:
            return original(self.graph, input, config, **kwargs)
        run = _Run(self, input, config, kwargs, streams)
        return _run_sync(run, original, input, config, kwargs)

    def run_astream(
        self, input: Any, config: Any, kwargs: dict[str, Any], *, streams: bool
    ) -> AsyncIterator[Any]:
        """``astream``, with our events in ``stream_mode="custom"`` if ``streams``."""
        original = type(self.graph).astream
        if active_scope() is not None:
            return original(self.graph, input, config, **kwargs)
        run = _Run(self, input, config, kwargs, streams)
        return _run_async(run, original, input, config, kwargs)


class _Invocation(Invocation):
    """An invocation the lifecycle runs: with its model and tool handler, which node wrappers hand to
    node bodies and routers (:func:`~.callbacks.enter_user_code`)."""

    __slots__ = ("handler",)
    handler: SwarmCallbackHandler | None


class _Run:
    """Start and end of one scan invocation; shared by the sync and the async stream."""

    def __init__(
        self, entry: GraphEntry, input: Any, config: Any, kwargs: dict[str, Any], streams: bool
    ) -> None:
        lifecycle, graph = entry.lifecycle, entry.graph
        self.agent = entry.agent
        run_id, thread_id = run_identity(graph.config, config, new_scope_id)
        self.lifecycle = lifecycle
        self.recorder = lifecycle.recorder
        self.graph = graph
        self.invocation_id = new_scope_id()
        lease = lifecycle.leases.lease(run_id)
        invocation = _Invocation(
            lifecycle.recorder, run_id, thread_id, self.invocation_id, lease, streams=streams
        )
        invocation.handler = lifecycle.model_handler(invocation) if lifecycle.model_handler else None
        self.invocation = invocation
        self.shape = custom_item_shape(graph, kwargs) if streams else None
        self.lookup = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        self.may_resume = (input is None or isinstance(input, Command)) and thread_id is not None
        fork = ((config or {}).get("configurable") or {}).get("checkpoint_id") if self.may_resume else None
        self.fork_from = str(fork) if fork else None
        static = kwargs.get("interrupt_before") or kwargs.get("interrupt_after")
        static = static or graph.interrupt_before_nodes or graph.interrupt_after_nodes
        self.static_interrupts = bool(static) and config_checkpointer(graph, config) is not None
        self.ended = False
        self.resumed: dict[str, Any] | None = None

    # -- start ------------------------------------------------------------------------------------

    def read_log(self, *, reload: bool = False) -> None:
        """What :meth:`start` reads first: the run's last seq (now if ``reload``, else at the first emit)
        and, if it may resume, :func:`resumed_from`; apart, so that the async driver reads off the loop."""
        emitter, run_id = self.recorder.emitter, self.invocation.run_id
        try:
            emitter.forget_run(run_id, reload=reload)
        except Exception:  # the first emit reads again, and reports a failure as every emit does
            logger.debug("swarm_observability: could not read the last seq of %r", run_id, exc_info=True)
        if self.may_resume:
            self.resumed = resumed_from(emitter, self.graph, run_id, self.lookup, self.fork_from)

    def start(self) -> list[Any]:
        """Open the invocation's scope and :attr:`scope` (a root agent's, else the same), where nodes run;
        returns the opening events as custom stream items (none when not streaming)."""
        invocation = self.invocation
        data: dict[str, Any] = {"graph": self.graph.name}
        previous = self.resumed
        if previous is not None:
            data.update(previous)
        elif (shape := graph_shape(self.graph)) is not None:
            data["graph_shape"] = shape
        fields: dict[str, Any] = {"invocation_id": self.invocation_id}
        if invocation.thread_id is not None:
            fields = {"thread_id": invocation.thread_id, **fields}
        root = Scope("scan", self.graph.name, invocation, None, fields, scope_id=self.invocation_id)
        invocation.root = root
        kind = EventType.SCAN_RESUMED if previous is not None else EventType.SCAN_STARTED
        opened = [self.recorder.open(root, kind, data)]
        self.scope = root
        if self.agent is not None:
            self.scope, agent_start = open_root_agent(root, self.agent)
            opened.append(agent_start)
        return self._items(opened)

    def _items(self, events: list[StreamEvent | None]) -> list[Any]:
        shape = self.shape
        return [] if shape is None else [shape(event) for event in events if event is not None]

    def call(self, original: Callable[..., Any], input: Any, config: Any, kwargs: dict[str, Any]) -> Any:
        """The graph's own ``stream``/``astream`` called in :attr:`scope`, with ``config`` given the run
        callbacks and ``kwargs`` the manager's ``RunControl``; the sync and async drivers share it."""
        token = enter_scope(self.scope)
        try:
            root = self.invocation.root
            for factory in self.lifecycle.run_callbacks:
                try:
                    handler = factory(root) if root is not None else None
                except Exception:
                    logger.exception("swarm_observability: run callback factory %r failed", factory)
                    continue
                if handler is not None:
                    config = with_run_callbacks(config, handler)
            manager = self.invocation.manager
            if (
                manager is not None
                and kwargs.get("control") is None
                and not enclosing_control(self.graph, config)
            ):
                kwargs = {**kwargs, "control": manager.run_control()}
            return original(self.graph, input, config, **kwargs)
        finally:
            exit_scope(token)

    # -- end --------------------------------------------------------------------------------------

    def needs_state(self) -> bool:
        """Only a static interrupt can pause a run without a node raising; then ask the checkpointer."""
        return self.static_interrupts and not self.invocation.interrupts

    def finish(self, exc: BaseException | None, next_nodes: tuple[str, ...] = ()) -> list[Any]:
        """Emit the invocation's one terminal event for how it ended (a root agent's end first).

        Returns them as custom stream items, as :meth:`start` does."""
        if self.ended:
            return []
        self.ended = True
        invocation = self.invocation
        kind, outcome, data, fields = terminal_event(
            exc, unique_interrupts(invocation.interrupts), next_nodes
        )
        root = invocation.root
        assert root is not None
        closed = [close_root_agent(self.scope, outcome, data)] if self.scope is not root else []
        if invocation.manager is not None:  # no local for it: release_idle counts who holds a manager
            invocation.manager = invocation.manager.end_invocation()
        try:
            closed.append(self.recorder.close(root, kind, outcome, data, **fields))
            return self._items(closed)
        finally:
            self.recorder.emitter.forget_run(invocation.run_id)  # caches hold the runs in flight only
            self.lifecycle.leases.release_idle()

    def settle(self) -> None:
        """Wait until the invocation's events are stored; a failed write is logged, not raised."""
        try:
            done = self.recorder.emitter.wait_stored()
            if done is not None:
                done.result()
        except Exception:
            logger.exception(_NOT_SETTLED, self.invocation.run_id)

    def finish_and_settle(self, exc: BaseException) -> None:
        self.finish(exc)
        self.settle()

    async def asettle(self) -> None:
        """:meth:`settle` without blocking the event loop."""
        try:
            done = self.recorder.emitter.wait_stored()
            if done is not None:
                await asyncio.shield(asyncio.wrap_future(done))
        except Exception:
            logger.exception(_NOT_SETTLED, self.invocation.run_id)


def _run_sync(
    run: _Run, original: Callable[..., Iterator[Any]], input: Any, config: Any, kwargs: dict[str, Any]
) -> Iterator[Any]:
    run.read_log()
    opened = run.start()
    root = run.scope
    inner: Iterator[Any] | None = None
    gc_safety.prepare()
    try:
        yield from opened
        inner = run.call(original, input, config, kwargs)
        while True:
            token = enter_scope(root)
            try:
                chunk = next(inner)
            except StopIteration:
                break
            finally:
                exit_scope(token)
            yield chunk
    except GeneratorExit as exc:
        token = enter_scope(root)
        try:
            if inner is not None:
                inner.close()  # type: ignore[attr-defined]
        finally:
            exit_scope(token)
            gc_safety.outside_collection(run.finish_and_settle, exc)  # a collection may hold our locks
        raise
    except BaseException as exc:
        closed = run.finish(exc)
        run.settle()
        if isinstance(exc, Exception):
            yield from closed
        raise
    next_nodes: tuple[str, ...] = ()
    if run.needs_state():
        try:
            next_nodes = tuple(run.graph.get_state(run.lookup).next)
        except Exception:
            logger.debug("swarm_observability: get_state failed", exc_info=True)
    closed = run.finish(None, next_nodes)
    run.settle()
    yield from closed


async def _run_async(
    run: _Run,
    original: Callable[..., AsyncIterator[Any]],
    input: Any,
    config: Any,
    kwargs: dict[str, Any],
) -> AsyncIterator[Any]:
    if getattr(run.recorder.emitter.store, "backend", None) == "memory":
        run.read_log()
    else:  # a store read may block: off the loop, or every other task waits for it
        await asyncio.to_thread(run.read_log, reload=True)
    opened = run.start()
    root = run.scope
    inner: AsyncIterator[Any] | None = None
    try:
        for item in opened:
            yield item
        inner = run.call(original, input, config, kwargs)
        while True:
            token = enter_scope(root)
            try:
                chunk = await inner.__anext__()
            except StopAsyncIteration:
                break
            finally:
                exit_scope(token)
            yield chunk
    except GeneratorExit as exc:
        token = enter_scope(root)
        try:
            if inner is not None:
                await inner.aclose()  # type: ignore[attr-defined]
        finally:
            exit_scope(token)
            run.finish(exc)
        await run.asettle()
        raise
    except BaseException as exc:
        closed = run.finish(exc)
        await run.asettle()
        for item in closed if isinstance(exc, Exception) else ():
            yield item
        raise
    next_nodes: tuple[str, ...] = ()
    if run.needs_state():
        try:
            next_nodes = tuple((await run.graph.aget_state(run.lookup)).next)
        except Exception:
            logger.debug("swarm_observability: aget_state failed", exc_info=True)
    closed = run.finish(None, next_nodes)
    await run.asettle()
    for item in closed:
        yield item
