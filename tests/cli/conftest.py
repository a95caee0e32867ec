"""Fixtures for the CLI tests: a store with recorded runs, and a helper to call ``swarm-obs`` in-process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from demo.planted import plant_folder

from swarm_observability.checkpointers import get_checkpointer
from swarm_observability.cli import main
from swarm_observability.instrumentation.observer import SwarmObserver
from swarm_observability.stores.sqlite import SQLiteEventStore

from . import _graphs


@dataclass
class Result:
    """Exit code and captured output of one ``main()`` call."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Call ``swarm-obs`` in-process: ``cli("runs", "--json")`` -> Result. Plain output (no terminal)."""
    monkeypatch.delenv("SWARM_OBS_STORE", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A folder with one planted issue per demo probe."""
    return plant_folder(tmp_path / "src")


def run_flaky(db: Path, checkpoints: Path, thread_id: str) -> None:
    """Record a failing run of the flaky graph (``second`` raises) in ``db``."""
    store = SQLiteEventStore(db)
    observer = SwarmObserver(store=store, heartbeat_interval=None)
    _graphs.FAIL["on"] = True
    try:
        with get_checkpointer(path=checkpoints) as saver:
            graph = observer.instrument(_graphs.build(saver))
            with pytest.raises(RuntimeError, match="disk on fire"):
                graph.invoke({"steps": []}, {"configurable": {"thread_id": thread_id}})
    finally:
        _graphs.FAIL["on"] = False
        observer.close()
        store.close()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A SQLite store with a completed demo scan ``good-1`` and a failed run ``bad-1``."""
    root = tmp_path_factory.mktemp("recorded")
    folder = plant_folder(root / "src")
    db = root / "events.db"
    assert main(["demo", str(folder), "--store", str(db), "--thread", "good-1", "--no-progress"]) == 0
    run_flaky(db, root / "checkpoints.db", "bad-1")
    yield db
