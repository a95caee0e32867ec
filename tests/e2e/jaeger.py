"""A real Jaeger v2 for the end-to-end tests: found or started, read back through its stable ``/api/v3``.

Where the Jaeger comes from, in order:

1. ``JAEGER_QUERY_URL`` (with ``JAEGER_OTLP_HTTP_ENDPOINT`` / ``JAEGER_OTLP_GRPC_ENDPOINT``, defaulting to
   ports 4318 / 4317 on the query URL's host): a Jaeger someone else runs. Under ``CI=true`` an
   unreachable one fails the tests instead of skipping them.
2. The binary ``scripts/jaeger.sh build`` (``make jaeger``) leaves in ``~/.cache/swarm-observability/jaeger``
   (``$JAEGER_HOME``, or ``$JAEGER_BIN``; ``scripts/jaeger.sh path`` says where):
   started with ``scripts/jaeger.sh start DIR`` on 127.0.0.1 and free ports, in-memory storage, and
   stopped by its pid when the tests end.
3. Neither: the tests skip, saying how to get one.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "jaeger.sh"
SKIP_REASON = (
    "needs a real Jaeger: run `make jaeger` (Go >= 1.24 builds it into ~/.cache/swarm-observability/jaeger, "
    "then the tests start it themselves) or set JAEGER_QUERY_URL "
    "(+ JAEGER_OTLP_HTTP_ENDPOINT / JAEGER_OTLP_GRPC_ENDPOINT)"
)


def binary() -> Path:
    """Where ``scripts/jaeger.sh`` builds (or finds) the Jaeger binary."""
    found = subprocess.run(["bash", str(SCRIPT), "path"], capture_output=True, text=True, check=True)
    return Path(found.stdout.strip())


@dataclass
class Span:
    """One span as Jaeger returns it (OTLP JSON), flattened; ids are lowercase hex."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status_code: int
    status_message: str
    events: list[tuple[str, int, dict[str, Any]]]
    links: list[tuple[str, str, dict[str, Any]]]
    service: str
    resource: dict[str, Any] = field(default_factory=dict)


