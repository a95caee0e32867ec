"""The demo swarm's traces in a real Jaeger v2: live over OTLP HTTP and gRPC, backfilled, and as a JSON file.

Each test reads back what Jaeger stored through its stable ``/api/v3`` API and compares it with the span
tree ``export_run`` rebuilds from the same event log: both come from one mapping, so a user sees the
same spans (names, parents, attributes, status, events, links and nanosecond times) whichever way the
run reached Jaeger.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from demo.planted import plant_folder
from langchain_core.language_models import BaseChatModel
from langchain_core.outputs import ChatResult

from swarm_observability.cli import main
from swarm_observability.cli._format import Output
from swarm_observability.cli.demo_run import DemoOptions, run_demo
from swarm_observability.stores.sqlite import SQLiteEventStore

from .jaeger import ROOT, Jaeger, assert_same_tree, replayed, tree_of_jaeger

pytestmark = pytest.mark.jaeger

ERROR = 2  # OTLP STATUS_CODE_ERROR


class UnreachableModel(BaseChatModel):
    """A chat model whose endpoint is down: the reviewer agent fails, and with it the scan."""

    @property
    def _llm_type(self) -> str:
        return "unreachable"

    def _generate(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        raise ConnectionError("model endpoint unreachable")


def _events(db: Path, run_id: str) -> list[Any]:
    with SQLiteEventStore(db, read_only=True) as store:
        return store.load(run_id)


def _replay(db: Path, run_id: str) -> dict[str, dict[str, Any]]:
    with SQLiteEventStore(db, read_only=True) as store:
        return replayed(store, run_id)


def _cancel_when_probes_run(db: Path, run_id: str) -> threading.Thread:
    """Send ``swarm-obs cancel RUN`` once a probe has started (from a thread, while the demo runs)."""

    def wait_then_cancel() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if any(e.type_name == "probe_start" for e in _events(db, run_id)):
                    break
            except Exception:  # the demo is still creating the store
                pass
            time.sleep(0.05)
        main(["cancel", run_id, "--reason", "operator", "--store", str(db)])

    thread = threading.Thread(target=wait_then_cancel, daemon=True)
    thread.start()
    return thread


def _demo(**options: Any) -> int:
    return run_demo(DemoOptions(progress=False, **options), Output())


@pytest.mark.timeout(240)
@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_a_cancelled_then_failed_demo_reads_back_from_jaeger_as_recorded(
    jaeger: Jaeger, service: str, protocol: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Demo over OTLP: cancelled mid-probes, resumed into a failing model; Jaeger holds that exact tree."""
    planted = plant_folder(tmp_path / "src")
    db, run_id = tmp_path / "events.db", "scan-e2e"
    endpoint = jaeger.otlp_grpc if protocol == "grpc" else jaeger.otlp_http
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_SERVICE_NAME", service)
    monkeypatch.setenv("SWARM_OBS_DEMO_DELAY", "0.2")
    canceller = _cancel_when_probes_run(db, run_id)
    assert _demo(path=str(planted), store=str(db), thread=run_id, jaeger=str(tmp_path / "t.json")) == 130
    canceller.join(timeout=5)
    monkeypatch.setenv("SWARM_OBS_DEMO_DELAY", "0")
    assert _demo(resume=run_id, store=str(db), model=UnreachableModel(), jaeger=str(tmp_path / "t.json")) == 1

    events = _events(db, run_id)
    assert [e.type_name for e in events if e.type_name.startswith("scan_")] == [
        "scan_started",
        "scan_cancelled",
        "scan_resumed",
        "scan_error",
    ]
    expected = _replay(db, run_id)
    stored = jaeger.wait_for(service, len(expected))

    assert jaeger.services().count(service) == 1
    assert {s.service for s in stored} == {service}
    got = tree_of_jaeger(stored)
    assert_same_tree(
        got, expected
    )  # every span: names, parents, GenAI attributes, status, events, links, times
    assert len({s.trace_id for s in stored}) == 2  # one trace per invocation

    first, second = (e.invocation_id for e in events if e.type_name in ("scan_started", "scan_resumed"))
    assert got[first]["name"] == "invoke_workflow demo_swarm" and got[first]["parent"] is None
    assert got[first]["attributes"]["gen_ai.operation.name"] == "invoke_workflow"
    assert got[first]["attributes"]["swarm.outcome"] == "cancelled"
    assert got[second]["links"] == [(first, {"swarm.link.type": "resumes", "swarm.invocation_id": first})]
    assert got[second]["attributes"]["swarm.resumed"] is True

    by_scope = {e.scope_id: e for e in events if e.type_name == "probe_complete"}
    probes = {k: v for k, v in got.items() if v["name"].startswith("execute_tool ")}
    assert probes and all(v["attributes"]["gen_ai.operation.name"] == "execute_tool" for v in probes.values())
    for scope, span in probes.items():
        node = got[span["parent"]]
        assert node["name"] == "node probe" and got[node["parent"]]["parent"] is None
        assert span["attributes"]["gen_ai.tool.name"] == span["name"].removeprefix("execute_tool ")
        if scope in by_scope:  # ended when it really ended, at the event's nanosecond
            assert span["times"][1] == by_scope[scope].time_unix_nano
    cancel = next(e for e in events if e.type_name == "scan_cancelled")
    cut = [s for s in probes if s in by_scope and by_scope[s].invocation_id == first]
    stopped = [s for s in cut if by_scope[s].data.get("outcome") == "cancelled"]
    assert stopped, "no probe was running at the cancel; the scenario needs one"
    for scope in cut:  # one that finished before the cancel arrived is ok; the others stop at progress()
        assert got[scope]["attributes"]["swarm.outcome"] == by_scope[scope].data.get("outcome", "ok")
    for scope in stopped:
        assert by_scope[scope].data["reason"] == "operator"

    def under_first(scope: str) -> bool:
        while got[scope]["parent"]:
            scope = got[scope]["parent"]
        return scope == first

    # the cancelled invocation ends at its scan_cancelled event, or later if work in it outlived that event
    # (a parallel probe stops at its next progress()), so that no child lies outside it
    last_child_end = max(v["times"][1] for k, v in got.items() if k != first and under_first(k))
    assert got[first]["times"][1] == max(cancel.time_unix_nano, last_child_end)
    results = [e for v in probes.values() for e in v["events"] if e[0] == "probe_result"]
    assert results and all("swarm.data" in attrs for _, _, attrs in results)

    for span in got.values():  # a child never lies outside its parent
        if span["parent"]:
            parent = got[span["parent"]]["times"]
            assert parent[0] <= span["times"][0] <= span["times"][1] <= parent[1], span["name"]
    failed = {k for k, v in got.items() if v["status"][0] == ERROR}
    assert {got[k]["name"] for k in failed} >= {"invoke_agent reviewer", "node draft", "node reviewer"}
    assert second in failed and got[second]["attributes"]["error.type"] == "ConnectionError"
    with_exception = [k for k, v in got.items() if any(e[0] == "exception" for e in v["events"])]
    assert len(with_exception) == 1  # recorded once, on the innermost failing span
    assert not [k for k in failed if got[k]["parent"] == with_exception[0]]
    opened = {e.scope_id: e for e in events if e.type_name in ("node_enter", "probe_start", "agent_start")}
    closed = {
        e.scope_id: e for e in events if e.type_name in ("node_exit", "probe_complete", "agent_complete")
    }
    for scope in opened.keys() & closed.keys():  # the events' own nanoseconds, not their milliseconds
        start, end = got[scope]["times"]
        assert start == opened[scope].time_unix_nano
        if closed[scope].data.get("outcome") == "cancelled":  # it waits for work still running inside it
            assert end >= closed[scope].time_unix_nano
        else:
            assert end == closed[scope].time_unix_nano


