"""``SQLiteEventStore``: the default persistent event log, one SQLite file in WAL mode.

Layout (tables are prefixed so the store can share a file with LangGraph's checkpointer)::

    swarm_events(run_id, seq, id, type, ts, data)  PRIMARY KEY(run_id, seq) WITHOUT ROWID
                                                  UNIQUE(id), INDEX(ts); data = event.to_json_bytes()
    swarm_runs(run_id, last_seq, first_ts, last_ts, last_type)   one row per run, same transaction
    swarm_meta(key, value)                                        schema_version

``ts`` is milliseconds since the epoch (UTC), which is what ``query(since=...)`` compares.

Every append is one ``BEGIN IMMEDIATE`` transaction: read ``max(seq)`` of each run in the batch, check
the batch against it, insert, ``COMMIT``. The write lock is taken before the check, so several store
objects, threads or processes can append to one file and the per-run seq stays gapless; a failed append
rolls back and leaves nothing behind. ``append`` returns after ``COMMIT``: returned means durable as far
as ``durability`` promises (see :class:`SQLiteEventStore`).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from .._fork import abandon, reinit_after_fork
from ..events import EventType, StreamEvent
from ..exceptions import DuplicateEventError, EventStoreError, StoreClosedError, StoreCorruptionError
from .base import PagedReads, RunInfo, StoreStats, batch_events, check_batch, one_line, query_filter

logger = logging.getLogger("swarm_observability")

SCHEMA_VERSION = 1
_PAGE = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}
_SIZE_PRAGMAS = ("page_count", "page_size")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS swarm_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS swarm_events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    ts INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
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

_MAX_SEQ = "SELECT max(seq) FROM swarm_events WHERE run_id = ?"
_PAGE_SQL = "SELECT seq, data FROM swarm_events WHERE run_id = ? AND seq >= ? ORDER BY seq LIMIT ?"
_ROW_PARAMS = 6
_MAX_ROWS = 256
_INSERTS = {
    rows: "INSERT INTO swarm_events (run_id, seq, id, type, ts, data) VALUES "
    + ", ".join(("(?, ?, ?, ?, ?, ?)",) * rows)
    for rows in (1 << power for power in range(_MAX_ROWS.bit_length()))
}
_UPSERT_RUN = """
INSERT INTO swarm_runs (run_id, last_seq, first_ts, last_ts, last_type) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (run_id) DO UPDATE SET
    last_seq = excluded.last_seq, last_ts = excluded.last_ts, last_type = excluded.last_type
