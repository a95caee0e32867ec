"""The one event record that flows everywhere: ``StreamEvent``.

A ``StreamEvent`` is created by the emitter, persisted by a store, written to LangGraph's custom
stream, turned into OpenTelemetry spans and delivered to subscribers. There is no second format:
stores keep the JSON of :meth:`StreamEvent.to_json`, and :meth:`StreamEvent.from_json` reads it back.

Contract:

* Timestamps are timezone-aware UTC with millisecond precision and serialize as
  ``2026-11-22T19:24:18.123Z``. Naive datetimes are refused, so local time can never be stored
  by accident. Because the value is truncated to milliseconds on creation, ``to_json`` ->
  ``from_json`` is lossless.
* Forward compatibility: an event read from storage with an unknown ``type`` keeps it as a plain
  string, and unknown fields are kept as extra fields; writing the event back reproduces them.
* ``seq`` is ``None`` until the emitter (or the caller) assigns it; stores require it.
* Scopes: ``scope_id`` names the scan invocation, node execution, probe, plan or agent that an event
  opens, closes or happens in, and ``parent_scope_id`` the enclosing one. That tree is what the
  OpenTelemetry mapping turns into spans, live and from a stored log alike.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, ValidationError, field_validator

from .exceptions import EventValidationError, InvalidRunIdError

SCHEMA_VERSION = 1
"""Version of the event schema written by this release; readers accept newer versions as-is."""

_MAX_RUN_ID_LENGTH = 256


class EventType(StrEnum):
    """The event types this release emits. Unknown types read from storage stay plain strings."""

    SCAN_STARTED = "scan_started"
    SCAN_PAUSED = "scan_paused"
    SCAN_RESUMED = "scan_resumed"
    SCAN_CANCELLED = "scan_cancelled"
    SCAN_COMPLETE = "scan_complete"
    SCAN_ERROR = "scan_error"
    NODE_ENTER = "node_enter"
    NODE_PROGRESS = "node_progress"
    NODE_EXIT = "node_exit"
    PLAN_START = "plan_start"
    PLAN_COMPLETE = "plan_complete"
    PROBE_START = "probe_start"
    PROBE_RESULT = "probe_result"
    PROBE_COMPLETE = "probe_complete"
    AGENT_START = "agent_start"
    AGENT_COMPLETE = "agent_complete"
    LOG = "log"
    HEARTBEAT = "heartbeat"


TERMINAL_SCAN_TYPES = frozenset(
    {EventType.SCAN_COMPLETE, EventType.SCAN_ERROR, EventType.SCAN_CANCELLED, EventType.SCAN_PAUSED}
)
"""Event types that end one scan invocation (exactly one per invocation)."""


class Outcome(StrEnum):
    """How a scope (node, probe, agent, plan, scan invocation) ended; stored in ``data["outcome"]``."""

    OK = "ok"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"
    PAUSED = "paused"


def _utc_now_ms() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def _format_timestamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


Timestamp = Annotated[datetime, PlainSerializer(_format_timestamp, return_type=str, when_used="json")]


def validate_run_id(run_id: object, *, for_filename: bool = False) -> str:
    """Return ``run_id`` if it can be stored, else raise :class:`InvalidRunIdError`.

    Every run id must be a non-empty string of at most 256 characters without control characters.
    With ``for_filename=True`` it must also be safe as one path component: no ``/``, ``\\``, no
    leading dot and no ``..``, so a run id can never escape the folder it is written into.
    """
    if not isinstance(run_id, str):
        raise InvalidRunIdError(run_id, f"must be a string, not {type(run_id).__name__}")
    if not run_id:
        raise InvalidRunIdError(run_id, "must not be empty")
    if len(run_id) > _MAX_RUN_ID_LENGTH:
        raise InvalidRunIdError(run_id, f"longer than {_MAX_RUN_ID_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in run_id):
        raise InvalidRunIdError(run_id, "contains control characters")
    if for_filename and ("/" in run_id or "\\" in run_id or run_id.startswith(".") or ".." in run_id):
        raise InvalidRunIdError(run_id, "not usable as a file name (path separators or dots)")
    return run_id


class StreamEvent(BaseModel):
    """One observable fact about a scan. Immutable: derive changed copies with ``model_copy``."""

    model_config = ConfigDict(extra="allow", frozen=True, validate_default=False)

    type: EventType | str = Field(description="What happened; an EventType value, or an unknown string kept as-is.")
    run_id: str = Field(description="The scan this event belongs to; defaults to the LangGraph thread id.")
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), description="Unique event id (UUID4).")
    seq: int | None = Field(default=None, ge=1, description="Per-run sequence number, gapless from 1.")
    timestamp: Timestamp = Field(default_factory=_utc_now_ms, description="UTC, millisecond precision.")
    version: int = Field(default=SCHEMA_VERSION, ge=1, description="Schema version of the writer.")
    thread_id: str | None = Field(default=None, description="LangGraph thread id of the invocation.")
    node: str | None = Field(default=None, description="Graph node the event happened in.")
    agent: str | None = Field(default=None, description="Agent the event happened in.")
    probe: str | None = Field(default=None, description="Probe the event happened in.")
    message: str | None = Field(default=None, description="Human-readable text.")
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON payload (outcome, duration_ms, ...); values that are not JSON are stored as repr().",
    )
    progress: float | None = Field(default=None, ge=0.0, le=1.0, description="Fraction done, 0..1.")
    step: int | None = Field(default=None, description="LangGraph superstep of the node execution.")
    task_id: str | None = Field(default=None, description="LangGraph task id of the node execution.")
    namespace: tuple[str, ...] = Field(
        default=(), description="Subgraph path, one '<node>:<task_id>' element per nesting level."
    )
    checkpoint_id: str | None = Field(default=None, description="Checkpoint the event was emitted under.")
    invocation_id: str | None = Field(default=None, description="The scan invocation (one graph call).")
    scope_id: str | None = Field(default=None, description="Scope (invocation/node/probe/agent/plan) of the event.")
    parent_scope_id: str | None = Field(default=None, description="Enclosing scope.")
    trace_id: str | None = Field(default=None, description="OpenTelemetry trace id (32 hex) when traced live.")
    span_id: str | None = Field(default=None, description="OpenTelemetry span id (16 hex) when traced live.")

    @field_validator("timestamp")
    @classmethod
    def _utc_milliseconds(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamp must be timezone-aware (UTC); naive datetimes are refused")
        value = value.astimezone(UTC)
        return value.replace(microsecond=value.microsecond - value.microsecond % 1000)

    @field_validator("run_id")
    @classmethod
    def _valid_run_id(cls, value: str) -> str:
        try:
            return validate_run_id(value)
        except InvalidRunIdError as exc:
            raise ValueError(exc.reason) from None

    @property
    def type_name(self) -> str:
        """The type as a plain string, known or not."""
        return str(self.type.value if isinstance(self.type, EventType) else self.type)

    @property
    def extra_fields(self) -> dict[str, Any]:
        """Fields unknown to this release, kept from storage."""
        return dict(self.__pydantic_extra__ or {})

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (timestamps as ISO strings); ``None`` and empty fields left out, extras kept."""
        out = self.model_dump(mode="json", exclude_none=True, fallback=repr, exclude=_EMPTY[bool(self.data), bool(self.namespace)])
        if self.__pydantic_extra__:
            out.update(self.__pydantic_extra__)
        return out

    def to_json(self) -> str:
        """Compact JSON text of :meth:`to_dict`, as stored by the persistent backends."""
        return self.to_json_bytes().decode()

    def to_json_bytes(self) -> bytes:
        """UTF-8 JSON of :meth:`to_dict`; the hot path of the persistent stores."""
        if not self.__pydantic_extra__:
            return self.__pydantic_serializer__.to_json(
                self, exclude_none=True, fallback=repr, exclude=_EMPTY[bool(self.data), bool(self.namespace)]
            )
        return _json_dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamEvent:
        """Validate a dict (as produced by :meth:`to_dict`); raises :class:`EventValidationError`."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise EventValidationError(_describe(exc)) from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> StreamEvent:
        """Parse JSON text (as produced by :meth:`to_json`); raises :class:`EventValidationError`."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise EventValidationError(_describe(exc)) from exc


_EMPTY: dict[tuple[bool, bool], set[str] | None] = {
    (True, True): None,
    (True, False): {"namespace"},
    (False, True): {"data"},
    (False, False): {"data", "namespace"},
}


def _json_dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "event"
        parts.append(f"{where}: {error['msg']}")
    return "invalid StreamEvent: " + "; ".join(parts)


def make_event(type: EventType | str, run_id: str, **fields: Any) -> StreamEvent:
    """Build a validated event, turning pydantic's error into :class:`EventValidationError`."""
    try:
        return StreamEvent(type=type, run_id=run_id, **fields)
    except ValidationError as exc:
        raise EventValidationError(_describe(exc)) from exc


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a serialized :class:`StreamEvent`."""
    schema = StreamEvent.model_json_schema(mode="serialization")
    schema["$id"] = f"https://swarm-observability.dev/schema/stream-event-v{SCHEMA_VERSION}.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
