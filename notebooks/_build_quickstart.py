"""Generate ``notebooks/quickstart.ipynb`` (run: ``.venv/bin/python notebooks/_build_quickstart.py``).

The notebook is written from the cells below so that it can be reviewed as plain Python in a diff;
it is saved without outputs. ``tests/test_notebook.py`` executes it with nbclient. It uses only the
public API (``import swarm_observability as so``) and needs no network.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """# swarm-observability quickstart

A small LangGraph swarm, observed and controlled end to end:

1. instrument the graph and consume its typed `StreamEvent`s live with `astream`,
2. pause and resume it at safe points,
3. cancel it, then resume it from the SQLite checkpoint as a new process would,
4. rebuild the run state from the event log,
5. draw a timeline of nodes and probes, and
6. export the trace (Jaeger JSON and OpenTelemetry spans).

Everything runs offline. Set `QUICKSTART_DIR` to choose where the files go (a temporary folder otherwise).""",
    ),
    (
        "code",
        """import asyncio
import operator
import os
import tempfile
from pathlib import Path
from typing import Annotated, Any, TypedDict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from IPython.display import Image, display
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

import swarm_observability as so

workdir = Path(os.environ.get("QUICKSTART_DIR") or tempfile.mkdtemp(prefix="swarm-quickstart-"))
workdir.mkdir(parents=True, exist_ok=True)
print("files go to", workdir)""",
    ),
    (
        "md",
        """## A small swarm

A planner decides what to probe, three scanners run in parallel (`Send`), a reporter agent sums up.
Inside nodes, `so.plan`, `so.probe`, `so.progress`, `so.log` and `so.agent` report what the code is
doing; they find the current run on their own, nothing is passed around.""",
    ),
    (
        "code",
        """HOSTS = ["alpha", "beta", "gamma"]
SECONDS_PER_PORT = {"alpha": 0.02, "beta": 0.12, "gamma": 0.2}  # some hosts answer slower


class State(TypedDict, total=False):
    hosts: list[str]
    results: Annotated[list[dict[str, Any]], operator.add]
    report: str


def planner(state: State) -> dict[str, Any]:
    with so.plan(steps=[f"scan {host}" for host in state["hosts"]]):
        so.log("planning the scan", hosts=len(state["hosts"]))
    return {}


def fan_out(state: State) -> list[Send]:
    return [Send("scanner", {"host": host}) for host in state["hosts"]]


async def scanner(task: dict[str, str]) -> dict[str, Any]:
    host = task["host"]
    open_ports = []
    async with so.probe("port-scan", host=host) as scan:
        for number, port in enumerate((22, 80, 443), start=1):
            await asyncio.sleep(SECONDS_PER_PORT[host])
            if port != 22:
                open_ports.append(port)
                scan.result(host=host, port=port, state="open")
            so.progress(number / 3, f"{host}: port {port} done")
    return {"results": [{"host": host, "open": open_ports}]}


@so.agent("reporter")
def write_report(results: list[dict[str, Any]]) -> str:
    lines = [f"{r['host']}: {', '.join(map(str, r['open'])) or 'nothing open'}" for r in results]
    return "\\n".join(sorted(lines))


def reporter(state: State) -> dict[str, Any]:
    return {"report": write_report(state["results"])}


def build(checkpointer: Any) -> Any:
    builder = StateGraph(State)
    builder.add_node("planner", planner)
    builder.add_node("scanner", scanner)
    builder.add_node("reporter", reporter)
    builder.add_edge(START, "planner")
    builder.add_conditional_edges("planner", fan_out, ["scanner"])
    builder.add_edge("scanner", "reporter")
    builder.add_edge("reporter", END)
    return builder.compile(checkpointer=checkpointer, name="quickstart")""",
    ),
    (
        "md",
        """## Instrument it and watch the events live

