"""The graph's shape in ``scan_started``: recorded for every new run, drawn once per compiled graph."""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from swarm_observability import SwarmObserver


class _State(TypedDict):
    n: int


def _build() -> Any:
    builder = StateGraph(_State)
    builder.add_node("a", lambda s: {"n": s["n"] + 1})
    builder.add_node("b", lambda s: {"n": s["n"] + 1})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", END)
    return builder.compile()


def test_the_shape_is_recorded_per_run_but_drawn_once() -> None:
    """Three runs of one graph each record its nodes and edges, and get_graph() is called once."""
    observer = SwarmObserver(heartbeat_interval=None)
    graph = observer.instrument(_build())
    drawn: list[int] = []
    draw = graph.get_graph

    def counting(*args: Any, **kwargs: Any) -> Any:
        drawn.append(1)
        return draw(*args, **kwargs)

    graph.get_graph = counting
    for i in range(3):
        graph.invoke({"n": 0}, {"configurable": {"thread_id": f"shape-{i}"}})
    runs = [observer.store.load(f"shape-{i}") for i in range(3)]
    shapes = [next(e for e in run if e.type_name == "scan_started").data["graph_shape"] for run in runs]
    assert len(drawn) == 1
    assert shapes[0] == shapes[1] == shapes[2]
    assert {"a", "b"} <= set(shapes[0]["nodes"])
    assert {"source": "a", "target": "b"} in shapes[0]["edges"]
