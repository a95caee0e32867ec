"""SQLite backend: durability pragmas, several writers on one file, read-only use, refusing bad files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from swarm_observability.exceptions import (
    DuplicateEventError,
    EventStoreError,
    SequenceConflictError,
    StoreCorruptionError,
)
from swarm_observability.stores import SQLiteEventStore
from swarm_observability.stores import sqlite as sqlite_store
from swarm_observability.stores.sqlite_write import max_rows

from .conftest import as_bytes, ev, run_events


@pytest.mark.parametrize(("durability", "synchronous"), [("full", 2), ("normal", 1)])
def test_durability_sets_synchronous_and_wal(tmp_path: Path, durability: str, synchronous: int) -> None:
    """durability maps to PRAGMA synchronous (FULL=2, NORMAL=1) on the store's connection, in WAL mode."""
    with SQLiteEventStore(tmp_path / "e.db", durability=durability) as store:  # type: ignore[arg-type]
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == synchronous
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000


def test_default_durability_is_full(tmp_path: Path) -> None:
    """Without arguments the store survives power loss: synchronous=FULL."""
    with SQLiteEventStore(tmp_path / "e.db") as store:
        assert store.durability == "full"
        assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_bad_durability_is_a_value_error(tmp_path: Path) -> None:
    """An unknown durability names the accepted values and creates no file."""
    with pytest.raises(ValueError, match="'full' or 'normal'"):
        SQLiteEventStore(tmp_path / "e.db", durability="paranoid")  # type: ignore[arg-type]
    assert not (tmp_path / "e.db").exists()


def test_creates_parent_folders_and_reports_path(tmp_path: Path) -> None:
    """Missing parent folders are created; .path and stats().location name the file."""
    target = tmp_path / "a" / "b" / "events.db"
    with SQLiteEventStore(target) as store:
        store.append(ev("r", 1))
        assert store.path == target
        assert store.stats().location == str(target)
    assert target.is_file()


def test_in_memory_database(tmp_path: Path) -> None:
    """ ":memory:" is a private database with no path and a page-based size."""
    with SQLiteEventStore(":memory:") as store:
        store.append_batch(run_events("r", 3))
        assert store.path is None
        stats = store.stats()
        assert (stats.location, stats.events) == (":memory:", 3)
        assert stats.size_bytes is not None and stats.size_bytes > 0


@pytest.mark.parametrize("variable_limit", [None, 999, 6])
def test_a_batch_of_any_size_is_stored_whole_in_order(tmp_path: Path, variable_limit: int | None) -> None:
    """Batches split over several multi-row INSERTs (even under a low parameter limit) read back
    byte for byte; a duplicate id in the last statement leaves nothing of its batch behind."""
    with SQLiteEventStore(tmp_path / "e.db") as store:
        if variable_limit is not None:
            store._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variable_limit)
            store._max_rows = max_rows(store._conn)
        events = run_events("a", 300) + run_events("b", 7)
        store.append_batch(events)
        assert as_bytes(store.load("a") + store.load("b")) == as_bytes(events)
        assert [(info.run_id, info.event_count) for info in store.runs()] == [("a", 300), ("b", 7)]
        again = [*run_events("c", 299), ev("c", 300, id=events[0].id)]
        with pytest.raises(DuplicateEventError):
            store.append_batch(again)
        assert store.load("c") == [] and store.last_sequence("c") == 0


def test_two_store_objects_share_one_file_gaplessly(tmp_path: Path) -> None:
    """Two connections (as two processes would) see each other's commits; a stale seq is a conflict."""
    one = SQLiteEventStore(tmp_path / "e.db", durability="normal")
    two = SQLiteEventStore(tmp_path / "e.db", durability="normal")
    one.append(ev("r", 1))
    with pytest.raises(SequenceConflictError) as info:
        two.append(ev("r", 1))
    assert info.value.expected == 2
    two.append(ev("r", 2))
    one.append(ev("r", 3))
    assert [e.seq for e in one.load("r")] == [1, 2, 3]
    assert [r.event_count for r in two.runs()] == [3]
    one.close()
    two.close()


