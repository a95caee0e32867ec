"""``swarm-obs`` read commands on a recorded store: human output, ``--json``, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from swarm_observability.stores.sqlite import SQLiteEventStore


def _one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def test_runs_lists_status_graph_and_event_count(cli: Any, recorded: Path) -> None:
    """`runs` shows each scan's status; --json gives the same facts as data."""
    human = cli("runs", "--store", str(recorded))
    assert human.code == 0
    assert "good-1" in human.out and "completed" in human.out and "failed" in human.out
    data = cli("--store", str(recorded), "runs", "--json").json()
    by_id = {run["run_id"]: run for run in data["runs"]}
    assert by_id["good-1"]["status"] == "completed" and by_id["good-1"]["graph"] == "demo_swarm"
    assert by_id["bad-1"]["status"] == "failed" and by_id["bad-1"]["errors"] == 2
    with SQLiteEventStore(recorded, read_only=True) as store:
        assert by_id["good-1"]["events"] == store.last_sequence("good-1")


def test_show_renders_the_scope_tree(cli: Any, recorded: Path) -> None:
    """`show` nests probes and the reviewer agent under their nodes, with outcomes."""
    human = cli("show", "good-1", "--store", str(recorded))
    assert human.code == 0
    assert "probe secrets  ok" in human.out and "agent reviewer  ok" in human.out
    tree = cli("show", "good", "--store", str(recorded), "--json").json()
    (invocation,) = tree["invocations"]
    assert invocation["outcome"] == "ok"
    kinds = {child["name"]: [g["kind"] for g in child["children"]] for child in invocation["children"]}
    assert kinds["planner"] == ["plan"] and kinds["probe"] == ["probe"]
    reviewer = next(c for c in invocation["children"] if c["name"] == "reviewer")
    draft = next(c for c in reviewer["children"] if c["name"] == "draft")
    assert [a["name"] for a in draft["children"]] == ["reviewer"]
    failed = cli("show", "bad-1", "--store", str(recorded))
    assert "RuntimeError: disk on fire" in failed.out


def test_tail_prints_the_last_events_and_json_lines(cli: Any, recorded: Path) -> None:
    """`tail -n N` prints the last N events; --json prints every event as one JSON line."""
    human = cli("tail", "good-1", "-n", "3", "--store", str(recorded))
    assert human.code == 0
    assert len(human.out.strip().splitlines()) == 3
    assert "scan_complete" in human.out.splitlines()[-1]
    lines = cli("tail", "good-1", "-n", "0", "--json", "--store", str(recorded)).json_lines()
    with SQLiteEventStore(recorded, read_only=True) as store:
        assert [line["id"] for line in lines] == [e.id for e in store.load("good-1")]


def test_state_reports_the_folded_run_state(cli: Any, recorded: Path) -> None:
    """`state --json` is the RunState of the log; the human view names status and probes."""
    state = cli("state", "good-1", "--json", "--store", str(recorded)).json()
    assert state["status"] == "completed" and state["invocations"] == 1
    assert state["probes"]["secrets"]["outcomes"] == {"ok": 1}
    human = cli("state", "bad-1", "--store", str(recorded))
    assert "run bad-1: failed" in human.out and "RuntimeError" in human.out


def test_verify_and_rebuild_state_pass_on_a_healthy_store(cli: Any, recorded: Path) -> None:
    """A healthy store verifies with exit 0, and the rebuilt state matches the paged fold."""
    result = cli("verify", "--all", "--json", "--store", str(recorded))
    assert result.code == 0
    report = result.json()
    assert report["ok"] and {r["run_id"] for r in report["runs"]} == {"good-1", "bad-1"}
    rebuilt = cli("rebuild-state", "good-1", "--json", "--store", str(recorded))
    assert rebuilt.code == 0 and rebuilt.json()["ok"] and rebuilt.json()["state"]["status"] == "completed"


