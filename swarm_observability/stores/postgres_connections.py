"""The connections of one :class:`~.postgres.PostgresEventStore`: a pool for statements, one for ``LISTEN``.

Opening tries one direct connection before the pool: an unreachable server then fails once, within
``connect_timeout``, with libpq's own reason (the pool would retry in the background for its whole
timeout, logging each failure, and then say only that it timed out). A lost pooled connection is
replaced by the pool; :meth:`PostgresConnections.retrying` reruns an idempotent statement on a new one.

After ``os.fork`` the child abandons the parent's pool and listening connection without closing them
(the sockets are shared: closing would send a terminate and end the parent's sessions) and opens its
own on first use.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .._fork import abandon, reinit_after_fork
from ..exceptions import EventStoreError, StoreClosedError
from .postgres_schema import connect_error, connect_seconds, load_psycopg

ATTEMPTS = 3
"""Tries of a statement whose connection died (an append, a read, a page)."""
POOL_WAIT = 10.0
"""Least seconds to wait for a free pooled connection."""
_T = TypeVar("_T")


class PostgresConnections:
    """A connection pool and a listening connection to one server, for one store object.

    Args:
        conninfo: the libpq URL (our options already taken out).
        location: the store's name in messages (no password).
        pool_size: most pooled connections.
        read_only: every session refuses writes (``default_transaction_read_only``).
        connect_timeout: seconds to wait for the server (``None``: the URL's, else 5).
        name: the pool's name in psycopg_pool's log.

    Raises:
        EventStoreError: the server cannot be reached or refuses the session.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        location: str,
        pool_size: int,
        read_only: bool,
        connect_timeout: float | None,
        name: str,
    ) -> None:
        psycopg = load_psycopg()
        from psycopg_pool import ConnectionPool

        self.location = location
        self.closed = False
        self.errors = psycopg.errors
        self.operational = (psycopg.OperationalError, psycopg.InterfaceError)
        """The errors of a connection that died (retry on another one)."""
        self._psycopg = psycopg
        self._conninfo = conninfo
        self.connect_timeout = connect_seconds(conninfo, connect_timeout)
        kwargs: dict[str, Any] = {"connect_timeout": self.connect_timeout}
        if read_only:
            kwargs["options"] = "-c default_transaction_read_only=on"
        try:
            psycopg.Connection.connect(conninfo, **kwargs).close()
        except psycopg.Error as exc:
            reason = connect_error(exc, conninfo)
            raise EventStoreError(f"cannot connect to the event store {location}: {reason}") from exc
        wait = max(float(self.connect_timeout), POOL_WAIT)
        self._make_pool = functools.partial(
            ConnectionPool,
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs=kwargs,
            timeout=wait,
            open=False,
            name=name,
        )
        self._pool = self._make_pool()
        self._reopen = False
        self._reopen_lock = threading.Lock()
        self._listen_lock = threading.Lock()
        self._listener: Any = None
        try:
            self._pool.open(wait=True, timeout=wait)
        except BaseException as exc:
            self._pool.close()
            if exc.__class__.__name__ == "PoolTimeout":
                reason = connect_error(exc, conninfo)
                raise EventStoreError(f"cannot open event store {location}: {reason}") from exc
            raise
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: the parent's connections abandoned unclosed; the child's open on first use."""
        abandon(self._pool)
        abandon(self._listener)
        self._listener = None
        self._listen_lock = threading.Lock()
        self._reopen_lock = threading.Lock()
        if not self.closed:
            self._pool = self._make_pool()  # opening starts threads and connects: on first use
            self._reopen = True

    def pooled(self) -> Any:
        """A pooled connection (a context manager that gives it back)."""
        if self._reopen:
            with self._reopen_lock:
                if self._reopen:
                    self._pool.open(wait=False)
                    self._reopen = False
        return self._pool.connection()

    def retrying(self, call: Callable[[Any], _T]) -> _T:
        """Run an idempotent statement on a pooled connection, on a fresh one if the connection died.

        Raises:
            StoreClosedError: the store is closed (also when it was closed under the call).
            EventStoreError: the server refused the statement, or the connection died on every try.
        """
        for attempt in range(1, ATTEMPTS + 1):
            self.check_open()
            try:
                with self.pooled() as conn:
                    result = call(conn)
                    conn.rollback()
                    return result
            except self.operational as exc:
                self.check_open(exc)
                if attempt == ATTEMPTS:
                    raise EventStoreError(f"{self.location}: {exc}") from exc
                time.sleep(0.05 * attempt)
            except self.errors.Error as exc:
                raise EventStoreError(f"{self.location}: {exc}") from exc
        raise AssertionError("unreachable")

    def check_open(self, cause: BaseException | None = None) -> None:
        """Raise :class:`StoreClosedError` (from ``cause``) if the store was closed."""
        if self.closed:
            raise StoreClosedError(f"the PostgreSQL event store {self.location} is closed") from cause

    def wait_for_notify(self, channel: str, timeout: float) -> bool:
        """Block until a ``NOTIFY`` on ``channel`` arrives or ``timeout`` seconds pass; whether one did.

        The first call opens the listening connection and returns ``True`` at once (something may have
        been sent before listening began); so does the call after the connection was lost. Opening waits
        for the server at most ``timeout`` seconds (2 s at least, libpq's floor).
        """
        self.check_open()
        with self._listen_lock:
            if self._listener is None or self._listener.closed:
                seconds = min(self.connect_timeout, max(2, math.ceil(timeout)))
                self._listener = self._psycopg.Connection.connect(
                    self._conninfo, autocommit=True, connect_timeout=seconds
                )
                self._listener.execute(f'LISTEN "{channel}"')
                return True
            try:
                for _ in self._listener.notifies(timeout=max(float(timeout), 0.0), stop_after=1):
                    return True
            except self.operational:
                self._listener.close()
                return True
            return False

    def close(self) -> None:
        """Close the pool and the listening connection; idempotent."""
        if self.closed:
            return
        self.closed = True
        with self._listen_lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        self._pool.close()
