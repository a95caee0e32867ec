"""The demo swarm: a planner, parallel probes and a reviewer agent auditing a source folder.

Shape of the graph (``build_demo_graph``)::

    START -> planner --Send x N--> probe (one branch per planned probe) -> reviewer (subgraph) -> END
                     \\-- nothing to scan --------------------------------^
    reviewer = START -> draft (agent "reviewer", calls the chat model) -> grade -> END

* ``planner`` takes the folder's inventory and, inside ``plan()``, picks the probes that have
  something to look at (no ``syntax`` probe in a folder without Python files, ...). It routes with
  ``Command(goto=[Send("probe", task), ...])`` so each probe runs in its own parallel branch and the
  file lists travel in the ``Send`` payloads, not in the shared state.
* ``probe`` wraps one :class:`~swarm_observability.demo.probes.ProbeSpec` in ``probe(name)``: a
  ``probe_result`` per finding and ``progress()`` as files are done.
* ``reviewer`` is a compiled subgraph (its events carry the subgraph namespace): ``draft`` asks the
  chat model for a review inside ``agent("reviewer")``; ``grade`` derives the verdict from the
  findings themselves, so a real model's wording never changes the outcome.

Every node is a plain sync function, so the graph runs under ``invoke``/``stream`` and
``ainvoke``/``astream`` alike. Setting ``SWARM_OBS_DEMO_DELAY`` (seconds per file) slows the probes
down: a testing knob that leaves time to cancel or pause a scan from another process.
"""

from __future__ import annotations

import operator
import os
import time
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.language_models import BaseChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Send

from ..instrumentation.helpers import agent, log, plan, probe, progress
from .model import OfflineReviewModel, build_review_prompt
from .probes import PROBES, FileEntry, files_for, run_probe, take_inventory

DELAY_ENV = "SWARM_OBS_DEMO_DELAY"
"""Environment variable: seconds each probe sleeps per file (testing knob, default 0)."""

PROGRESS_EVERY_S = 0.5
"""A probe reports progress at every 5% of its files and at least this often (seconds)."""

GRAPH_NAME = "demo_swarm"


class PlannedProbe(TypedDict):
    """One entry of the scan plan."""

    probe: str
    files: int
    description: str


class ScanState(TypedDict, total=False):
    """State of the demo swarm. ``findings`` and ``completed`` are merged from the parallel probes."""

    root: str
    plan: list[PlannedProbe]
    findings: Annotated[list[dict[str, Any]], operator.add]
    completed: Annotated[list[str], operator.add]
    review: str
    verdict: str
    counts: dict[str, int]


class ProbeTask(TypedDict):
    """The ``Send`` payload of one probe branch."""

    root: str
    probe: str
    files: list[FileEntry]


class _ReviewInput(TypedDict, total=False):
    root: str
    plan: list[PlannedProbe]
    findings: list[dict[str, Any]]


class _ReviewState(_ReviewInput, total=False):
    review: str
    verdict: str
    counts: dict[str, int]


class _ReviewOutput(TypedDict, total=False):
    review: str
    verdict: str
    counts: dict[str, int]


def _planner(state: ScanState) -> Command[Any]:
    root = Path(state["root"])
    tasks: list[ProbeTask] = []
    planned: list[PlannedProbe] = []
    with plan(candidates=list(PROBES)) as scan_plan:
        inventory = take_inventory(root)
        for spec in PROBES.values():
            files = files_for(spec, inventory)
            if files:
                tasks.append(ProbeTask(root=str(root), probe=spec.name, files=files))
                planned.append(PlannedProbe(probe=spec.name, files=len(files), description=spec.description))
        scan_plan.steps = [p["probe"] for p in planned]
        log(
            f"planned {len(planned)} probe(s) over {len(inventory.files)} file(s)", files=len(inventory.files)
        )
    update = {"plan": planned}
    if not tasks:
        return Command(goto="reviewer", update=update)
    return Command(goto=[Send("probe", task) for task in tasks], update=update)


