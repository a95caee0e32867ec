"""Hostile arguments and unusable control files: exit 2 or 1 with one line, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from swarm_observability.control import ControlChannel
from swarm_observability.emitter import EventEmitter
from swarm_observability.stores.jsonl import JSONLEventStore
from swarm_observability.stores.sqlite import SQLiteEventStore

REPO = Path(__file__).resolve().parents[2]


def _start_run(store: Any, run_id: str) -> None:
    with EventEmitter(store, write="sync") as emitter:
        emitter.emit("scan_started", run_id, message="running")


@pytest.fixture
def live_db(tmp_path: Path) -> Path:
    """A SQLite store whose only run, ``live-1``, is running."""
    db = tmp_path / "events.db"
    with SQLiteEventStore(db) as store:
        _start_run(store, "live-1")
    return db


@pytest.mark.parametrize(
    "argv",
    [
        ["cancel", ""],
        ["pause", ""],
        ["drain", ""],
        ["resume", ""],
        ["show", ""],
        ["state", ""],
        ["tail", ""],
        ["tail", "", "--follow", "--timeout", "0.1"],
        ["rebuild-state", ""],
        ["export", "", "--jsonl", "-"],
        ["verify", ""],
        ["resume", "live-1", "--scan-id", ""],
    ],
)
def test_the_empty_run_id_matches_nothing(cli: Any, live_db: Path, argv: list[str]) -> None:
    """`""` is a prefix of every run, so it is refused with exit 2 before any command sees it."""
    result = cli(*argv, "--store", str(live_db))
    assert result.code == 2, result
    assert "must not be empty" in result.err and "Traceback" not in result.err
    assert result.out == ""
    with ControlChannel(live_db) as channel:
        assert channel.requests() == []


@pytest.mark.parametrize("option", ["--resume", "--thread"])
def test_demo_refuses_an_empty_thread(cli: Any, tmp_path: Path, option: str) -> None:
    """`demo --resume ""` (or `--thread ""`) is exit 2, not a new scan under a made-up id."""
    db = tmp_path / "events.db"
    result = cli("demo", option, "", "--store", str(db), "--no-progress")
    assert result.code == 2 and "must not be empty" in result.err
    assert not db.exists()


@pytest.mark.parametrize("run_id", ["", "bad\x00id", "bad\nid", "x" * 300])
def test_force_with_an_invalid_run_id_is_a_usage_error(cli: Any, live_db: Path, run_id: str) -> None:
    """`cancel --force` with an id that cannot be a run id exits 2 and writes no request."""
    result = cli("cancel", run_id, "--force", "--store", str(live_db))
    assert result.code == 2, result
    assert "invalid run id" in result.err
    with ControlChannel(live_db) as channel:
        assert channel.requests() == []


def test_force_still_sends_to_a_valid_unknown_run(cli: Any, live_db: Path) -> None:
    """--force keeps its purpose: a valid id not in the store yet gets its request."""
    assert cli("cancel", "later-run", "--force", "--store", str(live_db)).code == 0
    with ControlChannel(live_db) as channel:
        assert [r.scan_id for r in channel.pending("later-run")] == ["later-run"]


def test_cancel_with_a_garbage_control_db_is_one_line(cli: Any, tmp_path: Path) -> None:
    """A control.db that is not a database: exit 1 naming the file, the bytes left alone."""
    folder = tmp_path / "jsonl"
    with JSONLEventStore(folder) as store:
        _start_run(store, "live-1")
    garbage = os.urandom(4096)
    (folder / "control.db").write_bytes(garbage)
    result = cli("cancel", "live-1", "--store", f"jsonl:///{folder}")
    assert result.code == 1, result
    assert "control.db" in result.err and "not a usable control database" in result.err
    assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1
    assert (folder / "control.db").read_bytes() == garbage


def _cli_without_override(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``swarm-obs`` in a child that file permissions apply to (root drops CAP_DAC_OVERRIDE)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and util-linux's setpriv is missing: cannot drop CAP_DAC_OVERRIDE")
        prefix = [setpriv, "--inh-caps=-all", "--bounding-set=-all"]
    env = {k: v for k, v in os.environ.items() if k != "SWARM_OBS_STORE"}
    return subprocess.run(
        [*prefix, sys.executable, "-m", "swarm_observability", *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )


def test_cancel_on_a_read_only_sqlite_store_is_one_line(tmp_path: Path) -> None:
    """A store file the user cannot write: exit 1, 'read-only', no traceback, nothing changed."""
    folder = tmp_path / "ro"
    db = folder / "events.db"
    with SQLiteEventStore(db) as store:
        _start_run(store, "live-1")
    before = db.read_bytes()
    db.chmod(0o444)
    result = _cli_without_override("cancel", "live-1", "--store", str(db))
    assert result.returncode == 1, result
    assert "read-only" in result.stderr and str(db) in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert db.read_bytes() == before


def test_cancel_on_a_read_only_jsonl_folder_is_one_line(tmp_path: Path) -> None:
    """A JSONL folder where control.db cannot be created: exit 1 naming it, no traceback."""
    folder = tmp_path / "jsonl"
    with JSONLEventStore(folder) as store:
        _start_run(store, "live-1")
    for path in [*folder.rglob("*")]:
        path.chmod(0o444)
    folder.chmod(0o555)
    result = _cli_without_override("cancel", "live-1", "--store", f"jsonl:///{folder}")
    assert result.returncode == 1, result
    assert "control.db" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (folder / "control.db").exists()
    folder.chmod(0o755)


def test_error_lines_escape_control_characters(cli: Any, live_db: Path) -> None:
    """A hostile argument cannot break the error line or send escape sequences to the terminal."""
    result = cli("runs", "\r\x1b[2J\ninjected", "--store", str(live_db))
    assert result.code == 2
    assert result.err.count("\n") == 1 and "\x1b" not in result.err and "\r" not in result.err
    assert "\\r\\x1b[2J\\ninjected" in result.err


def test_a_store_in_a_read_only_folder_names_the_real_problem(tmp_path: Path) -> None:
    """A WAL database whose folder cannot be written: one line saying so, not 'run a scan first'."""
    folder = tmp_path / "ro"
    db = folder / "events.db"
    with SQLiteEventStore(db) as store:
        _start_run(store, "live-1")
    folder.chmod(0o555)
    try:
        result = _cli_without_override("runs", "--store", str(db))
    finally:
        folder.chmod(0o755)
    assert result.returncode == 2, result
    assert "make the folder writable" in result.stderr and "run a scan first" not in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["runs", "--limit", "-1"], "must be 0 or more"),
        (["tail", "live-1", "-n", "-3"], "must be 0 or more"),
        (["tail", "live-1", "--follow", "--interval", "nan", "--timeout", "1"], "finite number of seconds"),
        (["tail", "live-1", "--follow", "--interval", "inf", "--timeout", "1"], "finite number of seconds"),
        (["tail", "live-1", "--follow", "--timeout", "nan"], "finite number of seconds"),
        (["tail", "live-1", "--follow", "--timeout", "-1"], "finite number of seconds"),
        (["serve", "--heartbeat", "nan", "--port", "0"], "finite number of seconds"),
        (["project", "--follow", "--interval", "inf"], "finite number of seconds"),
        (["project", "--follow", "--timeout", "nan"], "finite number of seconds"),
    ],
)
def test_negative_counts_and_non_finite_seconds_are_usage_errors(
    cli: Any, live_db: Path, argv: list[str], message: str
) -> None:
    """A negative count, or NaN/infinite/negative seconds (a crashed sleep, an endless wait): exit 2."""
    result = cli(*argv, "--store", str(live_db))
    assert result.code == 2, result
    assert message in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_export_with_a_malformed_otlp_endpoint_writes_nothing(
    cli: Any, live_db: Path, tmp_path: Path
) -> None:
    """`export --otlp notaurl --jsonl F` is bad input: exit 2 naming the endpoint, and F is not written."""
    target = tmp_path / "out" / "events.jsonl"
    result = cli("export", "live-1", "--otlp", "notaurl", "--jsonl", str(target), "--store", str(live_db))
    assert result.code == 2, result
    assert "malformed OTLP endpoint 'notaurl'" in result.err and "Traceback" not in result.err
    assert not target.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["runs"],
        ["cancel", "live-1", "--force"],
        ["demo", ".", "--no-progress"],
        ["demo", ".", "--no-progress", "--serve", "--no-browser", "--port", "0"],
    ],
)
def test_an_empty_store_option_is_refused(
    cli: Any, live_db: Path, argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--store ""` (an unset `$DATABASE_URL`) is exit 2, never the default store quietly instead."""
    monkeypatch.chdir(live_db.parent)
    monkeypatch.setenv("SWARM_OBS_DATA_DIR", str(live_db.parent / ".swarm"))
    result = cli(*argv, "--store", "")
    assert result.code == 2, result
    assert "--store is empty" in result.err and "Traceback" not in result.err
    assert not (live_db.parent / ".swarm").exists()


