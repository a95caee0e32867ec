"""The one event record that flows everywhere: ``StreamEvent``.

A ``StreamEvent`` is created by the emitter, persisted by a store, written to LangGraph's custom
stream, turned into OpenTelemetry spans and delivered to subscribers. There is no second format:
stores keep the JSON of :meth:`StreamEvent.to_json`, and :meth:`StreamEvent.from_json` reads it back.

Contract:

* Timestamps are timezone-aware UTC with millisecond precision and serialize as
  ``2026-11-22T19:24:18.123Z``. Naive datetimes are refused, so local time can never be stored
  by accident. Because the value is truncated to milliseconds on creation, ``to_json`` ->
  ``from_json`` is lossless.
* ``time_unix_nano`` is the same instant at full clock precision (integer nanoseconds since the
  Unix epoch, from one ``time.time_ns()`` reading that ``timestamp`` is truncated from). Events made
  without an explicit ``timestamp`` get both; an event given only a ``timestamp`` has none (its
  precise time is unknown), and one given both must agree to the millisecond. Spans are timed from
  it, so sub-millisecond scopes keep their real duration. Events written before this field existed
  simply lack it; readers fall back to ``timestamp``.
* ``data`` holds JSON only. It is normalized when the event is built: tuples and sets become lists,
  NaN and infinities become ``null``, and values JSON cannot hold are stored as their ``repr()``. So an
  event reads the same from the in-memory store as from a file, ``from_dict(e.to_dict()) == e``, and a
  caller mutating its dict after ``emit`` cannot change what was recorded.
* Forward compatibility: an event read from storage with an unknown ``type`` keeps it as a plain
  string, a newer ``version`` is accepted as-is, and unknown fields are kept as extra fields in their
  order. Writing such an event back reproduces its JSON byte for byte, provided newer releases only
  ever *append* fields to :class:`StreamEvent` (the rule this module follows).
* ``id`` is an RFC 9562 UUID string, unique across processes. New ids are version 7 (48-bit Unix
  milliseconds, then random bits), so they sort by creation time and keep a store's id index compact;
  earlier releases wrote version 4 ids, and readers accept any id string.
* ``seq`` is ``None`` until the emitter (or the caller) assigns it; stores require it.
* Scopes: ``scope_id`` names the scan invocation, node execution, probe, plan or agent that an event
  opens, closes or happens in, and ``parent_scope_id`` the enclosing one. That tree is what the
  OpenTelemetry mapping turns into spans, live and from a stored log alike.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from enum import StrEnum
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

from . import _clock
from ._clock import format_timestamp, ms_of, new_event_id, tick, time_of_default_timestamp, utc_now_ms, uuid7
from ._storable import (
    INT_LIMIT,
    SURROGATES_ESCAPED,
    escape_surrogates,
    needs_scrub,
    scrub,
    storable_text,
)
from .exceptions import EventValidationError, InvalidRunIdError

SCHEMA_VERSION = 1
"""Version of the event schema written by this release; readers accept newer versions as-is."""

_MAX_RUN_ID_LENGTH = 256
_INT64_MAX = 2**63 - 1  # seq, version and step: SQLite's INTEGER, and what every JSON reader keeps exact
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class EventType(StrEnum):
    """The event types this release emits. Unknown types read from storage stay plain strings.

    Data contracts of the agent-domain events (recorded from LangChain callbacks, see
    :mod:`swarm_observability.instrumentation.callbacks`). ``agent`` and ``node`` name the enclosing agent
    and node; each model call and tool run is a scope (``scope_id``) nested under the scope that made it.

    * ``llm_start``: ``model`` (request model, from ``ls_model_name`` or the invocation params; absent
      when the model reports none), ``provider`` (``ls_provider``, e.g. ``openai``),
      ``input_messages`` only with content capture.
    * ``llm_end``: ``outcome`` ``ok``, ``duration_ms``, ``model``/``provider`` again, ``response_model``
      when reported, ``input_tokens``/``output_tokens``/``total_tokens`` from ``usage_metadata`` (and
      ``cache_read_tokens``/``reasoning_tokens`` when its details carry them), ``usage_missing: true``
      when the call reported no usage (never a silent 0), ``finish_reasons`` (list),
      ``streamed: true`` and ``time_to_first_token_ms`` for streamed calls, ``cost_usd`` with a
      price table (``None`` for a model the table does not know), ``output_messages`` only with
      content capture.
    * ``llm_error``: ``outcome`` ``error``, ``duration_ms``, ``model``/``provider``, ``error_type``,
      ``error_message`` (the message is also the event's ``message``).
    * ``tool_start``: ``tool``, ``tool_call_id`` (when LangGraph passes one), ``tool_type``
      (``function``), ``handoff_to`` for handoff tools, ``arguments`` only with content capture.
    * ``tool_end``: ``tool``, ``tool_call_id``, ``duration_ms``, ``outcome`` (``ok``, or ``interrupted``
      for a tool that called ``interrupt()``), ``result`` only with content capture.
    * ``tool_error``: as ``tool_end`` with ``outcome`` ``error``, ``error_type``, ``error_message``; also
      for a tool that returned ``ToolMessage(status="error")`` (``error_type`` ``ToolMessageError``).
    * ``handoff`` (a point event on the scope of the agent control leaves): ``from_agent``,
      ``to_agent``, ``tool`` when a tool did it, ``via`` (``tool``, ``command`` or ``graph`` for a return
      inferred from the graph's edges, as a supervisor's worker handing back).

    A ``checkpoint`` event names a resume point (:func:`swarm_observability.checkpoint` in a node,
    :meth:`SwarmObserver.create_checkpoint` outside): ``message`` and ``data.label`` are the label,
    ``checkpoint_id`` the LangGraph checkpoint a fork from that label continues from.
    """

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
    LLM_START = "llm_start"
    LLM_END = "llm_end"
    LLM_ERROR = "llm_error"
    TOOL_START = "tool_start"
    TOOL_END = "tool_end"
    TOOL_ERROR = "tool_error"
    HANDOFF = "handoff"
    CHECKPOINT = "checkpoint"


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


_TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"

Timestamp = Annotated[
    datetime,
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "pattern": _TIMESTAMP_PATTERN}, mode="serialization"
    ),
]


def _jsonable_data(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as plain JSON types (a new dict); what JSON cannot hold becomes its ``repr()``."""
    try:
        return to_jsonable_python(value, fallback=repr, inf_nan_mode="null")  # type: ignore[no-any-return]
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


def validate_run_id(run_id: object, *, for_filename: bool = False) -> str:
    """Return ``run_id`` if it can be stored, else raise :class:`InvalidRunIdError`.

    Every run id must be a non-empty string of at most 256 characters without control characters
    or lone surrogates (a run id is a key: it is refused, never rewritten).
    With ``for_filename=True`` it must also be safe as one path component: no ``/``, ``\\``, no
    leading dot and no ``..``, so a run id can never escape the folder it is written into.
    """
    if run_id.__class__ is str and run_id in _KNOWN_RUN_IDS and not for_filename:
        return run_id  # type: ignore[return-value]
    if not isinstance(run_id, str):
        raise InvalidRunIdError(run_id, f"must be a string, not {type(run_id).__name__}")
    if not run_id:
        raise InvalidRunIdError(run_id, "must not be empty")
    if len(run_id) > _MAX_RUN_ID_LENGTH:
        raise InvalidRunIdError(run_id, f"longer than {_MAX_RUN_ID_LENGTH} characters")
    if _CONTROL_CHARS.search(run_id):
        raise InvalidRunIdError(run_id, "contains control characters")
    if not storable_text(run_id):
        raise InvalidRunIdError(run_id, "is not valid Unicode (lone surrogates)")
    if for_filename and ("/" in run_id or "\\" in run_id or run_id.startswith(".") or ".." in run_id):
        raise InvalidRunIdError(run_id, "not usable as a file name (path separators or dots)")
    return run_id


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
        default=None, ge=1, le=_INT64_MAX, description="Per-run sequence number, gapless from 1."
    )
    timestamp: Timestamp = Field(default_factory=utc_now_ms, description="UTC, millisecond precision.")
    version: int = Field(
        default=SCHEMA_VERSION, ge=1, le=_INT64_MAX, description="Schema version of the writer."
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
        ge=-_INT64_MAX - 1,
        le=_INT64_MAX,
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
        return _jsonable_data(value)

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
            raise EventValidationError(_describe(exc)) from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> StreamEvent:
        """Parse JSON text (as produced by :meth:`to_json`); raises :class:`EventValidationError`."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as exc:
            raise EventValidationError(_describe(exc)) from exc

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


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "event"
        message = error["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {message} (got {_short_repr(error.get('input'))})")
    return "invalid StreamEvent: " + "; ".join(parts)


def _short_repr(value: object) -> str:
    text = _safe_repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def make_event(type: EventType | str, run_id: str, **fields: Any) -> StreamEvent:
    """Build a validated event; invalid input raises :class:`EventValidationError` naming the field.

    Values no store could keep faithfully are replaced by a marked form (see :func:`storable_event`).
    """
    event = _plain_event(type, run_id, fields)
    if event is not None:
        return event
    try:
        event = StreamEvent(type=type, run_id=run_id, **fields)
    except ValidationError as exc:
        raise EventValidationError(_describe(exc)) from exc
    return storable_event(event)


def storable_event(event: StreamEvent) -> StreamEvent:
    """``event`` itself if every store can keep it faithfully, else a copy with the values replaced.

    The validation at the boundary where an event is built: nothing that passes it can fail to
    serialize later (which would lose the whole batch it is written with) or make a run unreadable.
    Text with lone surrogates is stored with ``\\udcXX`` escapes and over-long integers as digit
    strings (see :mod:`swarm_observability._storable`), each replacement named in ``sanitized``;
    extra fields are normalized like ``data``. The keys ``run_id``, ``id`` and ``type`` are never
    rewritten: unstorable ones raise :class:`EventValidationError` (:class:`InvalidRunIdError` for
    the run id).
    """
    values = event.__dict__
    validate_run_id(values["run_id"])
    for key in ("id", "type"):
        if not storable_text(values[key]):
            raise EventValidationError(f"invalid StreamEvent: {key}: not valid Unicode (got {values[key]!r})")
    marks: dict[str, str] = {}
    changes: dict[str, Any] = {}
    for name in _OPTIONAL_STR:
        text = values.get(name)
        if text is not None and not storable_text(text):
            changes[name] = escape_surrogates(text)
            marks[f"/{name}"] = SURROGATES_ESCAPED
    namespace = values["namespace"]
    if namespace and not all(storable_text(part) for part in namespace):
        changes["namespace"] = tuple(scrub(list(namespace), "/namespace", marks))
    data = values["data"]
    if data and needs_scrub(data):
        changes["data"] = scrub(data, "/data", marks)
    extra = event.__pydantic_extra__
    plain_extra = extra
    if extra:
        plain_extra = _jsonable_data(extra)
        if needs_scrub(plain_extra):
            plain_extra = scrub(plain_extra, "", marks)
    if not changes and plain_extra is extra:
        return event
    if marks:
        changes["sanitized"] = {**(values.get("sanitized") or {}), **marks}
    copy = copy_event(event, **changes)
    _set(copy, "__pydantic_extra__", plain_extra)
    return copy


# -- the fast path ----------------------------------------------------------------------------------
# Most events (every node_enter/node_exit, and most user events) consist of plain values that
# pydantic's validation would accept unchanged: exact str/int/float/tuple/dict instances within
# their bounds. For those, _plain_event checks exactly that in a few comparisons and builds the
# instance pydantic would have built (same __dict__, fields set and extras), in a fifth of the time.
# Anything else (str subclasses, lists for tuples, a given timestamp, extra fields, out-of-range or
# wrongly typed values) returns None and goes through full validation, which names the bad field.

_OPTIONAL_STR = frozenset(
    {
        "thread_id", "node", "agent", "probe", "message", "task_id", "checkpoint_id", "invocation_id",
        "scope_id", "parent_scope_id", "trace_id", "span_id",
    }
)  # fmt: skip
_NULLABLE = _OPTIONAL_STR | {"step", "progress", "seq"}
_TEMPLATE: dict[str, Any] = {
    name: (() if name == "namespace" else None if info.default_factory is not None else info.default)
    for name, info in StreamEvent.model_fields.items()
}
_KNOWN_RUN_IDS: set[str] = set()
_KNOWN_RUN_IDS_LIMIT = 4096
_new_model = object.__new__
_set = object.__setattr__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__  # the slots, a third faster
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _plain_event(type: object, run_id: object, fields: dict[str, Any]) -> StreamEvent | None:
    if type.__class__ is not EventType:
        return None
    values = _plain_values(run_id, fields)
    if values is None:
        return None
    values["type"] = type
    return _new_event(values, {"type", "run_id", *fields})


def _plain_values(run_id: object, fields: dict[str, Any]) -> dict[str, Any] | None:
    """The ``__dict__`` of a plain event of ``run_id`` with ``fields`` (no type, id or time), or ``None``."""
    if run_id.__class__ is not str:
        return None
    if run_id not in _KNOWN_RUN_IDS:
        if (
            not 0 < len(run_id) <= _MAX_RUN_ID_LENGTH  # type: ignore[arg-type]
            or _CONTROL_CHARS.search(run_id)  # type: ignore[arg-type]
            or not storable_text(run_id)  # type: ignore[arg-type]
        ):
            return None
        if len(_KNOWN_RUN_IDS) >= _KNOWN_RUN_IDS_LIMIT:
            _KNOWN_RUN_IDS.clear()
        _KNOWN_RUN_IDS.add(run_id)  # type: ignore[arg-type]
    data: dict[str, Any] | None = None
    for key, value in fields.items():
        if value.__class__ is str:  # the common case first: ids and names
            if (key in _OPTIONAL_STR or key == "id") and (value.isascii() or storable_text(value)):
                continue
            return None
        if value is None:
            if key in _NULLABLE:
                continue
            return None
        if key == "data":
            if value.__class__ is not dict:
                return None
            data = _plain_data(value)
            if data is None:
                return None
        elif key == "step":
            if value.__class__ is not int or not -_INT64_MAX <= value <= _INT64_MAX:
                return None
        elif key == "namespace":
            if value.__class__ is not tuple:
                return None
            for part in value:
                if part.__class__ is not str or not storable_text(part):
                    return None
        elif key == "progress":
            if value.__class__ is not float or not 0.0 <= value <= 1.0:
                return None
        elif key == "seq" or key == "version":
            if value.__class__ is not int or not 0 < value <= _INT64_MAX:
                return None
        else:  # type, run_id, timestamp, an extra field, or a str field given another type
            return None
    values = _TEMPLATE.copy()
    values.update(fields)
    values["run_id"] = run_id
    values["data"] = {} if data is None else data
    return values


def _new_event(values: dict[str, Any], fields_set: set[str]) -> StreamEvent:
    """The event pydantic would build from ``values`` (complete but for the clock, and the id if not in
    ``fields_set``), stamped now."""
    ns = time.time_ns()
    now = tick(ns // 1_000_000)
    if "id" not in fields_set:
        values["id"] = uuid7(now[2])
    values["timestamp"] = now[1]
    values["time_unix_nano"] = ns
    return _assembled(values, fields_set)


def _assembled(values: dict[str, Any], fields_set: set[str]) -> StreamEvent:
    """The :class:`StreamEvent` holding already-checked ``values``, built without validating them again."""
    event = _new_model(StreamEvent)
    _set(event, "__dict__", values)
    _set_fields_set(event, fields_set)
    _set_extra(event, {})
    _set_private(event, None)
    return event


_shared_sets: dict[frozenset[str], set[str]] = {}
_shared_names: dict[int, frozenset[str]] = {}  # id of a shared set -> its names
_marked: dict[tuple[int, str], set[str]] = {}
_SHARED_SETS_LIMIT = 512


def shared_fields_set(names: frozenset[str]) -> set[str]:
    """The one fields set (``__pydantic_fields_set__``) of every event built here with ``names`` set.

    Every event an emitter keeps is also kept by the garbage collector, which walks each of its
    objects at every full collection; sharing the set saves one object per event. A shared set is
    never changed: :func:`mark_set` swaps it for another.
    """
    shared = _shared_sets.get(names)
    if shared is None:
        if len(_shared_sets) >= _SHARED_SETS_LIMIT:
            return set(names)
        shared = _shared_sets.setdefault(names, set(names))
        _shared_names[id(shared)] = names
    return shared


def mark_set(event: StreamEvent, name: str) -> None:
    """Count field ``name`` of ``event`` (built here, unseen yet) as set, as assigning it would."""
    fields_set = event.__pydantic_fields_set__
    marked = _marked.get((id(fields_set), name))
    if marked is None:
        names = _shared_names.get(id(fields_set))
        if names is None:
            fields_set.add(name)
            return
        marked = _marked[id(fields_set), name] = shared_fields_set(names | {name})
    _set_fields_set(event, marked)


_scope_sets_of: dict[tuple[str, ...], tuple[set[str], set[str]]] = {}


def _scope_sets(names: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """The shared fields sets of a scope's events given ``names``, without and with ``data``."""
    sets = _scope_sets_of.get(names)
    if sets is None:
        fields_set = shared_fields_set(frozenset({"type", "run_id", *names}))
        sets = (fields_set, shared_fields_set(frozenset({"data", *fields_set})))
        if len(_scope_sets_of) < _SHARED_SETS_LIMIT:
            _scope_sets_of[names] = sets
    return sets


class ScopeFields:
    """The fields every event of one scope carries, checked once for all of them.

    A scope (a node execution, a model call) emits a few events that differ only in type and ``data``;
    :func:`make_scope_event` builds each from the checked fields without validating them again. Built
    by :func:`scope_fields`; treat as immutable (a copy of the fields is kept).
    """

    __slots__ = ("fields", "fields_set", "fields_set_data", "run_id", "values")

    def __init__(self, run_id: str, fields: dict[str, Any]) -> None:
        self.run_id = run_id
        self.fields = dict(fields)
        self.values = None if "data" in fields or "id" in fields else _plain_values(run_id, self.fields)
        self.fields_set, self.fields_set_data = _scope_sets(tuple(fields))

    def extended(self, **checked: str) -> ScopeFields:
        """These fields plus ``checked``, ASCII strings the caller made valid (span ids), unchecked."""
        more = ScopeFields.__new__(ScopeFields)
        more.run_id = self.run_id
        more.fields = {**self.fields, **checked}
        more.values = None if self.values is None else {**self.values, **checked}
        more.fields_set, more.fields_set_data = _scope_sets(tuple(more.fields))
        return more


def make_scope_event(type: EventType | str, scope: ScopeFields, data: dict[str, Any] | None) -> StreamEvent:
    """``make_event(type, scope.run_id, **scope.fields, data=data)`` (no ``data`` key if ``None``), cheaper.

    Raises :class:`EventValidationError` as :func:`make_event` does.
    """
    values = scope.values
    if values is not None and type.__class__ is EventType:
        if data is None:
            plain: dict[str, Any] | None = {}
            fields_set = scope.fields_set
        else:
            plain = _plain_data(data) if data.__class__ is dict else None
            fields_set = scope.fields_set_data
        if plain is not None:
            values = values.copy()
            values["type"] = type
            values["data"] = plain
            ns = time.time_ns()
            now = _clock.current[0]  # tick(ms), without a call for all but an event a millisecond
            if now[0] != ns // 1_000_000:
                now = tick(ns // 1_000_000)
            values["id"] = uuid7(now[2])
            values["timestamp"] = now[1]
            values["time_unix_nano"] = ns
            return _assembled(values, fields_set)
    if data is None:
        return make_event(type, scope.run_id, **scope.fields)
    return make_event(type, scope.run_id, **scope.fields, data=data)


def _plain_data(value: dict[Any, Any]) -> dict[str, Any] | None:
    """``value`` normalized as the ``data`` validator would, if it needs no marked replacement.

    ``None`` (full validation, then :func:`storable_event`) if a key is not a plain, storable str or
    a value needs replacing.
    """
    plain = True
    for key, item in value.items():
        if key.__class__ is not str or not (key.isascii() or storable_text(key)):
            return None
        if plain:
            kind = item.__class__
            if kind is float:
                plain = item - item == 0  # NaN and infinities become null: let pydantic_core do it
            elif kind is str:
                if not item.isascii() and not storable_text(item):
                    return None
            elif kind is int:
                if not -INT_LIMIT < item < INT_LIMIT:  # storable_int, inlined
                    return None
            elif not (kind is bool or item is None):
                plain = False  # nested or non-JSON values: let pydantic_core convert them
    if plain:
        return dict(value)
    data = _jsonable_data(value)
    return None if needs_scrub(data) else data


def copy_event(event: StreamEvent, **changes: Any) -> StreamEvent:
    """A shallow copy of ``event`` with some fields replaced, like ``model_copy(update=...)``.

    The same result as ``event.model_copy(update=changes)`` for known fields (no validation: pass
    values of the fields' types), at a fraction of the cost; for the emitter's and tracer's hot path.
    """
    copy = _new_model(event.__class__)
    values = event.__dict__.copy()
    values.update(changes)
    _set(copy, "__dict__", values)
    _set(copy, "__pydantic_fields_set__", event.__pydantic_fields_set__ | changes.keys())
    extra = event.__pydantic_extra__
    _set(copy, "__pydantic_extra__", None if extra is None else dict(extra))
    _set(copy, "__pydantic_private__", None)
    return copy


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
