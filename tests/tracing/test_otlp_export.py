"""configure_tracing over the real wire: in-process OTLP receiver, the rotel collector, a down collector.

A real Jaeger: tests/e2e (marker ``jaeger``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from swarm_observability.emitter import EventEmitter
from swarm_observability.events import EventType
from swarm_observability.exceptions import TracingConfigError
from swarm_observability.stores import InMemoryEventStore
from swarm_observability.tracing import LiveTracer, configure_tracing, provider_stats

from .otlp_sink import OtlpSink, ReceivedSpan
from .scenario import Scenario

_OTEL_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_EXPORTER_OTLP_TRACES_INSECURE",
)


@pytest.fixture(autouse=True)
def _clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _OTEL_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    with OtlpSink() as running:
        yield running


def _trace_a_scan(provider: TracerProvider, graph: str = "swarm") -> int:
    """Run a scan's events through a LiveTracer on ``provider``; returns the number of spans."""
    emitter = EventEmitter(InMemoryEventStore())
    LiveTracer(provider, nest_in_current_span=False).install(emitter)
    s = Scenario(run_id=f"run-{uuid.uuid4().hex[:8]}", graph=graph)
    s.start()
    node = s.open("node", "scanner", step=1)
    s.close(s.open("probe", "port_scan", node, data={"host": "10.0.0.1"}))
    s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")
    for event in s.events:
        emitter.emit_event(event)
    return 3


def _assert_scan_tree(spans: list[ReceivedSpan], service: str) -> None:
    by_name = {s.name: s for s in spans}
    root, node = by_name["invoke_workflow swarm"], by_name["node scanner"]
    probe = by_name["execute_tool port_scan"]
    assert root.parent_span_id == ""
    assert node.parent_span_id == root.span_id and probe.parent_span_id == node.span_id
    assert len({root.trace_id, node.trace_id, probe.trace_id}) == 1
    assert root.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert probe.attributes["gen_ai.tool.name"] == "port_scan"
    assert probe.attributes["swarm.probe.host"] == "10.0.0.1"
    assert node.attributes["swarm.step"] == 1
    assert {s.service_name for s in spans} == {service}
    assert {s.kind for s in spans} == {1}  # SPAN_KIND_INTERNAL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_spans_reach_an_otlp_receiver(sink, protocol):
    """configure_tracing sends valid OTLP over HTTP and gRPC: names, parents, attributes, service, headers."""
    endpoint = sink.http_endpoint if protocol == "http/protobuf" else sink.grpc_endpoint
    provider = configure_tracing("svc-wire", endpoint, protocol, headers={"X-Tenant": "t1"})
    try:
        count = _trace_a_scan(provider)
        provider.force_flush()
        spans = sink.wait_for(count)
        _assert_scan_tree(spans, "svc-wire")
        assert {s.transport for s in spans} == {"grpc" if protocol == "grpc" else "http"}
        assert all(headers.get("x-tenant") == "t1" for _, headers in sink.requests)
        stats = provider_stats(provider)
        assert (stats.spans_ended, stats.spans_exported) == (3, 3)
        assert (stats.spans_failed, stats.spans_dropped) == (0, 0)
    finally:
        provider.shutdown()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("style", ["base-endpoint-http", "traces-endpoint-grpc"])
def test_standard_environment_variables_configure_the_export(sink, monkeypatch, style):
    """OTEL_EXPORTER_OTLP_* pick endpoint, protocol, headers; OTEL_SERVICE_NAME etc. the resource."""
    if style == "base-endpoint-http":
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.http_endpoint + "/")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    else:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")  # the signal var wins
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", sink.grpc_endpoint)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=abc%20def, x-team=blue")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "svc-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    provider = configure_tracing()
    try:
        assert provider.resource.attributes["deployment.environment"] == "test"
        count = _trace_a_scan(provider)
        provider.force_flush()
        _assert_scan_tree(sink.wait_for(count), "svc-env")
        assert all((h.get("x-api-key"), h.get("x-team")) == ("abc def", "blue") for _, h in sink.requests)
    finally:
        provider.shutdown()


