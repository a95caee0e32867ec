"""Property tests of swarm-obs argument handling: any argv gives exit 0/1/2 and one line, never a
traceback, and bad input (exit 2) changes nothing stored."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swarm_observability.emitter import EventEmitter
from swarm_observability.events import validate_run_id
from swarm_observability.exceptions import InvalidRunIdError
from swarm_observability.stores.sqlite import SQLiteEventStore

RUNS = ("live-1", "live-2", "done-1")
_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with two running runs and a completed one, and its control table."""
    path = tmp_path_factory.mktemp("props") / "events.db"
    with SQLiteEventStore(path) as store, EventEmitter(store, write="sync") as emitter:
        for run_id in RUNS:
            emitter.emit("scan_started", run_id, message="running", data={"graph": "g"})
        emitter.emit("scan_complete", "done-1", data={"outcome": "ok", "duration_ms": 1.0})
    return path


@pytest.fixture(autouse=True)
def _in_a_scratch_folder(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands without --store look for .swarm/ in the current folder: never the repository's."""
    monkeypatch.chdir(db.parent)


def _events(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT run_id, seq, id, data FROM swarm_events ORDER BY run_id, seq").fetchall()


def _requests(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute(
                "SELECT id, scan_id, action, reason FROM swarm_control ORDER BY id"
            ).fetchall()
        except sqlite3.OperationalError:  # no control table yet
            return []


def _is_valid(run_id: str) -> bool:
    try:
        validate_run_id(run_id)
    except InvalidRunIdError:
        return False
    return True


def _matches(run_id: str) -> list[str]:
    return [run for run in RUNS if run == run_id] or [run for run in RUNS if run.startswith(run_id)]


def _assert_one_clean_outcome(result: Any) -> None:
    assert result.code in (0, 1, 2), result
    assert "Traceback" not in result.err and "Traceback" not in result.out, result.err
    if result.code != 0 and not result.err.startswith("usage:"):  # no command: the help, exit 2
        assert len(result.err.strip().splitlines()) == 1, result.err


hostile_ids = st.one_of(
    st.just(""),
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.text(st.characters(min_codepoint=0, max_codepoint=0x20), min_size=1, max_size=4),
    st.sampled_from(["live", "live-", "live-1", "done", "d", "l", "x" * 257, "live-1\n", "\x00"]),
    st.text(alphabet="live-12done", max_size=8),
    st.text(st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF), min_size=1, max_size=3),
)
READ_COMMANDS = (["show"], ["state"], ["tail"], ["rebuild-state"], ["verify"], ["export", "--jsonl", "-"])
CONTROL_COMMANDS = (["cancel"], ["pause"], ["drain"], ["resume"])


@_SETTINGS
@given(command=st.sampled_from(READ_COMMANDS), run_id=hostile_ids, as_json=st.booleans())
def test_read_commands_resolve_a_run_id_or_refuse_it(
    cli: Any, db: Path, command: list[str], run_id: str, as_json: bool
) -> None:
    """A read command succeeds only for a valid id naming one run; otherwise exit 1/2, never a traceback."""
    before = _events(db)
    result = cli(command[0], run_id, *command[1:], *(["--json"] if as_json else []), "--store", str(db))
    _assert_one_clean_outcome(result)
    if not _is_valid(run_id):
        assert result.code == 2  # "invalid run id", or argparse's own error for "-x"
    elif len(_matches(run_id)) != 1:
        assert result.code == 2
    else:
        assert result.code in (0, 1)  # 1: e.g. verify of a run that is still running finds it open
    assert _events(db) == before


@_SETTINGS
@given(command=st.sampled_from(CONTROL_COMMANDS), run_id=hostile_ids, force=st.booleans())
def test_control_commands_write_a_request_only_for_a_valid_run_id(
    cli: Any, db: Path, command: list[str], run_id: str, force: bool
) -> None:
    """Exit 2 for an invalid or unknown id, even with --force, and then no request is written."""
    before_events, before_requests = _events(db), _requests(db)
    result = cli(*command, run_id, *(["--force"] if force else []), "--store", str(db))
    _assert_one_clean_outcome(result)
    after_requests = _requests(db)
    if not _is_valid(run_id) or (not force and len(_matches(run_id)) != 1):
        assert result.code == 2
    if result.code == 0:
        assert len(after_requests) == len(before_requests) + 1
        assert after_requests[-1][2] == command[0]
    else:
        assert after_requests == before_requests
    assert _events(db) == before_events


_TOKENS = st.one_of(
    st.sampled_from(
        [
            "runs",
            "show",
            "state",
            "tail",
            "rebuild-state",
            "verify",
            "export",
            "schema",
            "cancel",
            "pause",
            "drain",
            "resume",
            "--json",
            "--all",
            "--force",
            "--limit",
            "-n",
            "--lines",
            "--reason",
            "--store",
            "--jsonl",
            "-",
            "--protocol",
            "grpc",
            "--help",
            "-h",
            "--version",
            "0",
            "-1",
            "10",
            "1e9",
            "nan",
            "live-1",
            "done",
            "",
            " ",
            "memory:",
            "sqlite:///",
            "jsonl:///",
            "postgresql://",
            "--",
            "=",
            "--store=",
            "--limit=-3",
            "-n=x",
        ]
    ),
    st.text(max_size=10),
    st.text(st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF), min_size=1, max_size=3),
    st.from_regex(r"\A(\x1b\[[0-9;]*m|\r|\n|\t)+\Z"),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=st.lists(_TOKENS, max_size=7), with_store=st.booleans())
def test_any_argv_ends_cleanly_and_changes_no_event(
    cli: Any, db: Path, argv: list[str], with_store: bool
) -> None:
    """Random argument lists: exit 0, 1 or 2 with at most one error line, and the events are untouched."""
    if "--jsonl" in argv:  # writes a file named by the next token; only stdout here
        argv = [token for token in argv if token != "--jsonl"] + ["--jsonl", "-"]
    before_events, before_requests = _events(db), _requests(db)
    result = cli(*argv, *(["--store", str(db)] if with_store else []))
    _assert_one_clean_outcome(result)
    assert _events(db) == before_events
    if result.code != 0:
        assert _requests(db) == before_requests
    if result.code == 0 and "--json" in argv and result.out.strip().startswith(("{", "[")):
        json.loads(result.out)
