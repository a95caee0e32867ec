"""The instrumentation's cheap paths build exactly the events full validation would build."""

from __future__ import annotations

import pytest

from swarm_observability.events import StreamEvent, make_event
from swarm_observability.instrumentation.observer import SwarmObserver
from swarm_observability.instrumentation.recorder import Invocation, Scope

from .helpers import run_api
from .swarm_graph import compile_swarm, swarm_input, thread_config


@pytest.mark.timeout(30)
@pytest.mark.parametrize("api", ["invoke", "astream"])
def test_every_event_of_a_scan_is_what_validation_makes_of_it(observer: SwarmObserver, api: str) -> None:
    """Every stored event (nodes, subgraph nodes, probes, agents, plans) equals its validated round trip."""
    graph = observer.instrument(compile_swarm(node_mode="sync" if api == "invoke" else "async"))
    _, error = run_api(graph, api, swarm_input(), thread_config("hot-1"))
    assert error is None
    events = observer.store.load("hot-1")
    assert {e.type_name for e in events} >= {"node_enter", "node_exit", "probe_start", "agent_start"}
    assert any(e.namespace for e in events), "the subgraph's nodes carry a namespace"
    for event in events:
        again = StreamEvent.from_json(event.to_json_bytes())
        assert again == event and again.to_json_bytes() == event.to_json_bytes()


def test_a_node_child_drops_what_belongs_to_one_node_execution(observer: SwarmObserver) -> None:
    """A node opened in a node or agent scope starts without its step, task, checkpoint, agent or probe."""
    run = Invocation(observer.recorder, "run-1", "thread-1", "i" * 32)
    root = Scope("scan", "g", run, None, {"thread_id": "thread-1", "invocation_id": "i" * 32})
    run.root = root
    own = {"node": "outer", "step": 2, "task_id": "t", "checkpoint_id": "c", "namespace": ("a:1",)}
    node = root.node_child("outer", dict(own), None, None, plain=True)
    assert node.fields == {
        "thread_id": "thread-1", "invocation_id": "i" * 32, **own,
        "scope_id": node.scope_id, "parent_scope_id": root.scope_id,
    }  # fmt: skip
    inside = node.child("agent", "researcher", agent="researcher")
    first = inside.node_child("inner", {"node": "inner", "step": 3}, None, None, plain=True)
    second = inside.node_child("inner", {"node": "inner", "step": 4}, None, None, plain=False)
    assert first.fields == {
        "thread_id": "thread-1", "invocation_id": "i" * 32, "node": "inner",
        "scope_id": first.scope_id, "parent_scope_id": inside.scope_id, "step": 3,
    }  # fmt: skip
    assert second.fields == {**first.fields, "scope_id": second.scope_id, "step": 4}
    assert first.scope_id != second.scope_id and first.parent is second.parent is inside
    assert list(first.fields) == ["thread_id", "invocation_id", "scope_id", "node", "parent_scope_id", "step"]


def test_node_events_are_the_events_make_event_builds_from_the_node_fields(observer: SwarmObserver) -> None:
    """node_enter/node_exit (fields checked from the parent's) equal make_event of the scope's fields."""
    graph = observer.instrument(compile_swarm(node_mode="sync"))
    _, error = run_api(graph, "invoke", swarm_input(), thread_config("hot-2"))
    assert error is None
    events = [e for e in observer.store.load("hot-2") if e.type_name in {"node_enter", "node_exit"}]
    assert len(events) > 10 and any(e.namespace for e in events)
    skip = {"id", "seq", "timestamp", "time_unix_nano"}
    for event in events:
        fields = {k: v for k, v in event.__dict__.items() if k in event.model_fields_set - skip - {"type"}}
        again = make_event(event.type, **fields)
        assert again.to_dict() | {k: None for k in skip} == event.to_dict() | {k: None for k in skip}
        assert again.model_fields_set - skip == event.model_fields_set - skip