@dataclass
class Jaeger:
    """A running Jaeger: where to send OTLP and where to read. ``home`` is set when these tests own it."""

    query_url: str
    otlp_http: str
    otlp_grpc: str
    home: Path | None = None
    pid: int | None = None

    # -- owning one ------------------------------------------------------------------------------

    @classmethod
    def start(cls, home: Path) -> Jaeger:
        """Start the built binary with ``scripts/jaeger.sh start home`` (same ports again after a stop)."""
        done = subprocess.run(
            ["bash", str(SCRIPT), "start", str(home)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "JAEGER_BIN": str(binary())},
        )
        if done.returncode != 0:
            raise AssertionError(f"could not start Jaeger: {done.stderr.strip() or done.stdout.strip()}")
        env = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
        return cls(
            env["JAEGER_QUERY_URL"],
            env["JAEGER_OTLP_HTTP_ENDPOINT"],
            env["JAEGER_OTLP_GRPC_ENDPOINT"],
            home=home,
            pid=int(env["JAEGER_PID"]),
        )

    def stop(self) -> None:
        """Stop a Jaeger these tests started, by its pid (the script checks it is that process)."""
        assert self.home is not None, "only a Jaeger these tests started can be stopped"
        subprocess.run(["bash", str(SCRIPT), "stop", str(self.home)], check=True, timeout=60)
        self.pid = None

    def restart(self) -> None:
        """Start the stopped Jaeger again on the same ports (its memory storage starts empty)."""
        assert self.home is not None
        again = Jaeger.start(self.home)
        assert (again.query_url, again.otlp_http) == (self.query_url, self.otlp_http)
        self.pid = again.pid

    # -- reading ---------------------------------------------------------------------------------

    def get(self, path: str, **params: str) -> Any:
        """GET a query-API path; ``None`` for a 404 (Jaeger's answer to a search with no match)."""
        url = f"{self.query_url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise AssertionError(f"GET {url}: HTTP {exc.code} {exc.read()[:300]!r}") from None

    def reachable(self) -> bool:
        """Whether the query API answers."""
        try:
            self.get("/api/v3/services")
            return True
        except (OSError, AssertionError):
            return False

    def services(self) -> list[str]:
        """``GET /api/v3/services``."""
        return list((self.get("/api/v3/services") or {}).get("services") or [])

    def search(self, service: str, *, hours: float = 2.0) -> list[Span]:
        """Every span of the service's traces stored in the last ``hours`` (``/api/v3/traces``)."""
        now = datetime.now(UTC)
        body = self.get(
            "/api/v3/traces",
            **{
                "query.service_name": service,
                "query.start_time_min": _rfc3339(now - timedelta(hours=hours)),
                "query.start_time_max": _rfc3339(now + timedelta(minutes=5)),
                "query.num_traces": "1000",
            },
        )
        return _flatten(body)

    def trace(self, trace_id: str) -> list[Span]:
        """Every span of one trace (``/api/v3/traces/{trace_id}``); empty if Jaeger has none."""
        return _flatten(self.get(f"/api/v3/traces/{trace_id}"))

    def wait_for(self, service: str, count: int, timeout: float = 60.0) -> list[Span]:
        """Search until the service has at least ``count`` spans (Jaeger stores asynchronously)."""
        deadline = time.monotonic() + timeout
        spans: list[Span] = []
        while time.monotonic() < deadline:
            spans = self.search(service)
            if len(spans) >= count:
                time.sleep(0.3)  # let a batch in flight land, then read the settled set
                return self.search(service)
            time.sleep(0.2)
        raise AssertionError(
            f"Jaeger has {len(spans)} span(s) of {service!r} after {timeout} s, wanted {count}"
        )


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _value(any_value: dict[str, Any]) -> Any:
    if "stringValue" in any_value:
        return any_value["stringValue"]
    if "boolValue" in any_value:
        return any_value["boolValue"]
    if "intValue" in any_value:
        return int(any_value["intValue"])
    if "doubleValue" in any_value:
        return float(any_value["doubleValue"])
    if "arrayValue" in any_value:
        return tuple(_value(v) for v in any_value["arrayValue"].get("values", []))
    return None


def _attributes(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: _value(item.get("value", {})) for item in items or []}


def _flatten(body: Any) -> list[Span]:
    if not body:
        return []
    spans = []
    for resource_spans in body["result"]["resourceSpans"]:
        resource = _attributes(resource_spans.get("resource", {}).get("attributes"))
        for scope_spans in resource_spans.get("scopeSpans", []):
            for raw in scope_spans.get("spans", []):
                status = raw.get("status") or {}
                spans.append(
                    Span(
                        trace_id=raw["traceId"],
                        span_id=raw["spanId"],
                        parent_span_id=raw.get("parentSpanId", ""),
                        name=raw["name"],
                        kind=int(raw.get("kind", 0)),
                        start_ns=int(raw["startTimeUnixNano"]),
                        end_ns=int(raw["endTimeUnixNano"]),
                        attributes=_attributes(raw.get("attributes")),
                        status_code=int(status.get("code", 0)),
                        status_message=status.get("message", ""),
                        events=[
                            (e["name"], int(e["timeUnixNano"]), _attributes(e.get("attributes")))
                            for e in raw.get("events", [])
                        ],
                        links=[
                            (ln["traceId"], ln["spanId"], _attributes(ln.get("attributes")))
                            for ln in raw.get("links", [])
                        ],
                        service=str(resource.get("service.name", "")),
                        resource=resource,
                    )
                )
    return spans