def test_read_only_reads_a_live_database_and_refuses_writes(tmp_path: Path) -> None:
    """A read-only store reads what a writer commits later and raises EventStoreError on append."""
    writer = SQLiteEventStore(tmp_path / "e.db", durability="normal")
    writer.append(ev("r", 1))
    reader = SQLiteEventStore(tmp_path / "e.db", read_only=True)
    writer.append(ev("r", 2))
    assert reader.last_sequence("r") == 2
    assert as_bytes(reader.load("r")) == as_bytes(writer.load("r"))
    with pytest.raises(EventStoreError, match="read-only"):
        reader.append(ev("r", 3))
    reader.close()
    writer.close()


def test_read_only_needs_an_existing_file(tmp_path: Path) -> None:
    """Opening a missing database read-only is a clear error and creates nothing."""
    with pytest.raises(EventStoreError, match="no event store"):
        SQLiteEventStore(tmp_path / "missing.db", read_only=True)
    assert not (tmp_path / "missing.db").exists()


def test_a_row_missing_by_hand_is_reported_not_skipped(tmp_path: Path) -> None:
    """If a row disappears from the table, reads raise StoreCorruptionError naming the missing seq."""
    with SQLiteEventStore(tmp_path / "e.db") as store:
        store.append_batch(run_events("r", 5))
    with sqlite3.connect(tmp_path / "e.db") as conn:
        conn.execute("DELETE FROM swarm_events WHERE run_id = 'r' AND seq = 3")
    conn.close()
    with SQLiteEventStore(tmp_path / "e.db") as store:
        assert [e.seq for e in store.load_since("r", 3)] == [4, 5]
        with pytest.raises(StoreCorruptionError, match="seq 3 is missing"):
            store.load("r")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database written by a newer schema version is refused rather than misread."""
    SQLiteEventStore(tmp_path / "e.db").close()
    with sqlite3.connect(tmp_path / "e.db") as conn:
        conn.execute("UPDATE swarm_meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(EventStoreError, match="version 99"):
        SQLiteEventStore(tmp_path / "e.db")


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    """Pointing the store at a non-SQLite file raises StoreCorruptionError and leaves the file as it was."""
    bogus = tmp_path / "notes.db"
    bogus.write_bytes(b"these are my notes, not a database\n" * 200)
    before = bogus.read_bytes()
    with pytest.raises(StoreCorruptionError, match="unreadable SQLite file: file is not a database") as info:
        SQLiteEventStore(bogus)
    assert info.value.location == str(bogus) and str(info.value).count(str(bogus)) == 1
    assert bogus.read_bytes() == before


@pytest.mark.parametrize("content", ["empty", "other tables"])
def test_a_read_only_open_of_a_file_that_is_no_event_store_says_what_it_is(
    tmp_path: Path, content: str
) -> None:
    """An empty file or another program's SQLite database, read-only: one plain sentence, file unchanged."""
    path = tmp_path / "events.db"
    path.touch()
    if content == "other tables":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE notes (x)")
    before = path.read_bytes()
    what = "an empty file" if content == "empty" else "an SQLite database without the event tables"
    with pytest.raises(EventStoreError) as info:
        SQLiteEventStore(path, read_only=True)
    assert str(info.value) == f"{path} is not an event store: it is {what}"
    assert path.read_bytes() == before


def test_shares_a_file_with_other_tables(tmp_path: Path) -> None:
    """The store's prefixed tables live beside other tables (e.g. a checkpointer) without touching them."""
    with sqlite3.connect(tmp_path / "e.db") as conn:
        conn.execute("CREATE TABLE events (x)")
        conn.execute("INSERT INTO events VALUES (42)")
    conn.close()
    with SQLiteEventStore(tmp_path / "e.db") as store:
        store.append(ev("r", 1))
        assert store.last_sequence("r") == 1
    with sqlite3.connect(tmp_path / "e.db") as conn:
        assert conn.execute("SELECT x FROM events").fetchall() == [(42,)]
    conn.close()


