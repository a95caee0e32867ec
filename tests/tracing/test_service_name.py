"""One service.name per run: recorded in the log, then used by every export path."""

from __future__ import annotations

import io
import json

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swarm_observability.emitter import EventEmitter
from swarm_observability.events import EventType
from swarm_observability.stores import InMemoryEventStore
from swarm_observability.tracing import LiveTracer, export_jaeger_json, export_run
from swarm_observability.tracing.service import record_service_name, recorded_service_name

from .scenario import Scenario


def _emit_scan(emitter: EventEmitter, run_id: str) -> None:
    s = Scenario(run_id=run_id)
    s.start()
    s.close(s.open("node", "scanner"))
    s.end(EventType.SCAN_COMPLETE, "ok")
    for event in s.events:
        emitter.emit_event(event.model_copy(update={"seq": None}))


def _exported_service(store: InMemoryEventStore, run_id: str, **kwargs: str) -> tuple[str, str]:
    exporter = InMemorySpanExporter()
    export_run(store, run_id, exporter, **kwargs)
    names = {span.resource.attributes["service.name"] for span in exporter.get_finished_spans()}
    assert len(names) == 1
    buffer = io.StringIO()
    export_jaeger_json(store, run_id, buffer, **kwargs)
    services = {t["processes"]["p1"]["serviceName"] for t in json.loads(buffer.getvalue())["data"]}
    assert len(services) == 1
    return names.pop(), services.pop()


def test_a_live_traced_run_is_exported_later_under_the_service_it_was_traced_with(monkeypatch):
    """The live tracer records its provider's service.name; export_run and Jaeger JSON reuse it."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "something-else")
    live = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc-live"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(live))
    emitter = EventEmitter(InMemoryEventStore())
    LiveTracer(provider, nest_in_current_span=False).install(emitter)
    _emit_scan(emitter, "run-live")

    started = emitter.store.load("run-live")[0]
    assert started.type_name == "scan_started" and started.data["service_name"] == "svc-live"
    assert {s.resource.attributes["service.name"] for s in live.get_finished_spans()} == {"svc-live"}
    assert _exported_service(emitter.store, "run-live") == ("svc-live", "svc-live")
    assert _exported_service(emitter.store, "run-live", service_name="override") == ("override", "override")


def test_a_run_recorded_without_tracing_keeps_the_recorded_name_else_the_environment(monkeypatch):
    """record_service_name stamps untraced runs; without it OTEL_SERVICE_NAME, then the default, apply."""
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    store = InMemoryEventStore()
    named = EventEmitter(store, processors=[record_service_name("svc-demo")])
    _emit_scan(named, "run-named")
    _emit_scan(EventEmitter(store), "run-plain")

    assert recorded_service_name(store, "run-named") == "svc-demo"
    assert recorded_service_name(store, "run-plain") is None
    assert _exported_service(store, "run-named") == ("svc-demo", "svc-demo")
    assert _exported_service(store, "run-plain") == ("swarm-observability", "swarm-observability")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "svc-env")
    assert _exported_service(store, "run-plain") == ("svc-env", "svc-env")
    assert _exported_service(store, "run-named") == ("svc-demo", "svc-demo")
    with pytest.raises(ValueError, match="non-empty"):
        record_service_name(" ")
