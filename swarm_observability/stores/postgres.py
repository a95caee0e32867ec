"""``PostgresEventStore``: the event log in a shared PostgreSQL database, for many workers and hosts.

Tables and migrations: :mod:`.postgres_schema`; the append statement: :mod:`.postgres_batch`. The
database enforces the log's rules: the primary key refuses a duplicate seq, and the append is an
expected-version append (a run's ``swarm_runs`` row moves only from the seq before the batch's first),
so no gap is ever committed and an append needs no read first. A refused batch is rolled back whole and
reported as :class:`SequenceConflictError` (with the run's seq as committed now) or
:class:`DuplicateEventError`. Two processes racing on one run: the loser waits on the winner's row lock
or primary key and fails, whichever way the race goes. After the commit a second statement sends
``pg_notify`` with the batch's runs (:meth:`PostgresEventStore._notify` says why apart).

Connections (a pool, the live tail's ``LISTEN``): :mod:`.postgres_connections`. A connection that dies
under an append (server restart, ``pg_terminate_backend``, network) is replaced and the append retried;
whether the lost round trip's ``COMMIT`` went through is told by the batch's event ids (unique), so a
batch is never stored twice nor reported failed while stored. Reads stream a run through a server-side
cursor in pages of 1000 events, so a million-event run is read in bounded memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC
from typing import Any

from ..events import StreamEvent, validate_run_id
from ..exceptions import DuplicateEventError, EventStoreError, SequenceConflictError, StoreCorruptionError
from .base import PagedReads, QueryFilter, RunInfo, StoreStats, batch_events, check_batch, option_value
from .postgres_batch import APPEND_SQL, NOTIFY_SQL, event_columns, notify_payload, run_columns, well_formed
from .postgres_connections import ATTEMPTS, PostgresConnections
from .postgres_schema import migrate, notify_channel, quote_ident, redact, split_url

logger = logging.getLogger("swarm_observability")

_PAGE = 1000


class PostgresEventStore(PagedReads):
    """Event log in PostgreSQL, shared by every process and host that opens the same database and schema.

    Args:
        url: a libpq URL, ``postgresql://user:password@host:port/dbname?sslmode=...``. Query parameters
            named in :data:`.postgres_schema.OPTIONS` are ours (``?schema=tenant_a&pool_size=8``);
            keyword arguments given explicitly win over them.
        schema: the schema holding the tables (default ``public``; created if missing, unless ``read_only``).
        pool_size: most connections this store object opens (threads reading and writing at once; 4).
        read_only: refuse appends and open only an existing store (for dashboards and the CLI).
        notify: ``pg_notify`` each committed batch, which :meth:`wait_for_append` (``tail --follow``, the
            server's live stream) listens to. Turn off when nothing tails the store live.
        connect_timeout: seconds to wait for the server when connecting (default: the URL's
            ``connect_timeout``, else 5). A free pooled connection is waited for at least 10 s.

    Raises:
        ImportError: psycopg is not installed (the message says which extra to install).
        EventStoreError: the server is unreachable, or (``read_only``) there is no store in the schema,
            or its schema version is newer than this release reads.

    ``append`` returns after ``COMMIT``, which with the server's default ``synchronous_commit=on`` means the
    batch is in the server's fsynced WAL: it survives a crash of this process, of the server and of its host.
    """

    backend = "postgres"

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        pool_size: int | None = None,
        read_only: bool | None = None,
        notify: bool | None = None,
        connect_timeout: float | None = None,
    ) -> None:
        conninfo, ours = split_url(url)
        schema = schema if schema is not None else ours.get("schema", "public")
        pool_size = int(pool_size if pool_size is not None else ours.get("pool_size", 4))
        read_only = option_value(read_only if read_only is not None else ours.get("read_only", False), bool)
        notify = option_value(notify if notify is not None else ours.get("notify", True), bool)
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, not {pool_size}")
        self._q = quote_ident(schema)
        self.schema = schema
        self.read_only = read_only
        self.notify = notify
        self.url = redact(conninfo)
        """The server URL without its password."""
        self._conninfo = conninfo
        self._sql = {name: text.format(s=self._q) for name, text in _SQL.items()}
        self._db = PostgresConnections(
            conninfo,
            location=self.location,
            pool_size=pool_size,
            read_only=read_only,
            connect_timeout=connect_timeout,
            name=f"swarm-obs-{schema}",
        )
        self._errors = self._db.errors
        self._operational = self._db.operational
        try:
            self._db.retrying(lambda conn: migrate(conn, schema, read_only=read_only, location=self.location))
        except BaseException:
            self._db.close()
            raise

    # -- writing ----------------------------------------------------------------------------------

    def append_batch(self, events: Sequence[StreamEvent]) -> None:
        """Append events in one transaction: all are committed, or none and the error is raised."""
        events = batch_events(events)
        if not events:
            return
        self._db.check_open()
        if self.read_only:
            raise EventStoreError(f"event store {self.location} is open read-only")
        runs = list(dict.fromkeys(event.run_id for event in events))
        for run in runs:
            validate_run_id(run)
        if not well_formed(events):
            raise self._conflict_now(events)
        params = (*event_columns(events), *run_columns(events))
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self._db.pooled() as conn:
                    # One statement in autocommit: its own transaction, one round trip. It does the
                    # expected-version check itself (postgres_batch.APPEND_SQL).
                    conn.autocommit = True
                    try:
                        conn.execute(self._sql["append"], params)
                        if self.notify:
                            self._notify(conn, runs)
                        return
                    except self._errors.UniqueViolation as exc:
                        raise self._unique_violation(conn, exc, events) from exc
                    except self._errors.CheckViolation as exc:
                        raise self._conflict_now(events, conn) from exc
                    except self._errors.ReadOnlySqlTransaction as exc:
                        raise EventStoreError(f"event store {self.location} is read-only: {exc}") from exc
                    finally:
                        if not conn.closed:
                            conn.autocommit = False
            except self._operational as exc:
                self._db.check_open(exc)
                # A lost connection, or the server rolled the statement back (a deadlock between two
                # writers racing on the same runs): retry, unless it died around a COMMIT that went through.
                if self._committed(events):
                    return
                if attempt == ATTEMPTS:
                    raise EventStoreError(f"append to {self.location} failed: {exc}") from exc
                logger.warning("append to %s did not complete (%s); retrying", self.location, exc)
            except self._errors.Error as exc:
                raise EventStoreError(f"append to {self.location} failed: {exc}") from exc

    def _notify(self, conn: Any, runs: list[str]) -> None:
        """``NOTIFY`` the committed batch's runs, in a transaction of its own after the append's.

        Not in the append's transaction: a transaction that notifies holds a lock global to the server
        from its ``COMMIT`` until its WAL is flushed, so every notifying append waited for the previous
        one's fsync and concurrent writers never shared one (group commit; measured: one WAL flush per
        commit at 4 and 8 writers). A transaction that only notifies writes no WAL before its commit
        record, so its ``COMMIT`` waits for no flush and holds that lock for microseconds. A failure
        is logged, not raised: the batch is committed, and a tail also wakes on its timeout.
        """
        try:
            conn.execute(self._sql["notify"], (self._channel, notify_payload(runs)))
        except self._errors.Error as exc:
            logger.warning("append to %s committed, but its NOTIFY failed: %s", self.location, exc)

    def _unique_violation(self, conn: Any, exc: Any, events: Sequence[StreamEvent]) -> EventStoreError:
        """The error a unique violation stands for: a stored event id, or a seq taken by a racing writer."""
        if exc.diag.constraint_name == "swarm_events_id" or "swarm_events_id" in str(exc):
            ids = [event.id for event in events]
            found = conn.execute(self._sql["find_ids"], (ids,)).fetchall()
            conn.rollback()
            stored = {row[0] for row in found}
            return DuplicateEventError(next((i for i in ids if i in stored), ids[0]))
        return self._conflict_now(events, conn)

    def _conflict_now(self, events: Sequence[StreamEvent], conn: Any = None) -> SequenceConflictError:
        """The :class:`SequenceConflictError` of ``events`` against the runs' seqs as committed now."""
        runs = list(dict.fromkeys(event.run_id for event in events))
        if conn is None:
            with self._db.pooled() as fresh:
                rows = fresh.execute(self._sql["last_seqs"], (runs,)).fetchall()
        else:
            rows = conn.execute(self._sql["last_seqs"], (runs,)).fetchall()
            conn.rollback()
        last = dict(rows)
        try:
            check_batch(events, last, lookup_last=lambda _: 0)
        except SequenceConflictError as exc:
            return exc
        first = events[0]
        return SequenceConflictError(first.run_id, last.get(first.run_id, 0) + 1, first.seq)

    def _committed(self, events: Sequence[StreamEvent]) -> bool:
        """After a connection died during ``COMMIT``: whether the batch is stored (all or nothing)."""
        ids = [event.id for event in events]
        found = self._db.retrying(lambda conn: conn.execute(self._sql["find_ids"], (ids,)).fetchall())
        if found and len(found) != len(set(ids)):
            raise StoreCorruptionError(
                f"a batch of {len(ids)} events is only partly stored ({len(found)})", self.location
            )
        return bool(found)

    # -- reading ----------------------------------------------------------------------------------

    def _pages(self, run_id: str, after_seq: int) -> Iterator[list[StreamEvent]]:
        """Pages of a run through a server-side cursor; a lost connection resumes after the last page."""
        expected = max(int(after_seq), 0) + 1
        failures = 0
        while True:
            self._db.check_open()
            try:
                with (
                    self._db.pooled() as conn,
                    conn.transaction(),
                    conn.cursor(name="swarm_obs_pages") as cur,
                ):
                    cur.execute(self._sql["page"], (run_id, expected))
                    while rows := cur.fetchmany(_PAGE):
                        yield self._parse_page(run_id, expected, rows)
                        expected += len(rows)
                        failures = 0
                return
            except self._operational as exc:
                failures += 1
                self._db.check_open(exc)
                if failures >= ATTEMPTS:
                    message = f"reading run {run_id!r} from {self.location} failed: {exc}"
                    raise EventStoreError(message) from exc

    def _parse_page(self, run_id: str, expected: int, rows: list[tuple[int, str]]) -> list[StreamEvent]:
        if rows[0][0] != expected or rows[-1][0] != expected + len(rows) - 1:
            missing = next(seq for seq, (found, _) in enumerate(rows, expected) if found != seq)
            raise self._damage(f"run {run_id!r} has a gap: seq {missing} is missing", run_id, missing)
        try:
            events = [StreamEvent.from_stored_json(data) for _, data in rows]
        except ValueError:
            events = [self._parse(run_id, seq, data) for seq, data in rows]
        for event, (seq, _) in zip(events, rows, strict=True):
            if event.seq != seq or event.run_id != run_id:
                raise self._damage("stored event does not match its row (run id or seq)", run_id, seq)
        return events

    def _parse(self, run_id: str, seq: int, data: str) -> StreamEvent:
        try:
            return StreamEvent.from_stored_json(data)
        except ValueError as exc:
            raise self._damage(f"stored event does not parse: {exc}", run_id, seq) from exc

    def _damage(self, message: str, run_id: str, seq: int) -> StoreCorruptionError:
        return StoreCorruptionError(message, f"{self.location} run {run_id!r} seq {seq}")

    def last_sequence(self, run_id: str) -> int:
        """The last seq of a run, 0 for an unknown run."""
        validate_run_id(run_id)
        row = self._db.retrying(lambda conn: conn.execute(self._sql["last_seq"], (run_id,)).fetchone())
        return int(row[0]) if row else 0

    def _query(self, run_id: str | None, checked: QueryFilter) -> list[StreamEvent]:
        where: list[str] = []
        params: list[Any] = []
        if run_id is not None:
            where.append("run_id = %s")
            params.append(run_id)
        if checked.types is not None:
            if not checked.types:
                self._db.check_open()
                return []
            where.append("type = ANY(%s)")
            params.append(sorted(checked.types))
        if checked.since is not None:
            where.append("ts >= %s")
            params.append(checked.since)
        sql = f"SELECT run_id, seq, data FROM {self._q}.swarm_events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts DESC, seq DESC, run_id DESC"
        if checked.limit is not None:
            sql += " LIMIT %s"
            params.append(checked.limit)
        rows = self._db.retrying(lambda conn: conn.execute(sql, params).fetchall())
        return [self._parse(run, seq, data) for run, seq, data in rows]

    def runs(self) -> list[RunInfo]:
        """Every run with its event count and first/last timestamps, oldest first."""
        rows = self._db.retrying(lambda conn: conn.execute(self._sql["runs"]).fetchall())
        return [
            RunInfo(run, int(n), first.astimezone(UTC), last.astimezone(UTC), kind)
            for run, n, first, last, kind in rows
        ]

    def stats(self) -> StoreStats:
        """Runs, events, the server URL (no password) with the schema, and the tables' size on disk."""
        runs, events, size = self._db.retrying(lambda conn: conn.execute(self._sql["stats"]).fetchone())
        return StoreStats(self.backend, int(runs), int(events), self.location, int(size))

    @property
    def dsn(self) -> str:
        """The URL that reopens this store (password included, ``?schema=`` when not ``public``).

        What the CLI hands to the control channel and the checkpointer, so they share the database.
        """
        if self.schema == "public":
            return self._conninfo
        return f"{self._conninfo}{'&' if '?' in self._conninfo else '?'}schema={self.schema}"

    @property
    def location(self) -> str:
        """The server URL without password, with ``#schema`` when not ``public``."""
        return self.url if self.schema == "public" else f"{self.url}#{self.schema}"

    # -- live tail --------------------------------------------------------------------------------

    @property
    def _channel(self) -> str:
        return notify_channel(self.schema)

    def wait_for_append(self, timeout: float) -> bool:
        """Block until another append to this store may have committed, or ``timeout`` seconds pass.

        ``LISTEN``s on a dedicated connection opened by the first call, which returns ``True`` at once (an
        append may have happened before listening began); later calls return ``True`` as soon as a
        ``NOTIFY`` of a committed batch arrives, so a tail sees new events within milliseconds without
        polling. A lost listening connection is reopened on the next call (which again returns ``True``).
        """
        return self._db.wait_for_notify(self._channel, timeout)

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the pool and the listening connection; idempotent. Committed events stay in the database."""
        self._db.close()

    def __repr__(self) -> str:
        return f"PostgresEventStore({self.location!r})"


_SQL = {
    "last_seqs": "SELECT run_id, last_seq FROM {s}.swarm_runs WHERE run_id = ANY(%s)",
    "last_seq": "SELECT last_seq FROM {s}.swarm_runs WHERE run_id = %s",
    "find_ids": "SELECT id FROM {s}.swarm_events WHERE id = ANY(%s)",
    "append": APPEND_SQL,
    "notify": NOTIFY_SQL,
    "page": "SELECT seq, data FROM {s}.swarm_events WHERE run_id = %s AND seq >= %s ORDER BY seq",
    "runs": "SELECT run_id, last_seq, first_ts, last_ts, last_type FROM {s}.swarm_runs ORDER BY first_ts, 1",
    "stats": (
        "SELECT (SELECT count(*) FROM {s}.swarm_runs), "
        "(SELECT coalesce(sum(last_seq), 0) FROM {s}.swarm_runs), "
        "pg_total_relation_size('{s}.swarm_events') + pg_total_relation_size('{s}.swarm_runs')"
    ),
}
