"""The control channel in PostgreSQL: cancel, pause, resume or drain a scan running on another host.

:class:`PostgresControlChannel` has the interface of the SQLite :class:`~.channel.ControlChannel`
(``request``, ``pending``, ``requests``, ``claim``, ``close``) on a table in the event store's database and
schema::

    swarm_control(id bigserial PRIMARY KEY, scan_id, action, reason, created_at, consumed_at,
                  request_key UNIQUE, claim_key)

and adds :meth:`~PostgresControlChannel.wait_for_request`: ``request`` commits the row and a ``NOTIFY`` in
one transaction, and a :class:`~.channel.ControlWatcher` blocks on ``LISTEN`` instead of polling, so a
``swarm-obs cancel`` reaches the worker running the scan within milliseconds, wherever it runs. A request is
claimed with one conditional ``UPDATE``, so exactly one process applies it. A statement whose connection
dies is retried once on a new one; the keys make the retry safe when the first try committed but its reply
was lost (the request is not written twice, the claim is still this caller's). The watcher still re-reads the
table every few seconds as a safety net (a notification sent while its listening connection was being
re-established is not replayed by PostgreSQL).
"""

from __future__ import annotations

import math
import secrets
import threading
from datetime import UTC
from typing import Any

from .._fork import abandon, reinit_after_fork
from ..events import validate_run_id
from ..exceptions import ControlChannelError
from ..stores.postgres_schema import connect_error, load_psycopg, quote_ident, redact, split_url
from .actions import ControlAction, parse_action
from .channel import ChannelBase, ControlRequest

NOTIFY_CHANNEL = "swarm_obs_control"
"""``LISTEN`` channel of control requests (``.<schema>`` added outside ``public``); payload: the scan id."""

