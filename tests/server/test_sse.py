"""The live streams over a real socket, against a uvicorn server started here, with writers elsewhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from demo.planted import plant_folder

from swarm_observability.emitter import EventEmitter
from swarm_observability.exceptions import EventStoreError
from swarm_observability.server.live import iter_sse
from swarm_observability.server.runner import BackgroundServer
from swarm_observability.stores import SQLiteEventStore

from .conftest import record_run

CHILD = Path(__file__).with_name("_sse_client_child.py")


def _demo(folder: Path, db: Path, thread: str, delay: float) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_OBS_", "OTEL_"))}
    env["SWARM_OBS_DEMO_DELAY"] = str(delay)
    argv = [sys.executable, "-m", "swarm_observability", "demo", str(folder), "--store", str(db)]
    return subprocess.Popen(
        [*argv, "--thread", thread, "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _open_when_started(db: Path, run: str, timeout: float = 60) -> SQLiteEventStore:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            store = SQLiteEventStore(db, read_only=True)
        except EventStoreError:
            time.sleep(0.05)
            continue
        if store.last_sequence(run):
            return store
        store.close()
        time.sleep(0.05)
    raise AssertionError(f"run {run} did not start within {timeout} s")


def _lines(path: Path) -> list[tuple[str, dict[str, Any]]]:
    if not path.exists():
        return []
    complete = path.read_text(encoding="utf-8").split("\n")[:-1]
    return [(line.split("\t", 1)[0], json.loads(line.split("\t", 1)[1])) for line in complete]


def _read(url: str, headers: dict[str, str], until: Any, timeout: float = 60) -> list[dict[str, str]]:
    got: list[dict[str, str]] = []
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for message in iter_sse(response.iter_lines()):
            got.append(message)
            if until(message):
                break
    return got


def test_killed_client_resumes_with_last_event_id_exactly_once_in_order(tmp_path: Path) -> None:
    """A scan in another process; a client SIGKILLed mid-stream resumes: union == the log, once, in order."""
    folder = plant_folder(tmp_path / "src")
    db = tmp_path / "events.db"
    demo = _demo(folder, db, "sse-1", delay=0.3)
    store = _open_when_started(db, "sse-1")
    try:
        with BackgroundServer(store, heartbeat=0.5) as server:
            url = f"{server.url}/api/runs/sse-1/stream"
            first_file = tmp_path / "first.txt"
            client = subprocess.Popen([sys.executable, str(CHILD), url, str(first_file)])
            deadline = time.monotonic() + 60
            while len(_lines(first_file)) < 20 and time.monotonic() < deadline:
                time.sleep(0.02)
            client.send_signal(signal.SIGKILL)
            client.wait(timeout=10)
            first = _lines(first_file)
            assert len(first) >= 20, "the first client got too little before it was killed"
            assert demo.poll() is None, "the scan should still be running when the client is killed"
            last_id = first[-1][0]
            rest = _read(
                url, {"Last-Event-ID": last_id}, lambda m: json.loads(m["data"])["type"] == "scan_complete"
            )
            health = httpx.get(f"{server.url}/api/health").json()
        assert demo.wait(timeout=120) == 0, demo.stderr.read() if demo.stderr else ""
        log = [event.to_dict() for event in store.load("sse-1")]
    finally:
        if demo.poll() is None:
            demo.kill()
        store.close()
    received = [data for _, data in first] + [json.loads(m["data"]) for m in rest]
    ids = [int(i) for i, _ in first] + [int(m["id"]) for m in rest]
    assert ids == [event["seq"] for event in received]
    assert received == log, "the union of both connections must be the run's log exactly once, in order"
    assert health["streams"]["clients"] >= 0


def test_stream_follows_appends_from_another_process_with_heartbeats(db: Path) -> None:
    """A run stream sends the backlog, then live events as another process appends, and heartbeats."""
    reader = SQLiteEventStore(db, read_only=True)
    try:
        with BackgroundServer(reader, heartbeat=0.2) as server:
            url = f"{server.url}/api/runs/live-1/stream"
            raw: list[str] = []
            with httpx.stream("GET", url, timeout=30) as response:
                lines = response.iter_lines()
                for line in lines:
                    raw.append(line)
                    if line.startswith(": heartbeat"):
                        break
                writer = subprocess.run(
                    [sys.executable, "-c", _APPEND_ONE, str(db)], capture_output=True, text=True, timeout=60
                )
                assert writer.returncode == 0, writer.stderr
                for message in iter_sse(lines):
                    event = json.loads(message["data"])
                    if event["type"] == "scan_complete":
                        break
            ids = [int(line[4:]) for line in raw if line.startswith("id: ")]
        assert ids == list(range(1, 7)) and message["id"] == "7"
    finally:
        reader.close()


_APPEND_ONE = """
import sys
from swarm_observability.emitter import EventEmitter
from swarm_observability.stores import SQLiteEventStore
store = SQLiteEventStore(sys.argv[1])
with EventEmitter(store) as emitter:
    emitter.emit("scan_complete", "live-1", scope_id="live-1-inv", data={"outcome": "ok"})
