"""Fixtures of the server tests: a SQLite store with recorded runs, the app over it, a test client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the server extra (fastapi) is not installed: make installs it")

from fastapi.testclient import TestClient

from swarm_observability.emitter import EventEmitter
from swarm_observability.server import create_app
from swarm_observability.stores import SQLiteEventStore

TOKEN = "test-token"
BASE_URL = "http://127.0.0.1:8765"
"""Where test clients send requests: a loopback Host, as a browser on this machine would."""


def record_run(store: Any, run: str, *, end: str | None = "scan_complete", probes: int = 3) -> None:
    """A scoped run: scan > planner node > probe nodes with results; ``end=None`` leaves it running."""
    inv = f"{run}-inv"
    with EventEmitter(store, write="sync") as emitter:
        emitter.emit("scan_started", run, scope_id=inv, invocation_id=inv, data={"graph": "g"}, thread_id=run)
        for i in range(probes):
            node, probe = f"{run}-n{i}", f"{run}-p{i}"
            emitter.emit(
                "node_enter", run, node="probe", scope_id=node, parent_scope_id=inv, invocation_id=inv, step=2
            )
            emitter.emit(
                "probe_start", run, probe=f"p{i}", scope_id=probe, parent_scope_id=node, invocation_id=inv
            )
            emitter.emit("probe_result", run, probe=f"p{i}", scope_id=probe, invocation_id=inv, data={"n": i})
            emitter.emit("probe_complete", run, probe=f"p{i}", scope_id=probe, data={"outcome": "ok"})
            emitter.emit(
                "node_exit", run, node="probe", scope_id=node, data={"outcome": "ok", "duration_ms": 5}
            )
        if end == "scan_error":
            emitter.emit(end, run, scope_id=inv, data={"error_type": "RuntimeError", "error_message": "boom"})
        elif end is not None:
            emitter.emit(end, run, scope_id=inv, data={"outcome": "ok"})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A SQLite store with a completed run ``done-1``, a failed ``bad-1`` and a running ``live-1``."""
    path = tmp_path / "events.db"
    store = SQLiteEventStore(path)
    record_run(store, "done-1")
    record_run(store, "bad-1", end="scan_error", probes=1)
    record_run(store, "live-1", end=None, probes=1)
    store.close()
    return path


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteEventStore]:
    """The recorded store, open for reading."""
    opened = SQLiteEventStore(db, read_only=True)
    yield opened
    opened.close()


@pytest.fixture
def client(store: SQLiteEventStore) -> Iterator[TestClient]:
    """A test client over the app (control token ``TOKEN``)."""
    with TestClient(create_app(store, token=TOKEN), base_url=BASE_URL) as test_client:
        yield test_client
