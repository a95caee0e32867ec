"""Child process for the durable-pause tests: run, drain or resume a three-node graph on a SQLite file.

Usage: ``python _drain_child.py MODE DB THREAD`` with MODE one of

* ``sigterm``: node ``n1`` prints ``n1-running`` and waits until the drain is requested; the parent
  sends SIGTERM, whose handler calls ``manager.drain()`` (graceful shutdown);
* ``channel-drain``: the same, but the parent writes a ``drain`` request into the control channel (same
  database file), which this process's watcher applies;
* ``resume``: continue the thread with ``graph.invoke(None, config)``.

The last stdout line is a JSON report: the nodes this process ran and how the call ended.
"""

from __future__ import annotations

import json
import operator
import signal
import sys
import time
from typing import Annotated, Any, TypedDict

from langgraph.errors import GraphDrained
from langgraph.graph import END, START, StateGraph

from swarm_observability.checkpointers import get_checkpointer
from swarm_observability.control import ControlChannel, get_manager

ran: list[str] = []


class State(TypedDict):
    x: Annotated[list[str], operator.add]


def build(mode: str, thread: str) -> StateGraph:
    def n1(state: State) -> dict[str, Any]:
        ran.append("n1")
        if mode != "resume":
            print("n1-running", flush=True)
            manager = get_manager(thread)
            deadline = time.monotonic() + 30
            while not manager.is_drain_requested and time.monotonic() < deadline:
                time.sleep(0.01)
        return {"x": ["n1"]}

    def n2(state: State) -> dict[str, Any]:
        ran.append("n2")
        return {"x": ["n2"]}

    def n3(state: State) -> dict[str, Any]:
        ran.append("n3")
        return {"x": ["n3"]}

    builder = StateGraph(State)
    for name, fn in (("n1", n1), ("n2", n2), ("n3", n3)):
        builder.add_node(name, fn)
    builder.add_edge(START, "n1")
    builder.add_edge("n1", "n2")
    builder.add_edge("n2", "n3")
    builder.add_edge("n3", END)
    return builder


def main(mode: str, db: str, thread: str) -> dict[str, Any]:
    config = {"configurable": {"thread_id": thread}}
    manager = get_manager(thread)
    with get_checkpointer(path=db) as saver, ControlChannel(db) as channel:
        graph = build(mode, thread).compile(checkpointer=saver)
        if mode == "resume":
            values = graph.invoke(None, config)
            return {"ran": ran, "ended": "complete", "values": values["x"]}
        if mode == "sigterm":
            signal.signal(signal.SIGTERM, lambda *_: manager.drain("SIGTERM"))
        with manager.watch(channel, interval=0.02):
            try:
                graph.invoke({"x": []}, config, control=manager.run_control())
            except GraphDrained as exc:
                return {"ran": ran, "ended": "drained", "reason": exc.reason}
        return {"ran": ran, "ended": "complete"}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])), flush=True)
