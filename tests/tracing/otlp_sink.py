"""An in-process OTLP trace receiver for tests: HTTP ``POST /v1/traces`` and gRPC ``Export``.

It stands in for a collector (it is not Jaeger): both servers listen on 127.0.0.1 port 0 and decode
requests with the official ``opentelemetry-proto`` messages, so whatever they accept is valid OTLP.
HTTP bodies may be protobuf or OTLP JSON, optionally gzip-compressed.
"""

from __future__ import annotations

import gzip
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass(frozen=True)
class ReceivedSpan:
    """One decoded span, flattened with its resource's ``service.name``."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    service_name: str
    status_code: int
    links: tuple[tuple[str, str], ...]
    events: tuple[str, ...] = field(default=())
    transport: str = ""


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which) if which else None


class OtlpSink:
    """Receive OTLP traces over HTTP and gRPC; use as a context manager."""

    def __init__(self) -> None:
        self._spans: list[ReceivedSpan] = []
        self._cond = threading.Condition()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._http: ThreadingHTTPServer | None = None
        self._grpc: grpc.Server | None = None
        self.http_port = 0
        self.grpc_port = 0

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> OtlpSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                request = trace_service_pb2.ExportTraceServiceRequest()
                if "json" in (self.headers.get("Content-Type") or ""):
                    json_format.Parse(body, request)
                else:
                    request.ParseFromString(body)
                sink._add(request, "http", {k.lower(): v for k, v in self.headers.items()})
                payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.http_port = self._http.server_address[1]
        threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, name="otlp-sink", daemon=True
        ).start()

        class Servicer(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                sink._add(request, "grpc", {k: v for k, v in context.invocation_metadata()})
                return trace_service_pb2.ExportTraceServiceResponse()

        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Servicer(), self._grpc)
        self.grpc_port = self._grpc.add_insecure_port("127.0.0.1:0")
        self._grpc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._grpc is not None:
            self._grpc.stop(grace=None)

    @property
    def http_endpoint(self) -> str:
        """Base URL of the HTTP receiver (the exporter appends ``/v1/traces``)."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_endpoint(self) -> str:
        """URL of the gRPC receiver (plaintext)."""
        return f"http://127.0.0.1:{self.grpc_port}"

    # -- data --------------------------------------------------------------------------------------

    def _add(self, request: Any, transport: str, headers: dict[str, str]) -> None:
        received = []
        for resource_spans in request.resource_spans:
            resource = {kv.key: _value(kv.value) for kv in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes={kv.key: _value(kv.value) for kv in span.attributes},
                            service_name=str(resource.get("service.name", "")),
                            status_code=span.status.code,
                            links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
                            events=tuple(event.name for event in span.events),
                            transport=transport,
                        )
                    )
        with self._cond:
            self._spans.extend(received)
            self.requests.append((transport, headers))
            self._cond.notify_all()

    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far."""
        with self._cond:
            return list(self._spans)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedSpan]:
        """Wait until at least ``count`` spans arrived; returns them (fewer if the timeout passed)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._spans) < count and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            return list(self._spans)
