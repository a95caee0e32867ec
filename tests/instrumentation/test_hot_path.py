"""The instrumentation's cheap paths build exactly the events full validation would build."""

from __future__ import annotations

import pytest

from swarm_observability.events import StreamEvent
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


def test_node_fields_drop_what_belongs_to_one_node_execution(observer: SwarmObserver) -> None:
    """A node opened in a node or agent scope starts without its step, task, checkpoint, agent or probe."""
    run = Invocation(observer.recorder, "run-1", "thread-1", "i" * 32)
    root = Scope("scan", "g", run, None, {"thread_id": "thread-1", "invocation_id": "i" * 32})
    own = {"node": "outer", "step": 2, "task_id": "t", "checkpoint_id": "c", "namespace": ("a:1",)}
    node = Scope("node", "outer", run, root, {**root.fields, **own})
    inside = node.child("agent", "researcher", agent="researcher")
    first = inside.node_fields()
    assert first == {
        "thread_id": "thread-1",
        "invocation_id": "i" * 32,
        "node": "outer",
        "scope_id": inside.scope_id,
        "parent_scope_id": node.scope_id,
    }
    first["node"] = "changed"
    assert inside.node_fields()["node"] == "outer", "each call returns a new dict"
