"""The DuckDB analytics projection: rebuild throughput, tailer throughput and ``stats`` latency.

A SQLite store and a JSONL store are filled with the same synthetic swarm log
(:mod:`benchmarks.swarm_log`: runs of nodes, probes, agents, model and tool calls; 1M events in a full
run) before anything is timed. Then:

* ``rebuild``: :meth:`Projection.rebuild` from scratch, repeated; events per second of wall time
  (reading the store, staging JSON, DuckDB's parse and insert, the derived tables, the final checkpoint),
  and per second of this process's CPU time (all threads: DuckDB's two and the store reader), which
  other engineers' load inflates far less than wall time: on an idle 2-core machine the wall rate
  approaches twice the CPU rate when both cores stay busy;
* ``rebuild_from_jsonl``: one rebuild from a JSONL store holding the same log (its raw-line path);
* ``tail``: the incremental tailer projecting the same log from empty in batches of 50k events
  (``step``), and ``first_catch_up``: a new tailer's ``catch_up``, which loads such a backlog whole;
* ``store_parse``: reading every event back as ``StreamEvent`` objects with ``iter_events`` (the floor
  of any projection written in Python over the store API), measured in the same run, so the ratio
  ``rebuild_vs_store_parse`` survives the shared machine's drifting speed;
* ``stats``: :func:`stats` over the whole 1M-event database on a read-only connection, repeated; p50 /
  p95 / max milliseconds.

Targets: rebuild >= 200k events/s and ``stats`` p95 < 1 s at 1M events.
"""

from __future__ import annotations

import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from ._stats import summarize

FULL_EVENTS = 1_000_000
SMOKE_EVENTS = 3_000


def _fill(folder: Path, events: int) -> tuple[Any, Any, int]:
    """The same synthetic log in a SQLite store and a JSONL store."""
    from swarm_observability.stores.jsonl import JSONLEventStore
    from swarm_observability.stores.sqlite import SQLiteEventStore

    from .swarm_log import synthetic_runs

    store = SQLiteEventStore(folder / "events.db", durability="normal")
    jsonl = JSONLEventStore(folder / "jsonl")
    total = 0
    batch: list[Any] = []
    for run in synthetic_runs(events, seed=7):
        batch += run
        if len(batch) >= 20_000:
            store.append_batch(batch)
            jsonl.append_batch(batch)
            total += len(batch)
            batch = []
    if batch:
        store.append_batch(batch)
        jsonl.append_batch(batch)
        total += len(batch)
    return store, jsonl, total


def run(smoke: bool) -> dict[str, Any]:
    """Measure; ``smoke`` uses a few thousand events and single repeats."""
    try:
        from swarm_observability.analytics import Projection, open_readonly, stats
    except ImportError as exc:  # pragma: no cover - the analytics extra is in make's environment
        return {"unavailable": {"analytics": str(exc)}}
    events = SMOKE_EVENTS if smoke else FULL_EVENTS
    repeats = 1 if smoke else 5
    folder = Path(tempfile.mkdtemp(prefix="swarm-obs-bench-analytics-"))
    try:
        t0 = time.perf_counter()
        store, jsonl, total = _fill(folder, events)
        fill_s = time.perf_counter() - t0
        db = folder / "analytics.duckdb"
        rebuild_rates, cpu_rates = [], []
        for _ in range(repeats):
            t0, cpu0 = time.perf_counter(), _cpu_s()
            Projection.rebuild(store, db)
            rebuild_rates.append(total / (time.perf_counter() - t0))
            cpu_rates.append(total / (_cpu_s() - cpu0))
        t0 = time.perf_counter()
        Projection.rebuild(jsonl, folder / "from-jsonl.duckdb")
        jsonl_rate = total / (time.perf_counter() - t0)
        jsonl.close()
        t0 = time.perf_counter()
        parsed = sum(1 for info in store.runs() for _ in store.iter_events(info.run_id))
        parse_rate = parsed / (time.perf_counter() - t0)
        with Projection(store, folder / "tail.duckdb", batch_size=50_000) as projection:
            t0 = time.perf_counter()
            tailed = 0
            while applied := projection.step():
                tailed += applied
            tail_rate = tailed / (time.perf_counter() - t0)
        with Projection(store, folder / "first.duckdb", batch_size=50_000) as projection:
            t0 = time.perf_counter()
            first_rate = projection.catch_up() / (time.perf_counter() - t0)
        conn = open_readonly(db)
        try:
            stats(conn)  # warm the buffer manager once
            times = []
            for _ in range(5 if smoke else 20):
                t0 = time.perf_counter()
                result = stats(conn)
                times.append((time.perf_counter() - t0) * 1000)
            scopes = conn.execute("SELECT count(*) FROM scopes").fetchone()[0]
        finally:
            conn.close()
        store.close()
        return {
            "events": total,
            "scopes": scopes,
            "stats_rows": len(result["scopes"]),
            "fill_s": round(fill_s, 1),
            "db_bytes": db.stat().st_size,
            "rebuild_events_per_s": summarize(rebuild_rates, 0),
            "rebuild_events_per_cpu_s": summarize(cpu_rates, 0),
            "rebuild_from_jsonl_events_per_s": round(jsonl_rate),
            "tail_events_per_s": round(tail_rate),
            "first_catch_up_events_per_s": round(first_rate),
            "store_parse_events_per_s": round(parse_rate),
            "rebuild_vs_store_parse": round(statistics.median(rebuild_rates) / parse_rate, 2),
            "stats_ms": {**summarize(times, 1), "p95": round(_p95(times), 1)},
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _p95(values: list[float]) -> float:
    from ._stats import quantile

    return quantile(sorted(values), 0.95)


if __name__ == "__main__":  # python -m benchmarks.analytics [--smoke]
    import json
    import sys

    print(json.dumps(run("--smoke" in sys.argv), indent=1))
