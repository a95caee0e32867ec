"""`verify` on damaged logs; `cancel|pause|resume|drain` requests; `resume --graph` from a checkpoint."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from swarm_observability.control import ControlChannel
from swarm_observability.stores.jsonl import JSONLEventStore
from swarm_observability.stores.sqlite import SQLiteEventStore

from .conftest import run_flaky


def _copy_run(
    source_db: Path, target: Any, run_id: str, new_id: str, *, keep: Any = None, batches: int = 1
) -> None:
    with SQLiteEventStore(source_db, read_only=True) as source:
        events = [e for e in source.load(run_id) if keep is None or keep(e)]
    events = [e.model_copy(update={"run_id": new_id, "seq": i}) for i, e in enumerate(events, start=1)]
    size = -(-len(events) // batches)
    for start in range(0, len(events), size):
        target.append_batch(events[start : start + size])


def test_verify_refuses_a_jsonl_log_with_a_flipped_byte(cli: Any, recorded: Path, tmp_path: Path) -> None:
    """A byte flipped in the middle of events.jsonl makes verify fail with exit 1, naming the damage."""
    folder = tmp_path / "jsonl"
    store = JSONLEventStore(folder)
    _copy_run(recorded, store, "good-1", "good-1", batches=5)
    store.close()
    assert cli("verify", "--all", "--store", f"jsonl:///{folder}").code == 0
    path = folder / "events.jsonl"
    raw = bytearray(path.read_bytes())
    middle = raw.index(b'"type":"probe_result"', len(raw) // 3)
    raw[middle + 9] ^= 0x01
    path.write_bytes(bytes(raw))
    result = cli("verify", "--all", "--json", "--store", f"jsonl:///{folder}")
    assert result.code == 1
    report = result.json()
    assert not report["ok"] and "events.jsonl" in report["runs"][0]["errors"][0]


def test_verify_reports_a_gap_in_a_sqlite_log(cli: Any, recorded: Path, tmp_path: Path) -> None:
    """An event deleted behind the store's back is a gap: verify exits 1 and says where."""
    db = tmp_path / "gap.db"
    with SQLiteEventStore(db) as store:
        _copy_run(recorded, store, "good-1", "run-gap")
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM swarm_events WHERE run_id = 'run-gap' AND seq = 7")
    result = cli("verify", "run-gap", "--store", str(db))
    assert result.code == 1
    assert "run-gap: PROBLEMS" in result.out and "seq 7 is missing" in result.out
    listed = cli("runs", "--json", "--store", str(db))
    assert listed.code == 1
    assert [(r["run_id"], r["status"]) for r in listed.json()["runs"]] == [("run-gap", "damaged")]


def test_verify_reports_a_closing_event_without_its_opening(cli: Any, recorded: Path, tmp_path: Path) -> None:
    """A gapless log whose node_exit has no node_enter is inconsistent: exit 1."""
    db = tmp_path / "scopes.db"
    with SQLiteEventStore(db) as store:
        first_enter: list[str] = []

        def keep(event: Any) -> bool:
            if event.type_name == "node_enter" and not first_enter:
                first_enter.append(event.id)
                return False
            return True

        _copy_run(recorded, store, "good-1", "run-scopes", keep=keep)
    result = cli("verify", "run-scopes", "--json", "--store", str(db))
    assert result.code == 1
    (report,) = result.json()["runs"]
    assert any("closes a scope that was never opened" in error for error in report["errors"])


def test_control_requests_go_through_the_store_channel(cli: Any, recorded: Path, tmp_path: Path) -> None:
    """pause/resume/drain/cancel of a running run are queued in the store's control table."""
    db = tmp_path / "live.db"
    with SQLiteEventStore(db) as store:
        _copy_run(recorded, store, "good-1", "live-1", keep=lambda e: (e.seq or 0) <= 10)
    for action in ("pause", "resume", "drain", "cancel"):
        result = cli(action, "live", "--reason", f"test {action}", "--json", "--store", str(db))
        assert result.code == 0, result.err
        assert result.json()["action"] == action
    channel = ControlChannel(db)
    try:
        pending = channel.pending("live-1")
    finally:
        channel.close()
    assert [(r.action.value, r.reason) for r in pending] == [
        ("pause", "test pause"),
        ("resume", "test resume"),
        ("drain", "test drain"),
        ("cancel", "test cancel"),
    ]


def test_control_of_a_finished_or_unknown_run_is_refused(cli: Any, recorded: Path) -> None:
    """A finished run is refused with exit 1 (unless --force), an unknown one with exit 2."""
    refused = cli("cancel", "good-1", "--store", str(recorded))
    assert refused.code == 1 and "not running (status completed)" in refused.err
    assert cli("cancel", "nobody", "--store", str(recorded)).code == 2
    forced = cli("cancel", "good-1", "--force", "--json", "--store", str(recorded))
    assert forced.code == 0
    channel = ControlChannel(recorded)
    try:
        assert [r.action.value for r in channel.pending("good-1")] == ["cancel"]
        assert channel.claim(forced.json()["request_id"])
    finally:
        channel.close()


def test_resume_with_graph_continues_a_failed_thread(cli: Any, tmp_path: Path) -> None:
    """`resume THREAD --graph` continues from the checkpoint: one log, two invocations, no re-run."""
    db, checkpoints = tmp_path / "events.db", tmp_path / "checkpoints.db"
    run_flaky(db, checkpoints, "flaky-1")
    resume = (
        "resume",
        "flaky-1",
        "--graph",
        "cli._graphs:build",
        "--store",
        str(db),
        "--checkpoints",
        str(checkpoints),
    )
    result = cli(*resume)
    assert result.code == 0, result.err
    assert "run flaky-1: completed" in result.out
    with SQLiteEventStore(db, read_only=True) as store:
        events = store.load("flaky-1")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    starts = [e for e in events if e.type_name in ("scan_started", "scan_resumed")]
    assert [e.type_name for e in starts] == ["scan_started", "scan_resumed"]
    assert starts[1].data["previous_invocation_id"] == starts[0].invocation_id
    assert [e.node for e in events if e.type_name == "node_enter"] == ["first", "second", "second"]
    assert cli("verify", "flaky-1", "--store", str(db)).code == 0
    again = cli(*resume)
    assert again.code == 0 and "already complete" in again.out, again.err
    with SQLiteEventStore(db, read_only=True) as store:
        assert store.last_sequence("flaky-1") == len(events)


def test_resume_with_graph_refuses_unknown_threads_and_bad_references(cli: Any, recorded: Path) -> None:
    """An unknown thread or a reference that is not a graph is exit 2 with one line."""
    unknown = cli(
        "resume",
        "never-ran",
        "--graph",
        "cli._graphs:build",
        "--store",
        str(recorded),
        "--checkpoints",
        str(recorded.parent / "checkpoints.db"),
    )
    assert unknown.code == 2 and "no checkpoint" in unknown.err
    bad = cli("resume", "bad-1", "--graph", "cli._graphs:nothing", "--store", str(recorded))
    assert bad.code == 2 and "has no attribute" in bad.err
    not_graph = cli("resume", "bad-1", "--graph", "cli._graphs:FAIL", "--store", str(recorded))
    assert not_graph.code == 2 and "not a LangGraph graph" in not_graph.err