def test_read_only_in_memory_is_refused() -> None:
    """read_only with ":memory:" cannot work (it would be an empty database) and says so."""
    with pytest.raises(ValueError, match="memory"):
        SQLiteEventStore(":memory:", read_only=True)


def test_a_stored_record_that_does_not_parse_is_reported(tmp_path: Path) -> None:
    """A row whose JSON is no valid event makes reads raise StoreCorruptionError naming run and seq."""
    with SQLiteEventStore(tmp_path / "e.db") as store:
        store.append_batch(run_events("r", 5))
    with sqlite3.connect(tmp_path / "e.db") as conn:
        conn.execute(
            'UPDATE swarm_events SET data = replace(data, \'"timestamp":"2026\', \'"timestamp":"9x26\') '
            "WHERE run_id = 'r' AND seq = 4"
        )
    conn.close()
    with SQLiteEventStore(tmp_path / "e.db") as store:
        assert [e.seq for e in store.load_since("r", 4)] == [5]
        with pytest.raises(StoreCorruptionError, match="does not parse") as info:
            store.load("r")
        assert info.value.location.endswith("run 'r' seq 4")


def _filled(path: Path) -> list:
    runs = {f"run-{n}": run_events(f"run-{n}", 300, data={"pad": "p" * 300}) for n in range(3)}
    with SQLiteEventStore(path) as store:
        for events in runs.values():
            store.append_batch(events)
    return list(runs)


def _pages_of(path: Path, table: str) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT pageno FROM dbstat WHERE name = ?", (table,))]
    finally:
        conn.close()


def _every_read(store: SQLiteEventStore, runs: list) -> list:
    """Each read operation of the store; each is run and what it raised (or None) is returned."""
    outcomes = []
    calls = [store.runs, store.stats, store.query, store.check_integrity]
    calls += [lambda r=r: store.load(r) for r in runs] + [lambda r=r: store.last_sequence(r) for r in runs]
    for call in calls:
        try:
            call()
            outcomes.append(None)
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


@pytest.mark.parametrize("table", ["swarm_events", "swarm_runs", "swarm_events_id"])
@pytest.mark.parametrize("read_only", [False, True])
def test_page_damage_is_reported_as_store_corruption(tmp_path: Path, table: str, read_only: bool) -> None:
    """Item 5: garbage over a table's or index's page ends in StoreCorruptionError, never sqlite3's error."""
    path = tmp_path / "events.db"
    runs = _filled(path)
    page_size = 4096
    pages = _pages_of(path, table)
    data = bytearray(path.read_bytes())
    page = pages[len(pages) // 2]
    data[(page - 1) * page_size : page * page_size] = b"\xa5" * page_size
    path.write_bytes(bytes(data))
    try:
        store = SQLiteEventStore(path, read_only=read_only)
    except StoreCorruptionError as exc:
        assert str(path) in str(exc)
        return
    try:
        outcomes = _every_read(store, runs)
    finally:
        store.close()
    raised = [exc for exc in outcomes if exc is not None]
    assert raised, "a damaged page must not read as if nothing happened"
    for exc in raised:
        assert isinstance(exc, StoreCorruptionError), repr(exc)
        assert str(path) in str(exc) and "\n" not in str(exc)
    assert isinstance(outcomes[3], StoreCorruptionError), "check_integrity finds it wherever it is"


@pytest.mark.parametrize("value", ["abc", "", "1.5", "-1"])
def test_a_non_numeric_schema_version_is_store_corruption(tmp_path: Path, value: str) -> None:
    """A garbled schema_version row is named as damage in swarm_meta, on a writer and a reader alike."""
    path = tmp_path / "events.db"
    SQLiteEventStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE swarm_meta SET value = ? WHERE key = 'schema_version'", (value,))
    conn.commit()
    conn.close()
    for read_only in (False, True):
        with pytest.raises(StoreCorruptionError, match="schema_version") as info:
            SQLiteEventStore(path, read_only=read_only)
        assert info.value.location == f"{path} table swarm_meta"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("first_ts", "2026-01-01"),
        ("last_ts", 1.5),
        ("last_seq", "three"),
        ("last_type", b"\0"),
        ("first_ts", 10**15),
    ],
)
def test_a_bad_runs_row_is_store_corruption(tmp_path: Path, column: str, value: object) -> None:
    """A text timestamp (or other wrong type) in swarm_runs makes runs() raise our error naming the run."""
    path = tmp_path / "events.db"
    with SQLiteEventStore(path) as store:
        store.append_batch(run_events("r", 3))
    conn = sqlite3.connect(path)
    conn.execute(f"UPDATE swarm_runs SET {column} = ?", (value,))
    conn.commit()
    conn.close()
    with SQLiteEventStore(path, read_only=True) as store:
        with pytest.raises(StoreCorruptionError, match="swarm_runs row of run 'r'") as info:
            store.runs()
        assert info.value.location == f"{path} table swarm_runs run 'r'"
        assert as_bytes(store.load("r"))


