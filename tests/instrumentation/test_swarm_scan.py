"""A full scan of the realistic swarm graph: interrupt, resume, failure, resume from the checkpoint."""

from __future__ import annotations

from collections import Counter

import pytest
from langgraph.types import Command

from swarm_observability.events import StreamEvent
from swarm_observability.instrumentation.observer import SwarmObserver

from .helpers import by_scope, run_api, types
from .swarm_graph import FIRST_RUN_NODES, TARGETS, compile_swarm, swarm_input, thread_config

APIS = [("sync", "invoke"), ("sync", "stream"), ("async", "ainvoke"), ("async", "astream")]

FIRST_INVOCATION_SCOPES = Counter(
    {
        (("scan_started", None), ("scan_paused", None)): 1,
        (("node_enter", "planner"), ("node_exit", "planner")): 1,
        (("plan_start", "planner"), ("log", "planner"), ("plan_complete", "planner")): 1,
        (("node_enter", "supervisor"), ("node_exit", "supervisor")): 2,
        (("node_enter", "research_agent"), ("node_exit", "research_agent")): 1,
        (("node_enter", "gather"), ("node_exit", "gather")): 1,
        (("agent_start", "gather"), ("log", "gather"), ("agent_complete", "gather")): 1,
        (("node_enter", "summarize"), ("node_exit", "summarize")): 1,
        (("agent_start", "summarize"), ("agent_complete", "summarize")): 1,
        (("node_enter", "dispatch"), ("log", "dispatch"), ("node_exit", "dispatch")): 1,
        (("node_enter", "probe"), ("node_exit", "probe")): 3,
        (
            ("probe_start", "probe"),
            ("node_progress", "probe"),
            ("probe_result", "probe"),
            ("node_progress", "probe"),
            ("probe_complete", "probe"),
        ): 3,
        (("node_enter", "aggregate"), ("node_exit", "aggregate")): 1,
        (("node_enter", "approve"), ("node_exit", "approve")): 1,
    }
)


def _scope_shapes(events: list[StreamEvent]) -> Counter[tuple[tuple[str, str | None], ...]]:
    return Counter(tuple((e.type_name, e.node) for e in group) for group in by_scope(events).values())


def _invocations(events: list[StreamEvent]) -> list[list[StreamEvent]]:
    groups: dict[str, list[StreamEvent]] = {}
    for event in events:
        assert event.invocation_id is not None, event
        groups.setdefault(event.invocation_id, []).append(event)
    return list(groups.values())


def _one(events: list[StreamEvent], type_name: str, node: str) -> StreamEvent:
    found = [e for e in events if e.type_name == type_name and e.node == node]
    assert len(found) == 1, (type_name, node, found)
    return found[0]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("node_mode", "api"), APIS)
