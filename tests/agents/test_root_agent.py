"""A graph that is itself one agent (create_agent, create_react_agent as the root): one agent scope a run."""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
from langchain.agents import create_agent
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import Command
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swarm_observability import SwarmObserver, iter_events, stream_events
from swarm_observability.events import StreamEvent
from swarm_observability.tracing import export_run
from tests.tracing.scenario import tree

from . import graphs
from .fakes import ScriptedChatModel, reply

INPUT = {"messages": [("user", "hi")]}
SCOPED = ("agent_start", "agent_complete", "node_enter", "llm_start", "llm_end", "tool_start", "tool_end")


def _config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def _model() -> ScriptedChatModel:
    return ScriptedChatModel.of(reply(tool_calls=[("add", {"a": 1, "b": 2})]), reply("3"))


def _calculator(**kwargs: Any) -> Any:
    return create_agent(_model(), [graphs.add], name="calculator", **kwargs)


def _react_agent() -> Any:
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated in favour of langchain's create_agent
        return create_react_agent(_model(), [graphs.add], name="calculator")


def _in_a_parent(agent: Any) -> Any:
    """The same agent as the one node of a parent graph: the sub-agent case detection already covers."""
    builder = StateGraph(MessagesState)
    builder.add_node("calculator", agent)
    builder.add_edge(START, "calculator")
    return builder.compile(name="parent")


def _run(graph: Any, mode: str, inp: Any, config: Any = None) -> Any:
    if mode == "sync":
        return graph.invoke(inp, config)
    return asyncio.run(graph.ainvoke(inp, config))


def _shape(events: list[StreamEvent]) -> list[tuple[str, str | None, str | None]]:
    """(type, agent, name of the parent scope's opening) for the agent, node, model and tool events."""
    opened = {e.scope_id: e for e in events if e.type_name in ("scan_started", *SCOPED[::2], "node_enter")}
    shape = []
    for e in events:
        if e.type_name in SCOPED:
            parent = opened.get(e.parent_scope_id)
            shape.append((e.type_name, e.agent, parent.type_name if parent else None))
    return shape


@pytest.fixture
def observer():
    obs = SwarmObserver(heartbeat_interval=None)
    yield obs
    obs.close()


@pytest.mark.parametrize(
    ("build", "model_node"),
    [(_calculator, "model"), (_react_agent, "agent")],
    ids=["create_agent", "create_react_agent"],
)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_root_agent_gets_one_agent_scope_around_its_model_and_tool_calls(observer, build, model_node, mode):
    """agent_start/agent_complete (named after the agent) enclose every node, model and tool event."""
    plain = _run(build(), mode, INPUT)
    out = _run(observer.instrument(build()), mode, INPUT, _config("root"))
    assert [m.content for m in out["messages"]] == [m.content for m in plain["messages"]]
    events = observer.store.load("root")
    names = [e.type_name for e in events]
    assert names[0] == "scan_started" and names[1] == "agent_start"
    assert names[-2:] == ["agent_complete", "scan_complete"]
    (start,) = [e for e in events if e.type_name == "agent_start"]
    (end,) = [e for e in events if e.type_name == "agent_complete"]
    assert (start.agent, start.parent_scope_id, end.scope_id) == (
        "calculator",
        events[0].scope_id,
        start.scope_id,
    )
    assert end.data["outcome"] == "ok" and end.data["duration_ms"] >= 0
    for e in events[2:-2]:
        assert e.agent == "calculator" or e.type_name.startswith("node_"), e
    nodes = [e for e in events if e.type_name == "node_enter"]
    assert [n.node for n in nodes] == [model_node, "tools", model_node]
    assert {n.parent_scope_id for n in nodes} == {start.scope_id}
    assert [e.agent for e in events if e.type_name in ("llm_end", "tool_end")] == ["calculator"] * 3