def test_schema_prints_the_event_json_schema(cli: Any) -> None:
    """`schema` prints the draft 2020-12 schema of a StreamEvent."""
    schema = cli("schema").json()
    assert schema["$schema"].endswith("2020-12/schema") and "run_id" in schema["properties"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "nope"], "unknown run 'nope'"),
        (["state", "zzz", "--json"], "unknown run 'zzz'"),
        (["tail", "good-1", "--lines", "many"], "expected a whole number, got 'many'"),
        (["export", "good-1"], "give at least one of"),
        (["verify"], "give one RUN or --all"),
        (["bogus"], "invalid choice"),
        (["show", "-"], "unknown run '-'"),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_2(
    cli: Any, recorded: Path, argv: list[str], message: str
) -> None:
    """Unknown runs and bad arguments give exit 2 and one clear stderr line, no traceback."""
    result = cli(*argv, "--store", str(recorded)) if argv != ["bogus"] else cli(*argv)
    assert result.code == 2
    assert message in _one_line(result.err)
    assert "Traceback" not in result.err


def test_ambiguous_prefix_and_missing_store(cli: Any, recorded: Path, tmp_path: Path) -> None:
    """A prefix matching two runs is refused; a store that does not exist is exit 2, not created."""
    store = SQLiteEventStore(tmp_path / "two.db")
    with SQLiteEventStore(recorded, read_only=True) as source:
        for run in ("good-1", "bad-1"):
            store.append_batch([e.model_copy(update={"run_id": f"x-{run}"}) for e in source.load(run)])
    store.close()
    result = cli("show", "x-", "--store", str(tmp_path / "two.db"))
    assert result.code == 2 and "ambiguous" in _one_line(result.err)
    missing = tmp_path / "absent" / "events.db"
    result = cli("runs", "--store", str(missing))
    assert result.code == 2 and "no event store" in _one_line(result.err)
    assert not missing.exists()


def test_store_comes_from_the_environment(cli: Any, recorded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$SWARM_OBS_STORE selects the store when --store is not given."""
    monkeypatch.setenv("SWARM_OBS_STORE", f"sqlite:///{recorded}")
    assert {r["run_id"] for r in cli("runs", "--json").json()["runs"]} == {"good-1", "bad-1"}


def test_export_writes_jaeger_json_and_json_lines(cli: Any, recorded: Path, tmp_path: Path) -> None:
    """`export` writes a Jaeger upload file and one event per line, to a file or stdout."""
    jaeger, lines = tmp_path / "out" / "trace.json", tmp_path / "events.jsonl"
    result = cli(
        "export", "good-1", "--jaeger", str(jaeger), "--jsonl", str(lines), "--json", "--store", str(recorded)
    )
    assert result.code == 0
    info = result.json()
    document = json.loads(jaeger.read_text())
    (trace,) = document["data"]
    assert len(trace["spans"]) == info["jaeger"]["spans"] > 0
    assert any(s["operationName"].startswith("invoke_agent") for s in trace["spans"])
    with SQLiteEventStore(recorded, read_only=True) as store:
        stored = [e.to_json() for e in store.load("good-1")]
    assert lines.read_text().splitlines() == stored
    to_stdout = cli("export", "good-1", "--jsonl", "-", "--store", str(recorded))
    assert to_stdout.out.splitlines() == stored


@pytest.mark.timeout(60)
def test_export_over_otlp_reaches_a_collector(cli: Any, recorded: Path) -> None:
    """`export --otlp` sends the run's spans to an OTLP/HTTP receiver."""
    from tracing.otlp_sink import OtlpSink

    with OtlpSink() as sink:
        result = cli("export", "bad-1", "--otlp", sink.http_endpoint, "--json", "--store", str(recorded))
        assert result.code == 0, result.err
        spans = sink.wait_for(result.json()["otlp"]["spans"])
    assert {s.name for s in spans} >= {"invoke_workflow flaky", "execute_tool check"}
    assert {s.service_name for s in spans} == {"swarm-observability"}