_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.swarm_control (
    id bigserial PRIMARY KEY,
    scan_id text NOT NULL,
    action text NOT NULL,
    reason text,
    created_at timestamptz NOT NULL DEFAULT now(),
    consumed_at timestamptz
);
CREATE INDEX IF NOT EXISTS swarm_control_pending ON {s}.swarm_control (scan_id, id) WHERE consumed_at IS NULL;
"""
_KEYS = """ALTER TABLE {s}.swarm_control ADD COLUMN IF NOT EXISTS request_key text UNIQUE,
    ADD COLUMN IF NOT EXISTS claim_key text"""
"""Added to a table made before the keys (an ``ALTER TABLE`` locks out readers, so only then)."""
_HAS_KEYS = (
    "SELECT count(*) = 2 FROM information_schema.columns WHERE table_schema = %s "
    "AND table_name = 'swarm_control' AND column_name IN ('request_key', 'claim_key')"
)
_COLUMNS = "id, scan_id, action, reason, created_at, consumed_at"


class PostgresControlChannel(ChannelBase):
    """Control requests in PostgreSQL, shared by every process that opens the same database and schema.

    Args:
        url: a libpq URL; ``?schema=name`` (or ``schema``) picks the schema, as for the event store.
        schema: the schema of the table (default ``public``).
        timeout: seconds to wait for the server when connecting.

    Raises:
        ControlChannelError: the server cannot be reached or the table cannot be created.
    """

    _mark = "%s"

    def __init__(self, url: str, *, schema: str | None = None, timeout: float = 10.0) -> None:
        self._psycopg = load_psycopg()
        conninfo, ours = split_url(url)
        self.schema = schema if schema is not None else ours.get("schema", "public")
        self._q = quote_ident(self.schema)
        self.path = redact(conninfo) + ("" if self.schema == "public" else f"#{self.schema}")
        """Where the channel is (URL without password), named in errors like the SQLite channel's path."""
        self._conninfo = conninfo
        self._timeout = max(1, round(timeout))
        self._channel = NOTIFY_CHANNEL if self.schema == "public" else f"{NOTIFY_CHANNEL}.{self.schema}"
        self._lock = threading.Lock()
        self._listen_lock = threading.Lock()
        self._listener: Any = None
        self._closed = False
        self._conn: Any = None
        with self._lock:
            self._run(lambda conn: self._create(conn))
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: new locks; both connections are abandoned, not closed (closing would end
        the parent's sessions: the sockets are shared), and re-opened on first use."""
        self._lock = threading.Lock()
        self._listen_lock = threading.Lock()
        abandon(self._conn)
        abandon(self._listener)
        self._conn = self._listener = None

    def _create(self, conn: Any) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"swarm_obs:{self.schema}",))
            for statement in _SCHEMA.format(s=self._q).split(";"):
                if statement.strip():
                    conn.execute(statement)
            if not conn.execute(_HAS_KEYS, (self.schema,)).fetchone()[0]:
                conn.execute(_KEYS.format(s=self._q))

    # -- requests ---------------------------------------------------------------------------------

    def request(self, scan_id: str, action: ControlAction | str, reason: str | None = None) -> ControlRequest:
        """Append a request for ``scan_id``, notify listeners, and return it (committed when this returns).

        Raises:
            ValueError: ``action`` is not cancel, pause, resume or drain.
            InvalidRunIdError: ``scan_id`` cannot be a run id.
            ControlChannelError: the database cannot be written.
        """
        validate_run_id(scan_id)
        parsed = parse_action(action)
        if reason is not None and not isinstance(reason, str):
            raise TypeError(f"reason must be a string or None, not {type(reason).__name__}")

        key = secrets.token_hex(16)

        def insert(conn: Any) -> tuple[Any, ...]:
            with conn.transaction():
                row = conn.execute(
                    f"INSERT INTO {self._q}.swarm_control (scan_id, action, reason, request_key) "
                    f"VALUES (%s, %s, %s, %s) ON CONFLICT (request_key) DO NOTHING RETURNING {_COLUMNS}",
                    (scan_id, parsed.value, reason, key),
                ).fetchone()
                if row is None:  # a retry: the first try committed, its reply was lost
                    row = conn.execute(
                        f"SELECT {_COLUMNS} FROM {self._q}.swarm_control WHERE request_key = %s", (key,)
                    ).fetchone()
                conn.execute("SELECT pg_notify(%s, %s)", (self._channel, scan_id))
            return row

        with self._lock:
            return _to_request(self._run(insert))

    def claim(self, request_id: int) -> bool:
        """Mark a request consumed; ``True`` only for the one caller (of any process) that claimed it."""
        sql = (
            f"UPDATE {self._q}.swarm_control SET consumed_at = now(), claim_key = %s "
            "WHERE id = %s AND (consumed_at IS NULL OR claim_key = %s)"
        )
        key = secrets.token_hex(16)
        with self._lock:
            return self._run(lambda conn: conn.execute(sql, (key, request_id, key)).rowcount) == 1

    def wait_for_request(self, timeout: float) -> bool:
        """Block until a request may have been written (a ``NOTIFY``) or ``timeout`` seconds pass.

        The first call starts ``LISTEN`` on a connection of its own and returns ``True`` at once (a request
        may predate it); a lost connection is reopened by the next call, which again returns ``True``.
        Reopening waits for the server at most ``timeout`` seconds (but 2 s at least, libpq's floor).
        """
        with self._listen_lock:
            if self._closed:
                raise ControlChannelError(f"control channel {self.path} is closed", self.path)
            if self._listener is None or self._listener.closed:
                try:
                    self._listener = self._connect(min(self._timeout, max(2, math.ceil(timeout))))
                    self._listener.execute(f'LISTEN "{self._channel}"')
                except self._psycopg.Error as exc:
                    self._drop_listener()
                    raise ControlChannelError(
                        f"cannot listen on {self.path}: {self._why(exc)}", self.path
                    ) from exc
                return True
            try:
                for _ in self._listener.notifies(timeout=max(float(timeout), 0.0), stop_after=1):
                    return True
            except self._psycopg.Error:
                self._drop_listener()
                return True
            return False

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Close both connections; idempotent."""
        with self._lock, self._listen_lock:
            self._closed = True
            self._drop_listener()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _select(self, where: str, params: tuple[object, ...]) -> list[ControlRequest]:
        sql = f"SELECT {_COLUMNS} FROM {self._q}.swarm_control {where}"
        with self._lock:
            rows = self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [_to_request(row) for row in rows]

    def _connect(self, timeout: int) -> Any:
        return self._psycopg.Connection.connect(self._conninfo, autocommit=True, connect_timeout=timeout)

    def _run(self, call: Any) -> Any:
        """``call(connection)`` under the lock, retried once on a new connection if the connection died:
        ``call`` must give the same result when its first try committed (see the module docstring)."""
        if self._closed:
            raise ControlChannelError(f"control channel {self.path} is closed", self.path)
        for attempt in (1, 2):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect(self._timeout)
                return call(self._conn)
            except (self._psycopg.OperationalError, self._psycopg.InterfaceError) as exc:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise ControlChannelError(
                        f"control channel {self.path}: {self._why(exc)}", self.path
                    ) from exc
            except self._psycopg.Error as exc:
                raise ControlChannelError(
                    f"control channel {self.path}: {self._why(exc)}", self.path
                ) from exc
        raise AssertionError("unreachable")

    def _why(self, exc: BaseException) -> str:
        """The error's first line, any password masked (libpq quotes a malformed one)."""
        return connect_error(exc, self._conninfo)

    def _drop_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None


def _to_request(row: tuple[Any, ...]) -> ControlRequest:
    row_id, scan_id, action, reason, created_at, consumed_at = row
    return ControlRequest(
        int(row_id),
        scan_id,
        parse_action(action),
        reason,
        created_at.astimezone(UTC),
        consumed_at.astimezone(UTC) if consumed_at is not None else None,
    )


def open_channel(location: Any) -> Any:
    """The control channel at ``location``: a ``postgresql://`` URL, else a SQLite file path."""
    from .channel import ControlChannel

    text = str(location)
    if text.lower().startswith(("postgresql://", "postgres://")):
        return PostgresControlChannel(text)
    return ControlChannel(location)
