"""The in-node helpers (progress, log, plan, probe, agent) and the @observe_node decorator."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.graph import StateGraph

from swarm_observability import agent, iter_events, log, observe_node, plan, probe, progress, stream_events
from swarm_observability.exceptions import EventValidationError, NoActiveRunError
from swarm_observability.instrumentation.observer import SwarmObserver
from swarm_observability.instrumentation.recorder import current_scope

from .helpers import ChainState as S
from .helpers import by_scope, chain, run_api, types


def _single(node: Callable[..., Any], name: str = "n") -> StateGraph:
    return chain((name, node))


def _enter_sync(cm: Any) -> None:
    with cm:
        pass


@pytest.mark.parametrize(
    "call",
    [
        lambda: progress(0.5),
        lambda: log("hello"),
        lambda: current_scope(),
        lambda: _enter_sync(probe("p")),
        lambda: _enter_sync(agent("a")),
        lambda: _enter_sync(plan()),
        lambda: agent("a")(lambda: None)(),
        lambda: asyncio.run(probe("p").__aenter__()),
    ],
    ids=["progress", "log", "current_scope", "probe", "agent", "plan", "agent_decorator", "async_probe"],
)
def test_helpers_outside_a_run_raise(call: Callable[[], Any]) -> None:
    """Every helper called outside an instrumented run raises NoActiveRunError with a hint."""
    with pytest.raises(NoActiveRunError, match="outside an instrumented run"):
        call()


@pytest.mark.parametrize("node_kind", ["sync", "async"])
def test_probe_error_is_recorded_and_reraised(observer: SwarmObserver, node_kind: str) -> None:
    """A probe whose body raises completes with outcome error; the exception reaches the node."""
    if node_kind == "sync":

        def node(state: S) -> dict:
            with probe("dns", host="a.example") as p:
                p.result(answer="1.2.3.4")
                raise ValueError("resolver timeout")
    else:

        async def node(state: S) -> dict:  # type: ignore[misc]
            async with probe("dns", host="a.example") as p:
                p.result(answer="1.2.3.4")
                raise ValueError("resolver timeout")

    graph = observer.instrument(_single(node).compile())
    _, exc = run_api(
        graph, "invoke" if node_kind == "sync" else "ainvoke", {"x": []}, {"configurable": {"thread_id": "t"}}
    )
    assert isinstance(exc, ValueError)
    events = observer.store.load("t")
    probe_events = [e for e in events if e.probe == "dns"]
    assert types(probe_events) == ["probe_start", "probe_result", "probe_complete"]
    assert probe_events[0].data == {"host": "a.example"} and probe_events[1].data == {"answer": "1.2.3.4"}
    assert probe_events[2].data["outcome"] == "error" and probe_events[2].data["error_type"] == "ValueError"
    assert probe_events[2].data["error_message"] == "resolver timeout"
    assert len({e.scope_id for e in probe_events}) == 1
    assert types(events)[-2:] == ["node_exit", "scan_error"]


@pytest.mark.parametrize("node_kind", ["sync", "async"])
def test_agent_decorator_and_plan(observer: SwarmObserver, node_kind: str) -> None:
    """@agent works on sync and async functions; plan records steps set inside the block."""
    if node_kind == "sync":

        @agent("writer", model="fake")
        def write() -> str:
            with plan(goal="draft") as p:
                p.steps = ["outline", "draft"]
            return "text"

        def node(state: S) -> dict:
            return {"x": [write(), write()]}
    else:

        @agent("writer", model="fake")
        async def awrite() -> str:
            async with plan(goal="draft") as p:
                p.steps = ["outline", "draft"]
            return "text"

        async def node(state: S) -> dict:  # type: ignore[misc]
            return {"x": [await awrite(), await awrite()]}

    graph = observer.instrument(_single(node).compile())
    _, exc = run_api(
        graph, "invoke" if node_kind == "sync" else "ainvoke", {"x": []}, {"configurable": {"thread_id": "t"}}
    )
    assert exc is None
    events = observer.store.load("t")
    groups = [g for g in by_scope(events).values() if g[0].type_name in ("agent_start", "plan_start")]
    assert [types(g) for g in groups] == [
        ["agent_start", "agent_complete"],
        ["plan_start", "plan_complete"],
    ] * 2
    agents = [g for g in groups if g[0].type_name == "agent_start"]
    plans = [g for g in groups if g[0].type_name == "plan_start"]
    assert agents[0][0].scope_id != agents[1][0].scope_id and agents[0][0].data == {"model": "fake"}
    assert plans[0][0].parent_scope_id == agents[0][0].scope_id and plans[0][0].agent == "writer"
    assert plans[0][0].data == {"goal": "draft"} and plans[0][1].data["steps"] == ["outline", "draft"]
    assert {e.node for e in events if e.type_name != "scan_started" and e.type_name != "scan_complete"} == {
        "n"
    }


def test_progress_rejects_bad_fraction_and_stores_nothing(observer: SwarmObserver) -> None:
    """progress() outside 0..1 raises EventValidationError in the node; no node_progress is stored."""

    def node(state: S) -> dict:
        progress(1.5)
        return {}

    graph = observer.instrument(_single(node).compile())
    with pytest.raises(EventValidationError, match="from 0 to 1"):
        graph.invoke({"x": []}, {"configurable": {"thread_id": "t"}})
    assert "node_progress" not in types(observer.store.load("t"))


@pytest.mark.timeout(30)
def test_events_from_create_task_and_to_thread_reach_the_stream(observer: SwarmObserver) -> None:
    """Helpers called in asyncio tasks and to_thread workers keep their scope and reach the live stream."""

    async def child(i: int) -> None:
        async with probe("child", i=i) as p:
            await asyncio.sleep(0)
            p.result(i=i)

    def blocking() -> None:
        log("from a worker thread")
        progress(0.5)

    async def node(state: S) -> dict:
        await asyncio.gather(asyncio.create_task(child(1)), asyncio.create_task(child(2)))
        await asyncio.to_thread(blocking)
        return {"x": ["done"]}

    graph = observer.instrument(_single(node).compile())

    async def consume() -> list[Any]:
        return [e async for e in stream_events(graph, {"x": []}, {"configurable": {"thread_id": "t"}})]

    seen = asyncio.run(consume())
    stored = observer.store.load("t")
    assert [e.id for e in seen] == [e.id for e in stored]
    node_scope = next(e.scope_id for e in stored if e.type_name == "node_enter")
    starts = [e for e in stored if e.type_name == "probe_start"]
    assert sorted(s.data["i"] for s in starts) == [1, 2] and {s.parent_scope_id for s in starts} == {
        node_scope
    }
    results = [e for e in stored if e.type_name == "probe_result"]
    assert {r.scope_id: r.data["i"] for r in results} == {s.scope_id: s.data["i"] for s in starts}
    worker = [e for e in stored if e.type_name in ("log", "node_progress")]
    assert types(worker) == ["log", "node_progress"] and {e.scope_id for e in worker} == {node_scope}


def test_iter_events_sync_twin(observer: SwarmObserver) -> None:
    """iter_events() yields the same StreamEvents, in order, from a sync stream."""
    graph = observer.instrument(_single(lambda state: {"x": ["a"]}).compile())
    seen = list(iter_events(graph, {"x": []}, {"configurable": {"thread_id": "t"}}))
    assert [e.id for e in seen] == [e.id for e in observer.store.load("t")]
    with pytest.raises(TypeError, match="stream_mode"):
        list(iter_events(graph, {"x": []}, stream_mode="values"))


@pytest.mark.parametrize("node_kind", ["sync", "async"])
def test_observe_node_in_a_graph_that_is_not_instrumented(observer: SwarmObserver, node_kind: str) -> None:
    """@observe_node(observer=...) reports the decorated node only, with injection kept intact."""
    if node_kind == "sync":

        @observe_node(observer=observer)
        def watched(state: S, config: RunnableConfig) -> dict:
            progress(1.0, config["configurable"]["thread_id"])
            return {"x": ["w"]}
    else:

        @observe_node(observer=observer, name="watched")
        async def watched(state: S, config: RunnableConfig) -> dict:  # type: ignore[misc]
            progress(1.0, config["configurable"]["thread_id"])
            return {"x": ["w"]}

    builder = _single(watched, "watched")
    builder.add_node("plain", lambda state: {"x": ["p"]})
    builder.add_edge("watched", "plain")
    graph = builder.compile()
    _, exc = run_api(
        graph, "invoke" if node_kind == "sync" else "ainvoke", {"x": []}, {"configurable": {"thread_id": "t"}}
    )
    assert exc is None
    events = observer.store.load("t")
    assert [(e.type_name, e.node) for e in events] == [
        ("node_enter", "watched"),
        ("node_progress", "watched"),
        ("node_exit", "watched"),
    ]
    assert events[1].message == "t" and events[0].parent_scope_id is None and events[0].invocation_id is None


def test_observe_node_adds_nothing_inside_an_instrumented_graph(observer: SwarmObserver) -> None:
    """In an instrumented graph a decorated node is reported once, by the wrapper."""

    @observe_node
    def watched(state: S) -> dict:
        return {"x": ["w"]}

    graph = observer.instrument(_single(watched).compile())
    graph.invoke({"x": []}, {"configurable": {"thread_id": "t"}})
    assert types(observer.store.load("t")) == ["scan_started", "node_enter", "node_exit", "scan_complete"]


def test_observe_node_without_observer(observer: SwarmObserver) -> None:
    """A decorated function runs plainly outside LangGraph and raises NoActiveRunError inside a bare run."""

    @observe_node
    def watched(state: S) -> dict:
        return {"x": ["w"]}

    assert watched({}) == {"x": ["w"]}
    with pytest.raises(NoActiveRunError, match="observe_node"):
        _single(watched).compile().invoke({"x": []})


def test_a_probe_object_is_entered_once(observer: SwarmObserver) -> None:
    """Re-entering a finished probe is refused; results after the block raise NoActiveRunError."""
    outcomes: list[str] = []

    def node(state: S) -> dict:
        p = probe("once")
        with p:
            pass
        for action in (lambda: p.__enter__(), lambda: p.result(late=True)):
            try:
                action()
            except Exception as exc:
                outcomes.append(type(exc).__name__)
        return {}

    observer.instrument(_single(node).compile()).invoke({"x": []})
    assert outcomes == ["InstrumentationError", "NoActiveRunError"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("node_kind", ["sync", "async"])
def test_observe_node_exit_is_a_safe_point(observer: SwarmObserver, node_kind: str) -> None:
    """A cancel requested while a decorated node runs stops it at its exit: node_exit outcome cancelled."""
    from swarm_observability.control import get_manager, remove_manager
    from swarm_observability.exceptions import ScanCancelled

    if node_kind == "sync":

        @observe_node(observer=observer, name="watched")
        def watched(state: S) -> dict:
            get_manager("t-exit").cancel("stop here")
            return {"x": ["w"]}
    else:

        @observe_node(observer=observer, name="watched")
        async def watched(state: S) -> dict:  # type: ignore[misc]
            get_manager("t-exit").cancel("stop here")
            return {"x": ["w"]}

    graph = _single(watched, "watched").compile()
    try:
        _, exc = run_api(
            graph,
            "invoke" if node_kind == "sync" else "ainvoke",
            {"x": []},
            {"configurable": {"thread_id": "t-exit"}},
        )
    finally:
        remove_manager("t-exit")
    assert isinstance(exc, ScanCancelled) and exc.reason == "stop here"
    exit_event = observer.store.load("t-exit")[-1]
    assert (exit_event.type_name, exit_event.data["outcome"]) == ("node_exit", "cancelled")
