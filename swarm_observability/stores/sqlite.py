"""``SQLiteEventStore``: the default persistent event log, one SQLite file in WAL mode.

The tables and opening a file as a store are in :mod:`.sqlite_schema`, the rows an append writes in
:mod:`.sqlite_write`.

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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from .._fork import abandon, reinit_after_fork
from ..events import StreamEvent, validate_run_id
from ..exceptions import DuplicateEventError, EventStoreError, StoreClosedError, StoreCorruptionError
from .base import PagedReads, QueryFilter, RunInfo, StoreStats, batch_events, check_batch, one_line
from .sqlite_schema import (
    MAX_SEQ_SQL,
    PAGE_SQL,
    SCHEMA_VERSION,
    SYNCHRONOUS,
    from_ms,
    is_corruption,
    open_database,
    to_ms,
)
from .sqlite_write import UPSERT_RUN, data_bytes, event_params, insert, max_rows, rollback, run_rows

__all__ = ["SCHEMA_VERSION", "SQLiteEventStore"]

logger = logging.getLogger("swarm_observability")

_PAGE = 1000
_SIZE_PRAGMAS = ("page_count", "page_size")
CHECKPOINT_BYTES = 1 << 20
"""Event data appended since the last checkpoint after which :meth:`SQLiteEventStore.maintain`
checkpoints: about 400 WAL pages, well before SQLite's own automatic checkpoint at 1000."""


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
        if durability not in SYNCHRONOUS:
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
        self._unchecked = 0
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
        conn = open_database(
            target,
            uri=uri,
            location=self.location,
            busy_timeout=busy_timeout,
            durability=None if self.read_only else self.durability,
        )
        self._max_rows = max_rows(conn)
        return conn

    # -- writing ----------------------------------------------------------------------------------

    def append_batch(self, events: Sequence[StreamEvent]) -> None:
        """Append events in one transaction: all are committed, or none and the error is raised."""
        events = batch_events(events)
        if not events:
            return
        params = event_params(events)
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
                insert(conn, params, self._max_rows)
                conn.executemany(UPSERT_RUN, run_rows(params))
                conn.execute("COMMIT")
                self._unchecked += data_bytes(params)
            except BaseException as exc:
                rollback(conn)
                if isinstance(exc, sqlite3.IntegrityError):
                    raise self._duplicate(events) from exc
                if isinstance(exc, sqlite3.DatabaseError) and is_corruption(exc):
                    raise self._corrupt(exc, "append") from exc
                if isinstance(exc, sqlite3.Error):
                    raise EventStoreError(f"append to {self.location} failed: {exc}") from exc
                raise

    def maintain(self) -> None:
        """Checkpoint the WAL into the database file once :data:`CHECKPOINT_BYTES` were appended since
        the last time; the hook a background writer calls when it has answered its waiters.

        SQLite checkpoints by itself inside the ``COMMIT`` that grows the WAL past 1000 pages (4 MB),
        so one run's wait for its events every ~40 chain50 runs took ~10 ms more (a copy of the WAL
        plus an fsync of the database file). Done here first, the copy runs while nobody waits for
        the writer. ``PASSIVE`` never waits for readers nor blocks them; SQLite's own checkpoint
        stays on for a store nobody calls this on. Durability is unchanged: a checkpoint only
        copies committed pages. A failure is logged, not raised (the next commit checkpoints).
        """
        if self._unchecked < CHECKPOINT_BYTES or self.read_only:
            return
        with self._lock:
            if self._closed or self._forked:
                return
            self._unchecked = 0
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error as exc:
                logger.debug("checkpoint of %s failed: %s", self.location, exc)

    def _max_seq(self, run_id: str) -> int:
        row = self._conn.execute(MAX_SEQ_SQL, (run_id,)).fetchone()
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
                rows = self._open_conn().execute(PAGE_SQL, (run_id, expected, _PAGE)).fetchall()
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
            if is_corruption(exc):
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
        validate_run_id(run_id)
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
                row = self._reader.execute(MAX_SEQ_SQL, (run_id,)).fetchone()
            except sqlite3.DatabaseError as exc:
                if is_corruption(exc):
                    raise self._corrupt(exc, f"reading the last seq of run {run_id!r}") from exc
                raise EventStoreError(f"cannot read event store {self.location}: {exc}") from exc
            except sqlite3.Error as exc:
                raise EventStoreError(f"cannot read event store {self.location}: {exc}") from exc
        return row[0] or 0

    def _query(self, run_id: str | None, checked: QueryFilter) -> list[StreamEvent]:
        wanted, since = checked.types, checked.since
        where: list[str] = []
        params: list[Any] = []
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if wanted is not None:
            if not wanted:
                with self._lock:
                    self._open_conn()  # closed: raise as every query does
                return []
            where.append(f"type IN ({', '.join('?' * len(wanted))})")
            params.extend(sorted(wanted))
        if since is not None:
            where.append("ts >= ?")
            params.append(to_ms(since) + (1 if since.microsecond % 1000 else 0))
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
            return RunInfo(run, count, from_ms(first), from_ms(last), kind)  # type: ignore[arg-type]
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


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
