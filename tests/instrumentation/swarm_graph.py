"""A realistic swarm graph for the instrumentation, tracing and control tests.

Import it from any test::

    from tests.instrumentation.swarm_graph import compile_swarm, swarm_input, thread_config
    from tests.instrumentation.helpers import run_api   # one invocation with invoke/stream/ainvoke/astream

Topology (graph name ``"swarm"``)::

    START -> planner -> supervisor --goto--> research_agent -> supervisor --goto--> dispatch
    dispatch --3x Send--> probe (parallel) -> aggregate -> approve (interrupt) -> report (fails once) -> END

* ``planner`` (always a sync node): ``plan(steps=...)`` and a ``log``.
* ``supervisor``: routes with ``Command(goto=...)``; runs twice per scan (before and after research).
* ``research_agent``: a compiled ``StateGraph`` used as a node; its nodes ``gather`` and ``summarize``
  run inside ``agent("researcher")`` / ``agent("summarizer")`` and add ``notes``.
* ``probe``: one branch per target (three, via ``Send``), each inside ``probe("port_scan", target=...)``
  with ``progress()`` and ``p.result()``; ``probe_delay`` seconds of work (``asyncio.sleep`` or
  ``time.sleep``) make room for cancel/pause tests.
* ``aggregate`` (always sync), ``approve``: ``interrupt()``, resume with ``Command(resume="yes")``.
* ``report``: raises ``RuntimeError("report backend unavailable")`` the first ``fail_report`` times,
  then succeeds, so a scan is resumed from its checkpoint with ``invoke(None, config)``.

``node_mode="async"`` makes supervisor, gather, probe, approve and report ``async def`` (planner,
summarize, dispatch and aggregate stay sync, so a scan mixes both); ``node_mode="sync"`` makes every
node sync, as sync ``invoke``/``stream`` require.

A full scan is three invocations: the first stops at ``approve`` (``scan_paused``), the resume fails in
``report`` (``scan_error``), and ``invoke(None, ...)`` finishes it (``scan_complete``).
"""

from __future__ import annotations

import asyncio
import operator
import time
from typing import Annotated, Any, Literal, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, Send, interrupt

from swarm_observability import agent, log, plan, probe, progress

TARGETS = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
PLAN_STEPS = ["research", "probe", "approve", "report"]

FIRST_RUN_NODES = [
    "planner",
    "supervisor",
    "research_agent",
    "supervisor",
    "dispatch",
    "probe",
    "aggregate",
    "approve",
]
"""Top-level nodes the first invocation enters (probe three times), in superstep order."""
SUBGRAPH_NODES = ["gather", "summarize"]
"""Nodes of the research_agent subgraph, in order."""

NodeMode = Literal["sync", "async"]


class SwarmState(TypedDict, total=False):
    targets: list[str]
    plan: list[str]
    notes: Annotated[list[str], operator.add]
    findings: Annotated[list[dict[str, Any]], operator.add]
    summary: str
    approved: str
    report: str


class ResearchState(TypedDict, total=False):
    targets: list[str]
    notes: Annotated[list[str], operator.add]


class ProbeInput(TypedDict):
    target: str


def swarm_input() -> SwarmState:
    """The input of a fresh scan."""
    return {"targets": list(TARGETS)}


def _ports(target: str) -> list[int]:
    return [22, 443] if target.endswith("1") else [443]


def _planner(state: SwarmState) -> SwarmState:
    with plan(steps=PLAN_STEPS, goal="audit"):
        log("planning", targets=len(state["targets"]))
    return {"plan": list(PLAN_STEPS)}


def _route(state: SwarmState) -> Command[Literal["research_agent", "dispatch"]]:
    return Command(goto="dispatch" if state.get("notes") else "research_agent")


def _summarize(state: ResearchState) -> ResearchState:
    with agent("summarizer"):
        return {"notes": [f"{len(state['notes'])} hosts known"]}


def _dispatch(state: SwarmState) -> SwarmState:
    log("dispatching probes", count=len(state["targets"]))
    return {}


def _fan_out(state: SwarmState) -> list[Send]:
    return [Send("probe", {"target": target}) for target in state["targets"]]


def _aggregate(state: SwarmState) -> SwarmState:
    ports = sum(len(f["open_ports"]) for f in state["findings"])
    return {"summary": f"{len(state['findings'])} hosts, {ports} open ports"}


