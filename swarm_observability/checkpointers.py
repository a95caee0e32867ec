"""LangGraph checkpointers that work out of the box, and the link between checkpoints and events.

* :func:`get_checkpointer` returns a :class:`ThreadedSqliteSaver` (persistent) or an ``InMemorySaver``.
  LangGraph's ``SqliteSaver`` raises ``NotImplementedError`` under ``ainvoke``/``astream``;
  ``ThreadedSqliteSaver`` runs its sync methods in a worker thread instead, so **one saver serves sync and
  async graphs** without blocking the event loop. It owns its connection: ``close()`` or ``with``.
* A ``postgresql://`` URL instead of a path gives LangGraph's ``PostgresSaver`` / ``AsyncPostgresSaver``
  (``langgraph-checkpoint-postgres``, the ``postgres`` extra), set up and owning their pools, so a thread
  started by one worker process or host can be resumed by another.
* :func:`aget_checkpointer` is the async context manager yielding LangGraph's ``AsyncSqliteSaver``
  (aiosqlite); its sync methods, which would deadlock on the event-loop thread, raise
  :class:`CheckpointerError` there instead.
* The default database is ``./.swarm/checkpoints.db`` under the current directory (a project-local data
  folder, never inside the installed package); ``SWARM_OBS_DATA_DIR`` moves the folder.
* :func:`timeline` lines the event log up with ``get_state_history``: events carry the ``checkpoint_id``
  they were emitted under.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from .events import StreamEvent, validate_run_id
from .exceptions import CheckpointerError

DATA_DIR_ENV = "SWARM_OBS_DATA_DIR"
"""Environment variable naming the folder for local data (checkpoints); default ``./.swarm``."""

CHECKPOINT_FILENAME = "checkpoints.db"


def default_data_dir() -> Path:
    """``$SWARM_OBS_DATA_DIR`` if set, else ``.swarm`` under the current working directory."""
    configured = os.environ.get(DATA_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.cwd() / ".swarm"


def default_checkpoint_path() -> Path:
    """Where :func:`get_checkpointer` keeps checkpoints when no path is given."""
    return default_data_dir() / CHECKPOINT_FILENAME


if TYPE_CHECKING:  # a mixin: the type checker sees the saver API it is mixed into
    _Saver = BaseCheckpointSaver[Any]
else:
    _Saver = object


class SyncSaverInThreads(_Saver):
    """Async checkpointer methods that run the sync ones in a worker thread (``asyncio.to_thread``).

    For savers whose sync methods are thread-safe (they serialize their cursors behind a lock): one saver
    then serves ``invoke``/``stream`` and ``ainvoke``/``astream`` alike, and the event loop never waits on
    the database. Mixed in before the saver class.
    """

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        def _collect() -> list[CheckpointTuple]:
            return list(self.list(config, filter=filter, before=before, limit=limit))

        for item in await asyncio.to_thread(_collect):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        def _walk() -> Mapping[str, DeltaChannelHistory]:
            return self.get_delta_channel_history(config=config, channels=channels)

        return await asyncio.to_thread(_walk)


class ThreadedSqliteSaver(SyncSaverInThreads, SqliteSaver):
    """A ``SqliteSaver`` whose async methods run the sync ones in a worker thread.

    The sync saver already serializes every cursor behind a ``threading.Lock`` and uses a connection
    opened with ``check_same_thread=False``, so calling it from ``asyncio.to_thread`` is safe; the
    event loop never waits on disk I/O. Use it for ``invoke``/``stream`` and ``ainvoke``/``astream``
    alike, or from several processes on one file (SQLite WAL).

    Args:
        conn: an open connection (``check_same_thread=False``).
        serde: LangGraph serializer; the default one when omitted.
        owns_connection: close ``conn`` in :meth:`close`.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        serde: SerializerProtocol | None = None,
        owns_connection: bool = False,
    ) -> None:
        super().__init__(conn, serde=serde)
        self._owns_connection = owns_connection
        self._closed = False

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, serde: SerializerProtocol | None = None
    ) -> ThreadedSqliteSaver:
        """Open (creating the folder and file if needed) a saver that owns its connection."""
        target = str(path)
        if target != ":memory:":
            Path(target).parent.mkdir(parents=True, exist_ok=True)
        return cls(sqlite3.connect(target, check_same_thread=False), serde=serde, owns_connection=True)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close the connection if this saver owns it; idempotent. Later calls raise CheckpointerError."""
        with self.lock:
            if self._closed:
                return
            self._closed = True
            if self._owns_connection:
                self.conn.close()

    def __enter__(self) -> ThreadedSqliteSaver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> ThreadedSqliteSaver:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        if self._closed:
            raise CheckpointerError(
                "the SQLite checkpointer is closed; open a new one with get_checkpointer()"
            )
        with super().cursor(transaction) as cur:
            yield cur


class _LoopGuardedAsyncSqliteSaver(AsyncSqliteSaver):
    """``AsyncSqliteSaver`` whose sync methods fail clearly on the event-loop thread.

    Upstream, ``put``/``put_writes`` there would block on a future that only the blocked loop can resolve.
    """

    def _check_thread(self, method: str) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            return
        if running is self.loop:
            raise CheckpointerError(
                f"AsyncSqliteSaver.{method}() was called on its own event loop's thread, "
                "which would deadlock: "
                "use ainvoke/astream, run the sync call in a worker thread (asyncio.to_thread), or use "
                "get_checkpointer(), whose saver serves sync and async graphs"
            )

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        self._check_thread("get_tuple")
        return super().get_tuple(config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        self._check_thread("list")
        return super().list(config, filter=filter, before=before, limit=limit)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        self._check_thread("put")
        return super().put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self._check_thread("put_writes")
        super().put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        self._check_thread("delete_thread")
        super().delete_thread(thread_id)


def _resolve_path(persistent: bool, path: str | os.PathLike[str] | None) -> str | None:
    if not persistent:
        if path is not None:
            raise ValueError("a path was given with persistent=False; pass persistent=True to use the file")
        return None
    target = str(path) if path is not None else str(default_checkpoint_path())
    if target != ":memory:" and not is_postgres_url(target):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    return target


def is_postgres_url(value: object) -> bool:
    """Whether ``value`` is a ``postgresql://`` or ``postgres://`` URL rather than a file path."""
    return isinstance(value, str) and value.lower().startswith(("postgresql://", "postgres://"))