def test_full_scan_event_log(node_mode: str, api: str) -> None:
    """Three invocations of one thread give one gapless log with the exact per-scope event sequences."""
    observer = SwarmObserver(heartbeat_interval=None, custom_stream=True)
    graph = observer.instrument(compile_swarm(node_mode=node_mode))  # type: ignore[arg-type]
    config = thread_config(f"scan-{api}")

    seen1, exc1 = run_api(graph, api, swarm_input(), config)
    seen2, exc2 = run_api(graph, api, Command(resume="yes"), config)
    seen3, exc3 = run_api(graph, api, None, config)
    assert exc1 is None and exc3 is None
    assert isinstance(exc2, RuntimeError) and "report backend unavailable" in str(exc2)
    assert graph.get_state(config).values["report"] == "3 hosts, 4 open ports (approved: yes)"

    events = observer.store.load(f"scan-{api}")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert {(e.run_id, e.thread_id) for e in events} == {(f"scan-{api}", f"scan-{api}")}
    first, second, third = _invocations(events)

    # invocation 1: started -> paused at the interrupt
    assert types(first)[0] == "scan_started" and types(first)[-1] == "scan_paused"
    assert first[0].scope_id == first[0].invocation_id and first[0].parent_scope_id is None
    assert first[0].data["graph"] == "swarm" and set(first[0].data) == {"graph", "graph_shape"}
    assert first[-1].data["reason"] == "interrupt" and first[-1].data["outcome"] == "interrupted"
    assert [i["value"]["question"] for i in first[-1].data["interrupts"]] == ["publish?"]
    assert _scope_shapes(first) == FIRST_INVOCATION_SCOPES
    top = [e for e in first if e.type_name == "node_enter" and e.namespace == ()]
    assert [e.node for e in top] == FIRST_RUN_NODES[:5] + ["probe"] * 3 + FIRST_RUN_NODES[6:]
    assert [e.step for e in top] == [1, 2, 3, 4, 5, 6, 6, 6, 7, 8]
    assert {e.parent_scope_id for e in top} == {first[0].invocation_id}
    exits = {e.node: e.data["outcome"] for e in first if e.type_name == "node_exit"}
    assert exits.pop("approve") == "interrupted" and set(exits.values()) == {"ok"}

    # the subgraph's nodes sit under the research_agent node: namespace and parent scope
    research = _one(first, "node_enter", "research_agent")
    for inner in ("gather", "summarize"):
        enter = _one(first, "node_enter", inner)
        assert enter.namespace == (f"research_agent:{research.task_id}",)
        assert enter.parent_scope_id == research.scope_id
    gather = _one(first, "node_enter", "gather")
    assert _one(first, "agent_start", "gather").parent_scope_id == gather.scope_id
    assert _one(first, "agent_start", "gather").agent == "researcher"
    assert _one(first, "log", "gather").agent == "researcher"
    assert (
        _one(first, "plan_start", "planner").parent_scope_id == _one(first, "node_enter", "planner").scope_id
    )

    # three parallel probe branches: distinct node scopes, each probe parented by its own branch
    probe_nodes = {e.scope_id: e for e in first if e.type_name == "node_enter" and e.node == "probe"}
    assert len({e.task_id for e in probe_nodes.values()}) == 3
    starts = [e for e in first if e.type_name == "probe_start"]
    assert {s.parent_scope_id for s in starts} == set(probe_nodes)
    assert sorted(s.data["target"] for s in starts) == sorted(TARGETS)
    assert {e.probe for e in first if e.type_name in ("probe_result", "probe_complete")} == {"port_scan"}

    # invocation 2: resumed with Command(resume=...), approve re-runs, report fails
    assert second[0].type_name == "scan_resumed"
    assert second[0].data["previous_invocation_id"] == first[0].invocation_id
    assert [(e.type_name, e.node) for e in second[1:]] == [
        ("node_enter", "approve"),
        ("node_exit", "approve"),
        ("node_enter", "report"),
        ("node_exit", "report"),
        ("scan_error", None),
    ]
    assert second[1].task_id == _one(first, "node_enter", "approve").task_id
    assert second[4].data["outcome"] == "error" and second[4].data["error_type"] == "RuntimeError"
    assert second[-1].data["error_type"] == "RuntimeError"
    assert second[-1].data["error_message"] == "report backend unavailable"

    # invocation 3: resumed from the checkpoint with None, only report runs again
    assert [(e.type_name, e.node) for e in third] == [
        ("scan_resumed", None),
        ("node_enter", "report"),
        ("node_exit", "report"),
        ("scan_complete", None),
    ]
    assert third[0].data["previous_invocation_id"] == second[0].invocation_id
    assert third[-1].data["outcome"] == "ok" and third[-1].scope_id == third[0].invocation_id

    # a stream consumer saw exactly the stored events, in order, each under its own namespace
    seen = seen1 + seen2 + seen3
    if api in ("stream", "astream"):
        assert [e.id for _, e in seen] == [e.id for e in events]
        assert all(ns == e.namespace for ns, e in seen)
    else:
        assert seen == []
