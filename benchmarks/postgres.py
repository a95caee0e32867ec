"""PostgreSQL: the event store beside the other backends, concurrent writers, cancel and live-tail latency.

Needs a server: ``$SWARM_OBS_BENCH_PG_URL``, else ``$SWARM_OBS_TEST_PG_URL`` (``make bench-postgres`` starts a
throwaway cluster on loopback). Without one the section reports itself unavailable. Every measurement runs in
a fresh schema, dropped afterwards.

* Append rate, one event per call, batches of 100 and of 1000 (events built first; the rate includes
  serialization, the round trips and the commit, fsynced by the server's default ``synchronous_commit=on``),
  with the CPU each event costs the client process and the server (all its processes; a server on this
  host only): on a shared machine CPU per event says what a faster or quieter one could reach.
* Reads on a 100k-event run plus a 20k-event second run: ``load``, ``load_since`` (last 100),
  ``last_sequence``; and peak RSS growth of a fresh process streaming a 300k-event run with ``iter_events``.
* 1, 2, 4 and 8 writer *processes*, each appending batches of 100 to its own run at once, the counts
  taking turns for 3 rounds (medians): aggregate rate and the ratio to one writer (the issue's goal:
  linear to 4 writers), CPU per event (writers, server) and WAL flushes per batch (``pg_stat_wal``; below
  1 when commits share a flush). Once with the stores' default ``notify=True`` and once with
  ``notify=False``, to show what the ``NOTIFY`` costs.
* Control and tail latency: from ``PostgresControlChannel.request`` returning in one connection to the
  scan's manager being cancelled by a ``ControlWatcher`` on another (LISTEN/NOTIFY), and from an
  ``append`` call (its round trips and commit included) to ``wait_for_append`` waking in a tail.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ._stats import repeat, summarize
from .stores import make_events, stream_report

ENV = ("SWARM_OBS_BENCH_PG_URL", "SWARM_OBS_TEST_PG_URL")


def server_url() -> str | None:
    """The benchmark server's URL, or ``None``."""
    return next((os.environ[name] for name in ENV if os.environ.get(name)), None)


