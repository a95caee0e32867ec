"""Live latency: from ``emit`` inside a node to the ``astream`` consumer holding the event.

A node calls ``swarm_observability.log("tick", t_ns=time.perf_counter_ns())`` many times; the
consumer iterates ``graph.astream(..., stream_mode="custom")`` and, for each ``log`` event, takes
``perf_counter_ns() - event.data["t_ns"]``. The stamp is taken before the call, so the figure covers
the whole path: event construction, processors, the store append (or the hand-off to the background
writer), the subscribers and LangGraph's stream writer, and the hop to the consumer's task.

Variants: an async node (pacing with ``await asyncio.sleep(0)`` between events, so the consumer gets a
turn) and a sync node (run by LangGraph in an executor thread; pacing with a 50 us sleep), each with
the in-memory store and with the SQLite store at default durability.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, TypedDict

from ._stats import summarize
from .overhead import make_instrumented


class _State(TypedDict, total=False):
    x: int


def _graph(kind: str, count: int) -> Any:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph

    from swarm_observability import log

    async def emit_async(state: _State) -> None:
        for _ in range(count):
            log("tick", t_ns=time.perf_counter_ns())
            await asyncio.sleep(0)

    def emit_sync(state: _State) -> None:
        for _ in range(count):
            log("tick", t_ns=time.perf_counter_ns())
            time.sleep(50e-6)

    builder = StateGraph(_State)
    builder.add_node("emitter", emit_async if kind == "async" else emit_sync)
    builder.add_edge(START, "emitter")
    builder.add_edge("emitter", END)
    return builder.compile(checkpointer=InMemorySaver(), name=f"latency_{kind}")


async def _consume(graph: Any) -> list[float]:
    latencies = []
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    async for event in graph.astream({"x": 1}, config, stream_mode="custom"):
        now = time.perf_counter_ns()
        data = getattr(event, "data", None)
        if isinstance(data, dict) and "t_ns" in data:
            latencies.append((now - data["t_ns"]) / 1e3)
    return latencies


def _variant(node_kind: str, config: str, count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="swarm-obs-latency-") as tmp:
        inst = make_instrumented(config, Path(tmp), custom_stream=True)
        try:
            graph = inst.observer.instrument(_graph(node_kind, count))
            asyncio.run(_consume(graph))  # warm-up
            latencies = asyncio.run(_consume(graph))
        finally:
            inst.close()
    if len(latencies) != count:
        raise AssertionError(f"consumer received {len(latencies)} of {count} stamped events")
    return {"node": node_kind, "store": config, "events": count, "latency_us": summarize(latencies, 1)}


def run(smoke: bool = False) -> dict[str, Any]:
    """Emit-to-consumer latency for async and sync nodes, in-memory and SQLite stores."""
    count = 50 if smoke else 3000
    return {
        "path": "log() in a node -> graph.astream(stream_mode='custom') consumer (custom_stream=True)",
        "variants": [
            _variant(node, store, count) for store in ("memory", "sqlite") for node in ("async", "sync")
        ],
    }
