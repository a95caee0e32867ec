"""The control API: ``POST /api/runs/{run_id}/cancel|pause|resume|drain``.

Requests go through the same control channel as ``swarm-obs cancel`` (a row in the store's SQLite
file, applied by the scan's process at its next safe point), so the scan may run in any process that
watches the channel. Without a channel (an in-memory store) a scan running in this process is
reached through its :class:`~swarm_observability.control.CancellationManager`.

Safe by default: every request needs ``Authorization: Bearer <token>`` (401 otherwise, compared in
constant time); a read-only server answers 403. The same status rules as the CLI apply: a run that
is not running or paused is refused with 409 unless ``force`` is set, and ``resume`` only ends a
pause at a safe point.
"""

from __future__ import annotations

import hmac
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, HTTPException, Request
from pydantic import BaseModel, Field, StrictBool

from ..control import managers, open_channel
from ..exceptions import ControlChannelError
from .app import ServerConfig
from .routes import RunId, known_run

router = APIRouter(prefix="/api")


class Action(StrEnum):
    """What a control request asks."""

    cancel = "cancel"
    pause = "pause"
    resume = "resume"
    drain = "drain"


class ControlBody(BaseModel):
    """Optional body of a control request."""

    reason: str | None = Field(default=None, max_length=1000, description="Recorded in the run's events.")
    force: StrictBool = Field(
        default=False,
        description="Send even if the run does not look running (JSON true/false only: a lax "
        '"yes" or "0" must not send a request to a stopped run).',
    )


def _authorize(config: ServerConfig, authorization: str | None) -> None:
    if config.read_only or config.token is None:
        raise HTTPException(403, "this server is read-only (started with --read-only)")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), config.token.encode()):
        raise HTTPException(
            401,
            "control needs the server's token: Authorization: Bearer <token> (printed by swarm-obs serve)",
            headers={"WWW-Authenticate": 'Bearer realm="swarm-obs"'},
        )


@router.post("/runs/{run_id}/{action}", status_code=202, summary="Cancel, pause, resume or drain a run")
def control_run(
    request: Request,
    run_id: RunId,
    action: Action,
    body: Annotated[ControlBody | None, Body()] = None,
    authorization: Annotated[str | None, Header(description="Bearer <token>")] = None,
) -> dict[str, Any]:
    """Queue a control request; the scan applies it at its next safe point (watch the run's stream)."""
    config: ServerConfig = request.app.state.swarm
    _authorize(config, authorization)
    body = body or ControlBody()
    known_run(config.store, run_id)
    state = config.cache.state(run_id)
    status = state.status.value
    if not body.force:
        if status not in ("running", "paused", "pending"):
            raise HTTPException(409, f"run {run_id} is not running (status {status}); force sends anyway")
        if action is Action.resume and status == "paused" and state.status_reason != "pause":
            raise HTTPException(
                409,
                f"run {run_id} stopped ({state.status_reason}), it is not waiting at a safe point: continue "
                f"it with `swarm-obs resume {run_id} --graph MODULE:ATTR`",
            )
    reason = body.reason or "requested from the swarm-obs page"
    if config.control_path is not None:
        try:
            channel = open_channel(config.control_path)
            try:
                queued = channel.request(run_id, action.value, reason)
            finally:
                channel.close()
        except (ControlChannelError, OSError) as exc:
            raise HTTPException(503, f"the control channel cannot be written: {exc}") from exc
        return {"run_id": run_id, "action": action.value, "request_id": queued.id, "via": "channel"}
    manager = managers().get(run_id)
    if manager is None:
        raise HTTPException(
            409, f"run {run_id} is not running in this process and there is no control channel"
        )
    manager.apply(action.value, reason)
    return {"run_id": run_id, "action": action.value, "request_id": None, "via": "process"}
