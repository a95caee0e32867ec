"""SIGKILL chaos: a writer killed at random moments never loses or mangles an acknowledged event.

A fork server (``_chaos_child.py``) starts one worker per "life"; the worker opens the store (running
recovery), appends random batches (1-20 events, several runs, payloads from 0 B to ~300 KB) and
acknowledges each returned ``append_batch`` on a pipe. This test SIGKILLs the worker after a random
delay, reopens the store and checks, independently of the store's own checks:

* every run is gapless from seq 1 and ``load`` works;
* every acknowledged event is present at its seq with byte-identical JSON;
* every stored batch is complete (all-or-nothing);
* the file is sound: JSONL ends on a line boundary and every line parses, SQLite passes ``integrity_check``;
  PostgreSQL's tables agree with each other (checked with plain SQL).

PostgreSQL (marker ``postgres``) runs the same lives on a schema of its own, and kills the worker's
*connection* too: at a random moment of each life the parent calls ``pg_terminate_backend`` on it, then
SIGKILLs the worker as usual. The store must reconnect and carry on without losing or doubling a batch.

The store is reused across lives (each worker continues it) and replaced every 5 kills to bound its size.
30 kills per backend by default, 300 with ``SWARM_OBS_SLOW=1``; ``SWARM_OBS_CHAOS_SEED`` replays a seed.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from swarm_observability.events import EventType, make_event
from swarm_observability.stores import EventStore, JSONLEventStore, PostgresEventStore, SQLiteEventStore
from tests._postgres import fresh_schema, server_url, with_query

from ._chaos_child import RUNS, digest

SLOW = os.environ.get("SWARM_OBS_SLOW") == "1"
KILLS = 300 if SLOW else 30
LIVES_PER_STORE = 5
MAX_DELAY_S = 0.15
CHILD = Path(__file__).with_name("_chaos_child.py")
ROOT = Path(__file__).resolve().parents[2]
CHAOS_APP = "swarm_obs_chaos"
BACKENDS = ["sqlite", "jsonl", pytest.param("postgres", marks=pytest.mark.postgres)]


class ForkServer:
    """The child process: send it a life, get back the worker pid, its acknowledgements and its death."""

    def __init__(self, backend: str, pg_url: str | None = None) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.pg_url = pg_url
        self.terminated = 0
        if pg_url is not None:
            env["CHAOS_PG_URL"] = with_query(pg_url, application_name=f"{CHAOS_APP}_{os.getpid()}")
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), backend],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def next_line(self) -> str:
        try:
            line = self.lines.get(timeout=30)
        except queue.Empty:
            raise AssertionError("chaos child sent nothing for 30 s") from None
        if line is None:
            assert self.proc.stderr is not None
            raise AssertionError(f"chaos child exited: {self.proc.stderr.read().decode()[-2000:]}")
        return line.decode()

    def life(self, life: int, location: Path | str, delay: float, cut: float | None = None) -> list[dict]:
        """Run one worker on ``location``, SIGKILL it after ``delay`` seconds; return its acknowledgements.

        With ``cut`` (PostgreSQL), the worker's server connections are terminated after ``cut`` seconds.
        """
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"life {life} {location}\n".encode())
        self.proc.stdin.flush()
        acks: list[dict] = []
        while not (line := self.next_line()).startswith("pid "):
            acks.append(_ack(line))  # the worker may run before the fork server reports its pid
        if cut is not None and cut < delay:
            threading.Event().wait(cut)
            self.terminated += self._terminate_connections()
            delay -= cut
        threading.Event().wait(delay)
        with contextlib.suppress(ProcessLookupError):  # died by itself: _ack reports its error line
            os.kill(int(line.split()[1]), signal.SIGKILL)
        while not (line := self.next_line()).startswith("dead "):
            acks.append(_ack(line))
        status = int(line.split()[2])
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, line
        if self.pg_url is not None:
            self._wait_for_sessions_to_end()
        return acks

    def _wait_for_sessions_to_end(self) -> None:
        """PostgreSQL finishes a statement its dead client sent (an append may commit after the kill):
        verify only once the worker's server sessions are gone, so every read sees the final log."""
        import psycopg

        assert self.pg_url is not None
        deadline = time.monotonic() + 30
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            while conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (f"{CHAOS_APP}_{os.getpid()}",),
            ).fetchone()[0]:
                assert time.monotonic() < deadline, "the killed worker's sessions did not end in 30 s"
                time.sleep(0.01)

    def _terminate_connections(self) -> int:
        import psycopg

        assert self.pg_url is not None
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                (f"{CHAOS_APP}_{os.getpid()}",),
            ).fetchall()
        return sum(1 for (done,) in rows if done)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()


