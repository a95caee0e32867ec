"""``Projection``: the DuckDB analytics database, rebuilt from the event log or kept current by a tailer.

The event log is the source of truth; this database is a derived view that can be deleted and rebuilt
at any time (:meth:`Projection.rebuild`) to identical tables. The tailer (:meth:`Projection.catch_up`,
:meth:`Projection.follow`, :meth:`Projection.start`) applies new events in batches, each one DuckDB
transaction that inserts the events, recomputes the derived rows of exactly the runs, invocations
and scopes they touch, and advances ``projection_state`` (the last projected seq per run). A crash or
SIGKILL mid-batch rolls the whole batch back, so the next start resumes from the last committed seq
and nothing is counted twice; a batch that would not continue a run's seq exactly is refused.

DuckDB lets one process write a database file, or several read it, not both at once. In-process
readers (``swarm-obs serve``) use :meth:`Projection.query` and :meth:`Projection.stats` on the
tailer's own connection; ``swarm-obs project --follow`` releases the file between polls so that
``swarm-obs stats`` and ``query`` in other processes can open it read-only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..exceptions import StoreCorruptionError, SwarmObservabilityError
from ..stores.base import EventStore
from . import schema
from ._duckdb import require_duckdb
from .source import EventSource

logger = logging.getLogger("swarm_observability")

DEFAULT_DB_NAME = "analytics.duckdb"
"""File name of the analytics database beside an on-disk store."""

_REBUILD_CHUNK = 100_000
_READ_JSON = (
    "read_json(?, format='newline_delimited', maximum_object_size=67108864, columns={columns})"
).format(columns="{" + ", ".join(f"'{k}': '{v}'" for k, v in schema.EVENT_COLUMNS.items()) + "}")


class AnalyticsError(SwarmObservabilityError):
    """The analytics database cannot be used as asked (locked, from another schema, a bad query)."""


def default_db_path(store: EventStore) -> Path:
    """``analytics.duckdb`` beside the store's file (SQLite) or in its folder (JSONL).

    Raises:
        AnalyticsError: the store is not on disk (pass a database path explicitly).
    """
    path = getattr(store, "path", None)
    if not path:
        raise AnalyticsError("an in-memory event store has no folder: give the analytics database a path")
    path = Path(path)
    return (path if path.is_dir() else path.parent) / DEFAULT_DB_NAME


class Projection:
    """The analytics database of one event store, and its incremental tailer.

    Args:
        store: the event log to project (read only).
        path: the DuckDB file; created with its tables when missing.
        batch_size: most events applied in one transaction by :meth:`catch_up`.

    Raises:
        AnalyticsError: the file is locked by another process, or holds tables of another schema
            version (rebuild it with :meth:`rebuild`).
        AnalyticsUnavailableError: DuckDB is not installed (the ``analytics`` extra).
    """

    def __init__(self, store: EventStore, path: str | os.PathLike[str], *, batch_size: int = 50_000) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self._duckdb = require_duckdb()
        self.store = store
        self.path = Path(path).expanduser().absolute()
        self.batch_size = batch_size
        self._source = EventSource(store)
        self._lock = threading.RLock()
        self._tmp = Path(tempfile.mkdtemp(prefix="swarm-obs-projection-"))
        self._conn: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        try:
            self._connect()
        except BaseException:
            self._source.close()
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise

    # -- connection ---------------------------------------------------------------------------------

    def _connect(self) -> Any:
        with self._lock:
            if self._conn is None:
                self._conn = open_database(self.path, writable=True, allowed_dir=self._tmp)
            return self._conn

    def release(self) -> None:
        """Close the database file until the next call that needs it, so other processes can read it."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def close(self) -> None:
        """Stop the background tailer (if started) and close the database; idempotent."""
        self.stop()
        with self._lock:
            self.release()
            self._source.close()
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Projection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def cursor(self) -> Any:
        """A new DuckDB cursor on this database (thread-safe: one per reader thread)."""
        return self._connect().cursor()

    # -- tailing ------------------------------------------------------------------------------------

    def pending(self) -> dict[str, tuple[int, int]]:
        """Runs with events not projected yet: ``run_id -> (last projected seq, last stored seq)``."""
        heads = self._source.heads()
        with self._lock:
            done = dict(self._connect().execute("SELECT run_id, last_seq FROM projection_state").fetchall())
        return {
            run: (done.get(run, 0), last) for run, last in sorted(heads.items()) if last > done.get(run, 0)
        }

    def step(self, max_events: int | None = None) -> int:
        """Apply at most ``max_events`` (default :attr:`batch_size`) new events in one transaction.

        Returns the number of events applied (0: up to date).
        """
        budget = self.batch_size if max_events is None else max(1, max_events)
        with self._lock:
            blobs: list[bytes] = []
            for run_id, (done, last) in self.pending().items():
                blobs += self._source.read(run_id, done, min(last - done, budget - len(blobs)))
                if len(blobs) >= budget:
                    break
            if not blobs:
                return 0
            self._apply(blobs)
            return len(blobs)

    def catch_up(self, max_events: int | None = None) -> int:
        """Apply every event stored so far (in batches); return how many were applied."""
        total = 0
        while (max_events is None or total < max_events) and (
            applied := self.step(None if max_events is None else min(self.batch_size, max_events - total))
        ):
            total += applied
        return total

    def follow(
        self,
        stop: threading.Event | None = None,
        *,
        interval: float = 0.5,
        release: bool = False,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """Keep the database current until ``stop`` is set; return the events applied.

        Waits with the store's ``wait_for_append(timeout)`` when it has one (PostgreSQL's NOTIFY),
        else polls every ``interval`` seconds. With ``release`` the file is closed while idle, so other
        processes can read it. A failing batch is logged and retried at the next poll, except for
        what a retry cannot mend (a database of another schema, a log that does not continue the
        projected seq), which is raised.
        """
        stop = stop or self._stop
        total = 0
        wait = getattr(self.store, "wait_for_append", None)
        while not stop.is_set():
            try:
                applied = self.catch_up()
            except (AnalyticsError, StoreCorruptionError):
                raise
            except Exception:
                logger.exception("swarm_observability: analytics projection batch failed; retrying")
                applied = 0
            total += applied
            if applied and on_batch is not None:
                on_batch(applied)
            if release:
                self.release()
            if callable(wait):
                wait(interval)
            else:
                stop.wait(interval)
        return total

    def start(self, *, interval: float = 0.5) -> None:
        """Run :meth:`follow` in a daemon thread (for ``serve``) until :meth:`stop` or :meth:`close`."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._follow_logged, args=(interval,), name="swarm-obs-projection", daemon=True
            )
            self._thread.start()

    def _follow_logged(self, interval: float) -> None:
        try:
            self.follow(interval=interval)
        except Exception:
            logger.exception("swarm_observability: the analytics tailer stopped")

    def stop(self) -> None:
        """Stop the background tailer started by :meth:`start` (after its current batch)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        self._thread = None

    # -- reading ------------------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one read-only statement (SELECT, WITH, ...); return column names and rows."""
        from .insights import run_query

        return run_query(self.cursor(), sql, params)

    def stats(self, since: Any = None) -> dict[str, Any]:
        """:func:`swarm_observability.analytics.stats` on this database."""
        from .insights import stats

        return stats(self.cursor(), since)

    # -- the batch transaction ------------------------------------------------------------------------

    def _apply(self, blobs: list[bytes]) -> None:
        conn = self._connect()
        tmp = _write_json(self._tmp, b"\n".join(blobs))
        try:
            conn.execute("BEGIN TRANSACTION")
            try:
                _apply_batch(conn, str(tmp))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            tmp.unlink(missing_ok=True)

    # -- rebuild --------------------------------------------------------------------------------------

    @classmethod
    def rebuild(cls, store: EventStore, path: str | os.PathLike[str]) -> int:
        """Build the database at ``path`` from the event log alone; return the number of events.

        The new database is built beside the old one and moved over it when complete, so a crash
        leaves the previous database (or none) and readers never see a half-built one.

        Raises:
            AnalyticsError: another process has the database open (stop its tailer first).
        """
        require_duckdb()
        target = Path(path).expanduser().absolute()
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            open_database(target, writable=True).close()  # refuses while another process holds it
        building = target.with_name(target.name + ".rebuild")
        for stale in (building, Path(f"{building}.wal")):
            stale.unlink(missing_ok=True)
        source = EventSource(store)
        tmp_dir = Path(tempfile.mkdtemp(prefix="swarm-obs-rebuild-"))
        conn = open_database(building, writable=True, allowed_dir=tmp_dir, ordered=False)
        total = 0
        try:
            conn.execute("BEGIN TRANSACTION")  # one commit: ~20% less CPU than one per chunk
            for tmp, count in _staged(source, tmp_dir):
                conn.execute(f"INSERT INTO events {schema.ingest_select(_READ_JSON)}", [str(tmp)])
                tmp.unlink()
                total += count
            _check_gapless(conn, "events")
            conn.execute(f"INSERT INTO runs {schema.runs_select('events')}")
            conn.execute(f"INSERT INTO invocations {schema.invocations_select('events')}")
            conn.execute(f"INSERT INTO scopes {schema.scopes_select('events')}")
            conn.execute(f"INSERT INTO errors {schema.errors_select('events')}")
            conn.execute("INSERT INTO projection_state SELECT run_id, max(seq) FROM events GROUP BY run_id")
            conn.execute("COMMIT")
            conn.execute("CHECKPOINT")
        except BaseException:
            conn.close()
            building.unlink(missing_ok=True)
            raise
        finally:
            source.close()
            shutil.rmtree(tmp_dir, ignore_errors=True)
        conn.close()
        Path(f"{target}.wal").unlink(missing_ok=True)
        os.replace(building, target)
        return total


def open_database(
    path: Path, *, writable: bool, allowed_dir: Path | None = None, wait: float = 5.0, ordered: bool = True
) -> Any:
    """Open the analytics database, creating its tables when ``writable``; retry a lock for ``wait`` s.

    File access from SQL is switched off (only ``allowed_dir``, the tailer's own staging folder, stays
    readable), so a query can neither read nor write files outside the database. ``ordered=False``
    lets DuckDB insert in parallel without keeping the input order (rows are compared sorted anyway).

    Raises:
        AnalyticsError: missing (read-only), locked past ``wait``, or of another schema version.
    """
    duckdb = require_duckdb()
    if not writable and not path.is_file():
        raise AnalyticsError(f"no analytics database at {path} (build it with `swarm-obs rebuild-db`)")
    deadline = time.monotonic() + wait
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=not writable)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise AnalyticsError(f"cannot open the analytics database {path}: {exc}") from exc
            time.sleep(0.05)
        except duckdb.Error as exc:
            raise AnalyticsError(f"cannot open the analytics database {path}: {exc}") from exc
    try:
        if writable:
            _ensure_schema(conn, path)
        else:
            _check_version(conn, path)
        if allowed_dir is not None:
            conn.execute("SET allowed_directories = ?", [[f"{allowed_dir}/"]])
        if not ordered:
            conn.execute("SET preserve_insertion_order = false")
        conn.execute("SET enable_progress_bar = false")
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")
    except BaseException:
        conn.close()
        raise
    return conn


