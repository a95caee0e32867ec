"""Scale-out on one PostgreSQL: 4 worker processes share a queue, the event log, checkpoints and control.

Scans (a ``FOR UPDATE SKIP LOCKED`` queue table, ``_worker.py``): ``a-long`` (300 steps, cancelled from the
CLI while it runs), ``b-victim`` (30 steps; its worker is SIGKILLed mid-scan and another worker resumes it
from the PostgreSQL checkpoint) and six short ones. The test then checks, from the database alone:

* every run's log is gapless (seq 1..n) and ``swarm-obs verify --all`` is clean;
* the victim ran in two processes: ``scan_started`` by the killed worker, ``scan_resumed`` by another,
  ``scan_complete`` at the end, and its final checkpoint holds each of its 30 steps exactly once;
* ``swarm-obs cancel a-long`` stopped the worker running it (and only that scan): its log ends with
  ``scan_cancelled`` long before its 300 steps, and every other scan completed;
* the queue ends with every scan ``done`` except the cancelled one.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from swarm_observability import get_checkpointer
from swarm_observability.stores import PostgresEventStore

from ._worker import QUEUE_SQL

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("_worker.py")
WORKERS = 4
SCANS = {"a-long": (300, 0.1), "b-victim": (30, 0.1), **{f"c-short-{i}": (4, 0.05) for i in range(6)}}
KILL_AT_STEP = 8
CANCEL_AT_STEP = 5


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


class Workers:
    """The worker processes; their stdout lines arrive on one queue as ``(index, words)``."""

    def __init__(self, url: str, count: int) -> None:
        self.lines: queue.Queue[tuple[int, list[str]]] = queue.Queue()
        self.seen: list[tuple[int, list[str]]] = []
        self.procs = [
            subprocess.Popen(
                [sys.executable, str(WORKER), url, f"w{i}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=_env(),
                cwd=ROOT,
            )
            for i in range(count)
        ]
        for i, proc in enumerate(self.procs):
            threading.Thread(target=self._read, args=(i, proc), daemon=True).start()

    def _read(self, index: int, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.put((index, line.decode().split()))

    def until(self, predicate: Any, what: str, timeout: float = 120) -> tuple[int, list[str]]:
        """The next line matching ``predicate`` (every line read is kept in ``seen``)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                item = self.lines.get(timeout=min(max(left, 0.01), 1.0))
            except queue.Empty:
                if left <= 0 or all(proc.poll() is not None for proc in self.procs):
                    raise AssertionError(f"no worker reported {what}: {self.stderr()}") from None
                continue
            self.seen.append(item)
            if predicate(*item):
                return item

    def drain(self) -> None:
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return

    def stderr(self) -> str:
        parts = []
        for i, proc in enumerate(self.procs):
            if proc.poll() is not None and proc.stderr is not None:
                parts.append(f"w{i} ({proc.returncode}): {proc.stderr.read().decode()[-1500:]}")
        return "\n".join(parts)

    def wait(self, timeout: float) -> list[int]:
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout=timeout))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(proc.wait())
        return codes

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "swarm_observability", *args, "--store", url],
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )


def test_four_workers_share_queue_log_checkpoints_and_control(pg_database_url: str) -> None:
    """A SIGKILLed worker's scan is resumed by another from its checkpoint; a CLI cancel stops its worker."""
    url = pg_database_url
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(QUEUE_SQL)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO scan_queue (scan_id, steps, step_s) VALUES (%s, %s, %s)",
                [(scan, steps, step_s) for scan, (steps, step_s) in SCANS.items()],
            )
    PostgresEventStore(url).close()  # the schema exists before anyone opens it read-only
    workers = Workers(url, WORKERS)
    try:
        victim_worker, _ = workers.until(
            lambda i, w: w[:2] == ["step", "b-victim"] and int(w[3]) >= KILL_AT_STEP, "victim progress"
        )
        killed_pid = workers.procs[victim_worker].pid
        os.kill(killed_pid, signal.SIGKILL)

        long_worker, _ = workers.until(
            lambda i, w: w[:2] == ["step", "a-long"] and int(w[3]) >= CANCEL_AT_STEP, "long scan progress"
        )
        assert long_worker != victim_worker
        cancel = _cli(url, "cancel", "a-long", "--reason", "operator")
        assert cancel.returncode == 0, cancel.stderr.decode()
        cancelled_by, _ = workers.until(lambda i, w: w[:2] == ["cancelled", "a-long"], "the cancel")
        assert cancelled_by == long_worker

        codes = workers.wait(timeout=180)
        workers.drain()
    finally:
        workers.close()
    assert codes[victim_worker] == -signal.SIGKILL
    assert [c for i, c in enumerate(codes) if i != victim_worker] == [0] * (WORKERS - 1), workers.stderr()

    claims = [(i, w[1], w[3]) for i, w in workers.seen if w[0] == "claimed"]
    victim_claims = [(i, how) for i, scan, how in claims if scan == "b-victim"]
    assert victim_claims[0] == (victim_worker, "start")
    assert (
        len(victim_claims) == 2 and victim_claims[1][0] != victim_worker and victim_claims[1][1] == "resume"
    )

    with psycopg.connect(url) as conn:
        statuses = dict(conn.execute("SELECT scan_id, status FROM scan_queue").fetchall())
    assert statuses == {scan: "cancelled" if scan == "a-long" else "done" for scan in SCANS}

    store = PostgresEventStore(url, read_only=True)
    try:
        for scan in SCANS:
            events = store.load(scan)
            assert [e.seq for e in events] == list(range(1, len(events) + 1)), scan
        victim = [e.type_name for e in store.load("b-victim")]
        assert victim[0] == "scan_started" and victim[-1] == "scan_complete"
        assert victim.count("scan_started") == 1 and victim.count("scan_resumed") == 1
        long_run = [e.type_name for e in store.load("a-long")]
        assert long_run[-1] == "scan_cancelled"
        cancelled = store.load("a-long")[-1]
        assert "operator" in str(cancelled.data.get("reason") or cancelled.message)
        for scan in (s for s in SCANS if s.startswith("c-")):
            assert store.load(scan)[-1].type_name == "scan_complete", scan
    finally:
        store.close()

    with get_checkpointer(path=url) as saver:
        final = saver.get_tuple({"configurable": {"thread_id": "b-victim"}})
        assert final is not None
        assert final.checkpoint["channel_values"]["done"] == list(range(1, SCANS["b-victim"][0] + 1))
        stopped = saver.get_tuple({"configurable": {"thread_id": "a-long"}})
        assert stopped is not None and len(stopped.checkpoint["channel_values"]["done"]) < SCANS["a-long"][0]

    verify = _cli(url, "verify", "--all")
    assert verify.returncode == 0, verify.stdout.decode() + verify.stderr.decode()
