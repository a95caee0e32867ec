"""instrument()/uninstrument(), what the wrappers keep intact (injection, sync/async, subgraphs, retries)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langgraph.types import RetryPolicy, StreamWriter, interrupt

from swarm_observability.exceptions import InstrumentationError
from swarm_observability.instrumentation.nodes import ObservedNode
from swarm_observability.instrumentation.observer import SwarmObserver, instrument

from .helpers import ChainState as S
from .helpers import chain, run_api, types


def _node_events(observer: SwarmObserver, run_id: str) -> list[tuple[str, str | None]]:
    return [(e.type_name, e.node) for e in observer.store.load(run_id) if e.type_name.startswith("node_")]


@pytest.mark.parametrize("when", ["before_compile", "after_compile"])
def test_instrument_before_or_after_compile(observer: SwarmObserver, when: str) -> None:
    """A StateGraph instrumented before compile() and a compiled graph give the same events."""
    builder = chain("a", "b")
    if when == "before_compile":
        graph = observer.instrument(builder).compile()
    else:
        graph = observer.instrument(builder.compile())
    assert graph.invoke({"x": []}, {"configurable": {"thread_id": "t"}}) == {"x": ["a", "b"]}
    assert types(observer.store.load("t")) == [
        "scan_started",
        "node_enter",
        "node_exit",
        "node_enter",
        "node_exit",
        "scan_complete",
    ]


def test_instrument_twice_does_not_double_wrap(observer: SwarmObserver) -> None:
    """Instrumenting a graph again (or its builder again) changes nothing: one event pair per node."""
    builder = observer.instrument(observer.instrument(chain("a")))
    graph = observer.instrument(observer.instrument(builder.compile()))
    runs = graph.nodes["a"].node.steps[0]
    assert isinstance(runs, ObservedNode) and not isinstance(runs.inner, ObservedNode)
    graph.invoke({"x": []}, {"configurable": {"thread_id": "t"}})
    assert _node_events(observer, "t") == [("node_enter", "a"), ("node_exit", "a")]


def test_uninstrument_restores_nodes_and_methods(observer: SwarmObserver) -> None:
    """uninstrument() lets LangGraph run its own node runnables and methods; the graph then emits nothing."""
    graph = chain("a", "b").compile()
    original_class = type(graph)
    originals = {name: node.bound for name, node in graph.nodes.items()}
    observer.instrument(graph)
    assert isinstance(graph.nodes["a"].node.steps[0], ObservedNode) and observer.is_instrumented(graph)
    observer.uninstrument(graph)
    assert type(graph) is original_class and not observer.is_instrumented(graph)
    assert not any(
        isinstance(getattr(node.node, "steps", [None])[0], ObservedNode) for node in graph.nodes.values()
    )
    assert {"stream", "astream", "copy"}.isdisjoint(vars(graph))
    assert {name: node.bound for name, node in graph.nodes.items()} == originals
    assert graph.invoke({"x": []}, {"configurable": {"thread_id": "t"}}) == {"x": ["a", "b"]}
    assert observer.store.load("t") == []


def test_uninstrument_builder_stops_instrumenting_compiles(observer: SwarmObserver) -> None:
    """After uninstrument(builder), graphs compiled from it are plain LangGraph graphs."""
    builder = observer.instrument(chain("a"))
    observer.uninstrument(builder)
    graph = builder.compile()
    assert not observer.is_instrumented(graph) and not isinstance(
        graph.nodes["a"].node.steps[0], ObservedNode
    )


def test_other_observer_refused(observer: SwarmObserver) -> None:
    """A graph instrumented by one observer cannot be instrumented or uninstrumented by another."""
    graph = observer.instrument(chain("a").compile())
    other = SwarmObserver(heartbeat_interval=None)
    with pytest.raises(InstrumentationError, match="another SwarmObserver"):
        other.instrument(graph)
    with pytest.raises(InstrumentationError, match="another SwarmObserver"):
        other.uninstrument(graph)
    with pytest.raises(InstrumentationError, match="expected a StateGraph"):
        other.instrument(object())


def test_with_config_copy_stays_instrumented(observer: SwarmObserver) -> None:
    """graph.with_config() copies keep the scan lifecycle and the wrapped nodes."""
    graph = observer.instrument(chain("a").compile()).with_config(recursion_limit=50)
    graph.invoke({"x": []}, {"configurable": {"thread_id": "t"}})
    assert types(observer.store.load("t")) == ["scan_started", "node_enter", "node_exit", "scan_complete"]


def test_module_level_instrument_returns_observer() -> None:
    """instrument(graph, **kw) builds an observer with the options given and instruments in place."""
    graph = chain("a").compile()
    obs = instrument(graph, heartbeat_interval=None)
    graph.invoke({"x": []}, {"configurable": {"thread_id": "t"}})
    assert obs.is_instrumented(graph) and obs.heartbeat_interval is None
    assert len(obs.store.load("t")) == 4


@pytest.mark.parametrize(
    ("node_kind", "api"), [("sync", "invoke"), ("sync", "astream"), ("async", "astream")]
)
def test_injection_of_config_writer_store_runtime(observer: SwarmObserver, node_kind: str, api: str) -> None:
    """Nodes asking for config, writer, store and runtime still get them through the wrapper."""
    got: dict[str, Any] = {}

    def record(config: RunnableConfig, writer: StreamWriter, store: BaseStore, runtime: Runtime) -> dict:
        got.update(thread=config["configurable"]["thread_id"], store=store, runtime_store=runtime.store)
        writer({"from": "writer"})
        return {"x": ["n"]}

    if node_kind == "sync":

        def node(
            state: S, config: RunnableConfig, writer: StreamWriter, store: BaseStore, runtime: Runtime
        ) -> dict:
            return record(config, writer, store, runtime)
    else:

        async def node(  # type: ignore[misc]
            state: S, config: RunnableConfig, writer: StreamWriter, store: BaseStore, runtime: Runtime
        ) -> dict:
            return record(config, writer, store, runtime)

    kv = InMemoryStore()
    graph = observer.instrument(chain(("n", node)).compile(store=kv))
    seen: list[Any] = []

    async def consume() -> None:
        async for _ns, _mode, payload in graph.astream(
            {"x": []}, {"configurable": {"thread_id": "t"}}, stream_mode=["custom"], subgraphs=True
        ):
            seen.append(payload)

    if api == "invoke":
        assert graph.invoke({"x": []}, {"configurable": {"thread_id": "t"}}) == {"x": ["n"]}
    else:
        asyncio.run(consume())
        assert {"from": "writer"} in seen
    assert got == {"thread": "t", "store": kv, "runtime_store": kv}


def test_async_only_node_under_sync_invoke_raises_langgraph_error(observer: SwarmObserver) -> None:
    """Sync invoke of an async-only node still raises LangGraph's own TypeError (the node's error)."""

    async def only_async(state: S) -> dict:
        return {"x": ["a"]}

    graph = observer.instrument(chain(("only_async", only_async)).compile())
    with pytest.raises(TypeError, match="No synchronous function provided"):
        graph.invoke({"x": []}, {"configurable": {"thread_id": "t"}})
    assert types(observer.store.load("t")) == ["scan_started", "node_enter", "node_exit", "scan_error"]


def test_async_node_keeps_its_timeout(observer: SwarmObserver) -> None:
    """An async node with timeout= stays valid after wrapping (LangGraph re-validates on copies)."""

    async def slow(state: S) -> dict:
        await asyncio.sleep(1)
        return {"x": ["slow"]}

    builder = StateGraph(S)
    builder.add_node("slow", slow, timeout=0.05)
    builder.add_edge(START, "slow")
    graph = observer.instrument(builder.compile()).with_config(recursion_limit=10)
    _, exc = run_api(graph, "ainvoke", {"x": []}, {"configurable": {"thread_id": "t"}})
    assert type(exc).__name__ == "NodeTimeoutError"
    exit_event = next(e for e in observer.store.load("t") if e.type_name == "node_exit")
    assert exit_event.data["outcome"] == "cancelled"


_body_marker: contextvars.ContextVar[str | None] = contextvars.ContextVar("body_marker", default=None)


class _HookRecorder:
    """Scope hooks that act like a tracer: set a contextvar on open, reset it on close."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, int]] = []
        self.closed: list[tuple[str, Any]] = []

    def scope_opened(self, event: Any) -> Any:
        if event.type_name == "scan_started":
            return None
        self.opened.append((event.node, threading.get_ident()))
        return _body_marker.set(event.scope_id)

    def scope_closed(self, event: Any, token: Any) -> None:
        self.closed.append((event.type_name, token))
        if token is not None:
            _body_marker.reset(token)