def external() -> Jaeger | None:
    """The Jaeger named by ``JAEGER_QUERY_URL``, if set (checked reachable; CI=true fails loudly)."""
    query = os.environ.get("JAEGER_QUERY_URL", "").strip().rstrip("/")
    if not query:
        return None
    host = urllib.parse.urlparse(query).hostname or "127.0.0.1"
    jaeger = Jaeger(
        query,
        os.environ.get("JAEGER_OTLP_HTTP_ENDPOINT") or f"http://{host}:4318",
        os.environ.get("JAEGER_OTLP_GRPC_ENDPOINT") or f"http://{host}:4317",
    )
    if not jaeger.reachable():
        message = f"JAEGER_QUERY_URL={query} is set but Jaeger does not answer there"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return jaeger


# -- comparing what Jaeger stored with the spans rebuilt from the event log ------------------------


def _event_order(event: tuple[str, int, dict[str, Any]]) -> tuple[int, str, str]:
    # Jaeger's query service sorts span events by name (its SortCollections adjuster): compare in time order.
    return event[1], event[0], json.dumps(event[2], sort_keys=True, default=str)


def tree_of_jaeger(spans: list[Span]) -> dict[str, dict[str, Any]]:
    """Jaeger's spans as data keyed by ``swarm.scope_id``, parents and links as scope ids."""
    scope_of = {(s.trace_id, s.span_id): s.attributes["swarm.scope_id"] for s in spans}
    out: dict[str, dict[str, Any]] = {}
    for s in spans:
        scope = s.attributes["swarm.scope_id"]
        assert scope not in out, f"Jaeger holds two spans of scope {scope}"
        out[scope] = {
            "name": s.name,
            "parent": scope_of.get((s.trace_id, s.parent_span_id), "<outside>") if s.parent_span_id else None,
            "attributes": s.attributes,
            "status": (s.status_code, s.status_message),
            "times": (s.start_ns, s.end_ns),
            "events": sorted(s.events, key=_event_order),
            "links": [(scope_of.get((t, sp), "<outside>"), attrs) for t, sp, attrs in s.links],
        }
    return out


def tree_of_sdk(spans: Any) -> dict[str, dict[str, Any]]:
    """The same view of finished OpenTelemetry SDK spans (e.g. ``export_run`` into memory)."""
    spans = list(spans)
    scope_of = {(s.context.trace_id, s.context.span_id): s.attributes["swarm.scope_id"] for s in spans}
    out: dict[str, dict[str, Any]] = {}
    for s in spans:
        scope = s.attributes["swarm.scope_id"]
        parent = (s.parent.trace_id, s.parent.span_id) if s.parent else None
        out[scope] = {
            "name": s.name,
            "parent": scope_of.get(parent, "<outside>") if parent else None,
            "attributes": dict(s.attributes),
            "status": (s.status.status_code.value, s.status.description or ""),
            "times": (s.start_time, s.end_time),
            "events": sorted(((e.name, e.timestamp, dict(e.attributes)) for e in s.events), key=_event_order),
            "links": [
                (scope_of.get((ln.context.trace_id, ln.context.span_id), "<outside>"), dict(ln.attributes))
                for ln in s.links
            ],
        }
    return out


def replayed(store: Any, run_id: str) -> dict[str, dict[str, Any]]:
    """The run's spans rebuilt from its event log by ``export_run``, as :func:`tree_of_sdk` data."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from swarm_observability.tracing import export_run

    exporter = InMemorySpanExporter()
    export_run(store, run_id, exporter)
    return tree_of_sdk(exporter.get_finished_spans())


def assert_same_tree(got: dict[str, dict[str, Any]], expected: dict[str, dict[str, Any]]) -> None:
    """``got == expected``, failing with the scopes and fields that differ."""
    problems = [f"missing in Jaeger: {expected[k]['name']}" for k in expected.keys() - got.keys()]
    problems += [f"not in the log's replay: {got[k]['name']}" for k in got.keys() - expected.keys()]
    for scope in got.keys() & expected.keys():
        for key, value in got[scope].items():
            if value != expected[scope].get(key):
                problems.append(
                    f"{got[scope]['name']} {key}: Jaeger {value!r} != replay {expected[scope][key]!r}"
                )
    assert not problems, "\n".join(problems[:10])