"""


class SQLiteEventStore(PagedReads):
    """Event log in one SQLite database file (WAL journal), safe for many threads and processes.

    Args:
        path: the database file (parent folders are created), or ``":memory:"`` for a private
            in-memory database.
        durability: ``"full"`` (default) sets ``PRAGMA synchronous=FULL``: every commit is fsynced,
            so an acknowledged event survives a process kill *and* a power loss or OS crash (if the
            disk honours flushes). ``"normal"`` sets ``synchronous=NORMAL``: several times faster per
            commit; acknowledged events still survive SIGKILL/OOM kills (SQLite's WAL guarantee), but a
            power loss may roll back the last commits (never leaving a gap or a partial batch).
        busy_timeout: seconds to wait for another process's write lock before failing.
        read_only: open an existing database without write access (for dashboards and the CLI
            while a scan writes); appends raise :class:`EventStoreError`.

    One connection per store object, guarded by a lock; pages of rows are fetched under the lock and
    parsed outside it, so readers and writers in other threads interleave.
    """

    backend = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Literal["full", "normal"] = "full",
        busy_timeout: float = 5.0,
        read_only: bool = False,
    ) -> None:
        if durability not in _SYNCHRONOUS:
            raise ValueError(f"durability must be 'full' or 'normal', not {durability!r}")
        self.durability = durability
        self.read_only = read_only
        in_memory = str(path) == ":memory:"
        if in_memory and read_only:
            raise ValueError("read_only=True needs a database file; ':memory:' starts empty")
        self.path: Path | None = None if in_memory else Path(path).expanduser().absolute()
        """The database file, ``None`` for ``:memory:``."""
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._busy_timeout = busy_timeout
        self._closed = False
        self._forked = False
        self._conn = self._connect(busy_timeout)
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: new locks; the connections are re-opened on first use (never shared)."""
        self._lock = threading.Lock()
        self._read_lock = threading.Lock()
        abandon(self._reader)
        self._reader = None
        self._forked = True

    def _connect(self, busy_timeout: float) -> sqlite3.Connection:
        if self.path is None:
            target, uri = ":memory:", False
        elif self.read_only:
            if not self.path.is_file():
                raise EventStoreError(f"no event store at {self.path} (opened read-only)")
            target, uri = f"{self.path.as_uri()}?mode=ro", True
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target, uri = str(self.path), False
        try:
            conn = sqlite3.connect(
                target, timeout=busy_timeout, isolation_level=None, check_same_thread=False, uri=uri
            )
        except sqlite3.Error as exc:
            raise EventStoreError(f"cannot open event store {target}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            if not self.read_only:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute(f"PRAGMA synchronous = {_SYNCHRONOUS[self.durability]}")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(
                        "INSERT OR IGNORE INTO swarm_meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            row = conn.execute("SELECT value FROM swarm_meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            if _is_corruption(exc):
                raise StoreCorruptionError(
                    f"cannot use {target} as an event store: {one_line(exc)}", str(target)
                ) from exc
            raise EventStoreError(f"cannot open event store {target}: {exc}") from exc
        version = None if row is None else row[0]
        if version is not None and (version.__class__ is not str or not version.isdigit()):
            conn.close()
            raise StoreCorruptionError(
                f"{self.location}: swarm_meta holds schema_version {version!r}, not a version number",
                f"{self.location} table swarm_meta",
            )
        if version is None or int(version) > SCHEMA_VERSION:
            conn.close()
            found = "no" if version is None else f"version {version}"
            raise EventStoreError(
                f"{target} has {found} event-store schema; this release reads version {SCHEMA_VERSION}"
            )
        self._max_rows = _max_rows(conn)
        return conn

    # -- writing ----------------------------------------------------------------------------------

    def append(self, event: StreamEvent) -> None:
        """Append one event; its ``seq`` must be ``last_sequence(run_id) + 1``."""
        self.append_batch((event,))

    def append_batch(self, events: Sequence[StreamEvent]) -> None:
        """Append events in one transaction: all are committed, or none and the error is raised."""
        events = batch_events(events)
        if not events:
            return
        params = _event_params(events)
        with self._lock:
            conn = self._open_conn()
            if self.read_only:
                raise EventStoreError(f"event store {self.location} is open read-only")
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise EventStoreError(f"cannot lock event store {self.location} for writing: {exc}") from exc
            try:
                check_batch(events, lookup_last=self._max_seq)
                _insert(conn, params, self._max_rows)
                conn.executemany(_UPSERT_RUN, _run_rows(params))
                conn.execute("COMMIT")
            except BaseException as exc:
                _rollback(conn)
                if isinstance(exc, sqlite3.IntegrityError):
                    raise self._duplicate(events) from exc
                if isinstance(exc, sqlite3.DatabaseError) and _is_corruption(exc):
                    raise self._corrupt(exc, "append") from exc
                if isinstance(exc, sqlite3.Error):
                    raise EventStoreError(f"append to {self.location} failed: {exc}") from exc
                raise

    def _max_seq(self, run_id: str) -> int:
        row = self._conn.execute(_MAX_SEQ, (run_id,)).fetchone()
        return row[0] or 0

    def _duplicate(self, events: Sequence[StreamEvent]) -> EventStoreError:
        for event in events:
            if self._conn.execute("SELECT 1 FROM swarm_events WHERE id = ?", (event.id,)).fetchone():
                return DuplicateEventError(event.id)
        return EventStoreError(f"append to {self.location} violated a constraint")

    # -- reading ----------------------------------------------------------------------------------

    def _pages(self, run_id: str, after_seq: int) -> Iterator[list[StreamEvent]]:
        expected = max(int(after_seq), 0) + 1
        while True:
            with self._lock, self._reading(f"run {run_id!r} from seq {expected}"):
                rows = self._open_conn().execute(_PAGE_SQL, (run_id, expected, _PAGE)).fetchall()
            if rows:
                if rows[0][0] != expected or rows[-1][0] != expected + len(rows) - 1:
                    missing = next(seq for seq, (found, _) in enumerate(rows, expected) if found != seq)
                    raise self._damage(f"run {run_id!r} has a gap: seq {missing} is missing", run_id, missing)
                try:
                    events = [StreamEvent.from_stored_json(data) for _, data in rows]
                except (ValueError, TypeError):
                    events = [self._parse(run_id, seq, data) for seq, data in rows]
                for event, (seq, _) in zip(events, rows, strict=True):
                    if event.seq != seq or event.run_id != run_id:
                        raise self._damage("stored event does not match its row (run id or seq)", run_id, seq)
                yield events
                expected += len(rows)
            if len(rows) < _PAGE:
                return

    def _parse(self, run_id: str, seq: int, data: bytes) -> StreamEvent:
        try:
            return StreamEvent.from_stored_json(data)
        except (ValueError, TypeError) as exc:
            raise self._damage(f"stored event does not parse: {one_line(exc)}", run_id, seq) from exc

    def _damage(self, message: str, run_id: str, seq: int) -> StoreCorruptionError:
        return StoreCorruptionError(message, f"{self.location} table swarm_events run {run_id!r} seq {seq}")

    def _corrupt(self, exc: sqlite3.Error, doing: str) -> StoreCorruptionError:
        return StoreCorruptionError(
            f"the SQLite file is damaged: {one_line(exc)}", f"{self.location}, {doing}"
        )

    @contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """SQLite's errors while reading ``what`` as ours: damage as :class:`StoreCorruptionError`."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if _is_corruption(exc):
                raise self._corrupt(exc, f"reading {what}") from exc
            raise EventStoreError(f"reading {what} from {self.location} failed: {exc}") from exc

    def check_integrity(self) -> None:
        """Run SQLite's ``PRAGMA quick_check`` over the whole file (every table and index page).

        Reads of a run only touch the pages they need; this finds damage anywhere, for ``verify``.

        Raises:
            StoreCorruptionError: the check reports problems (the first few are in the message).
        """
        with self._lock, self._reading("the whole file (quick_check)"):
            rows = self._open_conn().execute("PRAGMA quick_check(5)").fetchall()
        problems = [str(row[0]) for row in rows]
        if problems != ["ok"]:
            raise StoreCorruptionError(
                f"{self.location} fails SQLite's integrity check: {one_line(Exception('; '.join(problems)))}",
                f"{self.location} (quick_check)",
            )

    def last_sequence(self, run_id: str) -> int:
        """The last seq of a run, 0 for an unknown run.

        A database file open for writing answers through a second connection of its own, so this
        never waits for an append in progress: neither this store's (which may be waiting for
        another process's write lock) nor another process's, as a WAL reader never waits for
        writers. The emitter relies on that for the first event of a run.
        """
        if self.path is None or self.read_only:
            with self._lock, self._reading(f"the last seq of run {run_id!r}"):
                self._open_conn()
                return self._max_seq(run_id)
        with self._read_lock:
            if self._closed:
                raise StoreClosedError(f"the SQLite event store {self.location} is closed")
            try:
                if self._reader is None:
                    self._reader = sqlite3.connect(
                        self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
                    )
                row = self._reader.execute(_MAX_SEQ, (run_id,)).fetchone()
            except sqlite3.DatabaseError as exc:
                if _is_corruption(exc):
                    raise self._corrupt(exc, f"reading the last seq of run {run_id!r}") from exc
                raise EventStoreError(f"cannot read event store {self.location}: {exc}") from exc
            except sqlite3.Error as exc:
                raise EventStoreError(f"cannot read event store {self.location}: {exc}") from exc
        return row[0] or 0

    def query(
        self,
        run_id: str | None = None,
        types: Iterable[EventType | str] | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[StreamEvent]:
        """Newest-first (timestamp, seq, run id) events filtered by run, types and ``timestamp >= since``."""
        checked = query_filter(types, since, limit)
        wanted, since = checked.types, checked.since
        where, params = [], []
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if wanted is not None:
            if not wanted:
                return []
            where.append(f"type IN ({', '.join('?' * len(wanted))})")
            params.extend(sorted(wanted))
        if since is not None:
            where.append("ts >= ?")
            params.append(_to_ms(since) + (1 if since.microsecond % 1000 else 0))
        sql = "SELECT run_id, seq, data FROM swarm_events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts DESC, seq DESC, run_id DESC"
        if checked.limit is not None:
            sql += " LIMIT ?"
            params.append(checked.limit)
        with self._lock, self._reading("a query"):
            rows = self._open_conn().execute(sql, params).fetchall()
        return [self._parse(run, seq, data) for run, seq, data in rows]

    def runs(self) -> list[RunInfo]:
        """Every run with its event count and first/last timestamps, oldest first."""
        sql = "SELECT run_id, last_seq, first_ts, last_ts, last_type FROM swarm_runs ORDER BY first_ts, 1"
        with self._lock, self._reading("the runs table"):
            rows = self._open_conn().execute(sql).fetchall()
        return [self._run_info(row) for row in rows]

    def _run_info(self, row: tuple[object, ...]) -> RunInfo:
        run, count, first, last, kind = row
        for column, value, wanted in (
            ("run_id", run, str),
            ("last_seq", count, int),
            ("first_ts", first, int),
            ("last_ts", last, int),
            ("last_type", kind, str),
        ):
            if value.__class__ is not wanted:
                raise StoreCorruptionError(
                    f"{self.location}: swarm_runs row of run {run!r} has {column} = {value!r}, "
                    f"not {'an integer' if wanted is int else 'text'}",
                    f"{self.location} table swarm_runs run {run!r}",
                )
        try:
            return RunInfo(run, count, _from_ms(first), _from_ms(last), kind)  # type: ignore[arg-type]
        except (OverflowError, ValueError) as exc:
            raise StoreCorruptionError(
                f"{self.location}: swarm_runs row of run {run!r} has an impossible timestamp: {exc}",
                f"{self.location} table swarm_runs run {run!r}",
            ) from exc

    def stats(self) -> StoreStats:
        """Runs, events, the database path and its size on disk (database + WAL file)."""
        with self._lock, self._reading("the store's size"):
            conn = self._open_conn()
            runs, events = conn.execute("SELECT count(*), total(last_seq) FROM swarm_runs").fetchone()
            if self.path is None:
                pages, page_size = (conn.execute(f"PRAGMA {name}").fetchone()[0] for name in _SIZE_PRAGMAS)
                size = pages * page_size
            else:
                size = sum(_file_size(Path(f"{self.path}{suffix}")) for suffix in ("", "-wal"))
        return StoreStats(self.backend, runs, int(events), self.location, size)

    @property
    def location(self) -> str:
        """The database path as text (``:memory:`` for an in-memory database)."""
        return ":memory:" if self.path is None else str(self.path)

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; idempotent. Committed events stay in the file."""
        with self._lock, self._read_lock:
            if not self._closed:
                self._closed = True
                if not self._forked:
                    self._conn.close()
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None

    def __enter__(self) -> SQLiteEventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteEventStore({self.location!r}, durability={self.durability!r})"

    def _open_conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreClosedError(f"the SQLite event store {self.location} is closed")
        if self._forked:  # first use in a forked child: a connection of its own
            conn = self._connect(self._busy_timeout)
            abandon(self._conn)
            self._conn, self._forked = conn, False
        return self._conn


def _to_ms(value: datetime) -> int:
    return (value - _EPOCH) // _MS


def _from_ms(value: int) -> datetime:
    return _EPOCH + value * _MS


_TYPE_NAMES: dict[object, str] = {kind: kind.value for kind in EventType}


def _event_params(events: Sequence[StreamEvent]) -> list[object]:
    """The ``swarm_events`` values of a batch, row after row in one flat list: the per-event Python
    cost of an append, paid with the GIL held while the graph's thread waits for it."""
    params: list[object] = []
    last_ts, ms = None, 0
    for event in events:
        ts = event.timestamp
        if ts is not last_ts:  # the events of one millisecond share one datetime object
            last_ts, ms = ts, (ts - _EPOCH) // _MS
        kind = _TYPE_NAMES.get(event.type) or event.type_name
        params += (event.run_id, event.seq, event.id, kind, ms, event.to_json_bytes())
    return params


def _run_rows(params: list[object]) -> list[tuple[object, ...]]:
    """The ``swarm_runs`` upserts of a batch (see :func:`_event_params`), one per run: its last
    event, ``first_ts`` from its first."""
    end = len(params) - _ROW_PARAMS
    if len(set(params[0::_ROW_PARAMS])) == 1:
        return [(params[0], params[end + 1], params[4], params[end + 4], params[end + 3])]
    first: dict[object, object] = {}
    last: dict[object, int] = {}
    for start in range(0, end + 1, _ROW_PARAMS):
        run = params[start]
        if run not in first:
            first[run] = params[start + 4]
        last[run] = start
    return [(run, params[at + 1], first[run], params[at + 4], params[at + 3]) for run, at in last.items()]


def _insert(conn: sqlite3.Connection, params: list[object], max_rows: int) -> None:
    """Insert the rows of ``params`` with as few statements as the row count's binary digits.

    One ``execute`` of many rows rather than ``executemany``: the sqlite3 module releases the GIL
    around every step, and each step of a background writer means two GIL hand-offs with the thread
    running the graph; a 100-event batch takes 3 or 4 steps instead of 100. Statement sizes are
    powers of two up to ``max_rows`` (see :func:`_max_rows`), so a connection caches at most nine.
    """
    rows, start, size = len(params) // _ROW_PARAMS, 0, max_rows
    while rows:
        while size > rows:
            size >>= 1
        end = start + size * _ROW_PARAMS
        conn.execute(_INSERTS[size], params[start:end])
        start, rows = end, rows - size


def _max_rows(conn: sqlite3.Connection) -> int:
    """The most rows one ``INSERT`` takes: 256, or the largest power of two within the parameter
    limit of an SQLite built with a lower one (999 before 3.32)."""
    rows = _MAX_ROWS
    while rows > 1 and rows * _ROW_PARAMS > conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER):
        rows >>= 1
    return rows


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """Damage (a malformed page, not a database at all) rather than a lock, a full disk or a bug of ours."""
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or type(exc) is sqlite3.DatabaseError


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        logger.debug("rollback after a failed append failed too: %s", exc)


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
