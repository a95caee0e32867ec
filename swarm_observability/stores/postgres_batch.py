"""What a PostgreSQL append sends: the statement of the expected-version append and its parameters.

Each batch is checked here for its own shape (:func:`well_formed`: each run's events consecutive, no
repeated id); the database checks the rest against what is committed (:data:`APPEND_SQL`), so an
append needs no read first and one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..events import EventType, StreamEvent

_NOTIFY_LIMIT = 7900  # PostgreSQL refuses payloads of 8000 bytes or more

APPEND_SQL = (
    "WITH inserted AS (INSERT INTO {s}.swarm_events (run_id, seq, id, type, ts, data) "
    "SELECT * FROM unnest("
    "%b::text[], %b::bigint[], %b::text[], %b::text[], %b::timestamptz[], %b::text[]) RETURNING 1), "
    "batch AS (SELECT * FROM unnest("
    "%b::text[], %b::bigint[], %b::bigint[], %b::timestamptz[], %b::timestamptz[], %b::text[]) "
    "AS b (run_id, first_seq, last_seq, first_ts, last_ts, last_type)), "
    "started AS (INSERT INTO {s}.swarm_runs (run_id, last_seq, first_ts, last_ts, last_type) "
    "SELECT run_id, last_seq, first_ts, last_ts, last_type FROM batch WHERE first_seq = 1 RETURNING 1), "
    "moved AS (UPDATE {s}.swarm_runs r "
    "SET last_seq = b.last_seq, last_ts = b.last_ts, last_type = b.last_type FROM batch b "
    "WHERE b.first_seq > 1 AND r.run_id = b.run_id AND r.last_seq = b.first_seq - 1 RETURNING r.run_id) "
    "SELECT (SELECT count(*) FROM inserted), (SELECT count(*) FROM started), "
    "(SELECT count({s}.swarm_refuse_append(b.run_id, b.first_seq)) FROM batch b "
    "WHERE b.first_seq > 1 AND b.run_id NOT IN (SELECT run_id FROM moved))"
)
"""One statement, in its own transaction: every event of a batch and its runs' ``swarm_runs`` rows.

Parameters: :func:`event_columns` then :func:`run_columns`, as binary arrays (text arrays would need
psycopg to escape every quote of the JSON in Python: 140 instead of 13 us of client CPU per event). New runs
(first seq 1) insert their row, and a racing creator meets its primary key. A run going on moves its row
only from the seq before the batch's first (the expected version), under the row's lock, so of two
writers racing on one run the second re-checks against the first's committed row; a run whose row did
not move calls ``swarm_refuse_append``, which fails the statement and so rolls back the whole batch.
"""
NOTIFY_SQL = "SELECT pg_notify(%s, %s)"

_TYPE_NAMES: dict[object, str] = {kind: kind.value for kind in EventType}


def event_columns(events: Sequence[StreamEvent]) -> tuple[list[Any], ...]:
    """The ``unnest`` arrays of a batch: run ids, seqs, ids, types, timestamps, JSON texts."""
    return (
        [e.run_id for e in events],
        [e.seq for e in events],
        [e.id for e in events],
        [_TYPE_NAMES.get(e.type) or e.type_name for e in events],
        [e.timestamp for e in events],
        [e.to_json_bytes().decode() for e in events],
    )


def run_columns(events: Sequence[StreamEvent]) -> tuple[list[Any], ...]:
    """One row per run of the batch: run id, first and last seq, first and last timestamp, last type.

    ``first_ts`` only counts for a new run.
    """
    last: dict[str, list[Any]] = {}
    for event in events:
        row = last.get(event.run_id)
        kind = _TYPE_NAMES.get(event.type) or event.type_name
        if row is None:
            last[event.run_id] = [event.run_id, event.seq, event.seq, event.timestamp, event.timestamp, kind]
        else:
            row[2], row[4], row[5] = event.seq, event.timestamp, kind
    rows = list(last.values())
    return tuple([row[i] for row in rows] for i in range(6))


def well_formed(events: Sequence[StreamEvent]) -> bool:
    """Whether each run's events in the batch are consecutive from an int seq >= 1, with no repeated id.

    The database checks the first event of each run against what is stored; this is the rest.
    """
    following: dict[str, int] = {}
    ids: set[str] = set()
    for event in events:
        seq = event.seq
        if type(seq) is not int or seq < 1 or following.get(event.run_id, seq) != seq or event.id in ids:
            return False
        following[event.run_id] = seq + 1
        ids.add(event.id)
    return True


def notify_payload(runs: list[str]) -> str:
    """The batch's run ids, one per line; empty (meaning "some run") when over NOTIFY's size limit."""
    payload = "\n".join(runs)
    return payload if len(payload.encode()) < _NOTIFY_LIMIT else ""