def build_swarm(
    *, node_mode: NodeMode = "async", fail_report: int = 1, probe_delay: float = 0.0
) -> StateGraph:
    """The swarm's ``StateGraph`` (not compiled); see the module docstring for the parameters."""
    failures = {"left": fail_report}

    def fail_or_report(state: SwarmState) -> SwarmState:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("report backend unavailable")
        return {"report": f"{state['summary']} (approved: {state['approved']})"}

    def finding(target: str) -> dict[str, Any]:
        return {"target": target, "open_ports": _ports(target)}

    if node_mode == "async":

        async def supervisor(state: SwarmState) -> Command[Literal["research_agent", "dispatch"]]:
            await asyncio.sleep(0)
            return _route(state)

        async def gather(state: ResearchState) -> ResearchState:
            async with agent("researcher"):
                log("gathering", targets=len(state["targets"]))
                return {"notes": [f"host {t}" for t in state["targets"]]}

        async def probe_node(state: ProbeInput) -> SwarmState:
            async with probe("port_scan", target=state["target"]) as p:
                progress(0.5, f"scanning {state['target']}")
                await asyncio.sleep(probe_delay)
                result = finding(state["target"])
                p.result(**result)
                progress(1.0)
            return {"findings": [result]}

        async def approve(state: SwarmState) -> SwarmState:
            return {"approved": interrupt({"question": "publish?", "summary": state["summary"]})}

        async def report(state: SwarmState) -> SwarmState:
            await asyncio.sleep(0)
            return fail_or_report(state)

    else:

        def supervisor(state: SwarmState) -> Command[Literal["research_agent", "dispatch"]]:  # type: ignore[misc]
            return _route(state)

        def gather(state: ResearchState) -> ResearchState:  # type: ignore[misc]
            with agent("researcher"):
                log("gathering", targets=len(state["targets"]))
                return {"notes": [f"host {t}" for t in state["targets"]]}

        def probe_node(state: ProbeInput) -> SwarmState:  # type: ignore[misc]
            with probe("port_scan", target=state["target"]) as p:
                progress(0.5, f"scanning {state['target']}")
                time.sleep(probe_delay)
                result = finding(state["target"])
                p.result(**result)
                progress(1.0)
            return {"findings": [result]}

        def approve(state: SwarmState) -> SwarmState:  # type: ignore[misc]
            return {"approved": interrupt({"question": "publish?", "summary": state["summary"]})}

        def report(state: SwarmState) -> SwarmState:  # type: ignore[misc]
            return fail_or_report(state)

    research = StateGraph(ResearchState)
    research.add_node("gather", gather)
    research.add_node("summarize", _summarize)
    research.add_edge(START, "gather")
    research.add_edge("gather", "summarize")

    builder = StateGraph(SwarmState)
    builder.add_node("planner", _planner)
    builder.add_node("supervisor", supervisor, destinations=("research_agent", "dispatch"))
    builder.add_node("research_agent", research.compile(name="research_agent"))
    builder.add_node("dispatch", _dispatch)
    builder.add_node("probe", probe_node)
    builder.add_node("aggregate", _aggregate)
    builder.add_node("approve", approve)
    builder.add_node("report", report)
    builder.add_edge(START, "planner")
    builder.add_edge("planner", "supervisor")
    builder.add_edge("research_agent", "supervisor")
    builder.add_conditional_edges("dispatch", _fan_out, ["probe"])
    builder.add_edge("probe", "aggregate")
    builder.add_edge("aggregate", "approve")
    builder.add_edge("approve", "report")
    builder.add_edge("report", END)
    return builder


def compile_swarm(
    *,
    checkpointer: BaseCheckpointSaver | None = None,
    node_mode: NodeMode = "async",
    fail_report: int = 1,
    probe_delay: float = 0.0,
) -> CompiledStateGraph:
    """The compiled, *uninstrumented* swarm graph (an ``InMemorySaver`` unless ``checkpointer`` is given)."""
    builder = build_swarm(node_mode=node_mode, fail_report=fail_report, probe_delay=probe_delay)
    return builder.compile(checkpointer=checkpointer or InMemorySaver(), name="swarm")


def thread_config(thread_id: str, **configurable: Any) -> dict[str, Any]:
    """A run config for ``thread_id`` (extra ``configurable`` keys such as ``scan_id`` may be added)."""
    return {"configurable": {"thread_id": thread_id, **configurable}}
