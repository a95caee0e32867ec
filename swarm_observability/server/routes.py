"""The read API and the live streams: ``/api/events/...``, ``/api/runs/...``, ``/api/health``.

Handlers that read the store are plain functions (FastAPI runs them in its thread pool, so a slow
read never stalls the streams); the SSE handlers are coroutines reading the store through threads.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse

from ..events import StreamEvent, validate_run_id
from ..scope_tree import build_timeline
from ..stores.base import EventStore, RunInfo
from ..stores.postgres import redact
from . import live
from .app import ServerConfig
from .runs import rows, run_row, store_stats

router = APIRouter(prefix="/api")

_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
_CORRELATION_FIELDS = ("invocation_id", "scope_id", "parent_scope_id", "trace_id", "task_id", "span_id")
_RUN_STATUSES = ("pending", "running", "paused", "cancelled", "completed", "failed", "damaged")

RunId = Annotated[str, Path(description="A run id (the scan's id, by default its thread id).")]


def _config(request: Request) -> ServerConfig:
    return request.app.state.swarm


def known_run(store: EventStore, run_id: str) -> str:
    validate_run_id(run_id)
    if store.last_sequence(run_id) == 0:
        raise HTTPException(404, f"unknown run {run_id!r}")
    return run_id


def _aware(since: datetime | None) -> datetime | None:
    if since is not None and since.utcoffset() is None:
        raise HTTPException(422, "bad parameters: since needs a timezone (e.g. 2026-01-02T03:04:05Z)")
    return since


def _events(events: list[StreamEvent]) -> list[dict[str, Any]]:
    return [event.to_dict() for event in events]


# -- events -----------------------------------------------------------------------------------------


@router.get("/events/recent", summary="Newest events over all runs")
def recent_events(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many events.")] = 100,
    type: Annotated[list[str] | None, Query(description="Only these event types (repeatable).")] = None,
    since: Annotated[datetime | None, Query(description="Only events at or after this time.")] = None,
    run_id: Annotated[str | None, Query(description="Only events of this run.")] = None,
) -> dict[str, Any]:
    """Events newest first (timestamp, then seq), filtered by type, time and run."""
    store = _config(request).store
    if run_id is not None:
        validate_run_id(run_id)
    events = store.query(run_id=run_id, types=type, since=_aware(since), limit=limit)
    return {"events": _events(events)}


@router.get("/events/by-run/{run_id}", summary="A run's events, paged by seq")
def events_by_run(
    request: Request,
    run_id: RunId,
    after_seq: Annotated[int, Query(ge=0, description="Only events with a greater seq.")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000, description="Page size.")] = 500,
) -> dict[str, Any]:
    """Events of one run in seq order after ``after_seq``; follow ``next_after_seq`` for the next page."""
    store = _config(request).store
    known_run(store, run_id)
    page = live.read_page(store, run_id, after_seq, limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return {
        "run_id": run_id,
        "last_seq": store.last_sequence(run_id),
        "events": _events(page),
        "next_after_seq": page[-1].seq if more and page else None,
    }


@router.get("/events/by-correlation/{correlation_id}", summary="Events sharing an id")
def events_by_correlation(
    request: Request,
    correlation_id: Annotated[str, Path(description="An invocation, scope, trace, span or task id.")],
    run_id: Annotated[str | None, Query(description="Search this run only (faster).")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> dict[str, Any]:
    """Events whose invocation, scope, parent scope, trace, span or task id equals the given id."""
    store = _config(request).store
    runs = [known_run(store, run_id)] if run_id is not None else [info.run_id for info in store.runs()]
    found: list[StreamEvent] = []
    for run in runs:
        for event in store.iter_events(run):
            if any(getattr(event, name) == correlation_id for name in _CORRELATION_FIELDS):
                found.append(event)
                if len(found) >= limit:
                    break
        if len(found) >= limit:
            break
    if not found:
        raise HTTPException(404, f"no event carries the id {correlation_id!r}")
    return {"correlation_id": correlation_id, "events": _events(found)}


@router.get("/events/stats", summary="Counts per type and run status, events per minute, tokens")
def events_stats(request: Request) -> dict[str, Any]:
    """Store-wide figures for a dashboard (tokens only when runs recorded model usage)."""
    return store_stats(_config(request).cache)


@router.get(
    "/events/stream",
    summary="Every run's new events, live (SSE)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def all_events_stream(
    request: Request,
    last_event_id: Annotated[str | None, Header(description="Resume after this message id.")] = None,
) -> StreamingResponse:
    """Server-Sent Events, one message per event appended from now on (ids ``<instance>-<n>``)."""
    config = _config(request)
    stream = live.all_events_stream(config.watcher, last_event_id, heartbeat=config.heartbeat)
    return StreamingResponse(stream, media_type="text/event-stream", headers=_SSE_HEADERS)


@router.get("/events/{event_id}", summary="One event by id")
def event_by_id(request: Request, event_id: Annotated[str, Path(description="The event id.")]) -> Any:
    """The event with this id (runs are searched by the time embedded in a UUIDv7 id first)."""
    store = _config(request).store
    for info in _runs_for_id(store.runs(), event_id):
        for event in store.iter_events(info.run_id):
            if event.id == event_id:
                return event.to_dict()
    raise HTTPException(404, f"unknown event {event_id!r}")


def _runs_for_id(infos: list[RunInfo], event_id: str) -> list[RunInfo]:
    try:
        parsed = uuid.UUID(event_id)
    except ValueError:
        return infos
    if parsed.version != 7:
        return infos
    at = datetime.fromtimestamp((parsed.int >> 80) / 1000, UTC)
    slack = timedelta(seconds=2)
    return [i for i in infos if i.first_timestamp - slack <= at <= i.last_timestamp + slack]


# -- runs -------------------------------------------------------------------------------------------


@router.get("/runs", summary="The runs table, newest first")
def list_runs(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    status: Annotated[
        str | None, Query(description=f"Only runs in this status: {', '.join(_RUN_STATUSES)}.")
    ] = None,
) -> dict[str, Any]:
    """Status, graph, start, duration, events, errors, progress and tokens of each run."""
    if status is not None and status not in _RUN_STATUSES:
        raise HTTPException(422, f"bad parameters: status must be one of {', '.join(_RUN_STATUSES)}")
    config = _config(request)
    infos = list(reversed(config.store.runs()))
    table = rows(config.cache, infos)
    if status is not None:
        table = [row for row in table if row["status"] == status]
    return {"total": len(table), "offset": offset, "runs": table[offset : offset + limit]}


@router.get("/runs/{run_id}", summary="A run's derived state")
def get_run(request: Request, run_id: RunId) -> dict[str, Any]:
    """The run's row and its full state folded from the log."""
    config = _config(request)
    known_run(config.store, run_id)
    state = config.cache.state(run_id)
    info = next((i for i in config.store.runs() if i.run_id == run_id), None)
    row = run_row(info, state) if info is not None else {"run_id": run_id}
    return {"run": row, "state": state.model_dump(mode="json")}


