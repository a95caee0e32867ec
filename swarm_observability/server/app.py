"""``create_app(store)``: the ASGI app of ``swarm-obs serve`` (FastAPI), mountable in any service.

Routes (the OpenAPI schema is at ``/openapi.json``, interactive docs at ``/docs``):

* ``/`` the page; ``/static/*`` its files (shipped in the package, no CDN).
* ``/api/events/...`` and ``/api/runs/...`` the read API, JSON in the events' own ``to_dict()`` form
  (:mod:`.routes`); ``/api/runs/{id}/stream`` and ``/api/events/stream`` the live SSE streams
  (:mod:`.live`); ``/api/health`` liveness and stream figures.
* ``POST /api/runs/{id}/cancel|pause|resume|drain`` control (:mod:`.control`).

Every request passes :class:`~.guard.RequestGuard` first: a ``Host`` that is not loopback (or one of
``allowed_hosts``) is refused with 421, a state-changing request from another site's page with 403.

Errors are JSON ``{"error": message, "status": code}``: unknown ids 404, bad parameters 422 (with
``details``), a damaged log 500 naming ``swarm-obs verify``; never a stack trace.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..exceptions import InvalidRunIdError, StoreCorruptionError
from ..stores.base import EventStore
from .guard import RequestGuard
from .live import StoreWatcher
from .runs import RunCache

logger = logging.getLogger("swarm_observability.server")

TOKEN_ENV = "SWARM_OBS_TOKEN"
"""Environment variable holding the bearer token of the control API (else one is generated)."""

STATIC = Path(__file__).parent / "static"


@dataclass
class ServerConfig:
    """What the routes need, kept on ``app.state.swarm``."""

    store: EventStore
    cache: RunCache
    watcher: StoreWatcher
    token: str | None
    """Bearer token the control API requires; ``None`` only when ``read_only``."""
    read_only: bool
    control_path: Path | str | None
    """SQLite file of the control channel; ``None``: only scans running in this process are reachable."""
    heartbeat: float
    started_at: float


def create_app(
    store: EventStore,
    *,
    token: str | None = None,
    read_only: bool = False,
    control_path: str | os.PathLike[str] | None = None,
    cors_origins: list[str] | tuple[str, ...] = (),
    allowed_hosts: Iterable[str] = (),
    heartbeat: float = 15.0,
    ring_size: int = 10_000,
) -> FastAPI:
    """The swarm-obs web app over ``store``.

    Args:
        store: the event store to read (scans may be writing it from other processes).
        token: bearer token for control requests; default ``$SWARM_OBS_TOKEN``, else a random one
            (read it from ``app.state.swarm.token``).
        read_only: refuse every control request (403).
        control_path: the control channel's SQLite file; default: the store's own rule (its file when
            SQLite, ``control.db`` beside a JSONL store). Without one (in-memory store) control reaches
            scans running in this process only.
        cors_origins: origins allowed to call the API from a browser; none by default (closed).
        allowed_hosts: ``Host`` names answered besides loopback (``localhost``, ``127.0.0.1``,
            ``[::1]``): the name a proxy or remote client reaches the app by (``"*"``: any). Needed
            when mounting the app in a service with a real domain name (see :mod:`.guard`).
        heartbeat: seconds of silence after which a stream sends a heartbeat comment.
        ring_size: events kept for resuming the all-events stream.
    """
    from ..checkpointers import is_postgres_url
    from ..control.channel import default_channel_path
    from . import control, routes

    if heartbeat <= 0:
        raise ValueError(f"heartbeat must be positive, got {heartbeat!r}")
    path = default_channel_path(store) if control_path is None else control_path
    if path is not None and not (isinstance(path, str) and is_postgres_url(path)):
        path = Path(path)
    watcher = StoreWatcher(store, ring_size=ring_size)
    config = ServerConfig(
        store=store,
        cache=RunCache(store),
        watcher=watcher,
        token=None if read_only else (token or os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)),
        read_only=read_only,
        control_path=path,
        heartbeat=heartbeat,
        started_at=time.time(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        watcher.stop()

    from .. import __version__

    app = FastAPI(
        title="swarm-observability",
        version=__version__,
        description="Read, follow and control the LangGraph scans recorded in an event store.",
        lifespan=lifespan,
    )
    app.state.swarm = config
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        )
    app.add_middleware(RequestGuard, allowed_hosts=tuple(allowed_hosts), allowed_origins=tuple(cors_origins))
    _install_error_handlers(app)
    app.include_router(routes.router)
    app.include_router(control.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    return app


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    """The JSON error body every failure uses."""
    return JSONResponse({"error": message, "status": status, **extra}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error(exc.status_code, str(exc.detail))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    @app.exception_handler(RequestValidationError)
    async def bad_parameters(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"location": ".".join(str(p) for p in item.get("loc", ())), "message": item.get("msg", "")}
            for item in exc.errors()
        ]
        text = "; ".join(f"{d['location']}: {d['message']}" for d in details) or "bad parameters"
        return error(422, f"bad parameters: {text}", details=details)

    @app.exception_handler(InvalidRunIdError)
    async def bad_run_id(request: Request, exc: InvalidRunIdError) -> JSONResponse:
        return error(422, str(exc))

    @app.exception_handler(StoreCorruptionError)
    async def damaged(request: Request, exc: StoreCorruptionError) -> JSONResponse:
        return error(500, f"the log is damaged: {exc} (check it with `swarm-obs verify`)")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("swarm-obs server: %s %s failed", request.method, request.url.path, exc_info=exc)
        return error(500, f"internal error: {type(exc).__name__}")
