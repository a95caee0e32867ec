"""The DuckDB projection: rebuild == incremental in any batching, a crash-safe tailer, stats == a fold."""

from __future__ import annotations

import contextlib
import operator
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from benchmarks.swarm_log import synthetic_runs
from swarm_observability.analytics import AnalyticsError, Projection, ingest, open_readonly, stats
from swarm_observability.analytics.schema import SCOPE_TYPES
from swarm_observability.events import StreamEvent
from swarm_observability.state import rebuild_run_state
from swarm_observability.stores.jsonl import JSONLEventStore
from swarm_observability.stores.memory import InMemoryEventStore
from swarm_observability.stores.sqlite import SQLiteEventStore

pytest.importorskip("duckdb", reason="the analytics extra (duckdb) is part of make's test environment")


class _S(TypedDict, total=False):
    x: Annotated[list[str], operator.add]


TABLES = ("events", "runs", "invocations", "scopes", "errors", "projection_state")
ROOT = Path(__file__).resolve().parents[2]


def _store(kind: str, folder: Path) -> Any:
    if kind == "sqlite":
        return SQLiteEventStore(folder / "events.db", durability="normal")
    if kind == "jsonl":
        return JSONLEventStore(folder / "jsonl")
    return InMemoryEventStore()


def _tables(projection: Projection) -> dict[str, list[tuple[Any, ...]]]:
    return {table: projection.query(f"SELECT * FROM {table} ORDER BY ALL")[1] for table in TABLES}


def _runs(events: int, seed: int) -> list[list[StreamEvent]]:
    return list(synthetic_runs(events, seed=seed, run_size=60))


@pytest.fixture(scope="module")
def log() -> list[list[StreamEvent]]:
    """About 2500 events in 50-odd runs (nodes, probes, agents, model and tool calls, errors, resumes)."""
    return _runs(2500, seed=11)


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_incremental_in_random_batches_equals_rebuild(
    kind: str, log: list[list[StreamEvent]], tmp_path: Path
) -> None:
    """Appends and projection steps of random sizes interleaved give exactly the rebuilt tables."""
    rng = random.Random(kind)
    store = _store(kind, tmp_path)
    pending = [list(run) for run in log]
    with Projection(store, tmp_path / "inc.duckdb") as projection:
        while any(pending):
            run = rng.choice([p for p in pending if p])
            take = rng.randint(1, 60)
            store.append_batch(run[:take])
            del run[:take]
            if rng.random() < 0.12:
                projection.step(rng.randint(1, 600))
        projection.catch_up()
        incremental = _tables(projection)
    total = Projection.rebuild(store, tmp_path / "full.duckdb")
    assert total == sum(len(run) for run in log)
    with Projection(store, tmp_path / "full.duckdb") as rebuilt:
        assert _tables(rebuilt) == incremental
        assert rebuilt.catch_up() == 0
    assert len(incremental["events"]) == total
    assert {row[2] for row in incremental["scopes"]} >= {"node", "probe", "agent", "model", "tool"}


def test_rebuild_twice_gives_identical_tables(log: list[list[StreamEvent]], tmp_path: Path) -> None:
    """Deleting the database and rebuilding reproduces every table; rebuilding over it too."""
    store = _store("sqlite", tmp_path)
    for run in log:
        store.append_batch(run)
    db = tmp_path / "a.duckdb"
    Projection.rebuild(store, db)
    with Projection(store, db) as first:
        before = _tables(first)
    db.unlink()
    Projection.rebuild(store, db)
    Projection.rebuild(store, db)
    with Projection(store, db) as second:
        assert _tables(second) == before