def test_the_root_agent_looks_like_the_same_agent_as_a_subgraph_node(observer):
    """Inside its agent scope, a root agent's events have the shape of the same agent run as a node."""
    observer.instrument(_calculator()).invoke(INPUT, _config("root"))
    observer.instrument(_in_a_parent(_calculator())).invoke(INPUT, _config("sub"))
    root = _shape(observer.store.load("root"))
    sub = _shape(observer.store.load("sub"))
    assert sub[:2] == [("node_enter", None, "scan_started"), ("agent_start", "calculator", "node_enter")]
    assert root[0] == ("agent_start", "calculator", "scan_started")
    assert sub[2:-1] == root[1:-1] and len(root) == 11


def test_a_root_agent_is_not_detected_when_detection_is_off():
    """SwarmObserver(detect_agents=False): no agent scope, model calls carry no agent."""
    observer = SwarmObserver(heartbeat_interval=None, detect_agents=False)
    observer.instrument(_calculator()).invoke(INPUT, _config("off"))
    events = observer.store.load("off")
    assert [e for e in events if e.type_name.startswith("agent_")] == []
    assert {e.agent for e in events if e.type_name == "llm_end"} == {None}
    observer.close()


def test_a_hand_built_graph_without_a_model_node_is_no_agent(observer):
    """A chat node beside a ToolNode (not named like an agent's model node) gets no agent scope."""
    built = graphs.tool_node_graph(graphs.add, calls=[("add", {"a": 1, "b": 1})])
    observer.instrument(built.graph).invoke(INPUT, _config("hand"))
    assert not [e for e in observer.store.load("hand") if e.type_name.startswith("agent_")]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_failing_root_agent_ends_its_scope_with_the_error(observer, mode):
    """A model that raises: agent_complete outcome error (with the error type) right before scan_error."""

    class Down(ScriptedChatModel):
        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            raise TimeoutError("provider timed out")

    graph = observer.instrument(create_agent(Down.of(reply("-")), [graphs.add], name="fragile"))
    with pytest.raises(TimeoutError):
        _run(graph, mode, INPUT, _config("down"))
    events = observer.store.load("down")
    end, scan = events[-2:]
    assert (end.type_name, end.agent, end.data["outcome"], end.data["error_type"]) == (
        "agent_complete",
        "fragile",
        "error",
        "TimeoutError",
    )
    assert scan.type_name == "scan_error"


def test_an_interrupted_root_agent_pauses_and_a_resume_opens_a_new_agent_scope(observer):
    """interrupt() in a tool: agent_complete is interrupted; Command(resume=...) runs a second agent pair."""
    model = ScriptedChatModel.of(reply(tool_calls=[("ask_human", {"question": "ok?"})]), reply("done"))
    graph = observer.instrument(
        create_agent(model, [graphs.ask_human], name="asker", checkpointer=InMemorySaver())
    )
    assert "__interrupt__" in graph.invoke(INPUT, _config("hitl"))
    assert graph.invoke(Command(resume="yes"), _config("hitl"))["messages"][-1].content == "done"
    events = observer.store.load("hitl")
    agents = [(e.type_name, e.data.get("outcome")) for e in events if e.type_name.startswith("agent_")]
    assert agents == [
        ("agent_start", None),
        ("agent_complete", "interrupted"),
        ("agent_start", None),
        ("agent_complete", "ok"),
    ]
    assert [e.type_name for e in events if e.type_name.startswith("scan_")] == [
        "scan_started",
        "scan_paused",
        "scan_resumed",
        "scan_complete",
    ]


def test_live_event_streams_carry_the_root_agent_pair():
    """stream_events() and iter_events() yield the agent pair just inside scan_started ... scan_complete."""

    async def live() -> list[str]:
        observer = SwarmObserver(heartbeat_interval=None)
        async with stream_events(observer.instrument(_calculator()), INPUT) as events:
            return [e.type_name async for e in events]

    observer = SwarmObserver(heartbeat_interval=None)
    for names in (
        asyncio.run(live()),
        [e.type_name for e in iter_events(observer.instrument(_calculator()), INPUT)],
    ):
        assert names[:2] == ["scan_started", "agent_start"] and names[-2:] == [
            "agent_complete",
            "scan_complete",
        ]
        assert names.count("llm_end") == 2 and names.count("tool_end") == 1
    observer.close()


