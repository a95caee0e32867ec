"""Damaged stores end in a one-line report and exit 1 from verify, runs and show, never a traceback."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from swarm_observability.emitter import EventEmitter
from swarm_observability.stores import JSONLEventStore, SQLiteEventStore


def _sqlite(path: Path) -> Path:
    store = SQLiteEventStore(path)
    with EventEmitter(store) as emitter:
        for run in ("alpha", "beta"):
            for n in range(300):
                emitter.emit("log", run, message=f"{run} {n}", data={"pad": "p" * 300})
    store.close()
    return path


def _jsonl(folder: Path) -> Path:
    store = JSONLEventStore(folder)
    for run in ("alpha", "beta"):
        with EventEmitter(store) as emitter:
            for n in range(3):
                emitter.emit("log", run, message=f"{run} {n}")
    store.close()
    return folder / "events.jsonl"


def _damage_page(path: Path) -> None:
    conn = sqlite3.connect(path)
    pages = [row[0] for row in conn.execute("SELECT pageno FROM dbstat WHERE name = 'swarm_events'")]
    conn.close()
    data = bytearray(path.read_bytes())
    page = pages[len(pages) // 2]
    data[(page - 1) * 4096 : page * 4096] = b"\xa5" * 4096
    path.write_bytes(bytes(data))


def _sql(statement: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        conn = sqlite3.connect(path)
        conn.execute(statement)
        conn.commit()
        conn.close()

    return damage


def _glue_last_line(path: Path) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-2]) + lines[-2][:-1] + lines[-1])


def _bad_header(path: Path) -> None:
    prefix = b'{"seq":9,"run_id":"\xff","id":"x","batch":[0,1],"event":{}'
    path.write_bytes(path.read_bytes() + prefix + b',"crc":"%08x"}\n' % zlib.crc32(prefix))


CASES: dict[str, tuple[str, Callable[[Path], None]]] = {
    "sqlite page damage": ("sqlite", _damage_page),
    "sqlite schema version": (
        "sqlite",
        _sql("UPDATE swarm_meta SET value = 'one' WHERE key = 'schema_version'"),
    ),
    "sqlite text timestamp": ("sqlite", _sql("UPDATE swarm_runs SET first_ts = '2026-01-01T00:00:00Z'")),
    "jsonl lost newline": ("jsonl", _glue_last_line),
    "jsonl malformed header": ("jsonl", _bad_header),
}


@pytest.fixture(params=list(CASES))
def damaged(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """A store damaged in one of the ways of issue 17 items 3-5; (its --store value, its file)."""
    kind, damage = CASES[request.param]
    file = _sqlite(tmp_path / "events.db") if kind == "sqlite" else _jsonl(tmp_path / "log")
    damage(file)
    return (str(file) if kind == "sqlite" else str(file.parent)), file


def _problem_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "damaged" in line or "error:" in line]


def test_verify_all_reports_the_damage_in_one_line(cli: Any, damaged: tuple[str, Path]) -> None:
    """`verify --all` exits 1 with a one-line reason naming the file."""
    store, file = damaged
    result = cli("verify", "--all", "--store", store)
    assert result.code == 1, result
    lines = _problem_lines(result.out + result.err)
    assert lines and any(str(file) in line for line in lines), result
    assert "Traceback" not in result.out + result.err


@pytest.mark.parametrize("command", [["runs"], ["show", "alpha"], ["verify", "beta"], ["state", "alpha"]])
def test_read_commands_report_damage_without_a_traceback(
    cli: Any, damaged: tuple[str, Path], command: list[str]
) -> None:
    """runs/show/verify/state on a damaged store: exit 0 or 1 with a one-line reason, never a traceback."""
    store, _file = damaged
    result = cli(*command, "--store", store)
    assert result.code in (0, 1), result
    if result.code == 1:
        assert _problem_lines(result.out + result.err) or result.err.count("\n") == 1, result


def test_verify_in_a_subprocess_prints_no_traceback(tmp_path: Path) -> None:
    """The real entry point on a page-damaged SQLite file: exit 1, stderr/stdout free of tracebacks."""
    db = _sqlite(tmp_path / "events.db")
    _damage_page(db)
    done = subprocess.run(
        [sys.executable, "-m", "swarm_observability", "verify", "--all", "--store", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done
    assert "Traceback" not in done.stdout + done.stderr
    assert str(db) in done.stdout + done.stderr
