"""The :class:`StreamEvent` record itself: its fields, their validation, and its JSON.

The contract of the record (timestamps, ``data``, forward compatibility, ids, seq, scopes) is in
:mod:`swarm_observability.events`, which re-exports every public name; building events is done there
(:func:`~swarm_observability.events.make_event`) and in :mod:`swarm_observability.event_fast`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticSerializationError, to_json, to_jsonable_python

from ._clock import format_timestamp, ms_of, new_event_id, time_of_default_timestamp, utc_now_ms
from .event_types import EventType, validate_run_id
from .exceptions import EventValidationError, InvalidRunIdError

SCHEMA_VERSION = 1
"""Version of the event schema written by this release; readers accept newer versions as-is."""

INT64_MAX = 2**63 - 1
"""The bound of seq, version and step: SQLite's INTEGER, and what every JSON reader keeps exact."""

OPTIONAL_STR_FIELDS = frozenset(
    {
        "thread_id", "node", "agent", "probe", "message", "task_id", "checkpoint_id", "invocation_id",
        "scope_id", "parent_scope_id", "trace_id", "span_id",
    }
)  # fmt: skip
"""The fields that hold a string or ``None``."""

_TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"

Timestamp = Annotated[
    datetime,
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "pattern": _TIMESTAMP_PATTERN}, mode="serialization"
    ),
]