store.close()
"""


def test_all_events_stream_resumes_and_reports_gaps_of_slow_clients(db: Path) -> None:
    """/api/events/stream: every run's new events; Last-Event-ID resumes; one past the ring gets a gap."""
    reader = SQLiteEventStore(db, read_only=True)
    writer = SQLiteEventStore(db)
    try:
        with BackgroundServer(reader, heartbeat=0.2, ring_size=20) as server:
            url = f"{server.url}/api/events/stream"
            got: list[dict[str, str]] = []
            ready = threading.Event()

            def listen() -> None:
                with httpx.stream("GET", url, timeout=30) as response:
                    lines = response.iter_lines()
                    ready.set()
                    for message in iter_sse(lines):
                        got.append(message)
                        if len(got) == 5:
                            return

            listener = threading.Thread(target=listen)
            listener.start()
            ready.wait(10)
            time.sleep(0.3)
            record_run(writer, "new-1", probes=1)
            listener.join(30)
            assert [json.loads(m["data"])["seq"] for m in got] == [1, 2, 3, 4, 5]
            assert {json.loads(m["data"])["run_id"] for m in got} == {"new-1"}
            resumed = _read(url, {"Last-Event-ID": got[2]["id"]}, lambda m: json.loads(m["data"])["seq"] == 7)
            assert [json.loads(m["data"])["seq"] for m in resumed] == [4, 5, 6, 7]
            record_run(writer, "new-2", probes=6)
            behind = _read(url, {"Last-Event-ID": got[-1]["id"]}, lambda m: True)
            assert behind[0]["event"] == "gap" and json.loads(behind[0]["data"])["missed"] == 39 - 20 - 5
            health = httpx.get(f"{server.url}/api/health").json()["streams"]
            assert health["slow_client_gaps"] == 1 and health["missed_events"] == 14
            stale = _read(url, {"Last-Event-ID": "another-server-3"}, lambda m: True)
            assert stale[0]["event"] == "reset"
    finally:
        writer.close()
        reader.close()


def test_emitter_in_this_process_wakes_a_memory_store_stream() -> None:
    """With the in-memory store, a stream wakes on the append itself (no polling needed)."""
    from swarm_observability.stores import InMemoryEventStore

    store = InMemoryEventStore()
    record_run(store, "m-1", end=None, probes=0)
    with BackgroundServer(store, heartbeat=5) as server:
        emitter = EventEmitter(store)
        timer = threading.Timer(0.3, lambda: emitter.emit("log", "m-1", message="hello"))
        timer.start()
        got = _read(f"{server.url}/api/runs/m-1/stream", {}, lambda m: json.loads(m["data"])["type"] == "log")
        timer.join()
    assert [m["id"] for m in got] == ["1", "2"]


@pytest.mark.parametrize("port", [0])
def test_background_server_picks_a_free_loopback_port(store: SQLiteEventStore, port: int) -> None:
    """Port 0 binds a free port on 127.0.0.1 and the URL says which."""
    with BackgroundServer(store, port=port) as server:
        assert server.port > 0 and server.url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{server.url}/api/health").json()["status"] == "ok"


def test_events_appended_while_the_watcher_looks_enter_the_ring_once(tmp_path: Path) -> None:
    """A run growing between the run list and its read: the late events are not put in the ring twice."""
    from swarm_observability.server.live import StoreWatcher

    store = SQLiteEventStore(tmp_path / "events.db")

    class Racing:
        """The store, with one run growing right after each ``runs()`` answer."""

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def runs(self) -> Any:
            infos = store.runs()
            record_run(store, "late", probes=1)
            return infos

    try:
        watcher = StoreWatcher(Racing())  # type: ignore[arg-type]
        watcher.look(initial=True)
        watcher.look()
        watcher.look()
        ids = [event.id for _, event in watcher.ring]
        assert ids and len(ids) == len(set(ids))
        assert [pos for pos, _ in watcher.ring] == list(range(1, len(ids) + 1))
    finally:
        store.close()
