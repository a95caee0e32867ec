"""LangGraph's PostgreSQL checkpointers, set up and closed for the caller (``get_checkpointer("postgresql://...")``).

* :class:`ThreadedPostgresSaver` is ``langgraph-checkpoint-postgres``'s ``PostgresSaver`` on a connection pool
  it owns, with the async methods running the sync ones in a worker thread, so one saver serves
  ``invoke`` and ``astream`` (upstream's sync saver has no async methods). ``close()`` closes the pool.
* :func:`open_async_saver` is the async context manager behind ``aget_checkpointer("postgresql://...")``:
  upstream's ``AsyncPostgresSaver`` on an ``AsyncConnectionPool``, closed when the block exits.

Both run upstream's ``setup()`` (its own versioned migrations) under a PostgreSQL advisory lock, so many
workers starting at once against a new database do not race on ``CREATE TABLE``. The lock is taken with
``pg_try_advisory_lock`` and a sleep, never a blocking ``pg_advisory_lock``: upstream's migrations include
``CREATE INDEX CONCURRENTLY``, which waits for every running statement in the database, including a
waiting worker's blocked lock call (a deadlock seen with 4 workers starting together). The tables live in the
connection's ``search_path`` (``public`` unless the URL's ``options`` say otherwise).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from .checkpointers import SyncSaverInThreads
from .exceptions import CheckpointerError
from .stores.postgres_schema import INSTALL_HINT, redact, split_url

_SETUP_LOCK = "swarm_obs:langgraph_checkpoint_setup"
_LOCK_RETRY_S = 0.05
_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtext(%s)) AS locked"
_CONNECTION_KWARGS = {"autocommit": True, "prepare_threshold": 0}


try:
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg import AsyncConnection, Connection
    from psycopg.rows import DictRow, dict_row
    from psycopg_pool import AsyncConnectionPool, ConnectionPool
except ImportError as exc:  # imported only for a postgresql:// checkpointer
    raise ImportError(INSTALL_HINT) from exc


class ThreadedPostgresSaver(SyncSaverInThreads, PostgresSaver):
    """``PostgresSaver`` on a pool it owns; async methods in a worker thread. Close it, or use ``with``."""

    def __init__(self, pool: ConnectionPool[Connection[DictRow]], location: str) -> None:
        super().__init__(pool)
        self._owned_pool = pool
        self._location = location
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close the connection pool; idempotent. Later calls raise CheckpointerError."""
        if not self._closed:
            self._closed = True
            self._owned_pool.close()

    def _cursor(self, *, pipeline: bool = False) -> Any:
        if self._closed:
            raise CheckpointerError(
                "the PostgreSQL checkpointer is closed; open a new one with get_checkpointer()"
            )
        return super()._cursor(pipeline=pipeline)

    def __enter__(self) -> ThreadedPostgresSaver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> ThreadedPostgresSaver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ThreadedPostgresSaver({self._location!r})"


def _locked(row: DictRow | None) -> bool:
    return row is not None and bool(row["locked"])


def open_saver(url: str, *, max_connections: int = 4) -> Any:
    """A set-up :class:`ThreadedPostgresSaver` owning a pool of up to ``max_connections`` connections."""
    conninfo, _ = split_url(url)
    pool: ConnectionPool[Connection[DictRow]] = ConnectionPool(
        conninfo,
        min_size=1,
        max_size=max(2, max_connections),  # setup() runs beside the connection holding the lock
        kwargs={**_CONNECTION_KWARGS, "row_factory": dict_row},
        open=False,
    )
    try:
        pool.open(wait=True, timeout=10)
        saver = ThreadedPostgresSaver(pool, redact(conninfo))
        with pool.connection() as conn:
            while not _locked(conn.execute(_TRY_LOCK, (_SETUP_LOCK,)).fetchone()):
                time.sleep(_LOCK_RETRY_S)
            try:
                saver.setup()
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_SETUP_LOCK,))
    except BaseException as exc:
        pool.close()
        if exc.__class__.__module__.startswith(("psycopg", "psycopg_pool")):
            raise CheckpointerError(f"cannot open checkpointer at {redact(conninfo)}: {exc}") from exc
        raise
    return saver


@asynccontextmanager
async def open_async_saver(url: str, *, max_connections: int = 4) -> AsyncIterator[Any]:
    """Upstream's ``AsyncPostgresSaver`` on its own ``AsyncConnectionPool``, set up; closed on exit."""
    conninfo, _ = split_url(url)
    pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=max(2, max_connections),
        kwargs={**_CONNECTION_KWARGS, "row_factory": dict_row},
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=10)
        saver = AsyncPostgresSaver(pool)
        async with pool.connection() as conn:
            while not _locked(await (await conn.execute(_TRY_LOCK, (_SETUP_LOCK,))).fetchone()):
                await asyncio.sleep(_LOCK_RETRY_S)
            try:
                await saver.setup()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_SETUP_LOCK,))
    except BaseException as exc:
        await pool.close()
        if exc.__class__.__module__.startswith(("psycopg", "psycopg_pool")):
            raise CheckpointerError(f"cannot open checkpointer at {redact(conninfo)}: {exc}") from exc
        raise
    try:
        yield saver
    finally:
        await pool.close()
