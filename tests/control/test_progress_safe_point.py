"""progress() is a safe point: a long loop inside one node or probe honours cancel and pause promptly."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph

from swarm_observability import ScanCancelled, SwarmObserver, get_manager, probe, progress, remove_manager

STEPS = 200


class S(TypedDict):
    done: int


class Loop:
    """A node that reports progress for each of STEPS items, holding at item 3 until the test lets go."""

    def __init__(self) -> None:
        self.at_three = threading.Event()
        self.go_on = threading.Event()
        self.done = 0

    def step(self, i: int) -> None:
        progress((i + 1) / STEPS, f"item {i}")
        self.done = i + 1
        if i == 3:
            self.at_three.set()
            self.go_on.wait(10)

    def sync_node(self, state: S) -> S:
        with probe("files"):
            for i in range(STEPS):
                self.step(i)
        return {"done": self.done}

    async def async_node(self, state: S) -> S:
        async with probe("files"):
            for i in range(STEPS):
                await asyncio.to_thread(self.step, i)
        return {"done": self.done}


def _graph(observer: SwarmObserver, node: Any) -> Any:
    builder = StateGraph(S)
    builder.add_node("loop", node)
    builder.add_edge(START, "loop")
    return observer.instrument(builder.compile(checkpointer=InMemorySaver()))


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_cancel_takes_effect_at_the_next_progress_call(mode: str) -> None:
    """A cancel during a loop of progress() calls stops the scan at the next call, not at the probe's end."""
    loop, run_id = Loop(), f"progress-{uuid.uuid4().hex[:8]}"
    observer = SwarmObserver()
    graph = _graph(observer, loop.sync_node if mode == "sync" else loop.async_node)
    config = {"configurable": {"thread_id": run_id}}

    def cancel_at_three() -> None:
        loop.at_three.wait(10)
        get_manager(run_id).cancel("operator")
        loop.go_on.set()

    helper = threading.Thread(target=cancel_at_three)
    helper.start()
    try:
        with pytest.raises(ScanCancelled, match="operator"):
            if mode == "sync":
                graph.invoke({"done": 0}, config)
            else:
                asyncio.run(graph.ainvoke({"done": 0}, config))
    finally:
        helper.join()
        remove_manager(run_id)
    assert loop.done == 4
    events = observer.store.load(run_id)
    closing = [e for e in events if e.type_name == "probe_complete"]
    assert [e.data["outcome"] for e in closing] == ["cancelled"]
    assert events[-1].type_name == "scan_cancelled"


@pytest.mark.timeout(30)
def test_pause_waits_at_the_next_progress_call() -> None:
    """A pause during a loop of progress() calls holds the node there (scan_paused) until resume()."""
    loop, run_id = Loop(), f"progress-{uuid.uuid4().hex[:8]}"
    observer = SwarmObserver()
    graph = _graph(observer, loop.sync_node)
    paused_at: list[int] = []

    def pause_at_three() -> None:
        loop.at_three.wait(10)
        manager = get_manager(run_id)
        manager.pause()
        loop.go_on.set()
        for _ in range(1000):
            if manager.waiting:
                break
            threading.Event().wait(0.01)
        paused_at.append(loop.done)
        manager.resume()

    helper = threading.Thread(target=pause_at_three)
    helper.start()
    try:
        result = graph.invoke({"done": 0}, {"configurable": {"thread_id": run_id}})
    finally:
        helper.join()
        remove_manager(run_id)
    assert result == {"done": STEPS}
    assert paused_at == [4]
    types = [e.type_name for e in observer.store.load(run_id)]
    assert types.count("scan_paused") == 1 and types[-1] == "scan_complete"
