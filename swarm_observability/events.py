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

import time
from typing import Any

from pydantic import ValidationError

from ._clock import current, new_tick, uuid7
from ._storable import SURROGATES_ESCAPED, escape_surrogates, needs_scrub, scrub, storable_text
from .event_fast import (
    EMPTY_SHAPE,
    Shape,
    data_shape,
    known_plain,
    mark_set,
    new_model,
    plain_data,
    plain_event,
    plain_node_fields,
    plain_values,
    scope_fields_sets,
    set_attribute,
    set_extra,
    set_fields_set,
    set_private,
    shared_fields_set,
)
from .event_model import (
    OPTIONAL_STR_FIELDS,
    SCHEMA_VERSION,
    StreamEvent,
    Timestamp,
    describe_validation_error,
    event_json_schema,
    jsonable_data,
)
from .event_types import TERMINAL_SCAN_TYPES, EventType, Outcome, safe_run_id, validate_run_id
from .exceptions import EventValidationError

__all__ = [
    "CALLER_FIELDS",
    "EMPTY_SHAPE",
    "SCHEMA_VERSION",
    "TERMINAL_SCAN_TYPES",
    "EventType",
    "Outcome",
    "ScopeFields",
    "Shape",
    "StreamEvent",
    "Timestamp",
    "caller_fields",
    "copy_event",
    "data_shape",
    "event_json_schema",
    "make_event",
    "make_scope_event",
    "mark_set",
    "plain_node_fields",
    "safe_run_id",
    "shaped_scope_event",
    "shared_fields_set",
    "storable_event",
    "validate_run_id",
]

CALLER_FIELDS = frozenset(StreamEvent.model_fields) - {"type", "run_id", "seq", "sanitized", "prev_hash"}
"""The fields a caller may give an emitter: all but the type and run id (its arguments) and those
assigned on the way (see :func:`caller_fields`)."""
_ASSIGNED_BY = {"seq": "the emitter", "sanitized": "validation", "prev_hash": "the hash chain"}


def make_event(type: EventType | str, run_id: str, **fields: Any) -> StreamEvent:
    """Build a validated event; invalid input raises :class:`EventValidationError` naming the field.

    Values no store could keep faithfully are replaced by a marked form (see :func:`storable_event`).
    """
    event = plain_event(type, run_id, fields)
    if event is not None:
        return event
    try:
        event = StreamEvent(type=type, run_id=run_id, **fields)
    except ValidationError as exc:
        raise EventValidationError(describe_validation_error(exc)) from exc
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
    for name in OPTIONAL_STR_FIELDS:
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
        plain_extra = jsonable_data(extra)
        if needs_scrub(plain_extra):
            plain_extra = scrub(plain_extra, "", marks)
    if not changes and plain_extra is extra:
        return event
    if marks:
        changes["sanitized"] = {**(values.get("sanitized") or {}), **marks}
    copy = copy_event(event, **changes)
    set_attribute(copy, "__pydantic_extra__", plain_extra)
    return copy


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
        self.values = None if "data" in fields or "id" in fields else plain_values(run_id, self.fields)
        self.fields_set, self.fields_set_data = scope_fields_sets(tuple(fields))

    @staticmethod
    def of_plain(run_id: str, fields: dict[str, Any]) -> ScopeFields | None:
        """``ScopeFields(run_id, fields)`` if ``fields`` are known fields of plain values, else ``None``:
        the checked fields others are :meth:`derived` from (else they are checked in full)."""
        if not CALLER_FIELDS.issuperset(fields):
            return None
        checked = ScopeFields(run_id, fields)
        return None if checked.values is None else checked

    def extended(self, **checked: str) -> ScopeFields:
        """These fields plus ``checked``, ASCII strings the caller made valid (span ids), unchecked."""
        more = ScopeFields.__new__(ScopeFields)
        more.run_id = self.run_id
        more.fields = {**self.fields, **checked}
        more.values = None if self.values is None else {**self.values, **checked}
        more.fields_set, more.fields_set_data = scope_fields_sets(tuple(more.fields))
        return more

    def derived(self, fields: dict[str, Any]) -> ScopeFields:
        """The checked ``fields`` of a scope that shares these: ``fields`` has every field of these, the
        same value or another the caller found plain, and more the caller found plain (a node execution's,
        see :func:`~swarm_observability.event_fast.plain_node_fields`). So the fields every node of a
        scope shares are checked once, not per node. Only for fields found plain (``values``)."""
        more = ScopeFields.__new__(ScopeFields)
        more.run_id = self.run_id
        more.fields = dict(fields)
        more.values = {**self.values, **fields}  # type: ignore[dict-item]
        more.fields_set, more.fields_set_data = scope_fields_sets(tuple(fields))
        return more


