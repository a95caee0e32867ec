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

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..exceptions import StoreCorruptionError
from ..stores.base import EventStore
from . import ingest, schema
from ._duckdb import is_interrupt, require_duckdb
from .database import AnalyticsError, open_database
from .ingest import READ_JSON, write_ndjson
from .source import EventSource

logger = logging.getLogger("swarm_observability")


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
        """Apply every event stored so far (in batches); return how many were applied.

        On a projection that holds no event yet, a backlog of more than one batch is loaded whole,
        as :meth:`rebuild` does, in one transaction (several times faster than batches); a crash
        rolls it back and the next start loads it again.
        """
        if max_events is None:
            with self._lock:
                conn = self._connect()
                empty = not conn.execute("SELECT count(*) FROM projection_state").fetchone()[0]
                if empty and sum(last for _, last in self.pending().values()) > self.batch_size:
                    return ingest.load_all(conn, self._source, self._tmp)
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
            except Exception as exc:
                if is_interrupt(exc):
                    raise KeyboardInterrupt from exc
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
        tmp = write_ndjson(self._tmp, b"\n".join(blobs))
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

    @staticmethod
    def rebuild(store: EventStore, path: str | os.PathLike[str]) -> int:
        """Build the database at ``path`` from the event log alone; return the number of events.

        The new database is built beside the old one and moved over it when complete, so a crash
        leaves the previous database (or none) and readers never see a half-built one.

        Raises:
            AnalyticsError: another process has the database open (stop its tailer first).
        """
        return ingest.rebuild(store, path)


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
    conn.execute(f"CREATE TEMP TABLE _new AS {schema.ingest_select(READ_JSON)}", [json_path])
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