class _Schema:
    """A fresh schema for one measurement; dropped on exit."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = f"bench_{uuid.uuid4().hex[:12]}"

    def store(self, **options: Any) -> Any:
        from swarm_observability.stores import PostgresEventStore

        return PostgresEventStore(self.url, schema=self.name, **options)

    def __enter__(self) -> _Schema:
        return self

    def __exit__(self, *exc: object) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


class _ServerCpu:
    """CPU seconds used so far by the server's processes, when it runs on this host (else ``None``).

    The postmaster is the parent of our backend; its own time plus its reaped children's (``cutime``,
    ``cstime``: backends that exited) plus its live children's counts every server process.
    """

    def __init__(self, url: str) -> None:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            try:
                self.postmaster: int | None = int(self._stat(backend)[1])
            except (OSError, IndexError, ValueError):
                self.postmaster = None

    @staticmethod
    def _stat(pid: int | str) -> list[str]:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    def __call__(self) -> float | None:
        if self.postmaster is None:
            return None
        ticks = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                fields = self._stat(pid)
            except OSError:
                continue
            if int(pid) == self.postmaster:
                ticks += sum(int(f) for f in fields[11:15])
            elif fields[1] == str(self.postmaster):
                ticks += int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")


def _per_event_us(seconds: list[float | None], events: int) -> dict[str, Any] | None:
    if any(s is None for s in seconds):
        return None
    return summarize([s * 1e6 / events for s in seconds if s is not None], 1)


def _rate(url: str, events: list[Any], batch: int, repeats: int) -> dict[str, Any]:
    rates, client, server = [], [], []
    server_cpu = _ServerCpu(url)
    for _ in range(repeats):
        with _Schema(url) as schema:
            store = schema.store()
            try:
                s0, c0, t0 = server_cpu(), time.process_time(), time.perf_counter()
                if batch == 1:
                    for event in events:
                        store.append(event)
                else:
                    for i in range(0, len(events), batch):
                        store.append_batch(events[i : i + batch])
                elapsed, s1 = time.perf_counter() - t0, server_cpu()
                client.append(time.process_time() - c0)
                server.append(None if s0 is None or s1 is None else s1 - s0)
                assert store.last_sequence(events[0].run_id) == len(events)
            finally:
                store.close()
        rates.append(len(events) / elapsed)
    return {
        "events": len(events),
        "batch": batch,
        "events_per_s": summarize(rates, 0),
        "client_cpu_us_per_event": _per_event_us(client, len(events)),
        "server_cpu_us_per_event": _per_event_us(server, len(events)),
    }


def _reads(url: str, size: int, other: int, repeats: int) -> dict[str, Any]:
    with _Schema(url) as schema:
        store = schema.store()
        try:
            for rid, count in (("target", size), ("other", other)):
                for start in range(0, count, 1000):
                    store.append_batch(make_events(rid, min(1000, count - start), start + 1))
            load = repeat(lambda: store.load("target"), repeats)
            since = repeat(lambda: store.load_since("target", size - 100), 50)
            last = repeat(lambda: store.last_sequence("target"), 500)
        finally:
            store.close()
    return {
        "run_events": size,
        "other_run_events": other,
        "load_s": summarize(load, 4),
        "load_since_last100_ms": summarize([s * 1e3 for s in since], 3),
        "last_sequence_us": summarize([s * 1e6 for s in last], 1),
    }


def _stream(url: str, total: int) -> dict[str, Any]:
    """Write ``total`` events here, stream them in a fresh process that reports its memory."""
    with _Schema(url) as schema:
        store = schema.store()
        try:
            t0 = time.perf_counter()
            for start in range(0, total, 2000):
                store.append_batch(make_events("stream", min(2000, total - start), start + 1))
            write_s = time.perf_counter() - t0
        finally:
            store.close()
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.postgres", "stream", url, schema.name],
            cwd=Path(__file__).resolve().parent.parent,
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    if out["events"] != total:
        raise AssertionError(f"streamed {out['events']} of {total}")
    out["events_per_s"] = round(total / out["seconds"])
    out["write_s_batches_of_2000"] = round(write_s, 2)
    return out


def _writer(url: str, schema: str, run_id: str, count: int, notify: bool, start: Any, done: Any) -> None:
    from swarm_observability.stores import PostgresEventStore

    events = make_events(run_id, count)
    store = PostgresEventStore(url, schema=schema, pool_size=1, notify=notify)
    store.last_sequence(run_id)  # connected before the start line
    start.wait()
    c0 = time.process_time()
    for i in range(0, count, 100):
        store.append_batch(events[i : i + 100])
    done.put((time.perf_counter(), time.process_time() - c0))
    store.close()


def _wal_flushes(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return int(conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()[0])


def _writers(url: str, n: int, per_writer: int, notify: bool, server_cpu: _ServerCpu) -> dict[str, Any]:
    ctx = multiprocessing.get_context("fork")
    with _Schema(url) as schema:
        schema.store().close()
        start, done = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(target=_writer, args=(url, schema.name, f"w{i}", per_writer, notify, start, done))
            for i in range(n)
        ]
        for p in procs:
            p.start()
        time.sleep(1.0 + 0.2 * n)  # every writer has built its events and connected
        flushes, s0, t0 = _wal_flushes(url), server_cpu(), time.perf_counter()
        start.set()
        ends = [done.get(timeout=600) for _ in procs]
        s1 = server_cpu()
        for p in procs:
            p.join()
        time.sleep(0.5)  # the writers' backends have exited and reported their WAL statistics
        flushes = _wal_flushes(url) - flushes
    events = n * per_writer
    return {
        "events_per_s": round(events / (max(end for end, _ in ends) - t0)),
        "client_cpu_us_per_event": round(sum(cpu for _, cpu in ends) * 1e6 / events, 1),
        "server_cpu_us_per_event": None if s0 is None or s1 is None else round((s1 - s0) * 1e6 / events, 1),
        "wal_flushes_per_batch": round(flushes / (events / 100), 2),
    }


def _concurrent(url: str, per_writer: int, writers: tuple[int, ...], repeats: int) -> dict[str, Any]:
    """Aggregate append rate of N processes on N runs (batches of 100), and the ratio to one writer.

    The writer counts take turns, ``repeats`` rounds, and each figure is the median of its rounds: on a
    shared machine the load drifts, and interleaving spreads the drift over every count alike.
    Top-level keys: the stores' default (``notify=True``); under ``notify_off``: the same without NOTIFY.
    """
    server_cpu = _ServerCpu(url)
    out: dict[str, Any] = {"events_per_writer": per_writer, "batch": 100, "rounds": repeats}
    for notify, into in ((True, out), (False, out.setdefault("notify_off", {}))):
        rounds = [[_writers(url, n, per_writer, notify, server_cpu) for n in writers] for _ in range(repeats)]
        for k, n in enumerate(writers):
            for key in rounds[0][k]:
                values = [r[k][key] for r in rounds if r[k][key] is not None]
                into[f"{n}_writers_{key}"] = statistics.median(values) if values else None
        base = into[f"{writers[0]}_writers_events_per_s"]
        for n in writers:
            into[f"{n}_writers_vs_1"] = round(into[f"{n}_writers_events_per_s"] / base, 2)
    return out


def _latency(url: str, samples: int) -> dict[str, Any]:
    """Cancel request -> manager cancelled (watcher on LISTEN), and append call -> tail woken."""
    from swarm_observability.control import (
        ControlWatcher,
        PostgresControlChannel,
        get_manager,
        remove_manager,
    )
    from swarm_observability.events import EventType, make_event

    cancel, wake = [], []
    with _Schema(url) as schema:
        dsn = f"{url}{'&' if '?' in url else '?'}schema={schema.name}"
        listener, writer = PostgresControlChannel(dsn), PostgresControlChannel(dsn)
        try:
            for i in range(samples):
                scan = f"lat-{i}"
                remove_manager(scan)
                manager = get_manager(scan)
                with ControlWatcher(listener, [manager], interval=0.2):
                    time.sleep(0.3)  # listening, idle
                    t0 = time.perf_counter()
                    writer.request(scan, "cancel")
                    while not manager.is_cancelled:
                        time.sleep(0.0005)
                    cancel.append(time.perf_counter() - t0)
                remove_manager(scan)
        finally:
            listener.close()
            writer.close()
        tail, store = schema.store(), schema.store()
        try:
            tail.wait_for_append(0)
            for i in range(samples):
                stamp: list[float] = []

                def append(seq: int = i + 1, stamp: list[float] = stamp) -> None:
                    stamp.append(time.perf_counter())
                    store.append(make_event(EventType.LOG, "t", seq=seq))

                timer = threading.Timer(0.05, append)
                timer.start()
                woke = tail.wait_for_append(10.0)
                t1 = time.perf_counter()
                timer.join()
                if woke and stamp:
                    wake.append(t1 - stamp[0])
        finally:
            tail.close()
            store.close()
    return {
        "cancel_request_to_manager_ms": summarize([s * 1e3 for s in cancel], 2),
        "append_call_to_tail_wake_ms": summarize([s * 1e3 for s in wake], 2),
    }


def run(smoke: bool = False) -> dict[str, Any]:
    """Every PostgreSQL figure, or ``{"unavailable": reason}`` without a server."""
    url = server_url()
    if url is None:
        return {"unavailable": "no PostgreSQL: set SWARM_OBS_BENCH_PG_URL (or run `make bench-postgres`)"}
    try:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            sync_commit = conn.execute("SHOW synchronous_commit").fetchone()[0]
    except Exception as exc:  # a benchmark section reports, never crashes the run
        return {"unavailable": f"PostgreSQL at {url} does not answer: {exc}"}
    single, batched, read_n, other_n, stream_n, per_writer, repeats, samples = (
        (200, 1_000, 1_000, 200, 2_000, 500, 1, 3)
        if smoke
        else (2_000, 30_000, 100_000, 20_000, 300_000, 10_000, 3, 20)
    )
    pool = make_events("append", max(single, batched))
    result: dict[str, Any] = {
        "server": {"version": version, "synchronous_commit": sync_commit, "host": "loopback"},
        "append": {
            "one_at_a_time": _rate(url, pool[:single], 1, repeats),
            "batches_of_100": _rate(url, pool[:batched], 100, repeats),
            "batches_of_1000": _rate(url, pool[:batched], 1000, repeats),
        },
    }
    del pool
    result["reads"] = _reads(url, read_n, other_n, repeats)
    result["stream"] = _stream(url, stream_n)
    result["concurrent_writers"] = _concurrent(url, per_writer, (1, 2, 4, 8), repeats)
    result["latency"] = _latency(url, samples)
    return result


def _stream_child(url: str, schema: str) -> None:
    def open_store() -> Any:
        from swarm_observability.stores import PostgresEventStore

        return PostgresEventStore(url, schema=schema, read_only=True)

    stream_report(open_store)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "stream":
        _stream_child(sys.argv[2], sys.argv[3])
    else:
        print(json.dumps(run(smoke="--smoke" in sys.argv), indent=1))
