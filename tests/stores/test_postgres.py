"""PostgreSQL-only behaviour of ``PostgresEventStore``: what the database enforces, URLs, schema versions,
lost connections and the LISTEN/NOTIFY live tail (the shared behaviour is in the conformance suite)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from swarm_observability.exceptions import EventStoreError, SequenceConflictError, StoreClosedError
from swarm_observability.stores import PostgresEventStore, open_store
from swarm_observability.stores.base import wait_for_append
from swarm_observability.stores.postgres_schema import (
    DEFAULT_CONNECT_TIMEOUT,
    MIGRATIONS,
    SCHEMA_VERSION,
    connect_error,
    connect_seconds,
    redact,
    split_url,
)
from tests._postgres import record_connect_timeouts
from tests._threads import run_in_threads

from .conftest import as_bytes, ev, run_events

pytestmark = pytest.mark.postgres


def _sql(url: str, statement: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    with psycopg.connect(split_url(url)[0], autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


def _schema(url: str) -> str:
    return split_url(url)[1]["schema"]


def test_open_store_urls_and_options(pg_store_url: str) -> None:
    """postgresql:// and postgres:// open the store; ?schema= and options apply, libpq gets the rest."""
    schema = _schema(pg_store_url)
    with open_store(pg_store_url + "&application_name=swarm_obs_t&pool_size=2") as store:
        assert isinstance(store, PostgresEventStore)
        assert (store.schema, store.stats().backend) == (schema, "postgres")
        store.append(ev("r", 1))
        mine = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'swarm_obs_t'"
        assert _sql(pg_store_url, mine)[0][0] >= 1
    other = pg_store_url.replace("postgresql://", "postgres://", 1)
    with open_store(other, read_only=True) as store:
        assert store.last_sequence("r") == 1
        with pytest.raises(EventStoreError, match="read-only"):
            store.append(ev("r", 2))
    with pytest.raises(ValueError, match="takes no option"):
        open_store(pg_store_url, fsync="batch")
    with pytest.raises(ValueError, match="pool_size"):
        open_store(pg_store_url + "&pool_size=many")
    with pytest.raises(ValueError, match="invalid PostgreSQL schema"):
        PostgresEventStore(pg_store_url, schema='x"; DROP TABLE y; --')


def test_unreachable_server_is_a_clear_error_without_the_password() -> None:
    """A server that does not answer is an EventStoreError naming the URL, with the password masked."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://swarm:s3cret@127.0.0.1:{port}/nowhere"
    with pytest.raises(EventStoreError) as info:
        open_store(url, connect_timeout=2)
    assert f"127.0.0.1:{port}/nowhere" in str(info.value) and "s3cret" not in str(info.value)
    assert redact(url) == f"postgresql://swarm:***@127.0.0.1:{port}/nowhere"


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("command", [["runs"], ["serve", "--port", "0"]])
def test_the_cli_on_an_unreachable_server_prints_one_line_with_libpqs_reason(command: list[str]) -> None:
    """`swarm-obs runs|serve` on a dead port: exit 2, one line (server, reason); no pool log, no hint."""
    port = _unused_port()
    url = f"postgresql://swarm:s3cret@127.0.0.1:{port}/nowhere?connect_timeout=1"
    main = "import sys; from swarm_observability.cli import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", main, *command, "--store", url],
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith(f"swarm-obs: cannot connect to the event store {redact(url)}: connection failed")
    assert f'"127.0.0.1", port {port} failed: Connection refused' in line
    assert "s3cret" not in line and "pool" not in line and "run a scan first" not in line


def test_the_connect_timeout_is_the_callers_else_the_urls_else_the_default() -> None:
    """An explicit connect_timeout wins, then the URL's ?connect_timeout= (no longer hidden by a default)."""
    assert connect_seconds("postgresql://h/db?connect_timeout=1", None) == 1
    assert connect_seconds("postgresql://h/db?connect_timeout=1", 3.0) == 3
    assert connect_seconds("postgresql://h/db", None) == DEFAULT_CONNECT_TIMEOUT
    with pytest.raises(ValueError, match="connect_timeout='soon'"):
        connect_seconds("postgresql://h/db?connect_timeout=soon", None)