def make_scope_event(type: EventType | str, scope: ScopeFields, data: dict[str, Any] | None) -> StreamEvent:
    """``make_event(type, scope.run_id, **scope.fields, data=data)`` (no ``data`` key if ``None``), cheaper.

    Raises :class:`EventValidationError` as :func:`make_event` does.
    """
    return shaped_scope_event(type, scope, data)[0]


def shaped_scope_event(
    type: EventType | str, scope: ScopeFields, data: dict[str, Any] | None, shape: Shape | None = None
) -> tuple[StreamEvent, Shape | None]:
    """:func:`make_scope_event`, and the :func:`data_shape` of its ``data`` when it was found on the way
    (for the emitter's processor plan), else ``None``.

    ``data`` of a shape found plain before is checked by its shape (:func:`known_plain`), the rest
    value by value (:func:`plain_data`), or by full validation when not plain. ``shape``: the
    ``data_shape`` of a ``data`` dict the caller built plain (:func:`plain_data` would return it as it
    is: a scope's closing data the recorder builds), handed over: it is neither checked nor copied.
    """
    values = scope.values
    if values is not None and type.__class__ is EventType:
        plain: dict[str, Any] | None = None
        if data is None:
            plain, fields_set, shape = {}, scope.fields_set, EMPTY_SHAPE
        elif shape is not None:
            plain, fields_set = data, scope.fields_set_data
        elif data.__class__ is dict:
            fields_set, shape = scope.fields_set_data, data_shape(data)
            plain = known_plain(data, shape)
            if plain is None:
                plain, shape = plain_data(data, shape), None
        if plain is not None:
            ns = time.time_ns()
            ms = ns // 1_000_000
            now = current[0]  # tick(ms), without a call for all but an event a millisecond
            if now[0] != ms:
                now = new_tick(ms)
            event = new_model(StreamEvent)  # assembled(values, fields_set), inlined: twice per node
            set_attribute(
                event,
                "__dict__",
                {
                    **values,  # the template's order: these keys are in it
                    "type": type,
                    "data": plain,
                    "id": uuid7(now[2]),
                    "timestamp": now[1],
                    "time_unix_nano": ns,
                },
            )
            set_fields_set(event, fields_set)
            set_extra(event, {})
            set_private(event, None)
            return event, shape
    if data is None:
        return make_event(type, scope.run_id, **scope.fields), None
    return make_event(type, scope.run_id, **scope.fields, data=data), None


def copy_event(event: StreamEvent, **changes: Any) -> StreamEvent:
    """A shallow copy of ``event`` with some fields replaced, like ``model_copy(update=...)``.

    The same result as ``event.model_copy(update=changes)`` for known fields (no validation: pass
    values of the fields' types), at a fraction of the cost; for the emitter's and tracer's hot path.
    """
    copy = new_model(event.__class__)
    values = event.__dict__.copy()
    values.update(changes)
    set_attribute(copy, "__dict__", values)
    set_attribute(copy, "__pydantic_fields_set__", event.__pydantic_fields_set__ | changes.keys())
    extra = event.__pydantic_extra__
    set_attribute(copy, "__pydantic_extra__", None if extra is None else dict(extra))
    set_attribute(copy, "__pydantic_private__", None)
    return copy


def caller_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` without the assigned fields left ``None`` (as ``event.model_dump()`` has them), for an
    emitter; :class:`EventValidationError` for an unknown field or an assigned one given a value."""
    unknown = {
        name for name in fields.keys() - CALLER_FIELDS if name not in _ASSIGNED_BY or fields[name] is not None
    }
    if unknown:
        reserved = sorted(unknown & _ASSIGNED_BY.keys())
        hint = "".join(f" ({name} is assigned by {_ASSIGNED_BY[name]})" for name in reserved)
        raise EventValidationError(f"unknown StreamEvent field(s): {', '.join(sorted(unknown))}{hint}")
    return {name: value for name, value in fields.items() if name in CALLER_FIELDS}