def _probe(task: ProbeTask) -> dict[str, Any]:
    spec = PROBES[task["probe"]]
    delay = _delay()
    found: list[dict[str, Any]] = []
    last_report = time.monotonic()

    def tick(done: int, total: int, path: str) -> None:
        # every 5% or half second: progress() is also where a cancel or pause takes effect
        nonlocal last_report
        if delay:
            time.sleep(delay)
        now = time.monotonic()
        if done == total or done % max(1, total // 20) == 0 or now - last_report >= PROGRESS_EVERY_S:
            last_report = now
            progress(done / total, f"{done}/{total} files ({path})")

    with probe(spec.name, files=len(task["files"]), description=spec.description) as running:
        for finding in run_probe(spec, Path(task["root"]), task["files"], tick):
            record = finding.to_dict()
            running.result(**record)
            found.append(record)
    return {"findings": found, "completed": [spec.name]}


def _delay() -> float:
    try:
        return max(0.0, float(os.environ.get(DELAY_ENV, "0") or 0))
    except ValueError:
        return 0.0


def _make_draft(model: BaseChatModel) -> Any:
    def draft(state: _ReviewState) -> dict[str, Any]:
        findings = state.get("findings", [])
        with agent("reviewer"):
            messages = build_review_prompt(
                state["root"], findings, [p["probe"] for p in state.get("plan", [])]
            )
            answer = model.invoke(messages)
        return {"review": answer.text}

    return draft


def _grade(state: _ReviewState) -> dict[str, Any]:
    counts = Counter(str(f.get("severity", "info")) for f in state.get("findings", []))
    verdict = "fail" if counts.get("high") else "needs attention" if counts.get("medium") else "pass"
    return {"verdict": verdict, "counts": dict(counts)}


def build_reviewer(model: BaseChatModel | None = None) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The reviewer agent as a compiled subgraph: ``draft`` (calls the model) then ``grade``."""
    builder = StateGraph(_ReviewState, input_schema=_ReviewInput, output_schema=_ReviewOutput)
    builder.add_node("draft", _make_draft(model or OfflineReviewModel()))
    builder.add_node("grade", _grade)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "grade")
    builder.add_edge("grade", END)
    return builder.compile(name="reviewer")


def build_demo_graph(
    model: BaseChatModel | None = None,
    *,
    checkpointer: Any = None,
    name: str = GRAPH_NAME,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Build the (uninstrumented) demo swarm; instrument it with ``SwarmObserver.instrument``.

    Args:
        model: the reviewer's chat model; :class:`OfflineReviewModel` (deterministic, offline) when
            omitted. Any LangChain chat model works.
        checkpointer: a LangGraph checkpointer, needed to cancel and resume a scan.
        name: the graph name (shows as ``data.graph`` on ``scan_started`` and in trace names).

    The input is ``{"root": "<folder>"}``; the folder must exist (see :func:`scan_input`).
    """
    builder = StateGraph(ScanState)
    builder.add_node("planner", _planner, destinations=("probe", "reviewer"))
    builder.add_node("probe", _probe)  # type: ignore[arg-type]  # its input is a Send payload, not ScanState
    builder.add_node("reviewer", build_reviewer(model))
    builder.add_edge(START, "planner")
    builder.add_edge("probe", "reviewer")
    builder.add_edge("reviewer", END)
    return builder.compile(checkpointer=checkpointer, name=name)


def scan_input(folder: str | os.PathLike[str]) -> ScanState:
    """The graph input for ``folder``; raises ``NotADirectoryError`` naming it if it is not a folder."""
    root = Path(folder).expanduser().resolve()
    if not root.is_dir():
        what = "no such folder" if not root.exists() else "not a folder"
        raise NotADirectoryError(f"{folder}: {what}")
    return ScanState(root=str(root))
