"""Tracing through the real instrumented LangGraph swarm: live == replayed, context propagation, no leaks."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, Send
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swarm_observability.instrumentation.observer import SwarmObserver
from swarm_observability.tracing import export_run, trace_observer
from tests.instrumentation.helpers import run_api
from tests.instrumentation.swarm_graph import compile_swarm, swarm_input

from .scenario import tree


@pytest.fixture
def traced() -> tuple[SwarmObserver, TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observer = SwarmObserver(heartbeat_interval=None, custom_stream=True)  # some tests read the custom stream
    trace_observer(observer, provider)
    yield observer, provider, exporter
    observer.close()
    provider.shutdown()


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("node_mode", "api"), [("async", "astream"), ("sync", "invoke")])
def test_a_full_scan_traced_live_equals_its_replay_from_the_event_log(traced, node_mode, api):
    """Interrupt, failed resume, final resume: live spans equal export_run's; resume links are chained."""
    observer, _, live = traced
    graph = observer.instrument(compile_swarm(node_mode=node_mode))
    config = {"configurable": {"thread_id": f"scan-{node_mode}"}}
    outcomes = [run_api(graph, api, inp, config)[1] for inp in (swarm_input(), Command(resume="yes"), None)]
    assert [type(exc).__name__ for exc in outcomes] == ["NoneType", "RuntimeError", "NoneType"]
    assert observer.tracer.mapper.open_scope_count == 0

    replayed = InMemorySpanExporter()
    result = export_run(observer.store, f"scan-{node_mode}", replayed)

    live_tree, replay_tree = tree(live.get_finished_spans()), tree(replayed.get_finished_spans())
    assert live_tree == replay_tree
    roots = sorted((v for v in live_tree.values() if v["parent"] is None), key=lambda v: v["times"][0])
    assert [r["attributes"]["swarm.outcome"] for r in roots] == ["interrupted", "error", "ok"]
    assert [r["status"][0] for r in roots] == ["UNSET", "ERROR", "UNSET"]
    root_ids = [r["attributes"]["swarm.scope_id"] for r in roots]
    assert [r["links"] and r["links"][0][0] for r in roots] == [[], root_ids[0], root_ids[1]]
    assert len(result.trace_ids) == 3
    probes = [v for v in live_tree.values() if v["name"] == "execute_tool port_scan"]
    probe_nodes = {p["parent"] for p in probes}
    assert len(probes) == 3 and len(probe_nodes) == 3
    assert {live_tree[n]["parent"] for n in probe_nodes} == {root_ids[0]}
    inner = [v for v in live_tree.values() if v["name"] in ("node gather", "node summarize")]
    assert {live_tree[v["parent"]]["name"] for v in inner} == {"node research_agent"}
    failed = [v for v in live_tree.values() if v["name"] == "node report" and v["status"][0] == "ERROR"]
    assert len(failed) == 1 and [e[0] for e in failed[0]["events"]] == ["exception"]


class _FanState(TypedDict, total=False):
    items: list[str]
    done: Annotated[list[str], operator.add]


def _fan_graph(node_mode: str, tracer: trace.Tracer) -> StateGraph:
    builder = StateGraph(_FanState)

    if node_mode == "async":

        async def work(state: dict) -> dict:
            await asyncio.sleep(0.01)
            with tracer.start_as_current_span(f"user.http {state['item']}"):
                await asyncio.sleep(0)
            return {"done": [state["item"]]}
    else:

        def work(state: dict) -> dict:  # type: ignore[misc]
            with tracer.start_as_current_span(f"user.http {state['item']}"):
                pass
            return {"done": [state["item"]]}

    builder.add_node("work", work)
    builder.add_conditional_edges(START, lambda s: [Send("work", {"item": i}) for i in s["items"]], ["work"])
    builder.add_edge("work", END)
    return builder


