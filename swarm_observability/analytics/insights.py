"""Answers from the analytics database: ``stats`` (the common questions) and read-only ``query``.

``stats`` reports, for scopes that started at or after ``since``:

* per kind and name (node, probe, agent, plan, model, tool): executions, finished ones, errors, the
  error rate among finished ones, and p50 / p95 / max duration (linear interpolation, as
  ``quantile_cont``) over finished executions;
* tokens per agent and model (model calls; the agent is the event's ``agent``, else its node);
* runs per status (runs that started at or after ``since``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ._duckdb import require_duckdb

_SINCE_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_READ_ONLY_STATEMENTS = frozenset({"SELECT", "EXPLAIN"})

_SCOPE_STATS = """
SELECT kind, name, count(*) AS count, count(outcome) AS finished,
    count(*) FILTER (WHERE outcome = 'error') AS errors,
    CASE WHEN count(outcome) > 0
        THEN count(*) FILTER (WHERE outcome = 'error') / count(outcome) END AS error_rate,
    quantile_cont(duration_ms, 0.5) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms,
    max(duration_ms) AS max_ms
FROM scopes WHERE started_at >= ? GROUP BY kind, name ORDER BY kind, name NULLS FIRST
"""
_TOKENS = """
SELECT coalesce(agent, node) AS agent, name AS model, count(*) AS calls,
    sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
    sum(total_tokens) AS total_tokens, sum(cost_usd) AS cost_usd
FROM scopes WHERE kind = 'model' AND started_at >= ?
GROUP BY ALL ORDER BY agent NULLS FIRST, model NULLS FIRST
"""
_RUNS = "SELECT status, count(*) AS runs FROM runs WHERE started_at >= ? GROUP BY status ORDER BY status"
_TOTALS = "SELECT count(*), min(ts), max(ts) FROM events WHERE ts >= ?"


def parse_since(value: str | datetime | None, now: datetime | None = None) -> datetime | None:
    """``7d``, ``24h``, ``30m``, ``90s``, ``2w`` (before ``now``) or an ISO date/time (UTC if naive).

    Raises:
        ValueError: anything else, naming the accepted forms.
    """
    if value is None or isinstance(value, datetime):
        return _utc(value) if isinstance(value, datetime) else None
    match = _SINCE_RELATIVE.match(value)
    if match:
        amount = float(match.group(1))
        try:
            return (now or datetime.now(UTC)) - timedelta(**{_UNITS[match.group(2)]: amount})
        except OverflowError:
            raise ValueError(f"--since {value!r}: reaches before year 1; give a shorter duration") from None
    try:
        return _utc(datetime.fromisoformat(value.strip()))
    except ValueError:
        raise ValueError(
            f"--since {value!r}: expected a duration like 7d, 24h, 30m, 90s, 2w or an ISO date "
            "such as 2026-11-30 or 2026-11-30T12:00:00Z"
        ) from None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


def _naive_utc(since: datetime | None) -> datetime:
    # The database keeps UTC as TIMESTAMP (without zone); compare like with like.
    return datetime(1, 1, 1) if since is None else since.astimezone(UTC).replace(tzinfo=None)


def stats(cursor: Any, since: str | datetime | None = None) -> dict[str, Any]:
    """The common questions answered from an open database cursor (see the module docstring)."""
    bound = _naive_utc(parse_since(since))
    count, first, last = cursor.execute(_TOTALS, [bound]).fetchone()
    return {
        "since": None if since is None else bound.replace(tzinfo=UTC).isoformat(),
        "events": count,
        "first_event": _iso(first),
        "last_event": _iso(last),
        "runs_by_status": {status: n for status, n in cursor.execute(_RUNS, [bound]).fetchall()},
        "scopes": _records(cursor.execute(_SCOPE_STATS, [bound])),
        "tokens": _records(cursor.execute(_TOKENS, [bound])),
    }


def run_query(
    cursor: Any, sql: str, params: Sequence[Any] | None = None
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one SELECT (or WITH ... SELECT, EXPLAIN) and return (column names, rows).

    Raises:
        AnalyticsError: not exactly one statement, a statement that could change something, or a
            DuckDB error (with its message).
    """
    from .database import AnalyticsError

    duckdb = require_duckdb()
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise AnalyticsError(f"invalid SQL: {exc}") from exc
    if len(statements) != 1:
        raise AnalyticsError(f"expected exactly one SQL statement, got {len(statements)}")
    kind = statements[0].type.name
    if kind not in _READ_ONLY_STATEMENTS:
        raise AnalyticsError(f"only read-only queries (SELECT, WITH, EXPLAIN) are allowed, not {kind}")
    try:
        result = cursor.execute(sql, params or [])
        columns = [d[0] for d in result.description or []]
        return columns, result.fetchall()
    except duckdb.Error as exc:
        raise AnalyticsError(f"query failed: {exc}") from exc


def open_readonly(path: str | Path) -> Any:
    """A read-only connection to the analytics database at ``path`` (waits briefly for a writer)."""
    from .database import open_database

    return open_database(Path(path).expanduser().absolute(), writable=False)


def _records(result: Any) -> list[dict[str, Any]]:
    columns = [d[0] for d in result.description]
    return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
