"""Child side of the crash-resume test (``test_crash_resume.py``): one swarm scan that may be SIGKILLed.

Run as ``python _crash_scan_child.py <start|resume> <directory> <thread_id> <durable|default>``. The scan
keeps its checkpoints in ``<directory>/checkpoints.db`` (:func:`get_checkpointer`) and its events in
``<directory>/events.db`` (:class:`SQLiteEventStore`); ``durable`` instruments it with
``SwarmObserver(durable_node_exit=True)``. ``start`` runs ``graph.invoke(scan_input(), config)``,
``resume`` runs ``graph.invoke(None, config)``. Lines on stdout, each written with one ``os.write``:

* ``started <pid>`` right before the graph is invoked;
* ``event <seq> <type> <node>`` for every event as it is emitted (not yet stored): the parent picks
  its kill moments from these;
* ``complete <report>`` once ``invoke`` has returned and the observer is closed.

Topology (graph name ``"crash_scan"``), four supersteps, six node tasks, all sync (``invoke``)::

    START -> planner --3x Send--> probe (parallel, 60/120/180 ms) -> aggregate -> report -> END

The three probes take different times, so a kill during the fan-out often finds some finished (their
writes checkpointed) and some not: the resume must run only the unfinished ones.
"""

from __future__ import annotations

import operator
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from swarm_observability import (
    SQLiteEventStore,
    StreamEvent,
    SwarmObserver,
    get_checkpointer,
    log,
    plan,
    probe,
    progress,
)

TARGETS = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
PORTS = (22, 80, 443)
PROBE_STEP_S = 0.02
"""Sleep per port of the probe of target ``i`` is ``(i + 1) * PROBE_STEP_S``."""
GRAPH_NAME = "crash_scan"


class ScanState(TypedDict, total=False):
    targets: list[str]
    findings: Annotated[list[dict[str, Any]], operator.add]
    summary: str
    report: str


class ProbeInput(TypedDict):
    target: str
    index: int


def scan_input() -> ScanState:
    """The input of a fresh scan."""
    return {"targets": list(TARGETS)}


def scan_config(thread_id: str) -> dict[str, Any]:
    """The run config of the scan's thread."""
    return {"configurable": {"thread_id": thread_id}}


def _planner(state: ScanState) -> ScanState:
    time.sleep(0.03)
    with plan(steps=["probe", "aggregate", "report"]):
        log("planning", targets=len(state["targets"]))
    return {}


def _fan_out(state: ScanState) -> list[Send]:
    return [Send("probe", {"target": target, "index": i}) for i, target in enumerate(state["targets"])]


def _probe(state: ProbeInput) -> ScanState:
    with probe("port_scan", target=state["target"]) as p:
        for k, port in enumerate(PORTS):
            time.sleep((state["index"] + 1) * PROBE_STEP_S)
            p.result(port=port, open=port != 80)
            progress((k + 1) / len(PORTS), f"{state['target']}:{port}")
    return {"findings": [{"target": state["target"], "open": [p for p in PORTS if p != 80]}]}


def _aggregate(state: ScanState) -> ScanState:
    time.sleep(0.03)
    hosts = sorted(f["target"] for f in state["findings"])
    log("aggregated", hosts=len(hosts))
    return {"summary": f"{len(hosts)} hosts: {', '.join(hosts)}"}


def _report(state: ScanState) -> ScanState:
    progress(0.0, "writing report")
    time.sleep(0.1)
    progress(1.0, "report written")
    return {"report": f"report of {state['summary']}"}


def build_scan() -> StateGraph:
    """The scan's ``StateGraph``, not compiled."""
    builder = StateGraph(ScanState)
    builder.add_node("planner", _planner)
    builder.add_node("probe", _probe)
    builder.add_node("aggregate", _aggregate)
    builder.add_node("report", _report)
    builder.add_edge(START, "planner")
    builder.add_conditional_edges("planner", _fan_out, ["probe"])
    builder.add_edge("probe", "aggregate")
    builder.add_edge("aggregate", "report")
    builder.add_edge("report", END)
    return builder


def _say(line: str) -> None:
    os.write(1, line.encode() + b"\n")


def _announce(event: StreamEvent) -> None:
    _say(f"event {event.seq} {event.type_name} {event.node or '-'}")


def main(mode: str, directory: str, thread_id: str, durability: str) -> None:
    folder = Path(directory)
    store = SQLiteEventStore(folder / "events.db")
    observer = SwarmObserver(store=store, heartbeat_interval=None, durable_node_exit=durability == "durable")
    observer.emitter.subscribe(_announce)
    with get_checkpointer(path=folder / "checkpoints.db") as saver:
        graph = observer.instrument(build_scan().compile(checkpointer=saver, name=GRAPH_NAME))
        _say(f"started {os.getpid()}")
        result = graph.invoke(scan_input() if mode == "start" else None, scan_config(thread_id))
        observer.close()
    store.close()
    _say(f"complete {result.get('report')}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
