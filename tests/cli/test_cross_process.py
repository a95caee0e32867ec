"""`swarm-obs` across processes: cancel a demo running elsewhere, follow its events with `tail -f`."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from swarm_observability.events import make_event
from swarm_observability.exceptions import EventStoreError
from swarm_observability.stores.sqlite import SQLiteEventStore


def _swarm_obs(*argv: str) -> list[str]:
    return [sys.executable, "-m", "swarm_observability", *argv]


def _start_demo(folder: Path, db: Path, thread: str, delay: float) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_OBS_", "OTEL_"))}
    env["SWARM_OBS_DEMO_DELAY"] = str(delay)
    return subprocess.Popen(
        _swarm_obs("demo", str(folder), "--store", str(db), "--thread", thread, "--no-progress"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=folder.parent,
        env=env,
    )


def _wait_for(db: Path, run_id: str, event_type: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with SQLiteEventStore(db, read_only=True) as store:
                if any(e.type_name == event_type for e in store.load(run_id)):
                    return
        except EventStoreError:  # not created yet, or its writer is creating the tables right now
            pass
        time.sleep(0.05)
    raise AssertionError(f"no {event_type} in run {run_id} after {timeout} s")


def _stop_outside_a_write(process: subprocess.Popen[str], db: Path, tries: int = 200) -> None:
    """SIGSTOP ``process`` at a moment it holds no write lock on ``db`` (stopped inside a write, it would
    keep every other writer out, the control channel's too, until SIGCONT)."""
    for _ in range(tries):
        process.send_signal(signal.SIGSTOP)
        probe = sqlite3.connect(db, timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return
        except sqlite3.OperationalError:  # "database is locked": stopped mid-write
            process.send_signal(signal.SIGCONT)
            time.sleep(0.01)
        finally:
            probe.close()
    raise AssertionError(f"the demo held a write lock on {db} at each of {tries} stops")


def _finish(process: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    try:
        return process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


STOPS = [
    # how the scan is stopped, reason sent, reason recorded, exit code, terminal event, status line
    ("cancel-command", "operator", "operator", 130, "scan_cancelled", "cancelled (operator)"),
    ("ctrl-c", None, "interrupted (Ctrl-C)", 130, "scan_cancelled", "cancelled (interrupted (Ctrl-C))"),
    ("drain-command", "maintenance", "drain", 0, "scan_paused", "paused (drain)"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("how", "sent", "reason", "code", "terminal", "status"), STOPS)
def test_scan_stopped_from_outside_is_resumed_to_completion(
    cli: Any,
    planted: Path,
    tmp_path: Path,
    how: str,
    sent: Any,
    reason: str,
    code: int,
    terminal: str,
    status: str,
) -> None:
    """`swarm-obs cancel|drain RUN` from another process, or Ctrl-C, stops a demo; --resume completes it."""
    db = tmp_path / "events.db"
    demo = _start_demo(planted, db, "xp-stop", delay=0.2)
    try:
        _wait_for(db, "xp-stop", "probe_start", timeout=60)
        if how == "ctrl-c":
            demo.send_signal(signal.SIGINT)
        else:
            action = how.split("-")[0]
            _stop_outside_a_write(demo, db)  # the scan cannot finish while the command starts up
            try:
                request = subprocess.run(
                    _swarm_obs(action, "xp-stop", "--reason", sent, "--store", str(db)),
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
            finally:
                demo.send_signal(signal.SIGCONT)
            assert request.returncode == 0, request.stderr
    finally:
        out, err = _finish(demo, timeout=60)
    assert demo.returncode == code, err
    assert f"status:       {status}" in out
    assert "resume:       swarm-obs demo --resume xp-stop" in out
    resumed = cli("demo", "--resume", "xp-stop", "--store", str(db), "--no-progress")
    assert resumed.code == 0, resumed.err
    with SQLiteEventStore(db, read_only=True) as store:
        events = store.load("xp-stop")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    stopped = next(e for e in events if e.type_name == terminal)
    assert stopped.data["reason"] == reason
    lifecycle = [e.type_name for e in events if e.type_name.startswith("scan_")]
    assert lifecycle == ["scan_started", terminal, "scan_resumed", "scan_complete"]


@pytest.mark.timeout(120)
def test_tail_follow_prints_a_scan_running_in_another_process(
    cli: Any, planted: Path, tmp_path: Path
) -> None:
    """`tail --follow` waits for the run, prints its events as they arrive and stops when it ends."""
    db = tmp_path / "events.db"
    demo = _start_demo(planted, db, "xp-tail", delay=0.05)
    try:
        followed = cli(
            "tail",
            "xp-tail",
            "--follow",
            "--json",
            "-n",
            "0",
            "--interval",
            "0.05",
            "--timeout",
            "90",
            "--store",
            str(db),
        )
    finally:
        _finish(demo, timeout=60)
    assert followed.code == 0, followed.err
    assert demo.returncode == 0
    lines = followed.json_lines()
    with SQLiteEventStore(db, read_only=True) as store:
        stored = store.load("xp-tail")
    assert [line["id"] for line in lines] == [e.id for e in stored]
    assert lines[-1]["type"] == "scan_complete"


@pytest.mark.timeout(60)
def test_tail_follow_waits_while_the_writer_is_still_creating_the_database(cli: Any, tmp_path: Path) -> None:
    """A database file without our tables yet (its writer is creating it) is waited for, not called bad."""
    db = tmp_path / "events.db"
    sqlite3.connect(db).close()

    def write_later() -> None:
        time.sleep(0.5)
        with SQLiteEventStore(db) as store:
            events = [
                make_event(kind, "late-run", seq=seq)
                for seq, kind in enumerate(("scan_started", "scan_complete"), 1)
            ]
            store.append_batch(events)

    writer = threading.Thread(target=write_later)
    writer.start()
    try:
        followed = cli(
            "tail",
            "late-run",
            "--follow",
            "--json",
            "--interval",
            "0.05",
            "--timeout",
            "30",
            "--store",
            str(db),
        )
    finally:
        writer.join()
    assert followed.code == 0, followed.err
    assert [line["type"] for line in followed.json_lines()] == ["scan_started", "scan_complete"]