def _ensure_schema(conn: Any, path: Path) -> None:
    tables = {row[0] for row in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if tables and "projection_meta" not in tables:
        raise AnalyticsError(f"{path} is not an analytics database of swarm-observability")
    conn.execute("BEGIN TRANSACTION")
    for statement in schema.DDL.split(";"):
        if statement.strip():
            conn.execute(statement)
    if not conn.execute("SELECT count(*) FROM scope_types").fetchone()[0]:
        conn.executemany("INSERT INTO scope_types VALUES (?, ?, ?)", list(schema.SCOPE_TYPES))
    conn.execute(
        "INSERT INTO projection_meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING",
        [schema.SCHEMA_VERSION],
    )
    conn.execute("COMMIT")
    _check_version(conn, path)


def _check_version(conn: Any, path: Path) -> None:
    try:
        row = conn.execute("SELECT value FROM projection_meta WHERE key = 'schema_version'").fetchone()
    except Exception as exc:
        raise AnalyticsError(f"{path} is not an analytics database of swarm-observability") from exc
    if row is None or row[0] != schema.SCHEMA_VERSION:
        found = None if row is None else row[0]
        raise AnalyticsError(
            f"{path} has analytics schema {found!r}, this release writes {schema.SCHEMA_VERSION!r}: "
            "rebuild it with `swarm-obs rebuild-db`"
        )


def _write_json(folder: Path, text: bytes) -> Path:
    fd, name = tempfile.mkstemp(suffix=".ndjson", dir=folder)
    with os.fdopen(fd, "wb") as file:
        file.write(text)
    return Path(name)


def _staged(source: EventSource, folder: Path) -> Iterator[tuple[Path, int]]:
    """Chunks of the log staged as NDJSON files by a reader thread, so that reading the store and
    DuckDB's parsing of the previous chunk overlap (both release the GIL)."""
    chunks: queue.Queue[tuple[Path, int] | BaseException | None] = queue.Queue(maxsize=2)
    done = threading.Event()

    def produce() -> None:
        try:
            for text, count in source.read_all(_REBUILD_CHUNK):
                if done.is_set():
                    return
                chunks.put((_write_json(folder, text), count))
            chunks.put(None)
        except BaseException as exc:
            chunks.put(exc)

    reader = threading.Thread(target=produce, name="swarm-obs-rebuild-reader", daemon=True)
    reader.start()
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        done.set()
        while reader.is_alive():
            with contextlib.suppress(queue.Empty):
                chunks.get(timeout=0.05)
        reader.join()


def _check_gapless(conn: Any, table: str) -> None:
    bad = conn.execute(
        f"SELECT run_id, min(seq), max(seq), count(*), count(DISTINCT seq) FROM {table} GROUP BY run_id "
        "HAVING min(seq) <> 1 OR max(seq) <> count(*) OR count(DISTINCT seq) <> count(*) LIMIT 1"
    ).fetchone()
    if bad is not None:
        raise StoreCorruptionError(
            f"run {bad[0]!r}: the log read for the projection is not gapless "
            f"(seq {bad[1]}..{bad[2]}, {bad[3]} events); check it with `swarm-obs verify`"
        )


_KEYS = """
CREATE TEMP TABLE _k_runs AS SELECT DISTINCT run_id FROM _new;
CREATE TEMP TABLE _k_inv AS SELECT DISTINCT run_id, invocation_id FROM _new WHERE invocation_id IS NOT NULL;
CREATE TEMP TABLE _k_scopes AS
    SELECT DISTINCT n.run_id, n.scope_id FROM _new n JOIN scope_types k ON k.type = n.type
    WHERE n.scope_id IS NOT NULL;
"""
_TEMP_TABLES = ("_new", "_k_runs", "_k_inv", "_k_scopes", "_scope_events")


def _apply_batch(conn: Any, json_path: str) -> None:
    """Insert one staged batch and recompute the derived rows it touches (inside a transaction)."""
    conn.execute(f"CREATE TEMP TABLE _new AS {schema.ingest_select(_READ_JSON)}", [json_path])
    bad = conn.execute(
        """SELECT n.run_id, min(n.seq), max(n.seq), count(*), count(DISTINCT n.seq), any_value(p.last_seq)
        FROM _new n LEFT JOIN projection_state p ON p.run_id = n.run_id GROUP BY n.run_id
        HAVING min(n.seq) <> coalesce(any_value(p.last_seq), 0) + 1
            OR max(n.seq) - min(n.seq) + 1 <> count(*) OR count(DISTINCT n.seq) <> count(*) LIMIT 1"""
    ).fetchone()
    if bad is not None:
        _drop_temp(conn)
        raise StoreCorruptionError(
            f"run {bad[0]!r}: events {bad[1]}..{bad[2]} do not continue the projected seq {bad[5] or 0}; "
            "nothing was applied"
        )
    conn.execute("INSERT INTO events SELECT * FROM _new")
    for statement in _KEYS.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("DELETE FROM runs WHERE run_id IN (SELECT run_id FROM _k_runs)")
    conn.execute(
        "INSERT INTO runs "
        + schema.runs_select("(SELECT e.* FROM events e SEMI JOIN _k_runs k ON k.run_id = e.run_id)")
    )
    conn.execute(
        "DELETE FROM invocations i USING _k_inv k"
        " WHERE i.run_id = k.run_id AND i.invocation_id = k.invocation_id"
    )
    conn.execute(
        "INSERT INTO invocations "
        + schema.invocations_select(
            "(SELECT e.* FROM events e SEMI JOIN _k_inv k"
            " ON k.run_id = e.run_id AND k.invocation_id = e.invocation_id)"
        )
    )
    conn.execute(
        "DELETE FROM scopes s USING _k_scopes k WHERE s.run_id = k.run_id AND s.scope_id = k.scope_id"
    )
    conn.execute(
        "CREATE TEMP TABLE _scope_events AS SELECT e.* FROM events e SEMI JOIN _k_scopes k"
        " ON k.run_id = e.run_id AND k.scope_id = e.scope_id"
    )
    conn.execute(f"INSERT INTO scopes {schema.scopes_select('_scope_events')}")
    conn.execute(f"INSERT INTO errors {schema.errors_select('_new')}")
    conn.execute(
        "INSERT INTO projection_state SELECT run_id, max(seq) FROM _new GROUP BY run_id "
        "ON CONFLICT (run_id) DO UPDATE SET last_seq = excluded.last_seq"
    )
    _drop_temp(conn)


def _drop_temp(conn: Any) -> None:
    for table in _TEMP_TABLES:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