def test_demo_on_a_store_that_cannot_be_opened_is_exit_2(cli: Any, tmp_path: Path) -> None:
    """`demo --store` naming a folder (SQLite cannot open it): exit 2 with one line naming the store."""
    folder = tmp_path / "events.db"
    folder.mkdir()
    result = cli("demo", str(tmp_path), "--no-progress", "--store", f"sqlite:///{folder}")
    assert result.code == 2, result
    assert result.err.startswith("swarm-obs: demo: ") and str(folder) in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_export_to_a_closed_pipe_is_a_quiet_exit_0(tmp_path: Path) -> None:
    """`export RUN --jsonl - | head -1`: a reader stopping early is no export failure (exit 0, silent)."""
    db = tmp_path / "events.db"
    with SQLiteEventStore(db) as store, EventEmitter(store, write="sync") as emitter:
        for i in range(400):
            emitter.emit("log", "big-1", message=f"line {i} " + "x" * 500)
    argv = [
        sys.executable,
        "-m",
        "swarm_observability",
        "export",
        "big-1",
        "--jsonl",
        "-",
        "--store",
        str(db),
    ]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"{")
    process.stdout.close()
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("kind", "option"), [("sqlite", "--jaeger"), ("sqlite", "--jsonl"), ("jsonl", "--jsonl")]
)
def test_export_onto_the_stores_own_file_is_refused(cli: Any, tmp_path: Path, kind: str, option: str) -> None:
    """`export RUN --jsonl/--jaeger` naming the store's own log file: exit 2, the log byte for byte intact."""
    if kind == "sqlite":
        store: Any = SQLiteEventStore(tmp_path / "events.db")
        url, log = str(tmp_path / "events.db"), tmp_path / "events.db"
    else:
        store = JSONLEventStore(tmp_path / "j")
        url, log = f"jsonl:///{tmp_path / 'j'}", tmp_path / "j" / "events.jsonl"
    with store:
        _start_run(store, "live-1")
    before = log.read_bytes()
    result = cli("export", "live-1", option, str(log), "--store", url)
    assert result.code == 2, result
    assert "is a file of the event store itself" in result.err and "Traceback" not in result.err
    assert log.read_bytes() == before


def test_demo_jaeger_onto_the_store_file_is_refused_before_the_scan(cli: Any, live_db: Path) -> None:
    """`demo --jaeger events.db --store events.db` would overwrite the log after the scan: exit 2 first."""
    before = live_db.read_bytes()
    result = cli("demo", str(REPO / "swarm_observability" / "demo"), "--no-progress", "--store", str(live_db),
                 "--jaeger", str(live_db))  # fmt: skip
    assert result.code == 2, result
    assert "demo --jaeger" in result.err and "a file of the event store itself" in result.err
    assert live_db.read_bytes() == before
