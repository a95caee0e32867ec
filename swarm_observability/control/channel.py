"""Cross-process control: cancel, pause, resume or drain a scan running in another process.

A :class:`ControlChannel` is a table in a SQLite file (the event store's or the checkpointer's database is
fine; the table is our own)::

    swarm_control(id INTEGER PRIMARY KEY, scan_id, action, reason, created_at, consumed_at)

Any process appends a request with :meth:`ControlChannel.request` (this is what ``swarm-obs cancel`` does).
The process running the scan applies requests to its
:class:`~swarm_observability.control.cancellation.CancellationManager`, either in one background thread
(:class:`ControlWatcher`, started by ``manager.watch(channel)``) or on demand
(``manager.sync_from(channel)``); the request then takes effect at the scan's next safe point. A request
is *claimed* by setting ``consumed_at`` in a single conditional ``UPDATE``, so it is applied exactly once
even when several processes poll, and a request written before the scan starts is applied when it starts
(the same "cancel before start" rule as in-process).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from .._fork import abandon, reinit_after_fork
from ..events import validate_run_id
from ..exceptions import ControlChannelError
from .actions import ControlAction, Syncable, parse_action

logger = logging.getLogger("swarm_observability")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS swarm_control (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scan_id TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT,
    created_at TEXT NOT NULL,
    consumed_at TEXT
);
CREATE INDEX IF NOT EXISTS swarm_control_pending ON swarm_control (scan_id, id) WHERE consumed_at IS NULL;
"""
_COLUMNS = "id, scan_id, action, reason, created_at, consumed_at"


@dataclass(frozen=True, slots=True)
class ControlRequest:
    """One row of the control table."""

    id: int
    """Increasing row id; requests are applied in this order."""
    scan_id: str
    """The run id of the scan the request is for."""
    action: ControlAction
    """What is asked."""
    reason: str | None
    """Free text shown in ``scan_cancelled``/``scan_paused`` events."""
    created_at: datetime
    """When the request was written (UTC)."""
    consumed_at: datetime | None
    """When a process claimed it, or ``None`` while pending."""


class ChannelBase:
    """What the SQLite and the PostgreSQL control channel do alike: the two reads, ``with``, ``repr``.

    A channel provides ``path``, ``close()`` and ``_select(where, params)`` (rows as
    :class:`ControlRequest`, oldest first); ``_mark`` is its database driver's parameter mark.
    """

    path: str
    _mark = "?"

    def pending(self, scan_id: str, after_id: int = 0) -> list[ControlRequest]:
        """Unclaimed requests for ``scan_id`` with ``id > after_id``, oldest first.

        In a SQLite file, a row that is not a valid request (an unknown action or a garbled timestamp,
        written by something other than ``request``) is skipped and logged once, so it never blocks
        the requests after it; :attr:`ControlChannel.malformed` lists such rows.
        """
        where = "WHERE scan_id = {0} AND id > {0} AND consumed_at IS NULL ORDER BY id"
        return self._select(where.format(self._mark), (scan_id, after_id))

    def requests(self, scan_id: str | None = None) -> list[ControlRequest]:
        """Every request (claimed or not), oldest first, optionally for one scan."""
        if scan_id is None:
            return self._select("ORDER BY id", ())
        return self._select(f"WHERE scan_id = {self._mark} ORDER BY id", (scan_id,))

    def close(self) -> None:
        raise NotImplementedError

    def _select(self, where: str, params: tuple[object, ...]) -> list[ControlRequest]:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"