def jsonable_data(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as plain JSON types (a new dict); what JSON cannot hold becomes its ``repr()``."""
    try:
        return to_jsonable_python(value, fallback=repr, inf_nan_mode="null")
    except Exception:  # undecodable bytes, circular references: fall back key by key
        out: dict[str, Any] = {}
        for key, item in value.items():
            try:
                out[key] = to_jsonable_python(item, fallback=repr, inf_nan_mode="null")
            except Exception:
                out[key] = _safe_repr(item)
        return out


def _safe_repr(value: object) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


class StreamEvent(BaseModel):
    """One observable fact about a scan. Immutable: derive changed copies with ``model_copy``.

    Build events with :func:`make_event` (or :meth:`EventEmitter.emit`), which raise
    :class:`EventValidationError` naming the offending field; the bare constructor raises pydantic's
    ``ValidationError`` (also a ``ValueError``), as pydantic models do. New fields are only ever
    appended at the end of this class, so that older readers write newer events back unchanged.

    Ids are RFC 9562 UUIDs, version 7 (time-ordered) since this release; see the module docstring.
    """

    model_config = ConfigDict(
        extra="allow", frozen=True, validate_default=False, ser_json_inf_nan="constants"
    )

    type: EventType | str = Field(
        description="What happened; an EventType value, or an unknown string kept as-is."
    )
    run_id: str = Field(description="The scan this event belongs to; defaults to the LangGraph thread id.")
    id: str = Field(default_factory=new_event_id, description="Unique event id (RFC 9562 UUID, v7).")
    seq: int | None = Field(
        default=None, ge=1, le=INT64_MAX, description="Per-run sequence number, gapless from 1."
    )
    timestamp: Timestamp = Field(default_factory=utc_now_ms, description="UTC, millisecond precision.")
    version: int = Field(
        default=SCHEMA_VERSION, ge=1, le=INT64_MAX, description="Schema version of the writer."
    )
    thread_id: str | None = Field(default=None, description="LangGraph thread id of the invocation.")
    node: str | None = Field(default=None, description="Graph node the event happened in.")
    agent: str | None = Field(default=None, description="Agent the event happened in.")
    probe: str | None = Field(default=None, description="Probe the event happened in.")
    message: str | None = Field(default=None, description="Human-readable text.")
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON payload (outcome, duration_ms, ...); non-JSON values are stored as repr().",
    )
    progress: float | None = Field(
        default=None, ge=0.0, le=1.0, allow_inf_nan=False, description="Fraction done, 0..1."
    )
    step: int | None = Field(
        default=None,
        ge=-INT64_MAX - 1,
        le=INT64_MAX,
        description="LangGraph superstep of the node execution.",
    )
    task_id: str | None = Field(default=None, description="LangGraph task id of the node execution.")
    namespace: tuple[str, ...] = Field(
        default=(), description="Subgraph path, one '<node>:<task_id>' element per nesting level."
    )
    checkpoint_id: str | None = Field(default=None, description="Checkpoint the event was emitted under.")
    invocation_id: str | None = Field(default=None, description="The scan invocation (one graph call).")
    scope_id: str | None = Field(
        default=None, description="Scope (invocation/node/probe/agent/plan) of the event."
    )
    parent_scope_id: str | None = Field(default=None, description="Enclosing scope.")
    trace_id: str | None = Field(
        default=None, description="OpenTelemetry trace id (32 hex) when traced live."
    )
    span_id: str | None = Field(default=None, description="OpenTelemetry span id (16 hex) when traced live.")
    sanitized: dict[str, str] | None = Field(
        default=None,
        description="Values replaced because no store could keep them faithfully: JSON Pointer of each "
        "(e.g. /message, /data/files/3) -> surrogates_escaped, key_surrogates_escaped or int_as_string.",
    )
    prev_hash: str | None = Field(
        default=None,
        description="Opt-in hash chain: 'sha256:<hex>' of the previous event of the run (of the run id "
        "for seq 1), so an edited or deleted event is detected by `swarm-obs verify`.",
    )
    time_unix_nano: int | None = Field(
        default_factory=time_of_default_timestamp,
        ge=0,
        description="The instant of timestamp at full precision: nanoseconds since the Unix epoch.",
    )

    @field_validator("timestamp", mode="wrap")
    @classmethod
    def _utc_milliseconds(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> datetime:
        # Runs for every event read from storage. The form every stored event has
        # (``2026-11-22T19:24:18.123Z``) becomes a UTC datetime in milliseconds by fromisoformat alone,
        # a fifth of the time pydantic's parser plus a conversion take. Anything else, bad digits
        # included (fromisoformat refuses them), goes to pydantic and its error messages.
        if (
            value.__class__ is str
            and len(value) == 24
            and value[23] == "Z"
            and value[19] == "."
            and value[10] == "T"
            and value[7] == "-"
            and value[4] == "-"
        ):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                pass
        value = handler(value)
        offset = value.utcoffset()
        if offset is None:
            raise ValueError("timestamp must be timezone-aware (UTC); naive datetimes are refused")
        if offset:
            value = value.astimezone(UTC)
        sub_ms = value.microsecond % 1000
        if sub_ms or value.tzinfo is not UTC:
            value = value.replace(microsecond=value.microsecond - sub_ms, tzinfo=UTC)
        return value

    @field_validator("time_unix_nano")
    @classmethod
    def _same_millisecond(cls, value: int | None, info: ValidationInfo) -> int | None:
        timestamp = info.data.get("timestamp")
        if value is not None and timestamp is not None and value // 1_000_000 != ms_of(timestamp):
            raise ValueError(f"is not within the millisecond of timestamp {format_timestamp(timestamp)}")
        return value

    @field_validator("type")
    @classmethod
    def _named_type(cls, value: EventType | str, info: ValidationInfo) -> EventType | str:
        if value == "" and info.context is not _STORED:  # one stored by an older release stays readable
            raise ValueError("must not be empty")
        return value

    @field_validator("run_id")
    @classmethod
    def _valid_run_id(cls, value: str) -> str:
        try:
            return validate_run_id(value)
        except InvalidRunIdError as exc:
            raise ValueError(exc.reason) from None

    @field_validator("data")
    @classmethod
    def _json_data(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        if not value or info.context is _STORED:
            return value
        return jsonable_data(value)

    @property
    def type_name(self) -> str:
        """The type as a plain string, known or not."""
        return str(self.type.value if isinstance(self.type, EventType) else self.type)

    @property
    def extra_fields(self) -> dict[str, Any]:
        """Fields unknown to this release, kept from storage."""
        return dict(self.__pydantic_extra__ or {})

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (ISO timestamps); ``None`` and empty fields left out, extras kept."""
        extra = self.__pydantic_extra__
        exclude = _EMPTY[bool(self.data), bool(self.namespace)]
        if not extra:
            return self.model_dump(mode="json", exclude_none=True, fallback=repr, exclude=exclude)
        out = self.model_dump(
            mode="json", exclude_none=True, fallback=repr, exclude=set(extra) | (exclude or set())
        )
        out.update(to_jsonable_python(extra, fallback=repr, inf_nan_mode="constants"))
        return out

    def to_json(self) -> str:
        """Compact JSON text of :meth:`to_dict`, as stored by the persistent backends."""
        return self.to_json_bytes().decode()

    def to_json_bytes(self) -> bytes:
        """UTF-8 JSON of :meth:`to_dict`; the hot path of the persistent stores.

        Raises:
            EventValidationError: the event holds text UTF-8 cannot encode. Events built by
                :func:`make_event` or passed through an emitter never do (see :func:`storable_event`);
                a bare constructor or ``model_copy`` can make one, and a store then refuses it whole.
        """
        extra = self.__pydantic_extra__
        try:
            if not extra or None not in extra.values():
                return self.__pydantic_serializer__.to_json(
                    self,
                    exclude_none=True,
                    fallback=repr,
                    exclude=_EMPTY[bool(self.data), bool(self.namespace)],
                )
            return to_json(self.to_dict(), fallback=repr, inf_nan_mode="constants")
        except PydanticSerializationError as exc:
            raise EventValidationError(
                f"event {self.id} ({self.type_name}) cannot be serialized: {exc}; build events with "
                "make_event() or an emitter, which store such values in a marked form"
            ) from exc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StreamEvent:
        """Validate a dict (as produced by :meth:`to_dict`); raises :class:`EventValidationError`."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise EventValidationError(describe_validation_error(exc)) from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> StreamEvent:
        """Parse JSON text (as produced by :meth:`to_json`); raises :class:`EventValidationError`."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise EventValidationError(describe_validation_error(exc)) from exc

    @classmethod
    def from_stored_json(cls, text: str | bytes) -> StreamEvent:
        """Parse JSON that a store wrote from :meth:`to_json_bytes`; for the stores' readers.

        Such JSON was normalized when the event was built (``data`` is plain, finite JSON), so this
        skips re-normalizing ``data``, the largest part of the validation cost; every other field is
        validated as by :meth:`from_json`. Raises pydantic's ``ValidationError`` (a ``ValueError``),
        which the stores turn into :class:`StoreCorruptionError` with the record's location. For
        JSON from anywhere else use :meth:`from_json`.

        Unlike :meth:`from_json`, the fields every stored event has (``id`` and ``timestamp``) are
        required: filling in a fresh id or the current time would make a damaged
        record read differently on every read.
        """
        event: StreamEvent = cls.__pydantic_validator__.validate_json(text, context=_STORED)
        if not event.__pydantic_fields_set__ >= _STORED_FIELDS:
            missing = ", ".join(sorted(_STORED_FIELDS - event.__pydantic_fields_set__))
            raise ValueError(f"stored event lacks {missing}")
        return event


_STORED_FIELDS = frozenset({"id", "timestamp"})
_STORED: dict[str, bool] = {"stored": True}
"""Validation context of :meth:`StreamEvent.from_stored_json` (compared by identity)."""

_EMPTY: dict[tuple[bool, bool], set[str] | None] = {
    (True, True): None,
    (True, False): {"namespace"},
    (False, True): {"data"},
    (False, False): {"data", "namespace"},
}


def describe_validation_error(exc: ValidationError) -> str:
    """The message of the :class:`EventValidationError` for ``exc``: each bad field, why, and its value."""
    parts = []
    for error in exc.errors():
        if error["type"] == "default_factory_not_called":  # a consequence of another field's error
            continue
        where = ".".join(str(p) for p in error["loc"]) or "event"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message} (got {_short_repr(error.get('input'))})")
    return "invalid StreamEvent: " + "; ".join(parts)


def _short_repr(value: object) -> str:
    text = _safe_repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_ALWAYS_SERIALIZED = ("type", "run_id", "id", "timestamp", "version")


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a serialized :class:`StreamEvent`.

    The same document ships as ``swarm_observability/schema/stream_event.schema.json`` for readers in
    other languages. Unknown properties are allowed (forward compatibility); ``seq`` is present on
    every stored event.
    """
    schema = StreamEvent.model_json_schema(mode="serialization")
    schema["required"] = list(_ALWAYS_SERIALIZED)
    schema["$id"] = f"https://swarm-observability.dev/schema/stream-event-v{SCHEMA_VERSION}.json"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