@pytest.mark.parametrize(
    ("node_kind", "api"), [("sync", "invoke"), ("sync", "astream"), ("async", "astream")]
)
def test_node_body_runs_where_scope_opened(node_kind: str, api: str) -> None:
    """The node body runs in the thread and context where scope_opened ran; its token comes back."""
    observer = SwarmObserver(heartbeat_interval=None)
    hooks = observer.recorder.hooks = _HookRecorder()
    inside: list[tuple[str | None, int]] = []

    if node_kind == "sync":

        def node(state: S) -> dict:
            inside.append((_body_marker.get(), threading.get_ident()))
            return {"x": ["n"]}
    else:

        async def node(state: S) -> dict:  # type: ignore[misc]
            inside.append((_body_marker.get(), threading.get_ident()))
            return {"x": ["n"]}

    graph = observer.instrument(chain(("n", node)).compile())
    _, exc = run_api(graph, api, {"x": []}, {"configurable": {"thread_id": "t"}})
    assert exc is None
    enter = next(e for e in observer.store.load("t") if e.type_name == "node_enter")
    # the same context; a sync node under astream runs in LangGraph's executor thread, as without us
    assert [marker for marker, _ in inside] == [enter.scope_id]
    if not (node_kind == "sync" and api == "astream"):
        assert inside[0][1] == hooks.opened[0][1]
    assert [name for name, _ in hooks.closed] == ["node_exit", "scan_complete"]
    assert hooks.closed[0][1] is not None and _body_marker.get() is None


