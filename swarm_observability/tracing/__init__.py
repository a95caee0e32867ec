"""OpenTelemetry for swarm runs: one mapping from events to spans, live and after the fact.

* :class:`LiveTracer` turns a running graph's events into spans on your ``TracerProvider`` (the
  observer wires it in) and makes each node's span current inside the node body.
* :func:`export_run` rebuilds the same span tree from a stored event log, with the original
  timestamps; :func:`export_jaeger_json` writes it as a Jaeger UI upload file.
* :func:`record_service_name` (an emitter processor) records a run's ``service.name`` when it is not
  traced live, so every later export names the same service (see :mod:`.service`).
* :func:`configure_tracing` builds an OTLP-exporting provider from arguments or the standard
  ``OTEL_*`` variables; :func:`provider_stats` counts exported, failed and dropped spans.

Both paths share :class:`SpanMapper`; :mod:`.semconv` lists every name written.
"""

from .config import PROTOCOLS, TracingStats, configure_tracing, provider_stats
from .export import ExportedRun, export_run
from .jaeger import export_jaeger_json, jaeger_traces
from .live import LiveTracer, trace_observer
from .mapping import SpanMapper
from .service import record_service_name

__all__ = [
    "PROTOCOLS",
    "ExportedRun",
    "LiveTracer",
    "SpanMapper",
    "TracingStats",
    "configure_tracing",
    "export_jaeger_json",
    "export_run",
    "jaeger_traces",
    "provider_stats",
    "record_service_name",
    "trace_observer",
]