@pytest.mark.parametrize(
    ("kwargs", "env", "needle"),
    [
        ({"protocol": "http/json"}, {}, "http/json"),
        ({"protocol": "thrift"}, {}, "thrift"),
        ({}, {"OTEL_EXPORTER_OTLP_PROTOCOL": "zipkin"}, "OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL"),
        ({"headers": "x-api-key"}, {}, "'x-api-key' is not key=value"),
        ({"headers": {"bad name": "x"}}, {}, "invalid header name 'bad name'"),
        ({"headers": {"x-ok": "line\nbreak"}}, {}, "invalid value for header 'x-ok'"),
        ({}, {"OTEL_EXPORTER_OTLP_HEADERS": "a=1,broken"}, "'broken' is not key=value"),
        ({"endpoint": "localhost:4318"}, {}, "expected http(s)://host:port"),
        ({"endpoint": "http://collector:port"}, {}, "malformed OTLP endpoint"),
        ({}, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://x"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        ({}, {"OTEL_RESOURCE_ATTRIBUTES": "team=a,oops"}, "OTEL_RESOURCE_ATTRIBUTES"),
        ({"max_queue_size": 0}, {}, "must be positive"),
        ({"max_queue_size": 8, "max_export_batch_size": 16}, {}, "must not exceed"),
        ({"service_name": " "}, {}, "service_name"),
    ],
)
def test_bad_settings_raise_a_clear_tracing_config_error(monkeypatch, kwargs, env, needle):
    """Unknown protocols, malformed headers, endpoints or resource settings raise TracingConfigError."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(TracingConfigError) as info:
        configure_tracing(**kwargs)
    assert needle in str(info.value)


def test_configure_tracing_replaces_no_global_provider_by_default():
    """Without set_global the global provider is untouched; provider_stats refuses foreign providers."""
    before = trace.get_tracer_provider()
    provider = configure_tracing("svc", "http://127.0.0.1:9")
    try:
        assert trace.get_tracer_provider() is before
        with pytest.raises(TracingConfigError, match="configure_tracing"):
            provider_stats(TracerProvider(shutdown_on_exit=False))
    finally:
        provider.shutdown()


@pytest.mark.timeout(60)
def test_set_global_installs_the_provider_in_a_fresh_process():
    """set_global=True makes the provider the global one (in a subprocess: the global is set once)."""
    code = (
        "from opentelemetry import trace\n"
        "from swarm_observability.tracing import configure_tracing\n"
        "p = configure_tracing('svc', 'http://127.0.0.1:9', set_global=True)\n"
        "assert trace.get_tracer_provider() is p\n"
        "p.shutdown()\n"
        "print('global-ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=50, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "global-ok"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_down_collector_neither_blocks_nor_raises_and_failures_are_counted(protocol):
    """With nothing listening, tracing a scan raises nothing; after a flush every span counts as failed."""
    provider = configure_tracing("svc", f"http://127.0.0.1:{_free_port()}", protocol, export_timeout=0.5)
    try:
        count = _trace_a_scan(provider)
        provider.force_flush()
        stats = provider_stats(provider)
        assert (stats.spans_ended, stats.spans_exported, stats.spans_failed) == (count, 0, count)
        assert stats.last_error is not None and stats.export_calls >= 1
    finally:
        provider.shutdown()


@pytest.mark.timeout(60)
def test_a_stalled_collector_fills_the_bounded_queue_and_drops_are_counted():
    """A collector that accepts connections but never answers: the queue stays bounded, drops are counted."""
    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(64)
    provider = configure_tracing(
        "svc",
        f"http://127.0.0.1:{stalled.getsockname()[1]}",
        export_timeout=1.0,
        max_queue_size=4,
        max_export_batch_size=2,
        schedule_delay=0.01,
    )
    try:
        spans = sum(_trace_a_scan(provider) for _ in range(20))
        stats = provider_stats(provider)
        assert stats.spans_ended == spans
        assert stats.spans_dropped >= spans - 4 - 2 * stats.export_calls
        assert stats.spans_queued <= 4
        assert stats.spans_exported == 0
    finally:
        stalled.close()
        provider.shutdown()
    final = provider_stats(provider)
    assert final.spans_exported + final.spans_failed + final.spans_dropped == final.spans_ended


def _rotel_agent() -> Path:
    rotel = pytest.importorskip("rotel", reason="the rotel collector (dev dependency rotel) is not installed")
    agent = Path(rotel.__file__).with_name("rotel-agent")
    if not agent.exists():
        pytest.skip("rotel is installed without its rotel-agent binary")
    return agent


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = log.read_text(errors="replace")
            raise AssertionError(f"rotel-agent exited with {proc.returncode}: {output}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"rotel-agent did not listen on {port}: {log.read_text(errors='replace')}")


@pytest.mark.timeout(90)
def test_spans_pass_through_the_real_rotel_collector(sink, tmp_path):
    """SDK -> rotel (OTLP gRPC in, OTLP HTTP out) -> receiver: an independent collector accepts the spans."""
    agent = _rotel_agent()
    grpc_port, http_port = _free_port(), _free_port()
    log = tmp_path / "rotel.log"
    env = dict(os.environ, LD_LIBRARY_PATH=str(sysconfig.get_config_var("LIBDIR") or ""))
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(agent),
                "start",
                "--otlp-grpc-endpoint",
                f"127.0.0.1:{grpc_port}",
                "--otlp-http-endpoint",
                f"127.0.0.1:{http_port}",
                "--exporter",
                "otlp",
                "--otlp-exporter-protocol",
                "http",
                "--otlp-exporter-endpoint",
                sink.http_endpoint,
                "--batch-timeout",
                "200ms",
                "--pid-file",
                str(tmp_path / "rotel.pid"),
                "--log-file",
                str(log),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=agent.parent,
            env=env,
        )
    try:
        _wait_listening(grpc_port, proc, log)
        provider = configure_tracing("svc-rotel", f"http://127.0.0.1:{grpc_port}", "grpc")
        try:
            count = _trace_a_scan(provider)
            provider.force_flush()
            assert provider_stats(provider).spans_exported == count
        finally:
            provider.shutdown()
        spans = sink.wait_for(count, timeout=20)
        _assert_scan_tree(spans, "svc-rotel")
        assert {s.transport for s in spans} == {"http"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
