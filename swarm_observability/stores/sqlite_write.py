"""The rows an append writes to a SQLite event store, and the statements that insert them.

The transaction around them (write lock, gap check, commit or rollback) is the store's.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence

from ..events import EventType, StreamEvent
from .sqlite_schema import EPOCH, MS

logger = logging.getLogger("swarm_observability")

_ROW_PARAMS = 6
_MAX_ROWS = 256
_INSERTS = {
    rows: "INSERT INTO swarm_events (run_id, seq, id, type, ts, data) VALUES "
    + ", ".join(("(?, ?, ?, ?, ?, ?)",) * rows)
    for rows in (1 << power for power in range(_MAX_ROWS.bit_length()))
}
UPSERT_RUN = """
INSERT INTO swarm_runs (run_id, last_seq, first_ts, last_ts, last_type) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (run_id) DO UPDATE SET
    last_seq = excluded.last_seq, last_ts = excluded.last_ts, last_type = excluded.last_type
"""
"""The ``swarm_runs`` upsert, one row of :func:`run_rows` per execution."""

_TYPE_NAMES: dict[object, str] = {kind: kind.value for kind in EventType}


def event_params(events: Sequence[StreamEvent]) -> list[object]:
    """The ``swarm_events`` values of a batch, row after row in one flat list: the per-event Python
    cost of an append, paid with the GIL held while the graph's thread waits for it."""
    params: list[object] = []
    last_ts, ms = None, 0
    for event in events:
        ts = event.timestamp
        if ts is not last_ts:  # the events of one millisecond share one datetime object
            last_ts, ms = ts, (ts - EPOCH) // MS
        kind = _TYPE_NAMES.get(event.type) or event.type_name
        params += (event.run_id, event.seq, event.id, kind, ms, event.to_json_bytes())
    return params


def data_bytes(params: list[object]) -> int:
    """The bytes of event JSON in ``params`` (see :func:`event_params`), counted in C."""
    return sum(map(len, params[_ROW_PARAMS - 1 :: _ROW_PARAMS]))  # type: ignore[arg-type]


def run_rows(params: list[object]) -> list[tuple[object, ...]]:
    """The ``swarm_runs`` upserts of a batch (see :func:`event_params`), one per run: its last
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


def insert(conn: sqlite3.Connection, params: list[object], max_rows: int) -> None:
    """Insert the rows of ``params`` with as few statements as the row count's binary digits.

    One ``execute`` of many rows rather than ``executemany``: the sqlite3 module releases the GIL
    around every step, and each step of a background writer means two GIL hand-offs with the thread
    running the graph; a 100-event batch takes 3 or 4 steps instead of 100. Statement sizes are
    powers of two up to ``max_rows`` (see :func:`max_rows`), so a connection caches at most nine.
    """
    rows, start, size = len(params) // _ROW_PARAMS, 0, max_rows
    while rows:
        while size > rows:
            size >>= 1
        end = start + size * _ROW_PARAMS
        conn.execute(_INSERTS[size], params[start:end])
        start, rows = end, rows - size


def max_rows(conn: sqlite3.Connection) -> int:
    """The most rows one ``INSERT`` takes: 256, or the largest power of two within the parameter
    limit of an SQLite built with a lower one (999 before 3.32)."""
    rows = _MAX_ROWS
    while rows > 1 and rows * _ROW_PARAMS > conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER):
        rows >>= 1
    return rows


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back a failed append; a failure of the rollback itself is only logged (the append's
    error is the one to raise)."""
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        logger.debug("rollback after a failed append failed too: %s", exc)
