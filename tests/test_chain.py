"""The opt-in hash chain: every event links to the one before it; verify finds edits and deletions."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from swarm_observability.chain import ChainChecker, event_hash, genesis_hash
from swarm_observability.cli import main
from swarm_observability.emitter import EventEmitter
from swarm_observability.events import StreamEvent
from swarm_observability.instrumentation.observer import SwarmObserver
from swarm_observability.stores import InMemoryEventStore, JSONLEventStore, SQLiteEventStore


def _chained_sqlite(path: Path, run: str = "audit", count: int = 6) -> list[StreamEvent]:
    store = SQLiteEventStore(path)
    with EventEmitter(store, hash_chain=True) as emitter:
        for n in range(count):
            emitter.emit("log", run, message=f"step {n}", data={"n": n})
    events = store.load(run)
    store.close()
    return events


def _verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", *argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out + captured.err


def test_each_event_links_to_the_previous_one() -> None:
    """seq 1 carries the run's genesis hash, every later event the hash of its predecessor's JSON."""
    emitter = EventEmitter(hash_chain=True)
    events = [emitter.emit("log", "r", message=str(n)) for n in range(4)]
    assert events[0] is not None and events[0].prev_hash == genesis_hash("r")
    for before, after in itertools.pairwise(events):
        assert before is not None and after is not None
        assert after.prev_hash == event_hash(before)
    assert genesis_hash("r") != genesis_hash("s")
    assert EventEmitter().emit("log", "r").prev_hash is None, "off by default"  # type: ignore[union-attr]


def test_a_resumed_run_continues_the_chain_from_the_store(tmp_path: Path) -> None:
    """A new emitter (another process) links its first event to the stored last one."""
    events = _chained_sqlite(tmp_path / "e.db", count=3)
    store = SQLiteEventStore(tmp_path / "e.db")
    with EventEmitter(store, hash_chain=True) as emitter:
        fourth = emitter.emit("log", "audit", message="resumed")
    assert fourth is not None and fourth.prev_hash == event_hash(events[-1])
    checker = ChainChecker("audit", require=True)
    for event in store.load("audit"):
        checker.check(event)
    assert checker.problems == [] and checker.chained == 4
    store.close()


def test_a_caller_built_event_gets_a_fresh_link_or_none() -> None:
    """emit_event replaces a foreign prev_hash: chained, with ours; unchained, with nothing."""
    foreign = StreamEvent(type="log", run_id="r", prev_hash="sha256:" + "0" * 64)
    chained = EventEmitter(hash_chain=True).emit_event(foreign)
    assert chained is not None and chained.prev_hash == genesis_hash("r")
    plain = EventEmitter().emit_event(foreign)
    assert plain is not None and plain.prev_hash is None


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_an_observer_chains_a_whole_scan(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """SwarmObserver(hash_chain=True) on a real graph: verify passes and prints the chain head."""
    from langgraph.graph import START, StateGraph
    from typing_extensions import TypedDict

    class S(TypedDict, total=False):
        n: int

    builder = StateGraph(S)
    builder.add_node("a", lambda s: {"n": 1})
    builder.add_node("b", lambda s: {"n": 2})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    store: Any = SQLiteEventStore(tmp_path / "e.db") if kind == "sqlite" else JSONLEventStore(tmp_path / "j")
    observer = SwarmObserver(store, heartbeat_interval=None, hash_chain=True)
    observer.instrument(builder.compile()).invoke({}, {"configurable": {"thread_id": "chained"}})
    observer.close()
    events = store.load("chained")
    store.close()
    assert all(e.prev_hash for e in events)
    location = str(tmp_path / "e.db") if kind == "sqlite" else str(tmp_path / "j")
    code, out = _verify(capsys, "chained", "--store", location, "--require-chain")
    assert code == 0, out
    assert f"chain head: {event_hash(events[-1])}" in out


def _edit(path: Path, run: str, seq: int, change: Any) -> None:
    conn = sqlite3.connect(path)
    (data,) = conn.execute(
        "SELECT data FROM swarm_events WHERE run_id = ? AND seq = ?", (run, seq)
    ).fetchone()
    conn.execute("UPDATE swarm_events SET data = ? WHERE run_id = ? AND seq = ?", (change(data), run, seq))
    conn.commit()
    conn.close()


def test_verify_detects_an_edited_event(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Changing one stored byte of seq 3 breaks the link of seq 4: exit 1 naming seq 4."""
    db = tmp_path / "e.db"
    _chained_sqlite(db)
    assert _verify(capsys, "audit", "--store", str(db))[0] == 0
    _edit(db, "audit", 3, lambda data: data.replace(b"step 2", b"step X"))
    code, out = _verify(capsys, "audit", "--store", str(db))
    assert code == 1
    assert "hash chain broken at seq 4" in out
    assert out.count("hash chain broken") == 1


def test_verify_detects_a_deleted_and_renumbered_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deleting seq 3 and renumbering the rest keeps seqs gapless, but the chain breaks at the new seq 3."""
    db = tmp_path / "e.db"
    _chained_sqlite(db)
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM swarm_events WHERE run_id = 'audit' AND seq = 3")
    rows = conn.execute(
        "SELECT seq, data FROM swarm_events WHERE run_id = 'audit' AND seq > 3 ORDER BY seq"
    ).fetchall()
    for seq, data in rows:
        new = data.replace(b'"seq":%d' % seq, b'"seq":%d' % (seq - 1))
        conn.execute(
            "UPDATE swarm_events SET seq = ?, data = ? WHERE run_id = 'audit' AND seq = ?",
            (seq - 1, new, seq),
        )
    conn.execute("UPDATE swarm_runs SET last_seq = last_seq - 1")
    conn.commit()
    conn.close()
    code, out = _verify(capsys, "audit", "--store", str(db))
    assert code == 1
    assert "hash chain broken at seq 3" in out


def test_verify_detects_a_stripped_link_and_require_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A chained run with one link removed fails; an unchained run fails only with --require-chain."""
    db = tmp_path / "e.db"
    _chained_sqlite(db)
    _edit(db, "audit", 5, lambda data: data.split(b',"prev_hash"')[0] + b"}")
    code, out = _verify(capsys, "audit", "--store", str(db))
    assert code == 1 and "seq 5 carries no prev_hash" in out
    plain = SQLiteEventStore(tmp_path / "plain.db")
    with EventEmitter(plain) as emitter:
        emitter.emit("log", "p")
    plain.close()
    assert _verify(capsys, "p", "--store", str(tmp_path / "plain.db"))[0] == 0
    code, out = _verify(capsys, "p", "--store", str(tmp_path / "plain.db"), "--require-chain")
    assert code == 1 and "--require-chain" in out


def test_the_chain_survives_a_copy_into_another_backend() -> None:
    """Links are over canonical JSON: the same events appended to another store check the same."""
    emitter = EventEmitter(hash_chain=True)
    for n in range(3):
        emitter.emit("log", "r", data={"f": n / 3, "nested": {"k": [n, None]}}, message="ü")
    copy = InMemoryEventStore()
    copy.append_batch([StreamEvent.from_json(e.to_json_bytes()) for e in emitter.store.load("r")])
    checker = ChainChecker("r", require=True)
    for event in copy.load("r"):
        checker.check(event)
    assert checker.problems == []