def test_maintain_checkpoints_the_wal_once_enough_was_appended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """maintain() copies the WAL into the database file after CHECKPOINT_BYTES of appends, not before;
    the events read back the same, and on a closed store it does nothing."""
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_BYTES", 20_000)
    path = tmp_path / "e.db"
    store = SQLiteEventStore(path)
    events = run_events("a", 10)
    store.append_batch(events)
    empty = path.stat().st_size
    store.maintain()
    assert path.stat().st_size == empty  # under the threshold: still all in the WAL
    more = run_events("a", 100, first_seq=11)
    store.append_batch(more)
    store.maintain()
    assert path.stat().st_size > empty + 20_000
    assert as_bytes(store.load("a")) == as_bytes(events + more)
    store.close()
    store.maintain()


_OLDER_LAYOUT = """
CREATE TABLE swarm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE swarm_events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, type TEXT NOT NULL,
    ts INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID;
CREATE UNIQUE INDEX swarm_events_id ON swarm_events (id);
CREATE INDEX swarm_events_ts ON swarm_events (ts);
CREATE TABLE swarm_runs (run_id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL, last_type TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO swarm_meta VALUES ('schema_version', '1');
"""


def _layout(path: Path) -> tuple[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        (table,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'swarm_events'").fetchone()
        indexes = [row[1] for row in conn.execute("PRAGMA index_list(swarm_events)")]
        return table, sorted(indexes)
    finally:
        conn.close()


def test_a_new_file_keeps_events_in_a_rowid_table_unique_by_run_and_seq(tmp_path: Path) -> None:
    """New files append rows in rowid order; (run_id, seq) stays unique, so a repeated seq is refused."""
    path = tmp_path / "e.db"
    with SQLiteEventStore(path) as store:
        store.append_batch(run_events("a", 3))
    table, indexes = _layout(path)
    assert "WITHOUT ROWID" not in table
    assert "swarm_events_run_seq" in indexes
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO swarm_events (run_id, seq, id, type, ts, data) VALUES ('a', 2, 'x', 'log', 0, '{}')"
        )
    conn.close()
    with SQLiteEventStore(path) as store:  # reopening adds nothing
        assert store.last_sequence("a") == 3
    assert _layout(path) == (table, indexes)


def test_a_file_of_the_older_layout_is_read_and_appended_as_it_is(tmp_path: Path) -> None:
    """A WITHOUT ROWID file from before keeps its layout (no index added) and works as any store."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(_OLDER_LAYOUT)
    conn.close()
    before = _layout(path)
    events = run_events("a", 5)
    with SQLiteEventStore(path) as store:
        store.append_batch(events[:2])
        store.append_batch(events[2:])
        assert as_bytes(store.load("a")) == as_bytes(events)
        with pytest.raises(SequenceConflictError):
            store.append_batch(run_events("a", 1, first_seq=5))
    assert _layout(path) == before
