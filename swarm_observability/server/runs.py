"""The server's read model: run states folded incrementally, the runs table, store-wide stats.

A page polls ``/api/runs`` and ``/api/runs/{id}`` while scans write, so folding every log from
scratch on every request would make each request cost the whole store. :class:`RunCache` keeps one
:class:`~swarm_observability.state.RunStateBuilder` per run and folds only the events appended since the
last request (``load_since``); the fold is pure, so the cached state equals a fresh
:func:`~swarm_observability.state.rebuild_run_state`.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from ..events import StreamEvent
from ..state import RunState, RunStateBuilder
from ..stores.base import EventStore, RunInfo

TOKEN_KEYS = ("input_tokens", "output_tokens", "total_tokens")
"""Token counters read from a run state's ``usage`` block (recorded by the LLM callbacks)."""


class RunCache:
    """Run states of one store, each folded incrementally; thread-safe."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._builders: dict[str, RunStateBuilder] = {}
        self._run_locks: dict[str, threading.Lock] = {}

    def state(self, run_id: str) -> RunState:
        """The state of ``run_id`` after every stored event (``pending`` for an unknown run).

        Raises:
            StoreCorruptionError: the run's log is damaged.
        """
        with self._lock:
            lock = self._run_locks.setdefault(run_id, threading.Lock())
        with lock:
            builder = self._builders.get(run_id) or RunStateBuilder(run_id)
            fresh = (
                RunStateBuilder(run_id) if builder.last_seq > self.store.last_sequence(run_id) else builder
            )
            try:
                fresh.apply_all(self.store.iter_events(run_id, fresh.last_seq))
            except Exception:
                self._builders.pop(run_id, None)
                raise
            self._builders[run_id] = fresh
            return fresh.state


def tokens_of(state: RunState) -> dict[str, int] | None:
    """Token counts of a run from the ``usage`` block of its state; ``None`` when no call reported any."""
    usage = getattr(state, "usage", None)
    if usage is None:
        return None
    if hasattr(usage, "model_dump"):
        usage = usage.model_dump()
    if not isinstance(usage, dict):
        return None
    calls = usage.get("llm_calls")
    if isinstance(calls, int) and calls <= int(usage.get("calls_without_usage") or 0):
        return None  # no model call reported tokens: unknown, not zero
    counts = {key: int(usage[key]) for key in TOKEN_KEYS if isinstance(usage.get(key), int | float)}
    if counts and "total_tokens" not in counts:
        counts["total_tokens"] = counts.get("input_tokens", 0) + counts.get("output_tokens", 0)
    return counts or None


def run_row(info: RunInfo, state: RunState | None, error: str | None = None) -> dict[str, Any]:
    """One row of the runs table (``swarm-obs runs --json`` plus tokens and progress)."""
    if state is None:
        return {
            "run_id": info.run_id,
            "status": "damaged",
            "graph": None,
            "thread_id": None,
            "started_at": info.first_timestamp,
            "ended_at": None,
            "duration_s": (info.last_timestamp - info.first_timestamp).total_seconds(),
            "invocations": 0,
            "events": info.event_count,
            "errors": 0,
            "progress": None,
            "tokens": None,
            "last_type": info.last_type,
            "last_event_at": info.last_timestamp,
            "error": error,
        }
    return {
        "run_id": info.run_id,
        "status": state.status.value,
        "status_reason": state.status_reason,
        "graph": state.graph,
        "thread_id": state.thread_id,
        "started_at": state.started_at,
        "ended_at": state.ended_at,
        "duration_s": state.duration_s,
        "invocations": state.invocations,
        "events": state.last_seq,
        "errors": len(state.errors),
        "progress": state.progress,
        "tokens": tokens_of(state),
        "last_type": info.last_type,
        "last_event_at": state.last_event_at,
    }


def rows(cache: RunCache, infos: list[RunInfo]) -> list[dict[str, Any]]:
    """Rows for ``infos``; a damaged run is a ``damaged`` row, never an error of the whole table."""
    out = []
    for info in infos:
        try:
            out.append(run_row(info, cache.state(info.run_id)))
        except Exception as exc:
            out.append(run_row(info, None, f"{type(exc).__name__}: {exc}"))
    return out


def store_stats(cache: RunCache, *, now: datetime | None = None, minutes: int = 60) -> dict[str, Any]:
    """Counts per type and per run status, events per minute over the last ``minutes``, tokens."""
    store = cache.store
    stats = store.stats()
    by_type: Counter[str] = Counter()
    by_status: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    any_tokens = False
    for row_state in _states(cache, store.runs()):
        if row_state is None:
            by_status["damaged"] += 1
            continue
        by_status[row_state.status.value] += 1
        by_type.update(row_state.event_counts)
        counts = tokens_of(row_state)
        if counts:
            any_tokens = True
            tokens.update(counts)
    now = now or datetime.now(UTC)
    start = (now - timedelta(minutes=minutes - 1)).replace(second=0, microsecond=0)
    per_minute: Counter[datetime] = Counter(_minute(e) for e in store.query(since=start))
    series = [
        {"minute": start + timedelta(minutes=i), "events": per_minute.get(start + timedelta(minutes=i), 0)}
        for i in range(minutes)
    ]
    return {
        "store": {
            "backend": stats.backend,
            "runs": stats.runs,
            "events": stats.events,
            "location": stats.location,
            "size_bytes": stats.size_bytes,
        },
        "events_by_type": dict(sorted(by_type.items())),
        "runs_by_status": dict(sorted(by_status.items())),
        "events_per_minute": series,
        "tokens": dict(tokens) if any_tokens else None,
    }


def _states(cache: RunCache, infos: list[RunInfo]) -> list[RunState | None]:
    out: list[RunState | None] = []
    for info in infos:
        try:
            out.append(cache.state(info.run_id))
        except Exception:
            out.append(None)
    return out


def _minute(event: StreamEvent) -> datetime:
    return event.timestamp.replace(second=0, microsecond=0)
