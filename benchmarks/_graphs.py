"""The benchmark graphs, the same for our instrumentation and for the peers.

* ``chain50``: 50 no-op sync nodes in a line (50 supersteps of one task each).
* ``par3x16``: 16 layers of 3 no-op sync nodes; every node of a layer has an edge to every node of the
  next, so each superstep runs 3 tasks in parallel (a thread pool under ``invoke``, executor threads
  under ``astream``) and the layers join.

Both compile with their own ``InMemorySaver``; each run uses a fresh thread id, and the thread's
checkpoints are deleted after the run (outside the timed region) so memory does not grow across pairs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

STREAM_MODES = ["updates", "custom"]
"""``astream`` modes used everywhere (our events stay out of ``custom`` unless an observer opts in)."""


class BenchState(TypedDict, total=False):
    x: int


def _noop(state: BenchState) -> None:
    return None


@dataclass(frozen=True, slots=True)
class GraphSpec:
    """A named graph shape and its number of node executions per run."""

    name: str
    nodes: int
    build: Callable[[], StateGraph]
    input: Any = field(default_factory=lambda: {"x": 1})
    """What every run is invoked with."""


def _chain(length: int) -> StateGraph:
    builder = StateGraph(BenchState)
    prev = START
    for i in range(length):
        builder.add_node(f"n{i}", _noop)
        builder.add_edge(prev, f"n{i}")
        prev = f"n{i}"
    builder.add_edge(prev, END)
    return builder


def _layers(layers: int, width: int) -> StateGraph:
    builder = StateGraph(BenchState)
    prev = [START]
    for layer in range(layers):
        current = [f"l{layer}_{w}" for w in range(width)]
        for name in current:
            builder.add_node(name, _noop)
        for src in prev:
            for dst in current:
                builder.add_edge(src, dst)
        prev = current
    for src in prev:
        builder.add_edge(src, END)
    return builder


def graph_specs(smoke: bool = False) -> list[GraphSpec]:
    """The two benchmark shapes; ``smoke`` shrinks them to a few nodes."""
    if smoke:
        return [GraphSpec("chain5", 5, lambda: _chain(5)), GraphSpec("par3x2", 6, lambda: _layers(2, 3))]
    return [GraphSpec("chain50", 50, lambda: _chain(50)), GraphSpec("par3x16", 48, lambda: _layers(16, 3))]


def compile_graph(spec: GraphSpec) -> Any:
    """A freshly built and compiled graph of ``spec`` with its own ``InMemorySaver``."""
    return spec.build().compile(checkpointer=InMemorySaver(), name=spec.name)


class GraphRunner:
    """Runs one compiled graph with ``invoke`` or ``astream`` on a fresh thread id each time.

    ``astream`` runs on one event loop owned by the runner, so loop creation is never timed.
    """

    def __init__(
        self, graph: Any, mode: str, loop: asyncio.AbstractEventLoop | None = None, input: Any = None
    ) -> None:
        if mode not in ("invoke", "astream"):
            raise ValueError(f"mode must be 'invoke' or 'astream', not {mode!r}")
        self.graph = graph
        self.input = {"x": 1} if input is None else input
        self.mode = mode
        self.loop = loop
        self.last_thread: str | None = None
        self.chunks = 0

    def _config(self) -> dict[str, Any]:
        self.last_thread = uuid.uuid4().hex
        return {"configurable": {"thread_id": self.last_thread}}

    def run(self) -> None:
        """One run of the graph (the timed call)."""
        if self.mode == "invoke":
            self.graph.invoke(self.input, self._config())
        else:
            assert self.loop is not None, "astream needs an event loop"
            self.loop.run_until_complete(self._consume())

    async def _consume(self) -> None:
        count = 0
        async for _ in self.graph.astream(self.input, self._config(), stream_mode=STREAM_MODES):
            count += 1
        self.chunks = count

    def cleanup(self) -> None:
        """Delete the last run's checkpoints (outside the timed region)."""
        if self.last_thread is not None and self.graph.checkpointer is not None:
            self.graph.checkpointer.delete_thread(self.last_thread)
