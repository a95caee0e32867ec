"""``swarm-obs serve`` under load: SSE throughput to 10 concurrent clients, emit-to-browser latency.

Everything runs in separate processes, as in use: the server is ``swarm-obs serve --read-only`` on a
free loopback port over a SQLite store, the clients are processes reading the stream with httpx, and
the writer is this process.

* **Throughput**: ``events`` events are in the store; 10 clients connect at once to
  ``/api/runs/{id}/stream`` and read until the last seq. Reported: events/s delivered over all
  clients (``10 * events / time from "go" until the last client has the last event``; the client
  processes are started and imported before "go") and per client.
* **Latency**: this process emits events through an :class:`EventEmitter` (SQLite, background writer)
  at a steady rate while one client follows the run; each event carries its emit time (``time.time_ns``,
  one clock for every process on the machine) and the client notes when it parsed the message.
  Reported: p50/p99 of emit-to-client latency, which includes the emitter's commit, the server's poll
  of the store (``POLL_INTERVAL_S``) and the SSE hop. With ``browser=True`` (and a Chromium) the client
  is headless Chromium's ``EventSource``, timed with ``performance.timeOrigin + performance.now()``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._stats import quantile, summarize

_CLIENT = r"""
import json, os, sys, time
import httpx
url, last, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
open(out + ".ready", "w").close()
while not os.path.exists(out + ".go"):
    time.sleep(0.005)
got, first, stamps = 0, None, []
with httpx.stream("GET", url, timeout=None) as response:
    for line in response.iter_lines():
        if line.startswith("data: "):
            now = time.time_ns()
            event = json.loads(line[6:])
            first = first or now
            got += 1
            if got == 1:
                open(out + ".first", "w").close()
            sent = (event.get("data") or {}).get("sent_ns")
            if sent:
                stamps.append(now - sent)
            if event["seq"] >= last:
                break