def test_a_root_agent_is_an_invoke_agent_span_under_the_workflow_live_and_exported():
    """invoke_agent <name> under invoke_workflow; node, chat and tool spans nest in it; export == live."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observer = SwarmObserver(heartbeat_interval=None, tracer_provider=provider)
    observer.instrument(_calculator()).invoke(INPUT, _config("t"))
    live = tree(exporter.get_finished_spans())
    replayed = InMemorySpanExporter()
    export_run(observer.store, "t", replayed)
    assert tree(replayed.get_finished_spans()) == live
    ((agent_scope, agent),) = [(k, s) for k, s in live.items() if s["name"].startswith("invoke_agent")]
    assert agent["name"] == "invoke_agent calculator"
    assert agent["attributes"]["gen_ai.operation.name"] == "invoke_agent"
    assert agent["attributes"]["gen_ai.agent.name"] == "calculator"
    assert live[agent["parent"]]["name"].startswith("invoke_workflow")
    assert sorted(s["name"] for s in live.values() if s["parent"] == agent_scope) == [
        "node model",
        "node model",
        "node tools",
    ]
    chats = [s for s in live.values() if s["name"].startswith("chat")]
    tools = [s for s in live.values() if s["name"].startswith("execute_tool")]
    assert len(chats) == 2 and len(tools) == 1
    for span in chats + tools:
        assert live[span["parent"]]["parent"] == agent_scope
        assert span["attributes"]["gen_ai.agent.name"] == "calculator"
    observer.close()
    provider.shutdown()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_pause_at_a_root_agents_node_entry_reaches_the_live_stream(mode):
    """A pause seen at a node entry inside the root agent streams scan_paused/scan_resumed like the store."""
    import threading

    from swarm_observability.control.registry import get_manager, remove_manager

    observer = SwarmObserver(heartbeat_interval=None)
    run_id = f"root-pause-{mode}"
    paused: list[int] = []

    def pause_after_the_first_model_call(event: StreamEvent) -> None:
        if event.type_name == "node_exit" and event.node == "model" and not paused:
            paused.append(event.seq)
            manager = get_manager(run_id)
            manager.pause()
            threading.Timer(0.05, manager.resume).start()

    observer.emitter.subscribe(pause_after_the_first_model_call)
    graph = observer.instrument(_calculator())

    async def live() -> list[StreamEvent]:
        async with stream_events(graph, INPUT, _config(run_id)) as events:
            return [e async for e in events]

    try:
        seen = asyncio.run(live()) if mode == "async" else list(iter_events(graph, INPUT, _config(run_id)))
    finally:
        remove_manager(run_id)
    stored = observer.store.load(run_id)
    assert [(e.type_name, e.node) for e in stored if e.type_name in ("scan_paused", "scan_resumed")] == [
        ("scan_paused", "tools"),
        ("scan_resumed", "tools"),
    ]
    assert [e.id for e in seen] == [e.id for e in stored]
    observer.close()


@pytest.mark.parametrize("factory", ["create_agent", "create_react_agent"])
def test_an_agent_made_without_tools_is_still_an_agent(observer, factory):
    """create_agent(model, []) has no tools node: it still gets its agent scope, as root and as a node."""

    def build() -> Any:
        model = ScriptedChatModel.of(reply("hello"))
        if factory == "create_agent":
            return create_agent(model, [], name="writer")
        from langgraph.prebuilt import create_react_agent

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return create_react_agent(model, [], name="writer")

    assert "tools" not in build().nodes
    observer.instrument(build()).invoke(INPUT, _config("root"))
    observer.instrument(_in_a_parent(build())).invoke(INPUT, _config("sub"))
    for thread in ("root", "sub"):
        events = observer.store.load(thread)
        (start,) = [e for e in events if e.type_name == "agent_start"]
        assert start.agent == "writer"
        assert [e.agent for e in events if e.type_name == "llm_end"] == ["writer"]