def _crashed_run(folder: Path, db: Path, run_id: str) -> None:
    """A demo process SIGKILLed while its probes run: the log just stops."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SWARM_OBS_"))}
    env["SWARM_OBS_DEMO_DELAY"] = "0.5"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swarm_observability",
            "demo",
            str(folder),
            "--store",
            str(db),
            "--thread",
            run_id,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if sum(e.type_name == "probe_start" for e in _events(db, run_id)) >= 2:
                    break
            except Exception:
                pass
            time.sleep(0.05)
        else:
            raise AssertionError("the demo never started its probes")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


@pytest.mark.timeout(240)
def test_stored_runs_backfilled_with_swarm_obs_export_arrive_with_the_same_tree(
    jaeger: Jaeger, service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """`swarm-obs export RUN --otlp`: an untraced run (HTTP) and a SIGKILLed one (gRPC) land as recorded."""
    planted = plant_folder(tmp_path / "src")
    db = tmp_path / "events.db"
    monkeypatch.setenv("OTEL_SERVICE_NAME", service)  # recorded in the run, no tracing configured
    assert _demo(path=str(planted), store=str(db), thread="untraced", jaeger=str(tmp_path / "u.json")) == 0
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    _crashed_run(planted, db, "crashed")

    capsys.readouterr()
    sent = main(["export", "untraced", "--otlp", jaeger.otlp_http, "--store", str(db), "--json"])
    assert sent == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)["otlp"]
    expected = _replay(db, "untraced")
    assert (report["exported"], report["failed"], report["dropped"]) == (len(expected), 0, 0)
    untraced = jaeger.wait_for(service, len(expected))
    assert {s.service for s in untraced} == {service}  # the name recorded in the run, not the default
    assert_same_tree(tree_of_jaeger(untraced), expected)

    crashed_service = f"{service}-crashed"
    argv = ["export", "crashed", "--otlp", jaeger.otlp_grpc, "--protocol", "grpc"]
    assert main([*argv, "--store", str(db), "--service-name", crashed_service]) == 0
    crashed_expected = _replay(db, "crashed")
    got = tree_of_jaeger(jaeger.wait_for(crashed_service, len(crashed_expected)))
    assert_same_tree(got, crashed_expected)
    incomplete = {v["name"] for v in got.values() if v["attributes"].get("swarm.outcome") == "incomplete"}
    assert "invoke_workflow demo_swarm" in incomplete and "execute_tool secrets" in incomplete
    assert {v["attributes"].get("swarm.ended_by") for v in got.values() if v["name"] in incomplete} == {
        "end_of_log"
    }


def _sorted_tags(tags: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
    return sorted((t["key"], t["type"], t["value"]) for t in tags)


def _comparable(span: dict[str, Any]) -> dict[str, Any]:
    return {
        "traceID": span["traceID"],
        "spanID": span["spanID"],
        "operationName": span["operationName"],
        "references": span.get("references") or [],
        "startTime": span["startTime"],
        "duration": span["duration"],
        "tags": _sorted_tags(span.get("tags") or []),
        # Jaeger's query service sorts a span's events by name (its SortCollections adjuster); the file
        # keeps them in time order, which is also how the UI draws them: compare them as sets.
        "logs": sorted((log["timestamp"], _sorted_tags(log["fields"])) for log in span.get("logs") or []),
    }


@pytest.mark.timeout(240)
def test_the_jaeger_json_file_says_what_jaeger_itself_returns_for_the_trace(
    jaeger: Jaeger, service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's Jaeger JSON file vs Jaeger's own JSON (/api/traces/{id}) of the spans: ids, refs, tags."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    from swarm_observability.tracing import export_run

    planted = plant_folder(tmp_path / "src")
    db = tmp_path / "events.db"
    monkeypatch.setenv("OTEL_SERVICE_NAME", service)
    file = tmp_path / "trace.json"
    assert _demo(path=str(planted), store=str(db), thread="scan-json", jaeger=str(file)) == 0
    monkeypatch.delenv("OTEL_SERVICE_NAME")
    with SQLiteEventStore(db, read_only=True) as store:
        exported = export_run(store, "scan-json", OTLPSpanExporter(endpoint=f"{jaeger.otlp_http}/v1/traces"))
    ours = json.loads(file.read_text())["data"]
    assert [t["traceID"] for t in ours] == list(exported.trace_ids)
    jaeger.wait_for(service, exported.spans)

    for trace in ours:
        theirs = jaeger.get(f"/api/traces/{trace['traceID']}")["data"]
        assert len(theirs) == 1
        reference = theirs[0]
        mine = {s["spanID"]: _comparable(s) for s in trace["spans"]}
        jaegers = {s["spanID"]: _comparable(s) for s in reference["spans"]}
        assert mine.keys() == jaegers.keys()
        for span_id, span in mine.items():
            reference_span = jaegers[span_id]
            tag_diff = set(span["tags"]) ^ set(reference_span["tags"])
            differing = {k: (v, reference_span[k]) for k, v in span.items() if v != reference_span[k]}
            assert span == reference_span, (span["operationName"], sorted(tag_diff, key=str), differing)
        assert (
            trace["processes"]["p1"]["serviceName"] == reference["processes"]["p1"]["serviceName"] == service
        )
        assert _sorted_tags(trace["processes"]["p1"]["tags"]) == _sorted_tags(
            reference["processes"]["p1"]["tags"]
        )
