"""``configure_tracing``: one call to export spans over OTLP, for users without their own set-up.

Users who already have a ``TracerProvider`` pass it to the observer (or ``LiveTracer``) and skip
this module: nothing global is replaced unless ``set_global=True``.

Settings come from the arguments, else from the standard environment variables (first one set wins):

* endpoint: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (used as is), then ``OTEL_EXPORTER_OTLP_ENDPOINT``
  (http: ``/v1/traces`` appended); default ``http://localhost:4318/v1/traces`` (grpc:
  ``http://localhost:4317``).
* protocol: ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, ``OTEL_EXPORTER_OTLP_PROTOCOL``; default
  ``http/protobuf``.
* headers: ``OTEL_EXPORTER_OTLP_TRACES_HEADERS``, ``OTEL_EXPORTER_OTLP_HEADERS``.
* service name: ``OTEL_SERVICE_NAME``, ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES`` (other
  resource attributes are taken from there too); default ``swarm-observability``.

An explicit ``endpoint`` for ``http/protobuf`` without a path gets ``/v1/traces`` appended.

Spans go through a ``BatchSpanProcessor`` with a bounded queue, so the graph never waits on the
network: a collector that is down costs at most ``export_timeout`` seconds of the exporter thread
per batch, and when the queue is full the oldest spans are dropped. Every span is counted:
:func:`provider_stats` reports ended, exported, failed and dropped spans.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from ..exceptions import TracingConfigError
from .service import service_resource

PROTOCOLS = ("http/protobuf", "grpc")
"""The OTLP protocols the Python exporters implement (``http/json`` is not one of them)."""

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_stats_by_provider: weakref.WeakKeyDictionary[TracerProvider, _Counters] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class TracingStats:
    """Counters of the export pipeline built by :func:`configure_tracing` (a snapshot)."""

    spans_ended: int
    """Sampled spans handed to the batch processor."""
    spans_exported: int
    """Spans the collector acknowledged."""
    spans_failed: int
    """Spans in export calls that failed (collector down, timeout, rejected)."""
    spans_dropped: int
    """Spans dropped before export because the queue was full or the provider was shut down."""
    spans_queued: int
    """Spans waiting in the queue."""
    export_calls: int
    """Export calls made (one per batch)."""
    last_error: str | None
    """The last export failure, if any."""


def configure_tracing(
    service_name: str | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | str | None = None,
    *,
    set_global: bool = False,
    export_timeout: float = 5.0,
    max_queue_size: int = 2048,
    schedule_delay: float = 1.0,
    max_export_batch_size: int = 512,
) -> TracerProvider:
    """Build a ``TracerProvider`` that exports spans over OTLP.

    Args:
        service_name: ``service.name`` of the resource (see the module docstring for defaults).
        endpoint: collector URL, e.g. ``http://localhost:4318`` (http) or ``http://localhost:4317`` (grpc).
        protocol: ``"http/protobuf"`` or ``"grpc"``.
        headers: extra request headers, as a mapping or as ``"k1=v1,k2=v2"`` (values URL-encoded).
        set_global: also install the provider as OpenTelemetry's global provider.
        export_timeout: seconds one export call (with its retries) may take.
        max_queue_size: spans buffered while the exporter is busy; beyond it the oldest are dropped.
        schedule_delay: seconds between scheduled exports.
        max_export_batch_size: spans per export call.

    Raises:
        TracingConfigError: an unknown protocol, a malformed endpoint, header or resource setting,
            or a non-positive size or timeout.
    """
    protocol = _resolve_protocol(protocol)
    target = _resolve_endpoint(endpoint, protocol)
    header_map = _resolve_headers(headers)
    if export_timeout <= 0 or schedule_delay <= 0 or max_queue_size < 1 or max_export_batch_size < 1:
        raise TracingConfigError("export_timeout, schedule_delay and the queue/batch sizes must be positive")
    if max_export_batch_size > max_queue_size:
        raise TracingConfigError(
            f"max_export_batch_size ({max_export_batch_size}) must not exceed "
            f"max_queue_size ({max_queue_size})"
        )
    resource = _resolve_resource(service_name)
    exporter: SpanExporter
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter = GrpcExporter(endpoint=target, headers=header_map or None, timeout=export_timeout)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        exporter = HttpExporter(endpoint=target, headers=header_map, timeout=export_timeout)
    counters = _Counters(max_queue_size)
    provider = TracerProvider(resource=resource)
    batch = BatchSpanProcessor(
        _CountingExporter(exporter, counters),
        max_queue_size=max_queue_size,
        schedule_delay_millis=schedule_delay * 1000,
        max_export_batch_size=max_export_batch_size,
        export_timeout_millis=export_timeout * 1000,
    )
    provider.add_span_processor(_CountingProcessor(batch, counters))
    _stats_by_provider[provider] = counters
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def provider_stats(provider: TracerProvider) -> TracingStats:
    """Export counters of a provider made by :func:`configure_tracing`.

    Raises:
        TracingConfigError: the provider was not made by :func:`configure_tracing`.
    """
    counters = _stats_by_provider.get(provider)
    if counters is None:
        raise TracingConfigError("provider_stats() needs a TracerProvider made by configure_tracing()")
    return counters.snapshot()


# -- resolving settings ----------------------------------------------------------------------------


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _resolve_protocol(protocol: str | None) -> str:
    source = "protocol"
    if protocol is None:
        protocol = _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
        protocol = protocol or "http/protobuf"
        source = "OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL"
    value = protocol.strip().lower()
    if value not in PROTOCOLS:
        raise TracingConfigError(f"unsupported OTLP {source} {protocol!r}; use one of {', '.join(PROTOCOLS)}")
    return value


def _resolve_endpoint(endpoint: str | None, protocol: str) -> str:
    http = protocol == "http/protobuf"
    if endpoint is not None:
        source, url, append = "endpoint", endpoint.strip(), http
    elif (signal := _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) is not None:
        source, url, append = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", signal, False
    elif (base := _env("OTEL_EXPORTER_OTLP_ENDPOINT")) is not None:
        source, url, append = "OTEL_EXPORTER_OTLP_ENDPOINT", base, http
    else:
        return "http://localhost:4318/v1/traces" if http else "http://localhost:4317"
    url_for_check = f"http://{url}" if "://" not in url and not http else url
    try:
        parsed = urlparse(url_for_check)
        parsed.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise TracingConfigError(f"malformed OTLP {source} {url!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise TracingConfigError(f"malformed OTLP {source} {url!r}: expected http(s)://host:port")
    if append and (parsed.path in ("", "/") or source == "OTEL_EXPORTER_OTLP_ENDPOINT"):
        url = url.rstrip("/") + "/v1/traces"
    return url


def _resolve_headers(headers: Mapping[str, str] | str | None) -> dict[str, str]:
    source = "headers"
    if headers is None:
        headers = _env("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
        source = "OTEL_EXPORTER_OTLP_(TRACES_)HEADERS"
        if headers is None:
            return {}
    pairs: Sequence[tuple[Any, Any]]
    if isinstance(headers, str):
        pairs = []
        for item in headers.split(","):
            if not item.strip():
                continue
            key, sep, value = item.partition("=")
            if not sep:
                raise TracingConfigError(f"malformed OTLP {source}: {item.strip()!r} is not key=value")
            pairs.append((key.strip(), unquote(value.strip())))
    elif isinstance(headers, Mapping):
        pairs = list(headers.items())
    else:
        raise TracingConfigError(
            f"OTLP headers must be a mapping or a 'k=v,...' string, not {type(headers).__name__}"
        )
    out: dict[str, str] = {}
    for key, value in pairs:
        if not isinstance(key, str) or not _HEADER_NAME.match(key):
            raise TracingConfigError(f"malformed OTLP {source}: invalid header name {key!r}")
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise TracingConfigError(f"malformed OTLP {source}: invalid value for header {key!r}")
        out[key.lower()] = value
    return out


def _resolve_resource(service_name: str | None) -> Resource:
    raw = os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    for item in raw.split(","):
        if item.strip() and (not item.partition("=")[1] or not item.partition("=")[0].strip()):
            raise TracingConfigError(f"malformed OTEL_RESOURCE_ATTRIBUTES: {item.strip()!r} is not key=value")
    if service_name is not None and not service_name.strip():
        raise TracingConfigError("service_name must not be empty")
    return service_resource(service_name)


# -- counting --------------------------------------------------------------------------------------


class _Counters:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.lock = threading.Lock()
        self.ended = self.submitted = self.exported = self.failed = self.dropped = self.calls = 0
        self.last_error: str | None = None

    def snapshot(self) -> TracingStats:
        with self.lock:
            return TracingStats(
                spans_ended=self.ended,
                spans_exported=self.exported,
                spans_failed=self.failed,
                spans_dropped=self.dropped,
                spans_queued=max(0, self.ended - self.submitted - self.dropped),
                export_calls=self.calls,
                last_error=self.last_error,
            )


class _CountingExporter(SpanExporter):
    """Counts what reaches the collector; an exporter that raises is reported as a failure."""

    def __init__(self, inner: SpanExporter, counters: _Counters) -> None:
        self._inner = inner
        self._counters = counters

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._counters.lock:
            self._counters.submitted += len(spans)
            self._counters.calls += 1
        try:
            result = self._inner.export(spans)
            error = None if result is SpanExportResult.SUCCESS else "export returned FAILURE"
        except Exception as exc:
            result, error = SpanExportResult.FAILURE, f"{type(exc).__name__}: {exc}"
        with self._counters.lock:
            if error is None:
                self._counters.exported += len(spans)
            else:
                self._counters.failed += len(spans)
                self._counters.last_error = error
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _CountingProcessor(SpanProcessor):
    """Counts spans handed to the batch processor and the ones its full queue will drop."""

    def __init__(self, inner: BatchSpanProcessor, counters: _Counters) -> None:
        self._inner = inner
        self._counters = counters
        self._shutdown = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._inner.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is None or not span.context.trace_flags.sampled:
            return
        counters = self._counters
        with counters.lock:
            counters.ended += 1
            queued = counters.ended - 1 - counters.submitted - counters.dropped
            if self._shutdown or queued >= counters.capacity:
                counters.dropped += 1
        self._inner.on_end(span)

    def shutdown(self) -> None:
        self._shutdown = True
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)
