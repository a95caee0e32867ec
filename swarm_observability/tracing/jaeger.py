"""``export_jaeger_json``: a stored run as a file the Jaeger UI's "JSON File" upload opens.

The spans are the ones :func:`export_run` builds (same mapping, deterministic ids), converted the way
Jaeger's own OTLP translator does it:

* one Jaeger trace per scan invocation (each invocation is its own OpenTelemetry trace), all in
  ``{"data": [trace, ...]}`` in start order, so a file shows the whole run;
* ``references``: the parent as ``CHILD_OF`` first, then each span link (a resumed invocation's
  root -> the root it continues, in the other trace of the same file) as ``FOLLOWS_FROM``;
* times in microseconds since the epoch; attributes become typed tags (arrays as JSON strings),
  plus ``span.kind``, ``otel.status_code``/``otel.status_description``, ``error=true`` on errors and
  ``otel.scope.name``; span events become ``logs`` whose ``event`` field is the event name;
* one process ``p1`` per trace with ``serviceName`` and the other resource attributes as tags.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import IO, Any

from opentelemetry.sdk.resources import SERVICE_NAME
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, StatusCode

from ..stores.base import EventStore
from .export import ExportedRun, private_provider, replay_run
from .service import DEFAULT_SERVICE_NAME, recorded_service_name


def export_jaeger_json(
    store: EventStore,
    run_id: str,
    path_or_file: str | PathLike[str] | IO[str],
    *,
    service_name: str | None = None,
) -> ExportedRun:
    """Write the run's span tree as Jaeger UI upload JSON to a path or a text file object.

    ``service_name`` defaults as in :func:`export_run`: the run's recorded name, then the
    environment. Raises the same errors as :func:`export_run`; nothing is written when the run is
    missing.
    """
    exporter = InMemorySpanExporter()
    provider, ids = private_provider(exporter, service_name or recorded_service_name(store, run_id))
    result = replay_run(store, run_id, provider, ids)
    payload = jaeger_traces(exporter.get_finished_spans())
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    if isinstance(path_or_file, str | PathLike):
        Path(path_or_file).write_text(text + "\n", encoding="utf-8")
    else:
        path_or_file.write(text + "\n")
    return result


def jaeger_traces(spans: Sequence[ReadableSpan]) -> dict[str, Any]:
    """Convert finished SDK spans to ``{"data": [trace, ...]}`` (one trace per trace id)."""
    by_trace: dict[int, list[ReadableSpan]] = {}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        ctx = span.get_span_context()
        if ctx is not None:
            by_trace.setdefault(ctx.trace_id, []).append(span)
    traces = []
    for trace_id, members in by_trace.items():
        resource = members[0].resource.attributes
        process = {
            "serviceName": str(resource.get(SERVICE_NAME, DEFAULT_SERVICE_NAME)),
            "tags": [_tag(k, v) for k, v in resource.items() if k != SERVICE_NAME],
        }
        traces.append(
            {
                "traceID": f"{trace_id:032x}",
                "spans": [_span(span) for span in members],
                "processes": {"p1": process},
                "warnings": None,
            }
        )
    return {"data": traces}


def _span(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.get_span_context()
    assert ctx is not None
    references = []
    if span.parent is not None and span.parent.is_valid:
        references.append(_reference("CHILD_OF", span.parent))
    references.extend(_reference("FOLLOWS_FROM", link.context) for link in span.links)
    start = span.start_time or 0
    end = span.end_time or start
    tags = [_tag(k, v) for k, v in (span.attributes or {}).items()]
    tags.append(_tag("span.kind", span.kind.name.lower()))
    if span.instrumentation_scope is not None:
        tags.append(_tag("otel.scope.name", span.instrumentation_scope.name))
        if span.instrumentation_scope.version:
            tags.append(_tag("otel.scope.version", span.instrumentation_scope.version))
    if span.status.status_code is not StatusCode.UNSET:
        tags.append(_tag("otel.status_code", span.status.status_code.name))
    if span.status.status_code is StatusCode.ERROR:
        tags.append(_tag("error", True))
        if span.status.description:
            tags.append(_tag("otel.status_description", span.status.description))
    logs = [
        {
            "timestamp": event.timestamp // 1000,
            "fields": [_tag("event", event.name), *(_tag(k, v) for k, v in (event.attributes or {}).items())],
        }
        for event in span.events
    ]
    return {
        "traceID": f"{ctx.trace_id:032x}",
        "spanID": f"{ctx.span_id:016x}",
        "operationName": span.name,
        "references": references,
        "startTime": start // 1000,
        "duration": max(0, end - start) // 1000,
        "tags": tags,
        "logs": logs,
        "processID": "p1",
        "warnings": None,
    }


def _reference(kind: str, ctx: SpanContext) -> dict[str, str]:
    return {"refType": kind, "traceID": f"{ctx.trace_id:032x}", "spanID": f"{ctx.span_id:016x}"}


def _tag(key: str, value: Any) -> Mapping[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        return {"key": key, "type": "int64", "value": value}
    if isinstance(value, float):
        return {"key": key, "type": "float64", "value": value}
    if isinstance(value, str):
        return {"key": key, "type": "string", "value": value}
    return {
        "key": key,
        "type": "string",
        "value": json.dumps(list(value), separators=(",", ":"), ensure_ascii=False),
    }
