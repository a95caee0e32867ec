"""Real swarms instrumented with one call: model calls, tool calls, agents and handoffs in the log."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from langchain_core.messages import BaseMessage
from langgraph.types import Command

from swarm_observability import SwarmObserver, rebuild_run_state, stream_events
from swarm_observability.events import StreamEvent

from . import graphs
from .fakes import ScriptedChatModel, reply

INPUT = {"messages": [("user", "hi")]}


def _config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def _run(graph: Any, mode: str, inp: Any, config: dict[str, Any]) -> Any:
    if mode == "sync":
        return graph.invoke(inp, config)
    return asyncio.run(graph.ainvoke(inp, config))


def _types(events: list[StreamEvent], *names: str) -> list[StreamEvent]:
    return [e for e in events if e.type_name in names]


def _contents(messages: list[BaseMessage]) -> list[tuple[str, Any, list[str]]]:
    return [(m.type, m.content, [c["name"] for c in getattr(m, "tool_calls", [])]) for m in messages]


def _assert_pairs(events: list[StreamEvent]) -> None:
    """Every llm_start/tool_start scope closes exactly once, with the matching end or error type."""
    opened = Counter(e.scope_id for e in _types(events, "llm_start", "tool_start"))
    closed = Counter(e.scope_id for e in _types(events, "llm_end", "llm_error", "tool_end", "tool_error"))
    assert opened == closed and set(opened.values()) == {1}


@pytest.fixture
def observer():
    obs = SwarmObserver(heartbeat_interval=None)
    yield obs
    obs.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_swarm_records_agents_model_calls_tools_and_handoffs_both_ways(observer, mode):
    """langgraph-swarm: alice -> bob -> alice; tokens add up to what the models reported."""
    built = graphs.swarm()
    plain = _run(graphs.swarm().graph, mode, INPUT, _config("plain"))
    out = _run(observer.instrument(built.graph), mode, INPUT, _config("s"))
    assert _contents(out["messages"]) == _contents(plain["messages"]), "instrumenting changed the result"
    events = observer.store.load("s")
    _assert_pairs(events)
    assert [
        (e.agent, e.data["from_agent"], e.data["to_agent"], e.data["via"]) for e in _types(events, "handoff")
    ] == [
        ("alice", "alice", "bob", "tool"),
        ("bob", "bob", "alice", "tool"),
    ]
    assert [e.agent for e in _types(events, "agent_start")] == ["alice", "bob", "alice"]
    llm_ends = _types(events, "llm_end")
    assert [e.agent for e in llm_ends] == ["alice", "alice", "bob", "alice"]
    assert {(e.data["model"], e.data["provider"], e.data["response_model"]) for e in llm_ends} == {
        ("fake-gpt-4o", "openai", "fake-gpt-4o-2024-08-06")
    }
    tools = _types(events, "tool_start")
    assert [(e.data["tool"], e.agent, e.node) for e in tools] == [
        ("add", "alice", "tools"),
        ("transfer_to_bob", "alice", "tools"),
        ("transfer_to_alice", "bob", "tools"),
    ]
    assert all(e.data["tool_call_id"] for e in tools)
    scopes = {
        e.scope_id: e
        for e in events
        if e.type_name in ("node_enter", "agent_start", "llm_start", "tool_start")
    }
    for e in llm_ends:
        assert (
            scopes[e.parent_scope_id].type_name == "node_enter" and scopes[e.parent_scope_id].node == "model"
        )

    state = rebuild_run_state(observer.store, "s")
    usage = state.usage
    assert (usage.llm_calls, usage.input_tokens, usage.output_tokens) == (
        built.llm_calls,
        built.input_tokens,
        built.output_tokens,
    )
    assert usage.total_tokens == built.input_tokens + built.output_tokens
    assert usage.tool_calls == 3
    assert {k: (v.llm_calls, v.tool_calls) for k, v in usage.by_agent.items()} == {
        "alice": (3, 2),
        "bob": (1, 1),
    }
    assert usage.by_model["fake-gpt-4o"].input_tokens == built.input_tokens
    assert [(h.from_agent, h.to_agent, h.tool) for h in state.handoffs] == [
        ("alice", "bob", "transfer_to_bob"),
        ("bob", "alice", "transfer_to_alice"),
    ]
    assert state.active_agent == "alice"
    assert state.errors == () and state.status.value == "completed"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_supervisor_delegation_and_inferred_returns(observer, mode):
    """langgraph-supervisor: delegations come from the handoff tools, returns are inferred from the edges."""
    built = graphs.supervisor()
    out = _run(observer.instrument(built.graph), mode, INPUT, _config("sup"))
    assert out["messages"][-1].content == "done: 14 tides a week"
    events = observer.store.load("sup")
    _assert_pairs(events)
    handoffs = [(e.data["from_agent"], e.data["to_agent"], e.data["via"]) for e in _types(events, "handoff")]
    assert handoffs == [
        ("supervisor", "research", "tool"),
        ("research", "supervisor", "graph"),
        ("supervisor", "math", "tool"),
        ("math", "supervisor", "graph"),
    ]
    state = rebuild_run_state(observer.store, "sup")
    assert (state.usage.llm_calls, state.usage.input_tokens, state.usage.output_tokens) == (
        built.llm_calls,
        built.input_tokens,
        built.output_tokens,
    )
    assert set(state.usage.by_agent) == {"supervisor", "research", "math"}
    assert state.usage.by_agent["research"].tool_calls == 1 and state.tools["lookup"].finished == 1
    assert state.active_agent == "supervisor"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_parallel_tool_calls_of_create_agent_are_sibling_tool_runs(observer, mode):
    """create_agent runs two tool calls of one model answer in parallel: two tool scopes, both closed."""
    built = graphs.parallel_agent()
    out = _run(observer.instrument(built.graph), mode, INPUT, _config("par"))
    assert out["messages"][-1].content == "5 and 20"
    events = observer.store.load("par")
    _assert_pairs(events)
    starts = _types(events, "tool_start")
    assert sorted((e.data["tool"], e.data["tool_call_id"]) for e in starts) == [
        ("add", "c-add"),
        ("multiply", "c-mul"),
    ]
    parents = {e.scope_id: e for e in _types(events, "node_enter")}
    assert all(parents[e.parent_scope_id].node == "tools" for e in starts)
    assert [e.data["outcome"] for e in _types(events, "tool_end")] == ["ok", "ok"]
    assert rebuild_run_state(observer.store, "par").usage.tool_calls == 2


def test_a_tool_that_raises_is_a_tool_error_and_not_a_handoff(observer):
    """ToolNode in a hand-built graph: the failing tool gives tool_error; the node fails with it."""
    built = graphs.tool_node_graph(graphs.broken, calls=[("broken", {"query": "x"})])
    graph = observer.instrument(built.graph)
    with pytest.raises(ConnectionError):
        graph.invoke(INPUT, _config("err"))
    events = observer.store.load("err")
    _assert_pairs(events)
    (error,) = _types(events, "tool_error")
    assert error.data["error_type"] == "ConnectionError" and error.data["tool"] == "broken"
    assert error.node == "tools"
    state = rebuild_run_state(observer.store, "err")
    assert [(e.event_type, e.error_type) for e in state.errors][:1] == [("tool_error", "ConnectionError")]


def test_a_tool_returning_an_error_message_is_a_tool_error(observer):
    """A ToolMessage(status="error") counts as a failed tool run, as if it had raised."""
    built = graphs.tool_node_graph(graphs.refuse, calls=[("refuse", {"query": "x"})])
    out = observer.instrument(built.graph).invoke(INPUT, _config("refused"))
    assert out["messages"][-1].content == "finished"
    (error,) = _types(observer.store.load("refused"), "tool_error")
    assert (
        error.data["error_type"] == "ToolMessageError" and error.data["error_message"] == "cannot look up x"
    )


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_interrupt_in_a_tool_is_not_an_error_and_resumes(observer, mode):
    """interrupt() inside a tool closes it as interrupted; Command(resume=...) runs it again to the end."""
    built = graphs.tool_node_graph(graphs.ask_human, calls=[("ask_human", {"question": "ok?"})])
    graph = observer.instrument(built.graph)
    first = _run(graph, mode, INPUT, _config("hitl"))
    assert "__interrupt__" in first
    final = _run(graph, mode, Command(resume="yes"), _config("hitl"))
    assert final["messages"][-2].content == "human said: yes"
    events = observer.store.load("hitl")
    _assert_pairs(events)
    assert [e.data["outcome"] for e in _types(events, "tool_end")] == ["interrupted", "ok"]
    assert _types(events, "tool_error") == []
    state = rebuild_run_state(observer.store, "hitl")
    assert state.errors == () and state.status.value == "completed" and state.invocations == 2


def test_streamed_model_messages_are_unchanged_and_timed(observer):
    """astream(stream_mode="messages") yields the same chunks; llm_end has time to first token."""

    async def chunks(graph: Any, thread: str) -> list[tuple[str, str]]:
        stream = graph.astream(INPUT, _config(thread), stream_mode="messages", subgraphs=True)
        return [(type(chunk).__name__, chunk.content) async for _ns, (chunk, _meta) in stream]

    plain = asyncio.run(chunks(graphs.swarm().graph, "plain"))
    streamed = asyncio.run(chunks(observer.instrument(graphs.swarm().graph), "stream"))
    assert streamed == plain and any(content == "answer" for _, content in streamed)
    ends = _types(observer.store.load("stream"), "llm_end")
    assert len(ends) == 4 and all(e.data["streamed"] and e.data["time_to_first_token_ms"] >= 0 for e in ends)
    assert rebuild_run_state(observer.store, "stream").usage.input_tokens == 44


def test_streamed_calls_without_usage_are_reported_once_per_run(observer):
    """A model streaming without usage: calls counted as without usage, one hint logged for the run."""

    async def main() -> None:
        graph = observer.instrument(graphs.swarm(stream_usage=False).graph)
        async for _ in graph.astream(INPUT, _config("nousage"), stream_mode="messages", subgraphs=True):
            pass

    asyncio.run(main())
    events = observer.store.load("nousage")
    hints = [e for e in _types(events, "log") if e.data.get("usage_missing")]
    assert len(hints) == 1 and "stream_usage=True" in hints[0].message
    assert all(e.data["usage_missing"] and "input_tokens" not in e.data for e in _types(events, "llm_end"))
    usage = rebuild_run_state(observer.store, "nousage").usage
    assert (usage.llm_calls, usage.calls_without_usage, usage.input_tokens) == (4, 4, 0)


def test_custom_stream_consumers_see_the_new_events_live(observer):
    """stream_events() yields model, tool and handoff events as they happen; subscribers get them too."""
    seen: list[str] = []
    observer.emitter.subscribe(lambda e: seen.append(e.type_name))

    async def main() -> list[str]:
        graph = observer.instrument(graphs.swarm().graph)
        async with stream_events(graph, INPUT, _config("live")) as events:
            return [e.type_name async for e in events]

    live = asyncio.run(main())
    for kind in ("llm_start", "llm_end", "tool_start", "tool_end", "handoff", "agent_start"):
        assert kind in live and kind in seen
    assert live.count("handoff") == 2


def test_model_errors_are_llm_errors(observer):
    """A model that raises gives llm_error with the error type; the call still counts."""

    class Down(ScriptedChatModel):
        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            raise TimeoutError("provider timed out")

    from langchain.agents import create_agent

    graph = observer.instrument(create_agent(Down.of(reply("never")), [graphs.add], name="fragile"))
    with pytest.raises(TimeoutError):
        graph.invoke(INPUT, _config("down"))
    events = observer.store.load("down")
    _assert_pairs(events)
    (error,) = _types(events, "llm_error")
    assert (error.data["error_type"], error.data["model"]) == ("TimeoutError", "fake-gpt-4o")
    assert rebuild_run_state(observer.store, "down").usage.llm_calls == 1


def test_content_is_captured_only_when_asked(monkeypatch):
    """Prompts, completions, tool arguments and results only with capture_content (or the OTel env var)."""
    for capture, env in ((None, None), (True, None), (None, "true")):
        if env:
            monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", env)
        observer = SwarmObserver(heartbeat_interval=None, capture_content=capture)
        observer.instrument(graphs.swarm().graph).invoke(INPUT, _config("c"))
        events = observer.store.load("c")
        start = _types(events, "llm_start")[0]
        tool_start, tool_end = _types(events, "tool_start")[0], _types(events, "tool_end")[0]
        end = _types(events, "llm_end")[-1]
        keys = {"input_messages" in start.data, "output_messages" in end.data, "arguments" in tool_start.data}
        keys.add("result" in tool_end.data)
        assert keys == {bool(capture or env)}
        if capture or env:
            assert start.data["input_messages"][-1] == {"role": "human", "content": "hi"}
            assert end.data["output_messages"] == [{"role": "ai", "content": "the answer is 3"}]
            assert tool_start.data["arguments"] == {"a": 1, "b": 2} and tool_end.data["result"] == "3"
        observer.close()


def test_prices_give_costs_and_list_unknown_models():
    """With a price table each call is priced; a model missing from it is listed, never priced as zero."""
    observer = SwarmObserver(heartbeat_interval=None, prices={"fake-gpt-4o": (2.5, 10.0)})
    observer.instrument(graphs.swarm().graph).invoke(INPUT, _config("priced"))
    usage = rebuild_run_state(observer.store, "priced").usage
    assert usage.cost is not None and usage.cost.unpriced_models == ()
    assert usage.cost.total_usd == pytest.approx((44 * 2.5 + 28 * 10.0) / 1e6)
    assert usage.by_agent["bob"].cost_usd == pytest.approx((11 * 2.5 + 7 * 10.0) / 1e6)

    other = SwarmObserver(heartbeat_interval=None, prices={"gpt-4o": (2.5, 10.0)})
    other.instrument(graphs.swarm().graph).invoke(INPUT, _config("unpriced"))
    cost = rebuild_run_state(other.store, "unpriced").usage.cost
    assert cost is not None and (cost.unpriced_models, cost.unpriced_calls, cost.priced_calls) == (
        ("fake-gpt-4o",),
        4,
        0,
    )
    with pytest.raises(ValueError, match="prices\\['gpt-4o'\\]"):
        SwarmObserver(prices={"gpt-4o": (2.5,)})
    observer.close()
    other.close()


def test_detection_can_be_turned_off_and_the_helper_is_not_counted_twice():
    """detect_agents=False records no agent scopes; agent(name) inside a detected agent joins it."""
    observer = SwarmObserver(heartbeat_interval=None, detect_agents=False)
    observer.instrument(graphs.swarm().graph).invoke(INPUT, _config("nodetect"))
    events = observer.store.load("nodetect")
    assert _types(events, "agent_start") == [] and _types(events, "llm_end")
    assert {e.agent for e in _types(events, "llm_start")} == {None}
    observer.close()

    from langchain.agents import create_agent
    from langchain.agents.middleware import before_model

    from swarm_observability import agent

    joined: list[str] = []

    @before_model
    def announce(state: Any, runtime: Any) -> None:
        with agent("alice") as block:
            joined.append(block.scope.name)

    model = ScriptedChatModel.of(reply("hello"))
    alice = create_agent(model, [graphs.add], name="alice", middleware=[announce])
    bob = create_agent(ScriptedChatModel.of(reply("-")), [graphs.add], name="bob")
    from langgraph_swarm import create_swarm

    graph = create_swarm([alice, bob], default_active_agent="alice").compile()
    detected = SwarmObserver(heartbeat_interval=None)
    detected.instrument(graph).invoke(INPUT)
    (run,) = detected.store.runs()
    assert joined == ["alice"]
    assert [e.agent for e in _types(detected.store.load(run.run_id), "agent_start")] == ["alice"]
    detected.close()


def test_a_command_leaving_an_agent_without_a_tool_is_a_handoff(observer):
    """A node inside a swarm agent that routes with Command(goto=<agent>, graph=PARENT) hands off too."""
    from langgraph.graph import START, MessagesState, StateGraph
    from langgraph_swarm import create_swarm

    def agent_graph(name: str, then: str | None) -> Any:
        def act(state: MessagesState) -> Any:
            if then is None:
                return {"messages": [("ai", f"{name} done")]}
            return Command(goto=then, graph=Command.PARENT, update={"active_agent": then})

        builder = StateGraph(MessagesState)
        builder.add_node("act", act)
        builder.add_edge(START, "act")
        return builder.compile(name=name)

    swarm = create_swarm(
        [agent_graph("alice", "bob"), agent_graph("bob", None)], default_active_agent="alice"
    )
    out = observer.instrument(swarm.compile()).invoke(INPUT, _config("cmd"))
    assert out["messages"][-1].content == "bob done"
    events = observer.store.load("cmd")
    handoffs = [(e.data["from_agent"], e.data["to_agent"], e.data["via"]) for e in _types(events, "handoff")]
    assert handoffs == [("alice", "bob", "command")]
    assert rebuild_run_state(observer.store, "cmd").active_agent == "bob"


def test_sync_message_streaming_is_unchanged_and_timed(observer):
    """stream(stream_mode="messages") under sync: the same chunks, and the model calls are timed."""

    def chunks(graph: Any, thread: str) -> list[tuple[str, Any]]:
        stream = graph.stream(INPUT, _config(thread), stream_mode="messages", subgraphs=True)
        return [(type(chunk).__name__, chunk.content) for _ns, (chunk, _meta) in stream]

    assert chunks(observer.instrument(graphs.swarm().graph), "sync-stream") == chunks(
        graphs.swarm().graph, "p"
    )
    ends = _types(observer.store.load("sync-stream"), "llm_end")
    assert len(ends) == 4 and all("time_to_first_token_ms" in e.data for e in ends)


@pytest.mark.parametrize("shape", ["list", "manager"])
def test_the_callers_own_callbacks_still_get_every_run(observer, shape):
    """Callbacks the caller passes (a list or a CallbackManager) keep receiving the model and tool runs."""
    from langchain_core.callbacks import BaseCallbackHandler, CallbackManager

    class Counting(BaseCallbackHandler):
        def __init__(self) -> None:
            self.models = self.tools = 0

        def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
            self.models += 1

        def on_tool_start(self, *args: Any, **kwargs: Any) -> None:
            self.tools += 1

    mine = Counting()
    callbacks: Any = [mine] if shape == "list" else CallbackManager([mine], inheritable_handlers=[mine])
    config = {**_config(f"cb-{shape}"), "callbacks": callbacks}
    observer.instrument(graphs.swarm().graph).invoke(INPUT, config)
    assert (mine.models, mine.tools) == (4, 3)
    assert len(_types(observer.store.load(f"cb-{shape}"), "llm_end")) == 4
    assert config["callbacks"] is callbacks and (shape != "list" or callbacks == [mine]), (
        "caller's config kept"
    )


def test_custom_stream_mode_carries_the_new_events_when_asked():
    """SwarmObserver(custom_stream=True): astream(stream_mode="custom") yields model, tool, handoff events."""
    observer = SwarmObserver(heartbeat_interval=None, custom_stream=True)
    graph = observer.instrument(graphs.swarm().graph)

    async def main() -> list[str]:
        stream = graph.astream(INPUT, _config("custom"), stream_mode="custom", subgraphs=True)
        return [item.type_name async for _ns, item in stream if isinstance(item, StreamEvent)]

    live = asyncio.run(main())
    assert live.count("llm_end") == 4 and live.count("tool_end") == 3 and live.count("handoff") == 2
    observer.close()


def test_langgraph_control_flow_is_never_a_failure():
    """Interrupts, drains, parent commands and any other GraphBubbleUp end a scope without an error."""
    from langgraph.errors import GraphBubbleUp, GraphDrained, GraphInterrupt, ParentCommand

    from swarm_observability.instrumentation.outcomes import outcome_of

    for exc in (
        GraphInterrupt(),
        GraphDrained("maintenance"),
        ParentCommand(Command(goto="x")),
        GraphBubbleUp(),
    ):
        assert outcome_of(exc)[0].value != "error", exc
    assert outcome_of(RuntimeError("boom"))[0].value == "error"


def test_cache_and_reasoning_tokens_are_recorded_when_reported(observer):
    """usage_metadata details (cache reads, reasoning) reach llm_end and the chat span's attributes."""
    from langchain.agents import create_agent

    usage = {
        "input_tokens": 100,
        "output_tokens": 40,
        "total_tokens": 140,
        "input_token_details": {"cache_read": 64},
        "output_token_details": {"reasoning": 25},
    }
    graph = create_agent(ScriptedChatModel.of(reply("ok", usage=usage)), [graphs.add], name="thinker")
    observer.instrument(graph).invoke(INPUT, _config("details"))
    (end,) = _types(observer.store.load("details"), "llm_end")
    assert (end.data["cache_read_tokens"], end.data["reasoning_tokens"], end.data["total_tokens"]) == (
        64,
        25,
        140,
    )