def test_a_connection_error_that_echoes_the_password_is_masked() -> None:
    """libpq quotes a malformed password in its message; the store's error shows *** instead."""
    url = f"postgresql://swarm:s3%zzcret@127.0.0.1:{_unused_port()}/nowhere"
    with pytest.raises(EventStoreError) as info:
        PostgresEventStore(url)
    assert "s3%zzcret" not in str(info.value) and 'token: "***"' in str(info.value)
    assert connect_error(ValueError("a\n\tb"), url) == "a"


def test_the_live_tails_listen_connection_waits_for_the_server_no_longer_than_the_wait(
    pg_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """wait_for_append(0.1) opening its LISTEN connection gives libpq 2 s (its floor), not the store's 5."""
    with PostgresEventStore(pg_store_url) as store:
        timeouts = record_connect_timeouts(monkeypatch)
        assert store.wait_for_append(0.1)
        assert timeouts == [2]


def test_the_database_refuses_duplicate_seqs_and_the_append_statement_refuses_gaps(pg_store_url: str) -> None:
    """Raw rows cannot repeat a seq or use seq 0 (PK, CHECK); an append after a gap is refused server-side."""
    import psycopg

    schema = _schema(pg_store_url)
    with PostgresEventStore(pg_store_url) as store:
        store.append_batch(run_events("r", 2))
        insert = (
            f'INSERT INTO "{schema}".swarm_events (run_id, seq, id, type, ts, data) '
            "VALUES ('r', %s, %s, 'log', now(), '{}')"
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            _sql(pg_store_url, insert, (2, "dup"))
        with pytest.raises(psycopg.errors.CheckViolation):
            _sql(pg_store_url, insert, (0, "zero"))
        for batch in (run_events("r", 2, 4), run_events("new", 2, 3), [ev("r", 3), *run_events("x", 1, 2)]):
            with pytest.raises(SequenceConflictError):
                store.append_batch(batch)
        refused = f"SELECT \"{schema}\".swarm_refuse_append('r', 5)"
        with pytest.raises(psycopg.errors.CheckViolation, match="run r does not end at seq 4"):
            _sql(pg_store_url, refused)
        assert [e.seq for e in store.load("r")] == [1, 2] and store.runs()[0].run_id == "r"
        assert _sql(pg_store_url, f'SELECT count(*) FROM "{schema}".swarm_events') == [(2,)]
        store.append_batch([ev("r", 3), *run_events("x", 1)])
        assert (store.last_sequence("r"), store.last_sequence("x")) == (3, 1)


def test_a_version_1_store_is_migrated_in_place(pg_store_url: str) -> None:
    """A store of schema version 1 (a foreign key per event) is migrated; its events are kept and go on."""
    import psycopg

    schema = _schema(pg_store_url)
    q = f'"{schema}"'
    with PostgresEventStore(pg_store_url) as store:
        store.append_batch(run_events("old", 3))
        stored = as_bytes(store.load("old"))
    with psycopg.connect(split_url(pg_store_url)[0]) as conn:  # one transaction: the store as v1 made it
        rows = conn.execute(f"SELECT run_id, seq, id, type, ts, data FROM {q}.swarm_events").fetchall()
        conn.execute(f"DROP TABLE {q}.swarm_events, {q}.swarm_runs; DROP FUNCTION {q}.swarm_refuse_append")
        conn.execute(MIGRATIONS[1].format(s=q))
        insert = (
            f"INSERT INTO {q}.swarm_events (run_id, seq, id, type, ts, data) VALUES (%s, %s, %s, %s, %s, %s)"
        )
        conn.cursor().executemany(insert, rows)
        conn.execute(f"INSERT INTO {q}.swarm_runs VALUES ('old', 3, now(), now(), 'log')")
        conn.execute(f"UPDATE {q}.swarm_meta SET value = '1' WHERE key = 'schema_version'")
    with PostgresEventStore(pg_store_url) as store:
        assert as_bytes(store.load("old")) == stored
        store.append_batch(run_events("old", 2, 4))
        with pytest.raises(SequenceConflictError):
            store.append(ev("old", 7))
        assert [e.seq for e in store.load("old")] == [1, 2, 3, 4, 5]
    meta = _sql(pg_store_url, f"SELECT value FROM {q}.swarm_meta WHERE key = 'schema_version'")
    assert meta == [(str(SCHEMA_VERSION),)]
    columns = "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
    assert "prev_seq" not in {name for (name,) in _sql(pg_store_url, columns, (schema,))}


def test_two_stores_racing_on_a_new_run_get_one_conflict(pg_store_url: str) -> None:
    """Two store objects appending seq 1..3 of one new run at once: one wins, the other gets a conflict."""
    stores = [PostgresEventStore(pg_store_url) for _ in range(2)]
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def write(store: PostgresEventStore, tag: str) -> None:
        barrier.wait()
        try:
            store.append_batch(run_events("race", 3, agent=tag))
            outcomes.append(tag)
        except SequenceConflictError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=write, args=(s, f"w{i}")) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        winners = [o for o in outcomes if isinstance(o, str)]
        conflicts = [o for o in outcomes if isinstance(o, SequenceConflictError)]
        assert len(winners) == 1 and len(conflicts) == 1, outcomes
        assert (conflicts[0].expected, conflicts[0].actual) == (4, 1)
        loaded = stores[0].load("race")
        assert [e.seq for e in loaded] == [1, 2, 3] and {e.agent for e in loaded} == set(winners)
    finally:
        for store in stores:
            store.close()


def test_schema_is_versioned_and_a_newer_one_is_refused(pg_store_url: str) -> None:
    """The store records its schema version; a newer version is refused; read-only never creates a schema."""
    schema = _schema(pg_store_url)
    with pytest.raises(EventStoreError, match="opened read-only"):
        PostgresEventStore(pg_store_url, read_only=True)
    assert _sql(pg_store_url, "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)) == []
    opened: list[PostgresEventStore] = []
    run_in_threads(lambda _: opened.append(PostgresEventStore(pg_store_url)), 4)
    assert len(opened) == 4  # four processes' worth of concurrent first opens: one migrates, none fails
    for store in opened:
        store.close()
    version = _sql(pg_store_url, f"SELECT value FROM \"{schema}\".swarm_meta WHERE key = 'schema_version'")
    assert version == [(str(SCHEMA_VERSION),)]
    _sql(pg_store_url, f"UPDATE \"{schema}\".swarm_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(EventStoreError, match="schema version 99"):
        PostgresEventStore(pg_store_url)


def test_a_terminated_connection_is_replaced_without_losing_or_doubling(pg_store_url: str) -> None:
    """pg_terminate_backend on every store connection: the next append, read and stream just reconnect."""
    app = "swarm_obs_kill_me"
    with PostgresEventStore(pg_store_url + f"&application_name={app}", pool_size=2) as store:
        first = run_events("r", 1500)
        store.append_batch(first)
        kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s"
        assert _sql(pg_store_url, kill, (app,))
        more = run_events("r", 10, 1501)
        store.append_batch(more)
        _sql(pg_store_url, kill, (app,))
        assert store.last_sequence("r") == 1510
        stream = store.iter_events("r")
        head = [next(stream) for _ in range(1200)]  # the cursor's connection dies between pages
        _sql(pg_store_url, kill, (app,))
        rest = list(stream)
        assert as_bytes(head + rest) == as_bytes(first + more)
    store.close()
    with pytest.raises(StoreClosedError):
        store.last_sequence("r")


def test_wait_for_append_wakes_on_notify_from_another_store(pg_store_url: str) -> None:
    """A tail blocked in wait_for_append wakes soon after another store's commit, and times out else."""
    with PostgresEventStore(pg_store_url) as tail, PostgresEventStore(pg_store_url) as writer:
        assert wait_for_append(tail, 5.0) is True  # the first call starts LISTEN and says "look"
        started = time.monotonic()
        assert tail.wait_for_append(0.3) is False
        assert time.monotonic() - started >= 0.25
        timer = threading.Timer(0.5, lambda: writer.append(ev("live", 1)))
        timer.start()
        started = time.monotonic()
        woke = tail.wait_for_append(10.0)
        waited = time.monotonic() - started
        timer.join()
        assert woke is True and waited < 5.0, waited  # not the 10 s timeout: the NOTIFY woke it
        assert [e.seq for e in tail.load("live")] == [1]
    with PostgresEventStore(pg_store_url, notify=False) as quiet, PostgresEventStore(pg_store_url) as tail:
        tail.wait_for_append(0)
        quiet.append(ev("live", 2))
        assert tail.wait_for_append(0.5) is False