@pytest.mark.timeout(60)
@pytest.mark.parametrize("node_mode", ["sync", "async"])
def test_spans_made_in_parallel_node_bodies_nest_under_their_node_span(traced, node_mode):
    """A user span in each of two parallel Send branches (sync, async) is a child of its node, in time too."""
    observer, provider, exporter = traced
    graph = observer.instrument(_fan_graph(node_mode, provider.get_tracer("user")).compile(name="fan"))
    caller = provider.get_tracer("app")
    with caller.start_as_current_span("request") as request:
        if node_mode == "async":
            asyncio.run(graph.ainvoke({"items": ["a", "b"]}, {"configurable": {"thread_id": "fan"}}))
        else:
            graph.invoke({"items": ["a", "b"]}, {"configurable": {"thread_id": "fan"}})
        assert trace.get_current_span() is request

    spans = {s.name: s for s in exporter.get_finished_spans()}
    nodes = [s for s in exporter.get_finished_spans() if s.name == "node work"]
    assert len(nodes) == 2
    for item in ("a", "b"):
        user = spans[f"user.http {item}"]
        parent = next(n for n in nodes if n.context.span_id == user.parent.span_id)
        assert parent.parent.span_id == spans["invoke_workflow fan"].context.span_id
        assert parent.start_time < user.start_time <= user.end_time < parent.end_time  # drawn inside it
    assert spans["invoke_workflow fan"].parent.span_id == request.get_span_context().span_id


@pytest.mark.timeout(60)
async def test_an_abandoned_stream_leaves_no_open_span_and_the_callers_context_intact(traced):
    """Breaking out of astream and aclose() end every span (cancelled) and restore the caller's span."""
    observer, provider, exporter = traced
    graph = observer.instrument(compile_swarm(node_mode="async", probe_delay=5.0))
    config = {"configurable": {"thread_id": "scan-abandoned"}}
    with provider.get_tracer("app").start_as_current_span("consumer") as consumer:
        stream = graph.astream(swarm_input(), config, stream_mode=["updates", "custom"], subgraphs=True)
        async for _ns, _mode, payload in stream:
            if getattr(payload, "type_name", None) == "probe_start":
                break
        assert trace.get_current_span() is consumer
        await stream.aclose()
        assert trace.get_current_span() is consumer

    assert observer.tracer.mapper.open_scope_count == 0
    spans = exporter.get_finished_spans()
    root = next(s for s in spans if s.name == "invoke_workflow swarm")
    assert root.attributes["swarm.outcome"] == "cancelled"
    assert root.status.status_code.name == "UNSET"
    probes = [s for s in spans if s.name == "execute_tool port_scan"]
    assert probes and {s.attributes["swarm.outcome"] for s in probes} == {"cancelled"}
    assert all(s.end_time is not None for s in spans)


@pytest.mark.timeout(60)
async def test_a_pause_in_place_keeps_one_root_span_live_and_replayed(traced):
    """A pause at a safe point (control pause/resume) is two span events on one root, live and replayed."""
    from swarm_observability.control.registry import get_manager, remove_manager

    observer, _, live = traced
    graph = observer.instrument(compile_swarm(node_mode="async"))
    config = {"configurable": {"thread_id": "scan-paused-in-place"}}
    manager = get_manager("scan-paused-in-place")
    manager.pause()
    try:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, manager.resume)
        await graph.ainvoke(swarm_input(), config)
    finally:
        remove_manager("scan-paused-in-place")

    replayed = InMemorySpanExporter()
    export_run(observer.store, "scan-paused-in-place", replayed)
    live_tree = tree(live.get_finished_spans())
    assert live_tree == tree(replayed.get_finished_spans())
    (root,) = [v for v in live_tree.values() if v["parent"] is None]
    assert [name for name, _ in root["events"] if name.startswith("scan_")] == ["scan_paused", "scan_resumed"]
    assert root["attributes"]["swarm.outcome"] == "interrupted"