def test_every_source_path_rebuilds_the_same_tables(
    log: list[list[StreamEvent]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite's and JSONL's raw-JSON fast paths and the generic store-API path give identical tables,
    also when small rebuild chunks cut runs in the middle."""
    monkeypatch.setattr(ingest, "_REBUILD_CHUNK", 37)
    tables = {}
    for kind in ("sqlite", "jsonl", "memory"):
        store = _store(kind, tmp_path / kind)
        for run in log:
            store.append_batch(run)
        assert Projection.rebuild(store, tmp_path / f"{kind}.duckdb") == sum(map(len, log))
        with Projection(store, tmp_path / f"{kind}.duckdb") as projection:
            tables[kind] = _tables(projection)
    assert tables["sqlite"] == tables["jsonl"] == tables["memory"]


def test_first_catch_up_loads_a_backlog_whole_then_continues_in_batches(
    log: list[list[StreamEvent]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new tailer loads a backlog bigger than a batch in one go; later events extend it in batches,
    and the tables equal a rebuild."""
    loads: list[int] = []
    load_all = ingest.load_all
    monkeypatch.setattr(ingest, "load_all", lambda *args: loads.append(load_all(*args)) or loads[-1])
    store = _store("sqlite", tmp_path)
    for run in log:
        store.append_batch(run[: len(run) // 2])
    first = sum(len(run) // 2 for run in log)
    with Projection(store, tmp_path / "tail.duckdb", batch_size=100) as projection:
        assert projection.catch_up() == first and loads == [first]
        for run in log:
            store.append_batch(run[len(run) // 2 :])
        steps = 0
        while applied := projection.step():
            assert applied <= 100
            steps += 1
        assert steps > 1 and projection.catch_up() == 0 and loads == [first]
        tailed = _tables(projection)
    Projection.rebuild(store, tmp_path / "full.duckdb")
    with Projection(store, tmp_path / "full.duckdb") as rebuilt:
        assert _tables(rebuilt) == tailed


_CHILD = """
import sys, time
from swarm_observability.stores.sqlite import SQLiteEventStore
from swarm_observability.analytics import Projection
store = SQLiteEventStore(sys.argv[1], read_only=True)
projection = Projection(store, sys.argv[2], batch_size=int(sys.argv[3]))
print("ready", flush=True)
while projection.step():
    pass
print("done", flush=True)
time.sleep(60)
"""


def test_tailer_killed_mid_batch_resumes_without_double_counting(
    log: list[list[StreamEvent]], tmp_path: Path
) -> None:
    """SIGKILL of a tailer at random moments, restarted each time: the result equals a rebuild."""
    store = _store("sqlite", tmp_path)
    for run in log:
        store.append_batch(run)
    db = tmp_path / "tail.duckdb"
    rng = random.Random(5)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed_before_done = 0
    for _ in range(4):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(store.path), str(db), str(rng.randint(5, 30))],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.05, 0.4))
        child.send_signal(signal.SIGKILL)
        out = child.communicate()[0]
        killed_before_done += "done" not in out
    assert killed_before_done >= 1, "the tailer finished before every kill: the test did not kill mid-way"
    with Projection(store, db) as resumed:
        resumed.catch_up()
        tailed = _tables(resumed)
    Projection.rebuild(store, tmp_path / "full.duckdb")
    with Projection(store, tmp_path / "full.duckdb") as rebuilt:
        assert _tables(rebuilt) == tailed


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _fold(runs: list[list[StreamEvent]], since: Any) -> dict[str, Any]:
    """``stats`` computed directly from the events, without DuckDB."""
    kinds = {t: (kind, role) for t, kind, role in SCOPE_TYPES}
    opened: dict[tuple[str, str], StreamEvent] = {}
    closed: dict[tuple[str, str], StreamEvent] = {}
    for run in runs:
        for event in run:
            kind_role = kinds.get(event.type_name)
            if kind_role and event.scope_id:
                target = opened if kind_role[1] == "open" else closed
                target.setdefault((event.run_id, event.scope_id), event)
    groups: dict[tuple[str, str | None], list[tuple[str | None, float | None]]] = defaultdict(list)
    tokens: dict[tuple[str | None, str | None], list[int]] = defaultdict(lambda: [0, 0, 0])
    for key, start in opened.items():
        if start.timestamp < since:
            continue
        kind = kinds[start.type_name][0]
        end = closed.get(key)
        name = {"node": start.node, "probe": start.probe, "agent": start.agent}.get(kind)
        if kind == "model":
            name = start.data.get("model")
        elif kind == "tool":
            name = start.data.get("tool")
        elif kind == "plan":
            name = start.node
        outcome = None if end is None else end.data.get("outcome", "ok")
        groups[(kind, name)].append((outcome, None if end is None else end.data["duration_ms"]))
        if kind == "model" and end is not None:
            cell = tokens[(start.agent or start.node, name)]
            cell[0] += 1
            cell[1] += end.data["input_tokens"]
            cell[2] += end.data["output_tokens"]
    scopes = []
    for (kind, name), rows in sorted(groups.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        durations = [d for o, d in rows if o is not None]
        errors = sum(o == "error" for o, _ in rows)
        scopes.append(
            {
                "kind": kind,
                "name": name,
                "count": len(rows),
                "finished": len(durations),
                "errors": errors,
                "error_rate": errors / len(durations) if durations else None,
                "p50_ms": _quantile(durations, 0.5) if durations else None,
                "p95_ms": _quantile(durations, 0.95) if durations else None,
                "max_ms": max(durations) if durations else None,
            }
        )
    statuses: dict[str, int] = defaultdict(int)
    for run in runs:
        if run[0].timestamp >= since:
            statuses[rebuild_run_state(run, run[0].run_id).status.value] += 1
    return {
        "scopes": scopes,
        "tokens": {key: tuple(value) for key, value in tokens.items()},
        "runs_by_status": dict(sorted(statuses.items())),
    }


def test_stats_match_a_direct_fold_over_the_events(log: list[list[StreamEvent]], tmp_path: Path) -> None:
    """Counts, error rates, p50/p95/max, tokens per agent and model and run statuses equal a Python fold."""
    store = _store("sqlite", tmp_path)
    for run in log:
        store.append_batch(run)
    db = tmp_path / "a.duckdb"
    Projection.rebuild(store, db)
    middle = log[len(log) // 2][0].timestamp
    conn = open_readonly(db)
    try:
        for since in (None, middle):
            got = stats(conn, since)
            want = _fold(log, middle if since else log[0][0].timestamp)
            assert got["runs_by_status"] == want["runs_by_status"]
            assert len(got["scopes"]) == len(want["scopes"])
            for mine, theirs in zip(got["scopes"], want["scopes"], strict=True):
                assert mine.keys() == theirs.keys()
                for field, value in theirs.items():
                    assert mine[field] == pytest.approx(value), (mine, field)
            assert {(t["agent"], t["model"]): (t["calls"], t["input_tokens"], t["output_tokens"])
                    for t in got["tokens"]} == want["tokens"]  # fmt: skip
            in_window = [e for run in log for e in run if since is None or e.timestamp >= since]
            assert got["events"] == len(in_window)
    finally:
        conn.close()


def test_background_tailer_follows_a_live_store(tmp_path: Path) -> None:
    """``start()`` keeps the database current while events arrive (the seam ``serve`` uses)."""
    store = InMemoryEventStore()
    runs = _runs(400, seed=3)
    with Projection(store, tmp_path / "live.duckdb") as projection:
        projection.start(interval=0.02)
        for run in runs:
            store.append_batch(run)
        deadline = time.monotonic() + 20
        want = sum(len(run) for run in runs)
        while projection.query("SELECT count(*) FROM events")[1][0][0] < want:
            assert time.monotonic() < deadline, "the background tailer did not catch up"
            time.sleep(0.02)
        projection.stop()
        assert projection.stats()["events"] == want


def test_query_allows_reads_only(log: list[list[StreamEvent]], tmp_path: Path) -> None:
    """Writes, several statements and file access are refused with a clear error; reads work."""
    store = InMemoryEventStore()
    store.append_batch(log[0])
    with Projection(store, tmp_path / "q.duckdb") as projection:
        projection.catch_up()
        assert projection.query("SELECT count(*) FROM runs")[1] == [(1,)]
        for sql, message in [
            ("DELETE FROM events", "only read-only"),
            ("SELECT 1; SELECT 2", "exactly one"),
            ("SELECT * FROM read_csv('/etc/passwd')", "query failed"),
            ("SELEC 1", "invalid SQL"),
        ]:
            with pytest.raises(AnalyticsError, match=message):
                projection.query(sql)
        assert projection.query("SELECT count(*) FROM events")[1] == [(len(log[0]),)]


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    """A database written by another schema version is refused with the rebuild hint, not misread."""
    import duckdb

    db = tmp_path / "old.duckdb"
    with Projection(InMemoryEventStore(), db):
        pass
    conn = duckdb.connect(str(db))
    conn.execute("UPDATE projection_meta SET value = '0'")
    conn.close()
    with pytest.raises(AnalyticsError, match="rebuild-db"):
        Projection(InMemoryEventStore(), db)


@pytest.fixture
def no_duckdb(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make ``import duckdb`` fail as if the extra were not installed."""
    monkeypatch.setitem(sys.modules, "duckdb", None)
    yield


def test_missing_duckdb_names_the_extra(no_duckdb: None, tmp_path: Path) -> None:
    """Without DuckDB the projection raises an ImportError that says which extra to install."""
    from swarm_observability.analytics import AnalyticsUnavailableError

    with pytest.raises(AnalyticsUnavailableError, match=r"swarm-observability\[analytics\]"):
        Projection(InMemoryEventStore(), tmp_path / "x.duckdb")


def test_benchmark_smoke() -> None:
    """The analytics benchmark runs at smoke size and reports consistent figures (no timing asserted)."""
    from benchmarks import analytics, report

    result = analytics.run(smoke=True)
    assert result["events"] >= analytics.SMOKE_EVENTS and result["scopes"] > 0 and result["stats_rows"] > 0
    assert result["rebuild_events_per_s"]["n"] == 1 and result["stats_ms"]["p95"] >= 0
    from benchmarks._stats import machine_info

    section = {"meta": machine_info(), **result}
    assert "Analytics projection" in report.render({"sections": {"analytics": section}})


def test_events_table_has_a_column_for_every_event_field(tmp_path: Path) -> None:
    """Every StreamEvent field is a column of ``events`` (a new field must be added to the projection)."""
    with Projection(InMemoryEventStore(), tmp_path / "cols.duckdb") as projection:
        columns = {
            row[0]
            for row in projection.query(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = 'events'"
            )[1]
        }
    assert set(StreamEvent.model_fields) - {"timestamp"} <= columns and "ts" in columns


def test_projection_of_a_real_instrumented_run(tmp_path: Path) -> None:
    """Events of a real instrumented graph (probe, agent, custom event, a failing node) project into
    scopes, errors, invocations and runs as the run state reads them."""
    from langgraph.graph import START, StateGraph

    from swarm_observability import SwarmObserver, agent, emit_event, probe

    @emit_event("order_checked")
    def check() -> None:
        raise LookupError("stale order")

    def scan(state: _S) -> _S:
        with probe("ports", host="h"), agent("reviewer"), contextlib.suppress(LookupError):
            check()
        return {"x": ["scan"]}

    def report(state: _S) -> _S:
        raise RuntimeError("disk on fire")

    builder = StateGraph(_S)
    builder.add_node("scan", scan)
    builder.add_node("report", report)
    builder.add_edge(START, "scan")
    builder.add_edge("scan", "report")
    store = SQLiteEventStore(tmp_path / "events.db")
    observer = SwarmObserver(store=store, heartbeat_interval=None)
    graph = observer.instrument(builder.compile())
    with pytest.raises(RuntimeError):
        graph.invoke({"x": []}, {"configurable": {"thread_id": "real-1"}})
    observer.close()
    Projection.rebuild(store, tmp_path / "a.duckdb")
    with Projection(store, tmp_path / "a.duckdb") as projection:
        scopes = projection.query("SELECT kind, name, outcome FROM scopes ORDER BY start_seq")[1]
        assert scopes == [
            ("node", "scan", "ok"),
            ("probe", "ports", "ok"),
            ("agent", "reviewer", "ok"),
            ("node", "report", "error"),
        ]
        errors = projection.query("SELECT kind, name, error_type FROM errors ORDER BY seq")[1]
        assert errors == [
            ("event", "order_checked", "LookupError"),
            ("node", "report", "RuntimeError"),
            ("scan", "scan_error", "RuntimeError"),
        ]
        assert projection.query("SELECT status, errors, invocations FROM runs")[1] == [("failed", 3, 1)]
        assert rebuild_run_state(store, "real-1").status.value == "failed"
    store.close()


def test_ctrl_c_during_a_batch_stops_follow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DuckDB reports a Ctrl-C as an error, not KeyboardInterrupt: follow() must stop, not retry forever."""
    from swarm_observability.analytics import is_interrupt

    interrupted = RuntimeError("Query interrupted")  # what duckdb 2.0 raises on a SIGINT mid-statement
    assert is_interrupt(interrupted)
    assert not is_interrupt(RuntimeError("disk full")) and not is_interrupt(ValueError("Query interrupted"))
    store = SQLiteEventStore(tmp_path / "events.db", durability="normal")
    with Projection(store, tmp_path / "analytics.duckdb") as projection:

        def interrupted_batch(max_events: int | None = None) -> int:
            raise interrupted

        monkeypatch.setattr(projection, "catch_up", interrupted_batch)
        stop = threading.Event()
        threading.Timer(2.0, stop.set).start()
        with pytest.raises(KeyboardInterrupt):
            projection.follow(stop, interval=0.05)
        stop.set()
    store.close()
