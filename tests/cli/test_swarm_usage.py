"""`show`, `runs` and `state` on a recorded langgraph-supervisor run: model calls, tokens, handoffs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from swarm_observability.instrumentation.observer import SwarmObserver
from swarm_observability.stores.sqlite import SQLiteEventStore
from tests.agents import graphs


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store with one supervisor run ``sup-1``, priced by a table that knows its model."""
    db = tmp_path_factory.mktemp("swarm") / "events.db"
    store = SQLiteEventStore(db)
    observer = SwarmObserver(store, heartbeat_interval=None, prices={"fake-gpt-4o": (2.5, 10.0)})
    observer.instrument(graphs.supervisor().graph).invoke(
        {"messages": [("user", "hi")]}, {"configurable": {"thread_id": "sup-1"}}
    )
    observer.close()
    store.close()
    return db


def test_show_draws_model_and_tool_calls_with_tokens_and_handoffs(cli: Any, supervised: Path) -> None:
    """Each model call is a tree line with its model and tokens; tool runs and handoffs are drawn too."""
    out = cli("show", "sup-1", "--store", str(supervised)).out
    assert out.count("model fake-gpt-4o  ok") == 7 and out.count("11 in / 7 out tokens") == 7
    assert "tool lookup  ok" in out and "tool transfer_to_math  ok" in out
    assert (
        "supervisor -> research via transfer_to_research" in out and "research -> supervisor (graph)" in out
    )


def test_runs_has_a_tokens_column(cli: Any, supervised: Path) -> None:
    """`runs` shows the run's total tokens; --json carries model calls and tokens."""
    human = cli("runs", "--store", str(supervised)).out.splitlines()
    assert human[0].split()[-1] == "TOKENS" and human[1].split()[-1] == "126"
    (row,) = cli("runs", "--json", "--store", str(supervised)).json()["runs"]
    assert (row["llm_calls"], row["total_tokens"]) == (7, 126)


def test_state_prints_usage_per_agent_and_model(cli: Any, supervised: Path) -> None:
    """`state` tabulates calls, tokens and cost per agent and per model, then the handoffs."""
    out = cli("state", "sup-1", "--store", str(supervised)).out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["research"][1:6] == ["2", "1", "22", "14", "36"]
    assert rows["fake-gpt-4o"][1:5] == ["7", "77", "49", "126"]
    assert "handoffs:     supervisor -> research, research -> supervisor, supervisor -> math" in out
    usage = cli("state", "sup-1", "--json", "--store", str(supervised)).json()["usage"]
    assert usage["by_agent"]["supervisor"]["llm_calls"] == 3
    assert usage["cost"]["total_usd"] == pytest.approx((77 * 2.5 + 49 * 10.0) / 1e6)