def _ack(line: str) -> dict:
    if line.startswith("error "):
        raise AssertionError("chaos worker failed:\n" + json.loads(line[6:]))
    return json.loads(line)


def _check_file(backend: str, location: Path | str, pg_url: str | None = None) -> str | None:
    """What is wrong with the store's file at the byte level, judged without the store's code."""
    if backend == "postgres":
        return _check_tables(str(location), pg_url)
    if backend == "jsonl":
        data = (location / "events.jsonl").read_bytes()
        if data and not data.endswith(b"\n"):
            return "events.jsonl does not end on a line boundary"
        for number, line in enumerate(data.splitlines(), 1):
            try:
                json.loads(line)
            except ValueError:
                return f"events.jsonl line {number} is not JSON"
        return None
    with sqlite3.connect(location) as conn:
        result = conn.execute("PRAGMA integrity_check").fetchall()
    conn.close()
    return None if result == [("ok",)] else f"integrity_check: {result}"


def _check_tables(schema: str, pg_url: str | None) -> str | None:
    """PostgreSQL: every run's rows are seq 1..n, match ``swarm_runs``, and each row's JSON names its row."""
    import psycopg

    assert pg_url is not None
    with psycopg.connect(pg_url, autocommit=True) as conn:
        bad = conn.execute(
            f'SELECT e.run_id, count(*), max(e.seq), r.last_seq FROM "{schema}".swarm_events e '
            f'LEFT JOIN "{schema}".swarm_runs r USING (run_id) GROUP BY e.run_id, r.last_seq '
            "HAVING count(*) <> max(e.seq) OR r.last_seq IS DISTINCT FROM max(e.seq)"
        ).fetchall()
        mismatched = conn.execute(
            f'SELECT run_id, seq FROM "{schema}".swarm_events '
            "WHERE data::json->>'run_id' <> run_id OR (data::json->>'seq')::bigint <> seq "
            "OR data::json->>'id' <> id LIMIT 5"
        ).fetchall()
    if bad:
        return f"runs whose rows are not seq 1..n or disagree with swarm_runs: {bad}"
    return f"rows whose JSON names another run/seq/id: {mismatched}" if mismatched else None


def _open_store(backend: str, location: Path | str, pg_url: str | None) -> EventStore:
    if backend == "postgres":
        assert pg_url is not None
        return PostgresEventStore(pg_url, schema=str(location))
    return SQLiteEventStore(location) if backend == "sqlite" else JSONLEventStore(location)


def _verify(
    backend: str, location: Path | str, acked: dict[str, tuple[str, int, str]], pg_url: str | None = None
) -> list[str]:
    """Reopen the store (recovery) and list every violated property."""
    problems = []
    store = _open_store(backend, location, pg_url)
    try:
        stored: dict[str, tuple[str, int, str]] = {}
        batches: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for run in RUNS:
            events = store.load(run)
            if [e.seq for e in events] != list(range(1, len(events) + 1)):
                problems.append(f"run {run} is not gapless from 1: {[e.seq for e in events][:20]}...")
            if store.last_sequence(run) != len(events):
                problems.append(
                    f"run {run}: last_sequence {store.last_sequence(run)} != {len(events)} loaded"
                )
            for event in events:
                stored[event.id] = (run, event.seq or 0, digest(event.to_json_bytes()))
                batches[event.data["batch"]].append((event.data["index"], event.data["count"]))
    finally:
        store.close()
    for event_id, where in acked.items():
        if stored.get(event_id) != where:
            problems.append(f"acknowledged event {event_id} {where} stored as {stored.get(event_id)}")
    for batch_id, members in batches.items():
        count = members[0][1]
        if sorted(members) != [(index, count) for index in range(count)]:
            problems.append(f"batch {batch_id} is partial: {sorted(members)} of {count}")
    damage = _check_file(backend, location, pg_url)
    if damage:
        problems.append(damage)
    return problems


