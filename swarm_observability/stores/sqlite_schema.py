"""What a SQLite event-store file holds: the tables, their version, opening a file as a store.

Layout (tables are prefixed so the store can share a file with LangGraph's checkpointer)::

    swarm_events(run_id, seq, id, type, ts, data)  rowid table, UNIQUE(run_id, seq), UNIQUE(id),
                                                  INDEX(ts); data = event.to_json_bytes()
    swarm_runs(run_id, last_seq, first_ts, last_ts, last_type)   one row per run, same transaction
    swarm_meta(key, value)                                        schema_version

``ts`` is milliseconds since the epoch (UTC), which is what ``query(since=...)`` compares.

Files created before this layout keep ``swarm_events`` as a ``WITHOUT ROWID`` table keyed by
``(run_id, seq)``; every statement names its columns, so both layouts are read and written alike
(by older releases too: the schema version is the same). The rowid table is the new default because
a run's rows arrive together under a random run id: keyed by ``(run_id, seq)`` they land in the
middle of the tree, splitting pages half full, while rowid order appends them at its end. For a
chain50 run (102 events, ~60 KB) that is 34 instead of 43 WAL pages a commit, ~1.2 instead of
~1.8 ms for its INSERT and COMMIT, and reads by run of 0.9 instead of 2.4 us a row (fuller pages).
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta

from ..exceptions import EventStoreError, StoreCorruptionError
from .base import one_line

SCHEMA_VERSION = 1
"""The newest schema version this release creates and reads."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}
"""``PRAGMA synchronous`` for each ``durability`` of :class:`SQLiteEventStore`."""

MAX_SEQ_SQL = "SELECT max(seq) FROM swarm_events WHERE run_id = ?"
PAGE_SQL = "SELECT seq, data FROM swarm_events WHERE run_id = ? AND seq >= ? ORDER BY seq LIMIT ?"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS swarm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS swarm_events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    ts INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS swarm_events_id ON swarm_events (id);
CREATE INDEX IF NOT EXISTS swarm_events_ts ON swarm_events (ts);
CREATE TABLE IF NOT EXISTS swarm_runs (
    run_id TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL,
    first_ts INTEGER NOT NULL,
    last_ts INTEGER NOT NULL,
    last_type TEXT NOT NULL
) WITHOUT ROWID;
"""


_RUN_SEQ_INDEX = "CREATE UNIQUE INDEX swarm_events_run_seq ON swarm_events (run_id, seq)"


def open_database(
    target: str, *, uri: bool, location: str, busy_timeout: float, durability: str | None
) -> sqlite3.Connection:
    """A connection to ``target`` holding an event store this release reads.

    A writer (``durability`` given: a key of :data:`SYNCHRONOUS`) turns on WAL and creates the
    tables if they are missing, in one transaction; a reader (``None``) changes nothing.

    Raises:
        StoreCorruptionError: the file is damaged, not a database, or its version is not a number.
        EventStoreError: it cannot be opened, or has no schema (read-only) or a newer one.
    """
    try:
        conn = sqlite3.connect(
            target, timeout=busy_timeout, isolation_level=None, check_same_thread=False, uri=uri
        )
    except sqlite3.Error as exc:
        raise EventStoreError(f"cannot open event store {location}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        if durability is not None:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {SYNCHRONOUS[durability]}")
            conn.execute("BEGIN IMMEDIATE")
            try:
                new = not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'swarm_events'").fetchone()
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                if new:  # a file of the older layout has (run_id, seq) as its primary key already
                    conn.execute(_RUN_SEQ_INDEX)
                conn.execute(
                    "INSERT OR IGNORE INTO swarm_meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        row = None
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'swarm_meta'").fetchone():
            row = conn.execute("SELECT value FROM swarm_meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        if is_corruption(exc):
            raise StoreCorruptionError(f"unreadable SQLite file: {one_line(exc)}", location) from exc
        raise EventStoreError(f"cannot open event store {location}: {exc}") from exc
    version = None if row is None else row[0]
    if version is not None and (version.__class__ is not str or not version.isdigit()):
        conn.close()
        raise StoreCorruptionError(
            f"{location}: swarm_meta holds schema_version {version!r}, not a version number",
            f"{location} table swarm_meta",
        )
    if version is None or int(version) > SCHEMA_VERSION:
        conn.close()
        if version is None:
            what = "an empty file" if _is_empty(location) else "an SQLite database without the event tables"
            raise EventStoreError(f"{location} is not an event store: it is {what}")
        raise EventStoreError(
            f"{location} has event-store schema version {version}; this release reads {SCHEMA_VERSION}"
        )
    return conn


def _is_empty(location: str) -> bool:
    try:
        return os.path.getsize(location) == 0
    except OSError:
        return False


def is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """Damage (a malformed page, not a database at all) rather than a lock, a full disk or a bug of ours."""
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or type(exc) is sqlite3.DatabaseError


def to_ms(value: datetime) -> int:
    """A timestamp as the ``ts`` column holds it (rounded down to the millisecond)."""
    return (value - EPOCH) // MS


def from_ms(value: int) -> datetime:
    """The UTC datetime of a ``ts`` column value."""
    return EPOCH + value * MS
