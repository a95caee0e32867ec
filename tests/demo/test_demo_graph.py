"""The demo swarm as a LangGraph graph, instrumented with a SwarmObserver."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import FakeListChatModel
from langgraph.checkpoint.memory import InMemorySaver

from swarm_observability.demo import build_demo_graph, scan_input
from swarm_observability.instrumentation.observer import SwarmObserver

from .planted import EXPECTED, plant_folder


def _run(folder: Path, mode: str, model: Any = None) -> tuple[dict[str, Any], list[Any]]:
    observer = SwarmObserver(heartbeat_interval=None)
    graph = observer.instrument(build_demo_graph(model, checkpointer=InMemorySaver()))
    config = {"configurable": {"thread_id": "demo-test"}}
    if mode == "invoke":
        result = graph.invoke(scan_input(folder), config)
    else:
        result = asyncio.run(graph.ainvoke(scan_input(folder), config))
    observer.close()
    return result, observer.store.load("demo-test")


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
def test_demo_swarm_finds_every_planted_issue(tmp_path: Path, mode: str) -> None:
    """Planner, parallel probes and the reviewer subgraph report every planted issue, sync and async."""
    result, events = _run(plant_folder(tmp_path / "src"), mode)
    found = {(f["probe"], f["kind"], f["path"]) for f in result["findings"]}
    assert set(EXPECTED) <= found
    assert result["verdict"] == "fail"
    assert result["review"].startswith("Verdict: fail")
    types = Counter(e.type_name for e in events)
    assert types["probe_result"] == len(result["findings"])
    plan_done = next(e for e in events if e.type_name == "plan_complete")
    assert plan_done.data["steps"] == [p["probe"] for p in result["plan"]]
    started = {e.probe for e in events if e.type_name == "probe_start"}
    assert started == set(plan_done.data["steps"])
    assert all(e.data["outcome"] == "ok" for e in events if e.type_name == "probe_complete")
    (reviewer,) = [e for e in events if e.type_name == "agent_start"]
    assert reviewer.agent == "reviewer" and reviewer.namespace[0].startswith("reviewer:")
    assert [e.type_name for e in events][-1] == "scan_complete"


def test_planner_only_plans_probes_with_something_to_look_at(tmp_path: Path) -> None:
    """A folder with one text file gets only the text probes; nothing found means a pass."""
    (tmp_path / "README.md").write_text("Hello.\n")
    result, _events = _run(tmp_path, "invoke")
    assert [p["probe"] for p in result["plan"]] == ["secrets", "todos"]
    assert result["findings"] == [] and result["verdict"] == "pass"


def test_empty_folder_goes_straight_to_the_reviewer(tmp_path: Path) -> None:
    """No files: no probe runs, the reviewer still writes its review."""
    result, events = _run(tmp_path, "invoke")
    assert result["plan"] == []
    assert not [e for e in events if e.type_name.startswith("probe_")]
    assert result["verdict"] == "pass" and result["review"]


def test_any_chat_model_can_write_the_review(tmp_path: Path) -> None:
    """A user-supplied LangChain chat model replaces the offline one; the verdict stays data-driven."""
    result, _events = _run(plant_folder(tmp_path / "src"), "invoke", FakeListChatModel(responses=["LGTM"]))
    assert result["review"] == "LGTM"
    assert result["verdict"] == "fail"


def test_scan_input_refuses_a_missing_folder(tmp_path: Path) -> None:
    """A folder that does not exist, or a file, is a clear NotADirectoryError naming it."""
    with pytest.raises(NotADirectoryError, match=r": no such folder$"):
        scan_input(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match=r": not a folder$"):
        scan_input(tmp_path / "file.txt")
