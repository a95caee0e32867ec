"""A pytest plugin that instruments every graph LangGraph's own tests compile (the transparency run).

Loaded with ``-p swarm_obs_plugin`` (this folder on ``PYTHONPATH``) by ``scripts/langgraph_suite/run.py``.
Each test gets a fresh :class:`~swarm_observability.SwarmObserver` (default settings, heartbeats off so
no thread outlives a test) whose parts ``SWARM_OBS_PLUGIN_CONFIG`` names: ``memory`` (the default: an
in-memory store), ``sqlite`` (an SQLite store in a temporary folder), ``+otel`` on either (spans too,
to an in-memory exporter through an SDK ``TracerProvider``); ``StateGraph.compile`` instruments the graph it
returns, and a ``Pregel`` built directly (the functional API, hand-made graphs) is instrumented as it
is constructed. An instrumented graph must behave exactly like the plain one, so the suite must fail
exactly where it fails uninstrumented.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.graph.state import CompiledStateGraph, StateGraph
from langgraph.pregel import Pregel
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swarm_observability import SQLiteEventStore, SwarmObserver

CONFIG = os.environ.get("SWARM_OBS_PLUGIN_CONFIG", "memory")
if CONFIG not in ("memory", "memory+otel", "sqlite", "sqlite+otel"):
    raise pytest.UsageError(
        f"SWARM_OBS_PLUGIN_CONFIG must be memory, sqlite, memory+otel or sqlite+otel, not {CONFIG!r}"
    )
_current: list[SwarmObserver] = []
_seen = {"graphs": 0, "events": 0, "spans": 0}
"""How many graphs were instrumented, events recorded and spans exported: a run that instruments nothing
proves nothing."""
_exporters: dict[int, InMemorySpanExporter] = {}
_compile = StateGraph.compile
_pregel_init = Pregel.__init__


def _new_observer() -> SwarmObserver:
    kwargs: dict[str, Any] = {"heartbeat_interval": None}
    if CONFIG.startswith("sqlite"):
        kwargs["store"] = SQLiteEventStore(Path(tempfile.mkdtemp(prefix="swarm-obs-suite-")) / "events.db")
    if CONFIG.endswith("+otel"):
        exporter = InMemorySpanExporter()
        kwargs["tracer_provider"] = provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    observer = SwarmObserver(**kwargs)
    if CONFIG.endswith("+otel"):
        _exporters[id(observer)] = exporter
    return observer


def _close(observer: SwarmObserver) -> None:
    """Close ``observer`` and what it records to, counting its events and spans."""
    observer.close()
    _seen["events"] += sum(run.event_count for run in observer.store.runs())
    exporter = _exporters.pop(id(observer), None)
    if exporter is not None:
        observer.tracer_provider.shutdown()
        _seen["spans"] += len(exporter.get_finished_spans())
    if CONFIG.startswith("sqlite"):
        observer.store.close()
        shutil.rmtree(Path(observer.store.path).parent, ignore_errors=True)


def _observer() -> SwarmObserver:
    if not _current:
        _current.append(_new_observer())
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
    if report:  # one line per pytest process (xdist workers too): "<graphs> <events> <spans>"
        with Path(report).open("a", encoding="utf-8") as out:
            out.write(f"{_seen['graphs']} {_seen['events']} {_seen['spans']}\n")


@pytest.fixture(autouse=True)
def _swarm_observer_per_test() -> Iterator[None]:
    """A fresh observer (and event store) for every test."""
    observer = _new_observer()
    _current.append(observer)
    try:
        yield
    finally:
        _close(_current.pop())