def get_checkpointer(persistent: bool = True, path: str | os.PathLike[str] | None = None) -> Any:
    """A checkpointer for ``graph.compile(checkpointer=...)``, usable directly or with ``with``.

    Args:
        persistent: a SQLite file or PostgreSQL database (default) or process memory.
        path: the SQLite file (:func:`default_checkpoint_path` when omitted; its folder is created), or a
            ``postgresql://`` URL: LangGraph's ``PostgresSaver`` (the ``postgres`` extra), its tables
            created or migrated by its ``setup()``, so any worker process or host can resume a thread.

    Returns:
        A :class:`ThreadedSqliteSaver` owning its connection, a ``ThreadedPostgresSaver`` owning its
        connection pool (close either, or use ``with``), or an ``InMemorySaver``. All serve
        ``invoke``/``stream`` and ``ainvoke``/``astream``.
    """
    target = _resolve_path(persistent, path)
    if target is None:
        return InMemorySaver()
    if is_postgres_url(target):
        from ._pg_savers import open_saver

        return open_saver(target)
    return ThreadedSqliteSaver.open(target)


@asynccontextmanager
async def aget_checkpointer(
    persistent: bool = True, path: str | os.PathLike[str] | None = None
) -> AsyncIterator[Any]:
    """Async context manager yielding LangGraph's ``AsyncSqliteSaver`` (aiosqlite), its
    ``AsyncPostgresSaver`` (for a ``postgresql://`` URL, on a pool, set up) or an ``InMemorySaver``.

    The connection (pool) is closed when the block exits. Same arguments as :func:`get_checkpointer`.
    """
    target = _resolve_path(persistent, path)
    if target is None:
        yield InMemorySaver()
        return
    if is_postgres_url(target):
        from ._pg_savers import open_async_saver

        async with open_async_saver(target) as saver:
            yield saver
        return
    conn = await aiosqlite.connect(target)
    try:
        yield _LoopGuardedAsyncSqliteSaver(conn)
    finally:
        await conn.close()


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One checkpoint of a thread and the events emitted while the graph ran from it."""

    checkpoint_id: str | None
    """The checkpoint, or ``None`` for events that name no checkpoint found in the history."""
    step: int | None
    """``metadata["step"]`` of the checkpoint (-1 for the input checkpoint)."""
    source: str | None
    """``metadata["source"]``: ``input``, ``loop``, ``update`` or ``fork``."""
    next: tuple[str, ...]
    """Nodes due to run from this checkpoint."""
    events: tuple[StreamEvent, ...]
    """Events with this ``checkpoint_id``, in seq order."""


def timeline(store_or_events: Any, run_id: str, graph: Any, config: RunnableConfig) -> list[TimelineEntry]:
    """Line the events of ``run_id`` up with ``graph.get_state_history(config)``, oldest checkpoint first.

    Nodes read the checkpoint they start from, so a node's events land on the checkpoint *before* its
    writes. Events without a known checkpoint (scan lifecycle events, or checkpoints pruned since) are
    collected in a final entry with ``checkpoint_id=None``, so no event is dropped.

    Raises:
        InvalidRunIdError: ``run_id`` is no run id (empty, not a string, ...).
    """
    events = _events_of(store_or_events, validate_run_id(run_id))
    history = list(graph.get_state_history(config))
    history.reverse()
    by_checkpoint: dict[str, list[StreamEvent]] = {}
    for event in events:
        by_checkpoint.setdefault(event.checkpoint_id or "", []).append(event)
    entries = []
    for snapshot in history:
        checkpoint_id = snapshot.config["configurable"].get("checkpoint_id")
        metadata = snapshot.metadata or {}
        entries.append(
            TimelineEntry(
                checkpoint_id,
                metadata.get("step"),
                metadata.get("source"),
                tuple(snapshot.next),
                tuple(by_checkpoint.pop(checkpoint_id, ())),
            )
        )
    leftover = sorted((e for group in by_checkpoint.values() for e in group), key=lambda e: e.seq or 0)
    if leftover:
        entries.append(TimelineEntry(None, None, None, (), tuple(leftover)))
    return entries


def _events_of(store_or_events: Any, run_id: str) -> list[StreamEvent]:
    if hasattr(store_or_events, "iter_events"):
        return list(store_or_events.iter_events(run_id))
    items: Iterable[StreamEvent] = store_or_events
    return [e for e in items if e.run_id == run_id]


__all__ = [
    "CHECKPOINT_FILENAME",
    "DATA_DIR_ENV",
    "ThreadedSqliteSaver",
    "TimelineEntry",
    "aget_checkpointer",
    "default_checkpoint_path",
    "default_data_dir",
    "get_checkpointer",
    "is_postgres_url",
    "timeline",
]
