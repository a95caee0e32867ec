"""``swarm-obs rebuild-db / project / stats / query``: the README's commands; clear errors on bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from benchmarks.swarm_log import synthetic_runs
from swarm_observability.cli import main
from swarm_observability.stores.sqlite import SQLiteEventStore

pytest.importorskip("duckdb", reason="the analytics extra (duckdb) is part of make's test environment")


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """A SQLite store holding a few synthetic runs, two of them added after a first projection."""
    store = SQLiteEventStore(tmp_path / "events.db", durability="normal")
    for run in synthetic_runs(600, seed=2, run_size=40):
        store.append_batch(run)
    store.close()
    return f"sqlite:///{tmp_path / 'events.db'}"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_readme_commands(store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """rebuild-db, project, stats (--since, --json) and query work as the README shows them."""
    code, out, _ = _run(capsys, "rebuild-db", "--store", store_url)
    assert code == 0 and "rebuilt" in out
    assert (tmp_path / "analytics.duckdb").is_file()
    extra = SQLiteEventStore(tmp_path / "events.db")
    added = list(synthetic_runs(100, seed=99, run_size=40))
    for run in added:
        extra.append_batch(run)
    extra.close()
    code, out, _ = _run(capsys, "project", "--store", store_url)
    assert code == 0 and f"applied {sum(map(len, added))} new events" in out
    code, out, _ = _run(capsys, "project", "--store", store_url, "--follow", "--timeout", "0.3")
    assert code == 0 and "stopped after applying 0 events" in out
    code, out, _ = _run(capsys, "stats", "--store", store_url, "--json")
    result = json.loads(out)
    assert code == 0 and {s["kind"] for s in result["scopes"]} >= {"node", "probe", "model", "tool"}
    assert result["tokens"] and sum(result["runs_by_status"].values()) > 0
    code, out, _ = _run(capsys, "stats", "--store", store_url, "--since", "7d")
    assert code == 0 and "events since" in out
    code, out, _ = _run(capsys, "stats", "--store", store_url, "--since", "2026-11-01")
    assert code == 0 and "p95" in out and "tokens" in out
    sql = (
        "SELECT name, quantile_cont(duration_ms, 0.95) AS p95 FROM scopes WHERE kind = 'probe' "
        "GROUP BY name ORDER BY p95 DESC"
    )
    code, out, _ = _run(capsys, "query", "--store", store_url, "--json", sql)
    rows = json.loads(out)
    assert code == 0 and rows and rows[0]["p95"] >= rows[-1]["p95"]
    code, out, _ = _run(
        capsys, "query", "--store", store_url, "SELECT DISTINCT run_id FROM errors WHERE kind = 'node'"
    )
    assert code == 0 and out.startswith("run_id")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["query", "DROP TABLE events"], "only read-only"),
        (["query", "SELECT * FROM nowhere"], "query failed"),
        (["stats", "--since", "yesterday"], "expected a duration like 7d"),
        (["stats", "--since", "99999999d"], "reaches before year 1"),
        (["stats", "--since", "9" * 400 + "w"], "reaches before year 1"),
        (["project", "--batch", "0"], "--batch must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad SQL, a bad --since or --batch: exit 2 with one line naming the problem, the database intact."""
    assert _run(capsys, "rebuild-db", "--store", store_url)[0] == 0
    code, _, err = _run(capsys, argv[0], "--store", store_url, *argv[1:])
    assert code == 2 and message in err and "Traceback" not in err
    code, out, _ = _run(capsys, "query", "--store", store_url, "--json", "SELECT count(*) AS n FROM events")
    assert code == 0 and json.loads(out)[0]["n"] > 0


def test_missing_database_and_missing_duckdb(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No database yet: exit 2 with the rebuild hint. No DuckDB: exit 2 with the install hint."""
    code, _, err = _run(capsys, "stats", "--store", store_url)
    assert code == 2 and "swarm-obs rebuild-db" in err
    monkeypatch.setitem(sys.modules, "duckdb", None)
    code, _, err = _run(capsys, "rebuild-db", "--store", store_url)
    assert code == 2 and "pip install 'swarm-observability[analytics]'" in err


def test_a_store_without_a_folder_is_named_in_the_db_hint() -> None:
    """A store not on disk (memory, PostgreSQL) gets the --db hint naming its class, not 'in-memory'."""
    from swarm_observability.analytics.database import AnalyticsError, default_db_path
    from swarm_observability.stores.memory import InMemoryEventStore

    class ServerStore(InMemoryEventStore):
        """Stands for any store on a server: no ``path``."""

    with pytest.raises(AnalyticsError, match="the ServerStore has no folder"):
        default_db_path(ServerStore())


def test_ctrl_c_inside_a_duckdb_statement_is_exit_130(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB turns Ctrl-C into RuntimeError("Query interrupted"): `stats` says "interrupted", exit 130."""
    from swarm_observability import analytics

    assert _run(capsys, "rebuild-db", "--store", store_url)[0] == 0

    def interrupted(*_: object, **__: object) -> None:
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(analytics, "stats", interrupted)
    code, _, err = _run(capsys, "stats", "--store", store_url)
    assert code == 130 and err.strip() == "swarm-obs: interrupted"


@pytest.mark.parametrize("command", ["rebuild-db", "project", "stats"])
def test_a_db_path_naming_another_file_leaves_it_alone(
    command: str, store_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--db` naming a file that is not DuckDB (a JSON file): refused in one line, the file unchanged."""
    victim = tmp_path / "trace.json"
    victim.write_text('{"spans": []}\n')
    code, _, err = _run(capsys, command, "--store", store_url, "--db", str(victim))
    assert code in (1, 2) and "is not a DuckDB database" in err and len(err.strip().splitlines()) == 1
    assert victim.read_text() == '{"spans": []}\n'