@pytest.mark.timeout(600 if SLOW else 180)
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkill_never_loses_or_corrupts_acknowledged_events(backend: str, tmp_path: Path) -> None:
    """After every SIGKILL the reopened store holds each acked event, byte-identical, in whole batches."""
    if backend == "postgres":
        with fresh_schema(server_url()) as schema:
            _chaos(backend, tmp_path, server_url(), schema)
    else:
        _chaos(backend, tmp_path)


def _chaos(backend: str, tmp_path: Path, pg_url: str | None = None, schema: str = "") -> None:
    seed = int(os.environ.get("SWARM_OBS_CHAOS_SEED") or random.randrange(2**32))
    rng = random.Random(seed)
    server = ForkServer(backend, pg_url)
    acked: dict[str, tuple[str, int, str]] = {}
    total_acks = 0
    location: Path | str = tmp_path
    try:
        for life in range(KILLS):
            if life % LIVES_PER_STORE == 0:
                if pg_url is not None:
                    _drop_schema(pg_url, f"{schema}_{life - LIVES_PER_STORE}")
                    location = f"{schema}_{life}"
                else:
                    shutil.rmtree(tmp_path / f"store-{life - LIVES_PER_STORE}", ignore_errors=True)
                    location = tmp_path / f"store-{life}" / ("events.db" if backend == "sqlite" else "")
                acked = {}
            # A PostgreSQL worker needs a connection and a schema check before its first append: give it
            # longer, so that most lives reach appends even on a loaded machine.
            delay = rng.uniform(0.0, MAX_DELAY_S) if pg_url is None else rng.uniform(0.1, 1.0)
            cut = rng.uniform(0.0, delay) if pg_url is not None else None
            for ack in server.life(life, location, delay, cut):
                total_acks += 1
                for run, seq, event_id, content in ack["e"]:
                    acked[event_id] = (run, seq, content)
            problems = _verify(backend, location, acked, pg_url)
            assert not problems, f"seed={seed} life={life}: " + "; ".join(problems[:5])
    finally:
        server.close()
        if pg_url is not None:
            for life in range(0, KILLS, LIVES_PER_STORE):
                _drop_schema(pg_url, f"{schema}_{life}")
    assert total_acks > 0, f"seed={seed}: no batch was ever acknowledged, the test proved nothing"
    if pg_url is not None:
        assert server.terminated > 0, f"seed={seed}: no connection was ever terminated, the test proved less"


def _drop_schema(pg_url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.parametrize("backend", ["sqlite", "jsonl"])
def test_verifier_detects_lost_events_and_partial_batches(backend: str, tmp_path: Path) -> None:
    """The chaos verifier is not blind: a lost acknowledged event and a partial batch are both reported."""
    location = tmp_path / ("events.db" if backend == "sqlite" else "j")
    store = SQLiteEventStore(location) if backend == "sqlite" else JSONLEventStore(location)
    data = [{"batch": "0-0", "count": 3, "index": i} for i in range(2)]
    events = [make_event(EventType.PROBE_RESULT, RUNS[0], seq=i + 1, data=data[i]) for i in range(2)]
    store.append_batch(events)
    store.close()
    acked = {e.id: (RUNS[0], e.seq or 0, digest(e.to_json_bytes())) for e in events}
    assert _verify(backend, location, acked) == ["batch 0-0 is partial: [(0, 3), (1, 3)] of 3"]
    acked["never-stored"] = (RUNS[1], 1, "0" * 16)
    acked[events[0].id] = (RUNS[0], 1, "f" * 16)
    problems = _verify(backend, location, acked)
    assert len(problems) == 3
    assert any("never-stored" in p for p in problems) and any(events[0].id in p for p in problems)
