"""`swarm-obs demo` in-process: summary, trace file, bad input, cancel + resume, pause-after."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from swarm_observability.stores.sqlite import SQLiteEventStore


def _events(db: Path, run_id: str) -> list[Any]:
    with SQLiteEventStore(db, read_only=True) as store:
        return store.load(run_id)


@pytest.mark.timeout(60)
def test_demo_prints_findings_and_writes_the_jaeger_file(cli: Any, planted: Path, tmp_path: Path) -> None:
    """A scan ends with the findings, the review, the reviewer's model calls and tokens, and a trace file."""
    db = tmp_path / "data" / "events.db"
    result = cli("demo", str(planted), "--store", str(db), "--thread", "scan-a", "--no-progress")
    assert result.code == 0, result.err
    assert "Findings per probe" in result.out and "Verdict: fail" in result.out
    assert "status:       completed" in result.out
    assert "swarm-obs show scan-a" in result.out
    table = {
        line.split()[0]: line.split()[-1]
        for line in result.out.splitlines()
        if line.startswith(("secrets", "syntax"))
    }
    assert table == {"secrets": "2", "syntax": "1"}
    trace = json.loads((tmp_path / "data" / "traces" / "scan-a.json").read_text())
    names = {span["operationName"] for span in trace["data"][0]["spans"]}
    assert {"invoke_workflow demo_swarm", "execute_tool secrets", "invoke_agent reviewer"} <= names
    assert "chat offline-reviewer" in names
    events = _events(db, "scan-a")
    assert events[-1].type_name == "scan_complete"
    (end,) = [e for e in events if e.type_name == "llm_end"]
    assert end.agent == "reviewer" and end.data["input_tokens"] > 0
    line = f"model calls:  agent reviewer: 1 call(s), {end.data['input_tokens']} input / "
    assert line + f"{end.data['output_tokens']} output tokens" in result.out


def test_demo_prints_progress_lines_when_not_a_terminal(cli: Any, planted: Path, tmp_path: Path) -> None:
    """Without a terminal the live view degrades to one line per finished scope."""
    result = cli("demo", str(planted), "--store", str(tmp_path / "e.db"), "--thread", "scan-p")
    assert result.code == 0
    assert "scan scan-p started (graph demo_swarm)" in result.out
    assert "ok        probe secrets" in result.out and "scan complete in" in result.out


def test_demo_uses_the_chat_model_given_with_model(cli: Any, planted: Path, tmp_path: Path) -> None:
    """--model MODULE:ATTR puts any LangChain chat model (or a factory of one) behind the reviewer."""
    result = cli(
        "demo",
        str(planted),
        "--store",
        str(tmp_path / "e.db"),
        "--model",
        "cli._graphs:review_model",
        "--no-progress",
    )
    assert result.code == 0, result.err
    assert "Verdict: reviewed by the model given with --model" in result.out
    assert "verdict: fail" in result.out


@pytest.mark.timeout(60)
def test_demo_exports_over_otlp_when_the_endpoint_is_set(
    cli: Any, planted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With OTEL_EXPORTER_OTLP_ENDPOINT set, the scan's spans reach the collector while it runs."""
    from tracing.otlp_sink import OtlpSink

    with OtlpSink() as sink:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", sink.http_endpoint)
        result = cli(
            "demo", str(planted), "--store", str(tmp_path / "e.db"), "--thread", "scan-o", "--no-progress"
        )
        assert result.code == 0, result.err
        exported = int(result.out.split("otlp:")[1].split()[0])
        spans = sink.wait_for(exported)
    assert exported > 0 and "0 failed, 0 dropped" in result.out
    names = {s.name for s in spans}
    assert {"invoke_workflow demo_swarm", "execute_tool secrets", "invoke_agent reviewer"} <= names
    assert {s.attributes.get("gen_ai.conversation.id") for s in spans} == {"scan-o"}


def test_demo_on_a_missing_folder_exits_2(cli: Any, tmp_path: Path) -> None:
    """A folder that does not exist is one clear line and exit 2; nothing is recorded."""
    result = cli("demo", str(tmp_path / "nope"), "--store", str(tmp_path / "e.db"))
    assert result.code == 2
    assert result.err.strip() == f"swarm-obs: demo: cannot scan {tmp_path / 'nope'}: no such folder"
    assert not (tmp_path / "e.db").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--resume", "ghost"], "unknown thread 'ghost'"),
        (["src", "--resume", "x"], "not both"),
        (["--thread", "../escape"], "invalid run id"),
        (["--pause-after", "0"], "at least 1"),
    ],
)
def test_demo_bad_arguments_exit_2(cli: Any, tmp_path: Path, argv: list[str], message: str) -> None:
    """Unknown threads and contradictory or unsafe options are refused with exit 2."""
    (tmp_path / "src").mkdir()
    result = cli(
        "demo", *[str(tmp_path / a) if a == "src" else a for a in argv], "--store", str(tmp_path / "e.db")
    )
    assert result.code == 2
    assert message in result.err


@pytest.mark.timeout(60)
def test_cancel_then_resume_completes_with_one_gapless_log(cli: Any, planted: Path, tmp_path: Path) -> None:
    """A cancel waiting in the channel stops the scan (exit 130); --resume finishes it in the same log."""
    db = tmp_path / "events.db"
    SQLiteEventStore(db).close()
    assert cli("cancel", "scan-c", "--force", "--store", str(db)).code == 0
    cancelled = cli("demo", str(planted), "--store", str(db), "--thread", "scan-c", "--no-progress")
    assert cancelled.code == 130
    assert "status:       cancelled" in cancelled.out
    assert f"swarm-obs demo --resume scan-c --store {db}" in cancelled.out
    resumed = cli("demo", "--resume", "scan-c", "--store", str(db), "--no-progress")
    assert resumed.code == 0, resumed.err
    assert "status:       completed" in resumed.out
    events = _events(db, "scan-c")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    lifecycle = [e.type_name for e in events if e.type_name.startswith("scan_")]
    assert lifecycle == ["scan_started", "scan_cancelled", "scan_resumed", "scan_complete"]
    assert cli("verify", "scan-c", "--store", str(db)).code == 0
    assert cli("demo", "--resume", "scan-c", "--store", str(db), "--no-progress").out.startswith(
        "scan scan-c is already complete"
    )


@pytest.mark.timeout(60)
def test_pause_after_pauses_and_resumes_the_scan(
    cli: Any, planted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--pause-after 1 pauses at the next safe point once a probe is done, then resumes and completes."""
    monkeypatch.setenv("SWARM_OBS_DEMO_DELAY", "0.05")
    db = tmp_path / "events.db"
    result = cli(
        "demo",
        str(planted),
        "--store",
        str(db),
        "--thread",
        "scan-z",
        "--pause-after",
        "1",
        "--pause-seconds",
        "0.3",
    )
    assert result.code == 0, result.err
    assert "pausing after 1 probe(s) for 0.3 s" in result.out and "resuming after 0.3 s" in result.out
    events = _events(db, "scan-z")
    lifecycle = [(e.type_name, e.data.get("reason")) for e in events if e.type_name.startswith("scan_")]
    assert lifecycle[0][0] == "scan_started" and lifecycle[-1][0] == "scan_complete"
    assert ("scan_paused", "pause") in lifecycle and ("scan_resumed", "pause") in lifecycle
    assert len({e.invocation_id for e in events}) == 1
