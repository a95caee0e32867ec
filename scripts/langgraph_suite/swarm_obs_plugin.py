"""A pytest plugin that instruments every graph LangGraph's own tests compile (the transparency run).

Loaded with ``-p swarm_obs_plugin`` (this folder on ``PYTHONPATH``) by ``scripts/langgraph_suite/run.py``.
Each test gets a fresh :class:`~swarm_observability.SwarmObserver` (in-memory store, default settings,
heartbeats off so no thread outlives a test); ``StateGraph.compile`` instruments the graph it
returns, and a ``Pregel`` built directly (the functional API, hand-made graphs) is instrumented as it
is constructed. An instrumented graph must behave exactly like the plain one, so the suite must fail
exactly where it fails uninstrumented.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.graph.state import CompiledStateGraph, StateGraph
from langgraph.pregel import Pregel

from swarm_observability import SwarmObserver

_current: list[SwarmObserver] = []
_seen = {"graphs": 0, "events": 0}
"""How many graphs were instrumented and events recorded: a run that instruments nothing proves nothing."""
_compile = StateGraph.compile
_pregel_init = Pregel.__init__


def _observer() -> SwarmObserver:
    if not _current:
        _current.append(SwarmObserver(heartbeat_interval=None))
    return _current[-1]


def _instrumented_compile(self: StateGraph, *args: Any, **kwargs: Any) -> Any:
    _seen["graphs"] += 1
    return _observer().instrument(_compile(self, *args, **kwargs))


def _instrumented_init(self: Pregel, *args: Any, **kwargs: Any) -> None:
    _pregel_init(self, *args, **kwargs)
    if not isinstance(self, CompiledStateGraph):  # those get nodes after __init__: compile() covers them
        _seen["graphs"] += 1
        _observer().instrument(self)


def pytest_configure(config: pytest.Config) -> None:
    StateGraph.compile = _instrumented_compile  # type: ignore[method-assign]
    Pregel.__init__ = _instrumented_init  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    StateGraph.compile = _compile  # type: ignore[method-assign]
    Pregel.__init__ = _pregel_init  # type: ignore[method-assign]
    report = os.environ.get("SWARM_OBS_PLUGIN_REPORT")
    if report:  # one line per pytest process (xdist workers too): "<graphs> <events>"
        with Path(report).open("a", encoding="utf-8") as out:
            out.write(f"{_seen['graphs']} {_seen['events']}\n")


@pytest.fixture(autouse=True)
def _swarm_observer_per_test() -> Iterator[None]:
    """A fresh observer (and event store) for every test."""
    observer = SwarmObserver(heartbeat_interval=None)
    _current.append(observer)
    try:
        yield
    finally:
        _current.pop().close()
        _seen["events"] += sum(run.event_count for run in observer.store.runs())
