"""A scale-out worker for ``test_multi_worker.py``: pulls scans from a PostgreSQL queue and runs them.

Run as ``python _worker.py <postgresql-url> <name>``. Everything lives in that one database: the queue
table ``scan_queue`` (made by the test), the event store, LangGraph's checkpoints and the control channel.
The worker takes a pending scan with ``SELECT ... FOR UPDATE SKIP LOCKED`` and keeps the row locked (its
transaction open) while it runs the scan, then marks it ``done`` or ``cancelled`` and commits. If the worker
dies, PostgreSQL ends its session, the lock goes, the row is still ``pending``, and the next worker that
asks takes it and *resumes* the thread from its checkpoint (``invoke(None, config)``). It exits when no
pending scan is left. Lines on stdout (one ``os.write`` each): ``claimed <scan> <pid> start|resume``,
``step <scan> <pid> <n>``, ``done|cancelled <scan> <pid>``.

Graph ``scale_out``: ``plan -> work (one superstep per step, looping) -> report``; a scan's input says
how many steps and how long each sleeps.
"""

from __future__ import annotations

import operator
import os
import sys
import time
from typing import Annotated, Any, TypedDict

import psycopg
from langgraph.graph import END, START, StateGraph

from swarm_observability import ScanCancelled, SwarmObserver, get_checkpointer, progress
from swarm_observability.control import PostgresControlChannel, get_manager, remove_manager
from swarm_observability.stores import PostgresEventStore

QUEUE_SQL = """
CREATE TABLE scan_queue (
    scan_id text PRIMARY KEY,
    steps int NOT NULL,
    step_s double precision NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    worker text
)
"""
_CLAIM = (
    "SELECT scan_id, steps, step_s FROM scan_queue WHERE status = 'pending' "
    "ORDER BY scan_id FOR UPDATE SKIP LOCKED LIMIT 1"
)


class Scan(TypedDict, total=False):
    steps: int
    step_s: float
    done: Annotated[list[int], operator.add]
    report: str


def _plan(state: Scan) -> Scan:
    return {}


def _work(state: Scan) -> Scan:
    step = len(state.get("done", [])) + 1
    time.sleep(state["step_s"])
    progress(step / state["steps"], f"step {step}")
    _say(f"step {_current} {os.getpid()} {step}")
    return {"done": [step]}


def _more(state: Scan) -> str:
    return "work" if len(state.get("done", [])) < state["steps"] else "report"


def _report(state: Scan) -> Scan:
    return {"report": f"{len(state['done'])} steps"}


def build() -> StateGraph:
    """The worker's graph, not compiled."""
    builder = StateGraph(Scan)
    builder.add_node("plan", _plan)
    builder.add_node("work", _work)
    builder.add_node("report", _report)
    builder.add_edge(START, "plan")
    builder.add_edge("plan", "work")
    builder.add_conditional_edges("work", _more, ["work", "report"])
    builder.add_edge("report", END)
    return builder


_current = ""


def _say(line: str) -> None:
    os.write(1, line.encode() + b"\n")


def main(url: str, name: str) -> None:
    global _current
    store = PostgresEventStore(url)
    channel = PostgresControlChannel(url)
    observer = SwarmObserver(store=store, heartbeat_interval=None)
    queue = psycopg.connect(url, application_name=f"swarm_obs_worker_{name}")
    with get_checkpointer(path=url) as saver:
        graph = observer.instrument(build().compile(checkpointer=saver, name="scale_out"))
        while True:
            row = queue.execute(_CLAIM).fetchone()
            if row is None:
                left = queue.execute("SELECT count(*) FROM scan_queue WHERE status = 'pending'").fetchone()
                queue.rollback()
                if left[0] == 0:
                    break
                time.sleep(0.05)
                continue
            scan_id, steps, step_s = row
            _current = scan_id
            config: dict[str, Any] = {"configurable": {"thread_id": scan_id}, "recursion_limit": 100_000}
            resumed = saver.get_tuple(config) is not None
            _say(f"claimed {scan_id} {os.getpid()} {'resume' if resumed else 'start'}")
            remove_manager(scan_id)
            watcher = get_manager(scan_id).watch(channel)
            try:
                graph.invoke(None if resumed else {"steps": steps, "step_s": step_s, "done": []}, config)
                status = "done"
            except ScanCancelled:
                status = "cancelled"
            finally:
                watcher.stop()
                observer.emitter.flush()
                remove_manager(scan_id)
            queue.execute(
                "UPDATE scan_queue SET status = %s, worker = %s WHERE scan_id = %s", (status, name, scan_id)
            )
            queue.commit()
            _say(f"{status} {scan_id} {os.getpid()}")
    observer.close()
    channel.close()
    store.close()
    queue.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