@router.get("/runs/{run_id}/tree", summary="A run's scope tree (the `swarm-obs show` tree)")
def get_tree(request: Request, run_id: RunId) -> dict[str, Any]:
    """Invocations > nodes > probes / agents / plans, with every other event attached to its scope."""
    config = _config(request)
    known_run(config.store, run_id)
    state = config.cache.state(run_id)
    invocations = build_timeline(config.store.iter_events(run_id))
    return {
        "run_id": run_id,
        "status": state.status.value,
        "events": state.last_seq,
        "invocations": [inv.to_dict() for inv in invocations],
    }


@router.get("/runs/{run_id}/graph", summary="The graph's nodes and edges, with execution counts")
def get_graph_view(request: Request, run_id: RunId) -> dict[str, Any]:
    """The shape recorded at the run's start (``get_graph()``), each node's executions and what runs now.

    Runs recorded without a shape (older releases, graphs that cannot be drawn) get the nodes seen in
    the log and no edges (``recorded: false``).
    """
    config = _config(request)
    known_run(config.store, run_id)
    state = config.cache.state(run_id)
    starts = config.store.query(run_id=run_id, types=["scan_started"])
    shape = next(
        (e.data["graph_shape"] for e in reversed(starts) if isinstance(e.data.get("graph_shape"), dict)), None
    )
    names = list(shape.get("nodes", [])) if shape else sorted(state.nodes)
    running = Counter(node.node for node in state.current_nodes)
    nodes = []
    for name in names + [n for n in sorted(state.nodes) if n not in names]:
        stats = state.nodes.get(name)
        nodes.append(
            {
                "id": name,
                "executions": stats.started if stats else 0,
                "finished": stats.finished if stats else 0,
                "outcomes": dict(stats.outcomes) if stats else {},
                "running": running.get(name, 0),
            }
        )
    return {
        "run_id": run_id,
        "recorded": shape is not None,
        "nodes": nodes,
        "edges": shape.get("edges", []) if shape else [],
    }


@router.get(
    "/runs/{run_id}/stream",
    summary="A run's events, then live ones (SSE, id = seq)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def run_stream(
    request: Request,
    run_id: RunId,
    after_seq: Annotated[int, Query(ge=0, description="Start after this seq (default: the start).")] = 0,
    last_event_id: Annotated[
        str | None, Header(description="Resume after this seq (sent by a reconnecting browser).")
    ] = None,
) -> StreamingResponse:
    """Server-Sent Events, one message per event with ``id: <seq>``; ``Last-Event-ID`` resumes after it."""
    config = _config(request)
    validate_run_id(run_id)
    after = after_seq
    if last_event_id is not None and last_event_id.strip():
        if not last_event_id.strip().isdigit():
            raise HTTPException(422, "bad parameters: Last-Event-ID must be a seq (a whole number)")
        after = int(last_event_id.strip())
    exists = await asyncio.to_thread(config.store.last_sequence, run_id)
    if exists == 0:
        raise HTTPException(404, f"unknown run {run_id!r}")
    stream = live.run_stream(config.watcher, run_id, after, heartbeat=config.heartbeat)
    return StreamingResponse(stream, media_type="text/event-stream", headers=_SSE_HEADERS)


@router.get("/health", summary="Liveness, the store and the live streams")
def get_health(request: Request) -> dict[str, Any]:
    """Whether the store answers, and the streams: clients, their lag, slow-client gaps."""
    config = _config(request)
    try:
        stats = config.store.stats()
        store: dict[str, Any] = {
            "ok": True,
            "backend": stats.backend,
            "runs": stats.runs,
            "events": stats.events,
        }
    except Exception as exc:
        store = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {
        "status": "ok" if store["ok"] else "degraded",
        "uptime_s": round(time.time() - config.started_at, 3),
        "read_only": config.read_only,
        "control_channel": redact(str(config.control_path)) if config.control_path else None,
        "store": store,
        "streams": live.health(config.watcher),
    }