The observer wraps every node; events go to a durable SQLite event store. By default an instrumented
graph streams exactly what the plain graph streams; `custom_stream=True` also puts our events into
LangGraph's own `custom` stream, so `astream(..., stream_mode="custom")` yields the `StreamEvent`
objects themselves (next to the graph's own custom payloads, if it writes any).
The checkpointer (SQLite as well) is what makes cancel-and-resume possible later.""",
    ),
    (
        "code",
        """store = so.open_store(workdir / "events.db")
observer = so.SwarmObserver(store=store, custom_stream=True)
checkpointer = so.get_checkpointer(path=workdir / "checkpoints.db")
graph = observer.instrument(build(checkpointer))

config = {"configurable": {"thread_id": "quickstart-live"}}
async for event in graph.astream({"hosts": HOSTS}, config, stream_mode="custom"):
    where = event.probe or event.agent or event.node or ""
    extra = f"{event.progress:.0%}" if event.progress is not None else (event.data.get("outcome") or "")
    print(f"{event.seq:>3}  {event.type_name:<15} {where:<10} {extra}")""",
    ),
    (
        "md",
        """## Pause and resume

`so.get_manager(run_id)` controls a running scan. A pause takes effect at the next *safe point*
(node or probe entry and exit, each `progress()` call): parallel branches wait there, `scan_paused`
is emitted once, and `scan_resumed` when it ends. `observer.events(...)` is the one-call way to get only
the swarm's events.""",
    ),
    (
        "code",
        """run_id = "quickstart-pause"
manager = so.get_manager(run_id)
loop = asyncio.get_running_loop()
paused_once = False
async for event in observer.events(graph, {"hosts": HOSTS}, {"configurable": {"thread_id": run_id}}):
    if event.type_name == "probe_result" and not paused_once:
        paused_once = True
        manager.pause()
        loop.call_later(0.3, manager.resume)
    if event.type_name.startswith("scan_"):
        print(event.type_name, event.data)""",
    ),
    (
        "md",
        """## Cancel, then resume from the checkpoint

A cancel also waits for the next safe point: the scan stops cleanly with `scan_cancelled`, and the
finished probes are kept in the SQLite checkpoint. We then close everything, as if the process had
exited, and resume the thread with a fresh graph and checkpointer: only the unfinished work runs
again, and the event log simply continues.""",
    ),
    (
        "code",
        """run_id = "quickstart-cancel"
config = {"configurable": {"thread_id": run_id}}
manager = so.get_manager(run_id)
try:
    async for event in observer.events(graph, {"hosts": HOSTS}, config):
        if event.type_name == "probe_complete" and not manager.is_cancelled:
            manager.cancel("enough for now")  # once: the first finished probe is enough
except so.ScanCancelled as exc:
    print("stopped:", exc)

checkpointer.close()  # "the process ends"
checkpointer = so.get_checkpointer(path=workdir / "checkpoints.db")
graph = observer.instrument(build(checkpointer))
result = await graph.ainvoke(None, config)  # resume the thread
print(result["report"])

events = store.load(run_id)  # ainvoke returns once its events are stored
assert [e.seq for e in events] == list(range(1, len(events) + 1)), "the log is gapless"
print([e.type_name for e in events if e.type_name.startswith("scan_")])
resumed_at = next(i for i, e in enumerate(events) if e.type_name == "scan_resumed")
rescanned = [e.data["host"] for e in events[resumed_at:] if e.type_name == "probe_start"]
print("scanned again after the resume:", rescanned)""",
    ),
    (
        "md",
        """## The run state, rebuilt from the log

`so.rebuild_run_state` is a pure fold over the events: no clock, no LangGraph state. It can be
thrown away and rebuilt at any time, in any process.""",
    ),
    (
        "code",
        """state = so.rebuild_run_state(store, run_id)
print("status:", state.status.value, "| invocations:", state.invocations, "| events:", state.last_seq)
for name, stats in state.probes.items():
    print(f"probe {name}: started {stats.started}, outcomes {stats.outcomes}, results {stats.results}")
for name, stats in state.nodes.items():
    print(f"node {name}: outcomes {stats.outcomes}")""",
    ),
    (
        "md",
        """## A timeline of nodes and probes

Each scope (node execution, probe) opens and closes with the same `scope_id`, so the log gives
start and end of every bar. Cancelled work shows in orange, the resumed invocation after the gap.""",
    ),
    (
        "code",
        """opening = {"node_enter": "node", "probe_start": "probe"}
closing = {"node_exit", "probe_complete"}
starts: dict[str, Any] = {}
bars = []
for event in events:
    if event.type_name in opening:
        starts[event.scope_id] = event
    elif event.type_name in closing and event.scope_id in starts:
        begin = starts.pop(event.scope_id)
        label = f"{opening[begin.type_name]} {begin.probe or begin.node}" + (
            f" ({begin.data['host']})" if begin.data.get("host") else ""
        )
        bars.append((label, begin.timestamp, event.timestamp, event.data.get("outcome", "ok")))

t0 = events[0].timestamp
colors = {"ok": "tab:green", "cancelled": "tab:orange", "error": "tab:red"}
fig, ax = plt.subplots(figsize=(9, 0.45 * len(bars) + 1))
for row, (_label, begin, end, outcome) in enumerate(bars):
    start_s = (begin - t0).total_seconds()
    width = max((end - begin).total_seconds(), 0.005)
    ax.barh(row, width, left=start_s, color=colors.get(outcome, "tab:gray"))
ax.set_yticks(range(len(bars)), [b[0] for b in bars])
ax.invert_yaxis()
ax.set_xlabel("seconds since scan_started")
ax.set_title(f"{run_id}: nodes and probes (orange = cancelled)")
fig.tight_layout()
chart = workdir / "timeline.png"
fig.savefig(chart, dpi=100)
plt.close(fig)
display(Image(filename=str(chart)))""",
    ),
    (
        "md",
        """## Export the trace

The same mapping that traces a live run builds OpenTelemetry spans from the stored log: a Jaeger
JSON file (Jaeger UI: *Search > Upload > JSON File*), or spans for any exporter (OTLP, in memory).""",
    ),
    (
        "code",
        """from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exported = so.export_jaeger_json(store, run_id, workdir / "quickstart-trace.json")
print(f"{exported.spans} spans in {len(exported.trace_ids)} traces -> {workdir / 'quickstart-trace.json'}")

exporter = InMemorySpanExporter()
so.export_run(store, run_id, exporter)
for span in sorted(exporter.get_finished_spans(), key=lambda s: s.start_time)[:8]:
    print(f"{span.name:<28} {span.attributes.get('swarm.outcome')}")""",
    ),
    (
        "code",
        """observer.close()
checkpointer.close()
store.close()""",
    ),
]


def build_notebook() -> nbformat.NotebookNode:
    """The quickstart notebook, without outputs."""
    cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in CELLS]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    return notebook


def main() -> None:
    target = Path(__file__).with_name("quickstart.ipynb")
    notebook = build_notebook()
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{index:02d}"
    nbformat.validate(notebook)
    nbformat.write(notebook, target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
