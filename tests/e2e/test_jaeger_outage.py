"""A collector outage mid-run: Jaeger is stopped while a traced graph runs, then started again."""

from __future__ import annotations

import operator
import threading
import time
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from swarm_observability.instrumentation.observer import SwarmObserver
from swarm_observability.tracing import configure_tracing, provider_stats

from .jaeger import Jaeger

pytestmark = pytest.mark.jaeger

STEPS = 150


class _LoopState(TypedDict, total=False):
    n: int
    seen: Annotated[list[int], operator.add]


def _loop_graph(down: threading.Event, waited: list[float]) -> Any:
    """One node run ``STEPS`` times in a loop, 10 ms each: a span per run, a steady stream of spans.

    The run at a third of the way waits (up to a minute) until Jaeger is down, so that the runs after
    it certainly happen during the outage; nothing waits for Jaeger to come back.
    """

    def step(state: _LoopState) -> dict[str, Any]:
        n = state.get("n", 0)
        if n == STEPS // 3:
            began = time.monotonic()
            down.wait(timeout=60)
            waited.append(time.monotonic() - began)
        time.sleep(0.01)
        return {"n": n + 1, "seen": [n]}

    builder = StateGraph(_LoopState)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", lambda s: END if s["n"] >= STEPS else "step")
    return builder.compile(name="loop")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_jaeger_going_down_mid_run_neither_blocks_the_graph_nor_loses_spans_uncounted(
    own_jaeger: Jaeger, service: str, protocol: str
) -> None:
    """Jaeger stopped mid-run and restarted: the graph finishes, every span is exported, failed or dropped."""
    endpoint = own_jaeger.otlp_grpc if protocol == "grpc" else own_jaeger.otlp_http
    provider = configure_tracing(
        service,
        endpoint,
        protocol,
        export_timeout=1.0,
        schedule_delay=0.05,
        max_queue_size=32,
        max_export_batch_size=8,
    )
    observer = SwarmObserver(tracer_provider=provider, heartbeat_interval=None)
    down = threading.Event()
    waited: list[float] = []
    graph = observer.instrument(_loop_graph(down, waited))
    outage: dict[str, float] = {}

    def stop_then_restart() -> None:
        while observer.store.last_sequence("outage") < STEPS // 2:
            time.sleep(0.01)
        provider.force_flush()
        outage["exported_before"] = provider_stats(provider).spans_exported
        own_jaeger.stop()
        outage["stopped"] = time.monotonic()
        down.set()
        while observer.store.last_sequence("outage") < 4 * STEPS // 3:
            time.sleep(0.01)
        own_jaeger.restart()
        outage["restarted"] = time.monotonic()

    chaos = threading.Thread(target=stop_then_restart, daemon=True)
    chaos.start()
    started = time.monotonic()
    try:
        result = graph.invoke(
            {"n": 0}, {"configurable": {"thread_id": "outage"}, "recursion_limit": STEPS + 10}
        )
        returned = time.monotonic()
        chaos.join(timeout=120)
        assert not chaos.is_alive(), "the outage thread never restarted Jaeger"
        provider.force_flush()
        during = provider_stats(provider)
    finally:
        observer.close()
        provider.shutdown()
    final = provider_stats(provider)

    assert result["n"] == STEPS and len(result["seen"]) == STEPS
    assert returned - started < 120, "the graph must finish in bounded time while the collector is down"
    assert outage["stopped"] < returned  # Jaeger really was down while nodes ran
    running = returned - started - sum(waited)
    print(f"outage ({protocol}): {STEPS} nodes in {running:.2f} s besides waiting for the stop; {final}")
    spans = STEPS + 1  # one per node run, plus the invocation's root
    assert final.spans_ended == spans
    assert final.spans_exported + final.spans_failed + final.spans_dropped == spans  # every span counted
    assert final.spans_failed + final.spans_dropped > 0 and final.last_error is not None
    assert final.spans_dropped > 0, "a bounded queue behind a dead collector drops spans, and counts them"
    assert outage["exported_before"] > 0 and during.spans_exported > outage["exported_before"]
    stored = own_jaeger.wait_for(service, 1)  # spans exported after the restart are in the new Jaeger
    assert {s.name for s in stored} <= {"invoke_workflow loop", "node step"}
    assert "invoke_workflow loop" in {s.name for s in stored}
