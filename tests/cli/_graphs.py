"""A small graph for ``swarm-obs resume THREAD --graph cli._graphs:build`` tests.

``second`` fails while ``FAIL["on"]`` is true, so a first run ends in ``scan_error`` and a resume from
the checkpoint (with the flag off) completes; ``first`` is not re-run.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph

from swarm_observability import probe

FAIL = {"on": False}


class FlakyState(TypedDict, total=False):
    steps: Annotated[list[str], operator.add]


def _first(state: FlakyState) -> dict[str, Any]:
    with probe("check", target="disk") as running:
        running.result(free_gb=12)
    return {"steps": ["first"]}


def _second(state: FlakyState) -> dict[str, Any]:
    if FAIL["on"]:
        raise RuntimeError("disk on fire")
    return {"steps": ["second"]}


def review_model() -> Any:
    """A stand-in for a real chat model passed with ``swarm-obs demo --model cli._graphs:review_model``."""
    from langchain_core.language_models import FakeListChatModel

    return FakeListChatModel(responses=["Verdict: reviewed by the model given with --model"])


def build(checkpointer: Any = None) -> Any:
    """The compiled two-node graph ``flaky`` (no checkpointer unless given)."""
    builder = StateGraph(FlakyState)
    builder.add_node("first", _first)
    builder.add_node("second", _second)
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", END)
    return builder.compile(checkpointer=checkpointer, name="flaky")