json.dump({"got": got, "first_ns": first, "last_ns": time.time_ns(), "latencies_ns": stamps}, open(out, "w"))
"""


def _spawn(url: str, last: int, out: Path) -> subprocess.Popen[bytes]:
    """A client process, imported and waiting for ``<out>.go`` before it connects."""
    proc = subprocess.Popen([sys.executable, "-c", _CLIENT, url, str(last), str(out)], env=_env())
    _wait_file(Path(f"{out}.ready"))
    return proc


def _wait_file(path: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path} did not appear")
        time.sleep(0.005)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SWARM_OBS_", "OTEL_"))}


def _start_server(db: Path) -> tuple[subprocess.Popen[str], str]:
    argv = [
        sys.executable,
        "-m",
        "swarm_observability",
        "serve",
        "--store",
        str(db),
        "--port",
        "0",
        "--read-only",
    ]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    assert server.stdout is not None
    for _ in range(50):
        match = re.search(r"on (http://127\.0\.0\.1:\d+)/", server.stdout.readline())
        if match:
            return server, match.group(1)
    server.kill()
    raise RuntimeError("swarm-obs serve did not print its address")


def _fill(db: Path, run: str, events: int) -> None:
    from swarm_observability.events import make_event
    from swarm_observability.stores import SQLiteEventStore

    store = SQLiteEventStore(db, durability="normal")
    batch = [
        make_event("node_progress", run, seq=i, node="probe", progress=i / events, message=f"file {i}")
        for i in range(1, events + 1)
    ]
    for start in range(0, events, 5000):
        store.append_batch(batch[start : start + 5000])
    store.close()


def _clients(url: str, last: int, count: int, folder: Path) -> tuple[int, list[dict[str, Any]]]:
    outs = [folder / f"client-{i}.json" for i in range(count)]
    procs = [_spawn(url, last, out) for out in outs]
    started = time.time_ns()
    for out in outs:
        Path(f"{out}.go").touch()
    for proc in procs:
        proc.wait(timeout=600)
    return started, [json.loads(out.read_text()) for out in outs]


def throughput(folder: Path, events: int, clients: int = 10) -> dict[str, Any]:
    """10 clients replaying ``events`` stored events at once."""
    db = folder / "throughput.db"
    _fill(db, "bench", events)
    server, base = _start_server(db)
    try:
        started, results = _clients(f"{base}/api/runs/bench/stream", events, clients, folder)
        ended = max(r["last_ns"] for r in results)
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert all(r["got"] == events for r in results), "a client missed events"
    total_s = (ended - started) / 1e9
    per_client = [events / ((r["last_ns"] - r["first_ns"]) / 1e9) for r in results]
    return {
        "clients": clients,
        "events_per_client": events,
        "total_s": round(total_s, 3),
        "aggregate_events_per_s": round(clients * events / total_s),
        "per_client_events_per_s": summarize(per_client, 0),
        "first_event_after_go_s": summarize([(r["first_ns"] - started) / 1e9 for r in results], 3),
    }


def latency(folder: Path, events: int, rate_hz: float = 50.0, browser: bool = False) -> dict[str, Any]:
    """Emit ``events`` at ``rate_hz`` while one client follows; emit-to-client latency."""
    from swarm_observability.emitter import EventEmitter
    from swarm_observability.stores import SQLiteEventStore

    db = folder / "latency.db"
    store = SQLiteEventStore(db, durability="normal")
    emitter = EventEmitter(store)
    emitter.emit("scan_started", "lat", data={"graph": "bench"})
    emitter.flush()
    server, base = _start_server(db)
    url = f"{base}/api/runs/lat/stream"
    chromium = shutil.which("chromium") if browser else None
    try:
        if chromium:
            latencies, kind = _browser_follow(chromium, url, emitter, events, rate_hz)
        else:
            out = folder / "latency-client.json"
            client = _spawn(url, events + 1, out)
            Path(f"{out}.go").touch()
            _wait_file(Path(f"{out}.first"))
            _emit_steadily(emitter, events, rate_hz)
            client.wait(timeout=120)
            latencies = [ns / 1e6 for ns in json.loads(out.read_text())["latencies_ns"]]
            kind = "httpx client process"
    finally:
        server.terminate()
        server.wait(timeout=30)
        emitter.close()
        store.close()
    assert len(latencies) == events, f"the client saw {len(latencies)} of {events} events"
    return {
        "client": kind,
        "events": events,
        "rate_hz": rate_hz,
        "p50_ms": round(quantile(latencies, 0.5), 2),
        "p99_ms": round(quantile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2),
    }


def _emit_steadily(emitter: Any, events: int, rate_hz: float) -> None:
    period = 1.0 / rate_hz
    next_at = time.perf_counter()
    for i in range(events):
        emitter.emit("log", "lat", message=f"tick {i}", data={"sent_ns": time.time_ns()})
        next_at += period
        time.sleep(max(0.0, next_at - time.perf_counter()))
    emitter.flush()


def _browser_follow(
    chromium: str, url: str, emitter: Any, events: int, rate_hz: float
) -> tuple[list[float], str]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url.split("/api/")[0] + "/static/app.css")
        page.evaluate(
            """url => { window.lat = []; const s = new EventSource(url);
            s.onmessage = m => { window.opened = true;
              const now = performance.timeOrigin + performance.now(), e = JSON.parse(m.data);
              if (e.data && e.data.sent_ns) window.lat.push(now - e.data.sent_ns / 1e6); }; }""",
            url,
        )
        page.wait_for_function("() => window.opened")
        _emit_steadily(emitter, events, rate_hz)
        page.wait_for_function("n => window.lat.length >= n", arg=events, timeout=60_000)
        latencies = [float(x) for x in page.evaluate("window.lat")]
        browser.close()
    return latencies, "headless Chromium EventSource"


def run(smoke: bool) -> dict[str, Any]:
    """The ``server`` section of ``python -m benchmarks.run``."""
    with tempfile.TemporaryDirectory(prefix="swarm-obs-bench-") as tmp:
        folder = Path(tmp)
        return {
            "throughput": throughput(folder, 500 if smoke else 20_000),
            "latency": latency(folder, 20 if smoke else 500, browser=not smoke),
        }


if __name__ == "__main__":
    print(json.dumps(run("--smoke" in sys.argv), indent=1))
