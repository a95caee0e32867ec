"""export_jaeger_json writes the structure the Jaeger UI's "JSON File" upload reads; export_run's errors."""

from __future__ import annotations

import io
import json
import re

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swarm_observability.events import EventType
from swarm_observability.exceptions import EventStoreError, InvalidRunIdError, TracingConfigError
from swarm_observability.stores import InMemoryEventStore
from swarm_observability.tracing import export_jaeger_json, export_run

from .scenario import T0, Scenario

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")


def _interrupted_then_resumed_run() -> tuple[InMemoryEventStore, Scenario]:
    s = Scenario(run_id="scan-7", thread_id="thread-7")
    first = s.start()
    node = s.open("node", "scanner", step=1)
    probe = s.open("probe", "port_scan", node, data={"host": "10.0.0.1"})
    s.point(EventType.PROBE_RESULT, probe, data={"open": [22, 443]})
    s.close(probe, "error", error_type="TimeoutError", error_message="host slow")
    s.close(node)
    ask = s.open("node", "approve", step=2)
    s.close(ask, "interrupted")
    s.end(EventType.SCAN_PAUSED, "interrupted", reason="interrupt")
    s.start(resumed_from=first)
    crashed = s.open("node", "approve", step=2)
    s.point(EventType.HEARTBEAT, crashed, data={"elapsed_s": 2})
    store = InMemoryEventStore()
    store.append_batch(s.events)
    return store, s


def test_jaeger_json_has_the_structure_the_jaeger_ui_reads(tmp_path):
    """One trace per invocation; hex ids; references resolve; processes; microsecond times; typed tags."""
    store, _ = _interrupted_then_resumed_run()
    path = tmp_path / "run.json"

    result = export_jaeger_json(store, "scan-7", path, service_name="svc-json")

    doc = json.loads(path.read_text())
    traces = doc["data"]
    assert len(traces) == 2 == len(result.trace_ids)
    assert [t["traceID"] for t in traces] == list(result.trace_ids)
    all_spans = {(sp["traceID"], sp["spanID"]): sp for t in traces for sp in t["spans"]}
    assert len(all_spans) == result.spans == 6 and result.incomplete == 2
    t0_us = int(T0.timestamp() * 1_000_000)
    for trace_doc in traces:
        assert _HEX32.match(trace_doc["traceID"])
        assert list(trace_doc["processes"]) == ["p1"]
        assert trace_doc["processes"]["p1"]["serviceName"] == "svc-json"
        roots = [
            sp for sp in trace_doc["spans"] if not any(r["refType"] == "CHILD_OF" for r in sp["references"])
        ]
        assert len(roots) == 1 and roots[0]["operationName"] == "invoke_workflow swarm"
        for span in trace_doc["spans"]:
            assert span["traceID"] == trace_doc["traceID"] and _HEX16.match(span["spanID"])
            assert span["processID"] in trace_doc["processes"]
            assert isinstance(span["startTime"], int) and t0_us < span["startTime"] < t0_us + 10_000_000
            assert isinstance(span["duration"], int) and span["duration"] >= 0
            for ref in span["references"]:
                assert (ref["traceID"], ref["spanID"]) in all_spans
                if ref["refType"] == "CHILD_OF":
                    assert ref["traceID"] == trace_doc["traceID"]
            for tag in span["tags"]:
                assert tag["type"] in {"string", "bool", "int64", "float64"}
    by_op = {sp["operationName"]: sp for sp in all_spans.values()}
    probe = by_op["execute_tool port_scan"]
    tags = {t["key"]: t for t in probe["tags"]}
    assert tags["error"] == {"key": "error", "type": "bool", "value": True}
    assert tags["otel.status_code"]["value"] == "ERROR"
    assert tags["otel.status_description"]["value"] == "host slow"
    assert tags["swarm.seq.first"]["type"] == "int64"
    assert tags["span.kind"]["value"] == "internal"
    assert [f["value"] for log in probe["logs"] for f in log["fields"] if f["key"] == "event"] == [
        "probe_result",
        "exception",
    ]
    assert probe["logs"][0]["timestamp"] > probe["startTime"]
    resumed_root = next(sp for sp in traces[1]["spans"] if sp["operationName"] == "invoke_workflow swarm")
    first_root = next(sp for sp in traces[0]["spans"] if sp["operationName"] == "invoke_workflow swarm")
    assert resumed_root["references"] == [
        {"refType": "FOLLOWS_FROM", "traceID": first_root["traceID"], "spanID": first_root["spanID"]}
    ]
    incomplete = [
        sp
        for sp in traces[1]["spans"]
        if {"key": "swarm.outcome", "type": "string", "value": "incomplete"} in sp["tags"]
    ]
    assert len(incomplete) == 2


def test_jaeger_json_is_reproducible_and_accepts_a_file_object():
    """Writing the same run twice gives byte-identical JSON (ids derive from the events)."""
    store, _ = _interrupted_then_resumed_run()
    first, second = io.StringIO(), io.StringIO()
    export_jaeger_json(store, "scan-7", first)
    export_jaeger_json(store, "scan-7", second)
    assert first.getvalue() == second.getvalue()
    assert first.getvalue().endswith("\n")


def test_exports_refuse_bad_input_without_writing_anything(tmp_path):
    """A missing run, an invalid run id or a wrong export target raise clear errors; no file is written."""
    store, _ = _interrupted_then_resumed_run()
    path = tmp_path / "none.json"
    with pytest.raises(EventStoreError, match="no-such-run"):
        export_jaeger_json(store, "no-such-run", path)
    assert not path.exists()
    with pytest.raises(InvalidRunIdError):
        export_run(store, "", InMemorySpanExporter())
    with pytest.raises(TracingConfigError, match="SpanExporter or a TracerProvider"):
        export_run(store, "scan-7", object())  # type: ignore[arg-type]


def test_export_run_into_a_tracer_provider_uses_its_processors(provider, exporter):
    """Given a TracerProvider, export_run builds the spans there and flushes it."""
    store, _ = _interrupted_then_resumed_run()
    result = export_run(store, "scan-7", provider)
    spans = exporter.get_finished_spans()
    assert len(spans) == result.spans == 6
    assert {f"{sp.context.trace_id:032x}" for sp in spans} == set(result.trace_ids)