def test_failing_scope_hook_does_not_break_the_graph(caplog: pytest.LogCaptureFixture) -> None:
    """A scope hook that raises is logged; the graph result and the event log are unaffected."""

    class Broken:
        def scope_opened(self, event: Any) -> Any:
            raise RuntimeError("tracer down")

        def scope_closed(self, event: Any, token: Any) -> None:
            pass

    observer = SwarmObserver(heartbeat_interval=None)
    observer.recorder.hooks = Broken()
    graph = observer.instrument(chain("a").compile())
    assert graph.invoke({"x": []}, {"configurable": {"thread_id": "t"}}) == {"x": ["a"]}
    assert len(observer.store.load("t")) == 4
    assert "tracer down" in caplog.text


def test_subgraph_state_still_visible(observer: SwarmObserver) -> None:
    """get_state(subgraphs=True) still returns the subgraph's state for a wrapped subgraph node."""
    inner = chain(("ask", lambda state: {"x": [interrupt("ok?")]})).compile()
    graph = observer.instrument(chain(("sub", inner)).compile(checkpointer=InMemorySaver()))
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"x": []}, config)
    task = graph.get_state(config, subgraphs=True).tasks[0]
    assert task.name == "sub" and task.state is not None and task.state.next == ("ask",)
    assert graph.nodes["sub"].subgraphs and isinstance(graph.nodes["sub"].node.steps[0], ObservedNode)


@pytest.mark.parametrize("api", ["invoke", "ainvoke"])
def test_retry_policy_attempts_are_separate_node_executions(observer: SwarmObserver, api: str) -> None:
    """Each RetryPolicy attempt is its own node_enter/node_exit pair with data.attempt."""
    calls = {"n": 0}

    def flaky(state: S) -> dict:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError(f"attempt {calls['n']} failed")
        return {"x": ["ok"]}

    builder = StateGraph(S)
    builder.add_node(
        "flaky", flaky, retry_policy=RetryPolicy(max_attempts=3, initial_interval=0.0, jitter=False)
    )
    builder.add_edge(START, "flaky")
    graph = observer.instrument(builder.compile())
    _, exc = run_api(graph, api, {"x": []}, {"configurable": {"thread_id": "t"}})
    assert exc is None
    exits = [e for e in observer.store.load("t") if e.type_name == "node_exit"]
    enters = [e for e in observer.store.load("t") if e.type_name == "node_enter"]
    assert [e.data["attempt"] for e in enters] == [1, 2, 3]
    assert [(e.data["outcome"], e.data["attempt"]) for e in exits] == [("error", 1), ("error", 2), ("ok", 3)]
    assert exits[0].data["error_type"] == "ConnectionError"
    assert len({e.scope_id for e in enters}) == 3


def test_tracer_provider_gets_live_spans() -> None:
    """SwarmObserver(tracer_provider=...) wires the live tracer: node spans nest under the scan span."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observer = SwarmObserver(tracer_provider=provider, heartbeat_interval=None)
    graph = observer.instrument(chain("a", "b").compile())
    graph.invoke({"x": []}, {"configurable": {"thread_id": "t"}})
    spans = exporter.get_finished_spans()
    root = next(s for s in spans if s.parent is None)
    nodes = [s for s in spans if s.parent is not None]
    assert observer.tracer_provider is provider and len(nodes) == 2
    assert {s.parent.span_id for s in nodes} == {root.context.span_id}
    provider.shutdown()
