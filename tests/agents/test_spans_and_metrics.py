"""GenAI semconv spans and metrics of a real swarm, live and exported from its stored log."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swarm_observability import SwarmObserver
from swarm_observability.tracing import export_run
from tests.tracing.scenario import tree

from . import graphs

INPUT = {"messages": [("user", "hi")]}


@pytest.fixture
def traced():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observer = SwarmObserver(heartbeat_interval=None, tracer_provider=provider)
    yield observer, exporter
    observer.close()
    provider.shutdown()


def _by_name(spans: dict, prefix: str) -> list[dict]:
    return [s for s in spans.values() if s["name"].startswith(prefix)]


def test_swarm_reads_workflow_agent_node_chat_tool_and_export_equals_live(traced):
    """chat, execute_tool and invoke_agent spans nest right; handoffs are span events; export == live."""
    observer, exporter = traced
    observer.instrument(graphs.swarm().graph).invoke(INPUT, {"configurable": {"thread_id": "t"}})
    live = tree(exporter.get_finished_spans())
    replayed = InMemorySpanExporter()
    export_run(observer.store, "t", replayed)
    assert tree(replayed.get_finished_spans()) == live

    chats = _by_name(live, "chat ")
    assert len(chats) == 4 and {c["name"] for c in chats} == {"chat fake-gpt-4o"}
    for chat in chats:
        attributes = chat["attributes"]
        assert chat["kind"] == "CLIENT"
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.request.model"] == "fake-gpt-4o"
        assert attributes["gen_ai.response.model"] == "fake-gpt-4o-2024-08-06"
        assert attributes["gen_ai.provider.name"] == "openai"
        assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (11, 7)
        assert attributes["gen_ai.response.finish_reasons"] in (("tool_calls",), ("stop",))
        node = live[chat["parent"]]
        agent = live[node["parent"]]
        assert node["name"] == "node model" and agent["name"].startswith("invoke_agent ")
        assert live[live[agent["parent"]]["parent"]]["name"] == "invoke_workflow LangGraph"
    tools = _by_name(live, "execute_tool ")
    assert sorted(t["name"] for t in tools) == [
        "execute_tool add",
        "execute_tool transfer_to_alice",
        "execute_tool transfer_to_bob",
    ]
    assert all(
        t["attributes"]["gen_ai.tool.call.id"] and t["attributes"]["gen_ai.tool.type"] == "function"
        for t in tools
    )
    agents = sorted(_by_name(live, "invoke_agent "), key=lambda s: s["times"][0])
    assert [a["attributes"]["gen_ai.agent.name"] for a in agents] == ["alice", "bob", "alice"]
    handoffs = [
        (a["attributes"]["gen_ai.agent.name"], e[1])
        for a in agents
        for e in a["events"]
        if e[0] == "swarm.handoff"
    ]
    assert [(name, attrs["swarm.handoff.to_agent"]) for name, attrs in handoffs] == [
        ("alice", "bob"),
        ("bob", "alice"),
    ]
    for span in live.values():
        if not span["name"].startswith("chat"):
            assert not any(key.startswith("gen_ai.usage.") for key in span["attributes"]), span["name"]


def test_a_failing_tool_is_one_error_span_with_one_exception_event(traced):
    """The tool span and the node it fails are ERROR with error.type; the exception is recorded once."""
    observer, exporter = traced
    built = graphs.tool_node_graph(graphs.broken, calls=[("broken", {"query": "x"})])
    with pytest.raises(ConnectionError):
        observer.instrument(built.graph).invoke(INPUT, {"configurable": {"thread_id": "e"}})
    spans = tree(exporter.get_finished_spans())
    (tool,) = _by_name(spans, "execute_tool broken")
    assert tool["status"][0] == "ERROR" and tool["attributes"]["error.type"] == "ConnectionError"
    exceptions = [e for s in spans.values() for e in s["events"] if e[0] == "exception"]
    assert len(exceptions) == 1 and tool["events"][0][0] == "exception"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_user_spans_inside_a_tool_nest_under_its_execute_tool_span(traced, mode):
    """A span a tool opens (an HTTP client, say) is a child of the tool's span, not of the node's."""
    observer, exporter = traced
    from langchain_core.tools import tool

    @tool
    def fetch(url: str) -> str:
        """Fetch a page."""
        with observer.tracer_provider.get_tracer("http-client").start_as_current_span("GET"):
            return "<html/>"

    built = graphs.tool_node_graph(fetch, calls=[("fetch", {"url": "http://x"})])
    graph = observer.instrument(built.graph)
    config = {"configurable": {"thread_id": "n"}}
    if mode == "sync":
        graph.invoke(INPUT, config)
    else:
        asyncio.run(graph.ainvoke(INPUT, config))
    spans = exporter.get_finished_spans()
    (get,) = [s for s in spans if s.name == "GET"]
    (tool_span,) = [s for s in spans if s.name == "execute_tool fetch"]
    assert get.parent is not None and get.parent.span_id == tool_span.context.span_id


def test_genai_metrics_match_the_reported_usage():
    """With a meter provider: token usage per type and one duration per model call, semconv names."""
    reader = InMemoryMetricReader()
    observer = SwarmObserver(heartbeat_interval=None, meter_provider=MeterProvider(metric_readers=[reader]))
    observer.instrument(graphs.swarm().graph).invoke(INPUT, {"configurable": {"thread_id": "m"}})
    metrics = {
        m.name: m
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    tokens = {
        p.attributes["gen_ai.token.type"]: (p.sum, p.count)
        for p in metrics["gen_ai.client.token.usage"].data.data_points
    }
    assert tokens == {"input": (44, 4), "output": (28, 4)}
    (duration,) = metrics["gen_ai.client.operation.duration"].data.data_points
    assert duration.count == 4 and metrics["gen_ai.client.operation.duration"].unit == "s"
    assert duration.attributes["gen_ai.request.model"] == "fake-gpt-4o"
    observer.close()


def test_a_model_without_a_name_gives_a_chat_span(traced):
    """A model that reports no model name: the span is plain `chat`, without gen_ai.request.model."""
    from langchain.agents import create_agent

    from .fakes import ScriptedChatModel, reply

    observer, exporter = traced
    model = ScriptedChatModel.of(reply("hi"), model_name="", response_model=None, provider="acme")
    observer.instrument(create_agent(model, [graphs.add], name="anon")).invoke(INPUT)
    (chat,) = [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]
    assert chat.name == "chat" and "gen_ai.request.model" not in chat.attributes
    assert chat.attributes["gen_ai.provider.name"] == "acme"