class ControlChannel(ChannelBase):
    """Control requests in a SQLite file, shared by every process that opens the same path.

    Args:
        path: the database file (created with its folder if missing).
        timeout: seconds to wait for another process's write lock before failing.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        self.path = str(path)
        self._timeout = timeout
        self._lock = threading.Lock()
        self._malformed: set[int] = set()
        self._forked = False
        self._conn: sqlite3.Connection | None = self._open()
        reinit_after_fork(self)

    def _open(self) -> sqlite3.Connection:
        with self._errors("open"):
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self._timeout, check_same_thread=False, isolation_level=None
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
            except BaseException:
                conn.close()
                raise
        return conn

    def _after_fork_in_child(self) -> None:
        """In a forked child: a new lock; the connection is re-opened on first use (never shared)."""
        self._lock = threading.Lock()
        self._forked = self._conn is not None

    def request(self, scan_id: str, action: ControlAction | str, reason: str | None = None) -> ControlRequest:
        """Append a request for ``scan_id`` and return it (durable when this returns).

        Raises:
            ValueError: ``action`` is not cancel, pause, resume or drain.
            InvalidRunIdError: ``scan_id`` cannot be a run id.
            ControlChannelError: the request cannot be written (read-only or damaged file).
        """
        validate_run_id(scan_id)
        parsed = parse_action(action)
        if reason is not None and not isinstance(reason, str):
            raise TypeError(f"reason must be a string or None, not {type(reason).__name__}")
        now = datetime.now(UTC)
        with self._lock, self._errors("write a request to"):
            cur = self._connection().execute(
                "INSERT INTO swarm_control (scan_id, action, reason, created_at) VALUES (?, ?, ?, ?)",
                (scan_id, parsed.value, reason, _iso(now)),
            )
            row_id = cur.lastrowid
        assert row_id is not None
        return ControlRequest(row_id, scan_id, parsed, reason, _parse(_iso(now)), None)

    def claim(self, request_id: int) -> bool:
        """Mark a request consumed; ``True`` only for the one caller that claimed it first."""
        with self._lock, self._errors("claim a request in"):
            cur = self._connection().execute(
                "UPDATE swarm_control SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL",
                (_iso(datetime.now(UTC)), request_id),
            )
            return cur.rowcount == 1

    @property
    def malformed(self) -> list[int]:
        """Ids of the rows this channel skipped because they are not valid requests."""
        with self._lock:
            return sorted(self._malformed)

    def close(self) -> None:
        """Close the connection; idempotent."""
        with self._lock:
            if self._conn is not None:
                if not self._forked:
                    self._conn.close()
                self._conn = None

    def _select(self, where: str, params: tuple[object, ...]) -> list[ControlRequest]:
        with self._lock, self._errors("read"):
            sql = f"SELECT {_COLUMNS} FROM swarm_control {where}"
            rows = self._connection().execute(sql, params).fetchall()
        requests = []
        for row in rows:
            try:
                requests.append(_row_to_request(row))
            except (ValueError, TypeError) as exc:
                self._skip(row[0], exc)
        return requests

    def _skip(self, row_id: int, exc: Exception) -> None:
        with self._lock:
            if row_id in self._malformed:
                return
            self._malformed.add(row_id)
        logger.warning(
            "swarm_observability: control request %s in %s is not a valid request and is ignored: %s",
            row_id,
            self.path,
            exc,
        )

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn SQLite and file-system failures into a :class:`ControlChannelError` naming the file."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            why = str(exc)
            if "readonly" in why or "read-only" in why:
                why = f"it is read-only ({why})"
            elif isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
                why = f"it is not a usable control database ({why})"
            message = f"cannot {doing} control channel {self.path}: {why}"
            raise ControlChannelError(message, self.path) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"control channel {self.path!r} is closed")
        if self._forked:  # first use in a forked child
            conn = self._open()
            abandon(self._conn)
            self._conn, self._forked = conn, False
        return self._conn


class ControlWatcher:
    """One background thread that applies channel requests to in-process managers.

    Args:
        channel: where requests are read.
        managers: the managers to serve (more can be added with :meth:`add`).
        interval: seconds between polls; also how long :meth:`stop` may wait for the thread.

    A channel that can block until a request is written (``wait_for_request(timeout) -> bool``, the
    PostgreSQL channel's ``LISTEN``) is not polled: the table is read when it wakes the watcher, and
    otherwise only every :attr:`fallback_poll` seconds, as a safety net.
    """

    fallback_poll = 5.0
    """Seconds between reads of a channel that notifies, in case a notification was missed."""

    def __init__(
        self,
        channel: ChannelBase,
        managers: Iterable[Syncable] = (),
        *,
        interval: float = 0.2,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval!r}")
        self.channel = channel
        self.interval = interval
        self._lock = threading.Lock()
        self._managers: dict[str, Syncable] = {m.scan_id: m for m in managers}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def add(self, manager: Syncable) -> None:
        """Serve ``manager`` too."""
        with self._lock:
            self._managers[manager.scan_id] = manager

    def discard(self, scan_id: str) -> None:
        """Stop serving the manager of ``scan_id``."""
        with self._lock:
            self._managers.pop(scan_id, None)

    @property
    def running(self) -> bool:
        """Whether the polling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def poll_once(self) -> int:
        """Apply pending requests of every served manager now; return how many were applied."""
        with self._lock:
            served = list(self._managers.values())
        return sum(manager.sync_from(self.channel) for manager in served)

    def start(self) -> ControlWatcher:
        """Start polling in a daemon thread; idempotent. Returns ``self``."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="swarm-obs-control", daemon=True)
                self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop polling and join the thread; idempotent."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def __enter__(self) -> ControlWatcher:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        waiter = getattr(self.channel, "wait_for_request", None)
        due = True
        last_poll = 0.0
        while not self._stop.is_set():
            if waiter is not None and not due and time.monotonic() - last_poll < self.fallback_poll:
                due = self._wait(waiter)
                continue
            due = False
            last_poll = time.monotonic()
            try:
                self.poll_once()
            except ControlChannelError as exc:
                if not self._failing:
                    logger.error("swarm_observability: %s; will retry", exc)
                self._failing = True
            except Exception:
                if not self._failing:
                    logger.exception("swarm_observability: polling the control channel failed; will retry")
                self._failing = True
            else:
                self._failing = False
            if waiter is None:
                self._stop.wait(self.interval)
            else:
                due = self._failing or self._wait(waiter)

    def _wait(self, waiter: Callable[[float], bool]) -> bool:
        """Block on the channel's notifications for up to one interval; whether to read it now."""
        try:
            return bool(waiter(self.interval))
        except Exception as exc:
            if not self._failing:
                logger.error("swarm_observability: waiting on control channel failed: %s; will retry", exc)
            self._failing = True
            self._stop.wait(self.interval)
            return True


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _row_to_request(row: tuple[int, str, str, str | None, str, str | None]) -> ControlRequest:
    row_id, scan_id, action, reason, created_at, consumed_at = row
    if not isinstance(created_at, str) or not (consumed_at is None or isinstance(consumed_at, str)):
        raise TypeError("a timestamp is not text")
    if reason is not None and not isinstance(reason, str):
        raise TypeError("the reason is not text")
    return ControlRequest(
        row_id,
        scan_id,
        parse_action(action),
        reason,
        _parse(created_at),
        _parse(consumed_at) if consumed_at is not None else None,
    )


def default_channel_path(store: object) -> Path | str | None:
    """Where the control channel of ``store`` lives: the store's own file when it is SQLite, else
    ``control.db`` beside it; for PostgreSQL the store's database and schema (its URL, for
    :func:`~.postgres.open_channel`); ``None`` for a store without a file (in-memory)."""
    if getattr(store, "backend", "") == "postgres":
        return str(store.dsn)  # type: ignore[attr-defined]
    path = getattr(store, "path", None)
    if not path:
        return None
    path = Path(path)
    return path if getattr(store, "backend", "") == "sqlite" else path.parent / "control.db"
