"""The span budget per run: past it scopes are summarised on the root span, never silently lost."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swarm_observability.emitter import EventEmitter
from swarm_observability.events import EventType
from swarm_observability.stores.memory import InMemoryEventStore
from swarm_observability.tracing import LiveTracer, export_run
from swarm_observability.tracing.mapping import DEFAULT_SPAN_BUDGET, SpanMapper, tracer_for

from .scenario import Scenario


def _wide_run(probes: int, failing: int = 0, run_id: str = "run-1") -> Scenario:
    """One node with ``probes`` probes, the last ``failing`` of them failing, each with one result."""
    s = Scenario(run_id)
    s.start()
    node = s.open("node", "scanner", step=1)
    for i in range(probes):
        probe = s.open("probe", "port_scan" if i % 2 else "dns_lookup", node)
        s.point(EventType.PROBE_RESULT, probe, data={"i": i})
        s.close(probe, "error" if i >= probes - failing else "ok")
    s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")
    return s


def test_spans_past_the_budget_are_summarised_on_the_root(
    provider: TracerProvider, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """Budget 10: root + node + 8 probes are spans; the other 42 probes are counted per name on the root."""
    s = _wide_run(50, failing=3)
    mapper = SpanMapper(tracer_for(provider), span_budget=10)
    with caplog.at_level(logging.WARNING, logger="swarm_observability.tracing"):
        for event in s.events:
            mapper.feed(event)
    spans = exporter.get_finished_spans()
    assert len(spans) == 10 and mapper.spans_started == 10
    assert mapper.spans_summarised == 42 and mapper.open_scope_count == 0
    (root,) = [span for span in spans if span.parent is None]
    assert root.attributes["swarm.spans.summarised"] == 42
    assert root.attributes["swarm.spans.budget"] == 10
    summaries = {
        e.attributes["swarm.summary.name"]: e.attributes
        for e in root.events
        if e.name == "swarm.spans_summarised"
    }
    assert set(summaries) == {"execute_tool dns_lookup", "execute_tool port_scan"}
    assert sum(a["swarm.summary.count"] for a in summaries.values()) == 42
    assert sum(a["swarm.summary.errors"] for a in summaries.values()) == 3
    assert sum(a["swarm.summary.events"] for a in summaries.values()) == 42
    assert all(a["swarm.summary.kind"] == "probe" for a in summaries.values())
    first = min(a["swarm.seq.first"] for a in summaries.values())
    last = max(a["swarm.seq.last"] for a in summaries.values())
    probe_types = {"probe_start", "probe_result", "probe_complete"}
    summarised_seqs = [e.seq for e in s.events if e.type_name in probe_types][8 * 3 :]
    assert (first, last) == (summarised_seqs[0], summarised_seqs[-1])
    node = next(span for span in spans if span.name == "node scanner")
    assert not any(e.name == "probe_result" for e in node.events), "summarised scopes' events leak"
    warnings = [r for r in caplog.records if "span budget" in r.getMessage()]
    assert len(warnings) == 1 and "'run-1'" in warnings[0].getMessage()


def test_a_run_under_the_budget_is_unchanged(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Exactly the budget: every scope is a span and nothing is marked as summarised."""
    mapper = SpanMapper(tracer_for(provider), span_budget=12)
    for event in _wide_run(10).events:
        mapper.feed(event)
    spans = exporter.get_finished_spans()
    assert len(spans) == 12 and mapper.spans_summarised == 0
    assert all("swarm.spans.summarised" not in span.attributes for span in spans)


def test_export_reports_the_summarised_count_and_none_exports_everything() -> None:
    """export_run says how many were summarised; span_budget=None re-exports every span from the log."""
    store = InMemoryEventStore()
    s = _wide_run(30)
    for event in s.events:
        store.append(event)
    limited, everything = InMemorySpanExporter(), InMemorySpanExporter()
    result = export_run(store, "run-1", limited, span_budget=5)
    assert (result.spans, result.summarised) == (5, 27)
    assert len(limited.get_finished_spans()) == 5
    full = export_run(store, "run-1", everything, span_budget=None)
    assert (full.spans, full.summarised) == (32, 0)
    assert len(store.load("run-1")) == len(s.events), "events are never dropped"


def test_the_budget_is_configurable_by_environment(
    monkeypatch: pytest.MonkeyPatch, provider: TracerProvider
) -> None:
    """$SWARM_OBS_SPAN_BUDGET sets the default; 'none' turns it off; garbage is a clear ValueError."""
    tracer = tracer_for(provider)
    assert SpanMapper(tracer).span_budget == DEFAULT_SPAN_BUDGET == 10_000
    monkeypatch.setenv("SWARM_OBS_SPAN_BUDGET", "250")
    assert SpanMapper(tracer).span_budget == 250
    monkeypatch.setenv("SWARM_OBS_SPAN_BUDGET", "none")
    assert SpanMapper(tracer).span_budget is None
    monkeypatch.setenv("SWARM_OBS_SPAN_BUDGET", "lots")
    with pytest.raises(ValueError, match="SWARM_OBS_SPAN_BUDGET"):
        SpanMapper(tracer)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="span_budget"):
            SpanMapper(tracer, span_budget=bad)  # type: ignore[arg-type]


def test_live_tracing_summarises_like_the_export(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """The live tracer and export_run apply the same budget: same span names, same summary counts."""
    emitter = EventEmitter()
    tracer = LiveTracer(provider, store=emitter.store, span_budget=6)
    tracer.install(emitter)
    for event in _wide_run(20, failing=2).events:
        emitter.emit_event(event)
    live = exporter.get_finished_spans()
    exported = InMemorySpanExporter()
    result = export_run(emitter.store, "run-1", exported, span_budget=6)
    assert tracer.mapper.spans_summarised == result.summarised == 16
    assert sorted(s.name for s in live) == sorted(s.name for s in exported.get_finished_spans())
    (root,) = [span for span in live if span.parent is None]
    assert root.attributes["swarm.spans.summarised"] == 16
    assert len(emitter.store.load("run-1")) == 2 + 2 + 20 * 3


def test_the_budget_holds_for_more_open_runs_than_the_mapper_remembers(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Three runs open at once, remember=2: each gets exactly its budget of spans, the rest summarised."""
    runs = [_wide_run(6, run_id=f"run-{name}") for name in "abc"]
    mapper = SpanMapper(tracer_for(provider), span_budget=4, remember=2)
    for step in range(max(len(s.events) for s in runs)):
        for s in runs:
            if step < len(s.events):
                mapper.feed(s.events[step])
    spans = exporter.get_finished_spans()
    per_run = {
        run: sum(1 for span in spans if span.attributes["swarm.run_id"] == run)
        for run in ("run-a", "run-b", "run-c")
    }
    assert per_run == {"run-a": 4, "run-b": 4, "run-c": 4}
    assert mapper.spans_summarised == 3 * 4 and mapper.open_scope_count == 0
