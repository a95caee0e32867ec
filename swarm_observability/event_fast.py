"""The fast path of event construction: the :class:`StreamEvent` pydantic would build, built directly.

Most events (every node_enter/node_exit, and most user events) consist of plain values that
pydantic's validation would accept unchanged: exact str/int/float/tuple/dict instances within
their bounds. For those, :func:`plain_event` checks exactly that in a few comparisons and builds the
instance pydantic would have built (same ``__dict__``, fields set and extras), in a fifth of the time.
Anything else (str subclasses, lists for tuples, a given timestamp, extra fields, out-of-range or
wrongly typed values) returns ``None`` and goes through full validation
(:func:`swarm_observability.events.make_event`), which names the bad field.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from itertools import compress
from math import fsum, isfinite
from typing import Any

from pydantic import BaseModel

from ._clock import tick, uuid7
from ._storable import INT_LIMIT, needs_scrub, storable_text
from .event_model import INT64_MAX, OPTIONAL_STR_FIELDS, StreamEvent, jsonable_data
from .event_types import KNOWN_RUN_IDS, EventType, remember_run_id

_NULLABLE = OPTIONAL_STR_FIELDS | {"step", "progress", "seq"}
_TEXT_KINDS = frozenset({str, type(None)})
_is_str_only = frozenset({str}).issuperset
_TEMPLATE: dict[str, Any] = {
    name: (() if name == "namespace" else None if info.default_factory is not None else info.default)
    for name, info in StreamEvent.model_fields.items()
}
new_model = object.__new__
set_attribute = object.__setattr__
set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__  # the slots, a third faster
set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
set_private = BaseModel.__dict__["__pydantic_private__"].__set__
"""The raw setters of a pydantic model instance's slots, for building events without validation."""


def plain_event(type: object, run_id: object, fields: dict[str, Any]) -> StreamEvent | None:
    """``make_event(type, run_id, **fields)`` built without validation, or ``None`` if it needs it."""
    if type.__class__ is not EventType:
        return None
    values = plain_values(run_id, fields)
    if values is None:
        return None
    values["type"] = type
    return _new_event(values, {"type", "run_id", *fields})


def plain_values(run_id: object, fields: dict[str, Any]) -> dict[str, Any] | None:
    """The ``__dict__`` of a plain event of ``run_id`` with ``fields`` (no type, id or time), or ``None``."""
    if run_id.__class__ is not str:
        return None
    if run_id not in KNOWN_RUN_IDS and not remember_run_id(run_id):
        return None
    # The text fields (most of them) at once, in C: str or None, and ASCII; else one by one below.
    texts = OPTIONAL_STR_FIELDS.intersection(fields)
    text_values = list(map(fields.__getitem__, texts))
    if _TEXT_KINDS.issuperset(map(type, text_values)) and "".join(filter(None, text_values)).isascii():
        others: Iterable[str] = fields.keys() - texts
    else:
        others = fields
    data: dict[str, Any] | None = None
    for key in others:
        value = fields[key]
        if value.__class__ is str:  # the common case first: ids and names
            if (key in OPTIONAL_STR_FIELDS or key == "id") and (value.isascii() or storable_text(value)):
                continue
            return None
        if value is None:
            if key in _NULLABLE:
                continue
            return None
        if key == "data":
            if value.__class__ is not dict:
                return None
            data = plain_data(value)
            if data is None:
                return None
        elif key == "step":
            if value.__class__ is not int or abs(value) > INT64_MAX:
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
            if value.__class__ is not int or not 0 < value <= INT64_MAX:
                return None
        else:  # type, run_id, timestamp, an extra field, or a str field given another type
            return None
    return {**_TEMPLATE, **fields, "run_id": run_id, "data": {} if data is None else data}


def plain_node_fields(node: Any, step: Any, task_id: Any, checkpoint_id: Any, namespace: Any) -> bool:
    """Whether :func:`plain_values` finds a node execution's own fields plain, in a few comparisons.

    ``None`` stands for a field not given. ``True`` only for exact ASCII ``str`` texts (``namespace``: a
    tuple of them) and an ``int`` step within its bounds; anything else is ``False``, plain or not: the
    caller then checks every field with :func:`plain_values`, which decides.
    """
    if step.__class__ is int and _is_str_only(map(type, (node, task_id, checkpoint_id))):
        return (
            step.bit_length() < 64  # abs(step) <= INT64_MAX
            and (node + task_id + checkpoint_id).isascii()
            and (namespace is None or _plain_namespace(namespace))
        )
    return _plain_node_fields(node, step, task_id, checkpoint_id, namespace)


def _plain_node_fields(node: Any, step: Any, task_id: Any, checkpoint_id: Any, namespace: Any) -> bool:
    if step is not None and (step.__class__ is not int or not -INT64_MAX <= step <= INT64_MAX):
        return False
    texts = (node, task_id, checkpoint_id)
    if (
        node is None
        or not _TEXT_KINDS.issuperset(map(type, texts))
        or not "".join(filter(None, texts)).isascii()
    ):
        return False
    return namespace is None or _plain_namespace(namespace)


def _plain_namespace(namespace: Any) -> bool:
    return (
        namespace.__class__ is tuple and _is_str_only(map(type, namespace)) and "".join(namespace).isascii()
    )


def _new_event(values: dict[str, Any], fields_set: set[str]) -> StreamEvent:
    """The event pydantic would build from ``values`` (complete but for the clock, and the id if not in
    ``fields_set``), stamped now."""
    ns = time.time_ns()
    now = tick(ns // 1_000_000)
    if "id" not in fields_set:
        values["id"] = uuid7(now[2])
    values["timestamp"] = now[1]
    values["time_unix_nano"] = ns
    return assembled(values, fields_set)


def assembled(values: dict[str, Any], fields_set: set[str]) -> StreamEvent:
    """The :class:`StreamEvent` holding already-checked ``values``, built without validating them again."""
    event = new_model(StreamEvent)
    set_attribute(event, "__dict__", values)
    set_fields_set(event, fields_set)
    set_extra(event, {})
    set_private(event, None)
    return event


_shared_sets: dict[frozenset[str], set[str]] = {}
_shared_names: dict[int, frozenset[str]] = {}  # id of a shared set -> its names
_marked: dict[tuple[int, str], set[str]] = {}
_with_seq: dict[int, set[str]] = {}  # id of a shared set -> the shared set with "seq" too
_SHARED_SETS_LIMIT = 512
_SHAPES_LIMIT = 1024


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
        if name == "seq":
            _with_seq[id(fields_set)] = marked
    set_fields_set(event, marked)


def mark_seq(event: StreamEvent) -> None:
    """``mark_set(event, "seq")``, one lookup cheaper: the emitter does it to every event it owns."""
    marked = _with_seq.get(id(event.__pydantic_fields_set__))
    if marked is None:
        mark_set(event, "seq")
    else:
        set_fields_set(event, marked)


_scope_sets_of: dict[tuple[str, ...], tuple[set[str], set[str]]] = {}


def scope_fields_sets(names: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """The shared fields sets of the events of a scope given ``names``, without and with ``data``."""
    sets = _scope_sets_of.get(names)
    if sets is None:
        fields_set = shared_fields_set(frozenset({"type", "run_id", *names}))
        sets = (fields_set, shared_fields_set(frozenset({"data", *fields_set})))
        if len(_scope_sets_of) < _SHARED_SETS_LIMIT:
            _scope_sets_of[names] = sets
    return sets


Shape = tuple[tuple[type, ...], tuple[str, ...]]
"""A ``data`` dict's shape (:func:`data_shape`): the types of its keys and values, and its texts."""
EMPTY_SHAPE: Shape = ((), ())
_PLAIN_KINDS = frozenset({int, float, str, bool, type(None)})
_SHAPE_TEXT = 64
_is_str = frozenset({str}).__contains__
_plain_shapes: dict[Shape, tuple[bool, ...]] = {}
"""Shapes :func:`plain_data` found plain -> which values are numbers (``()``: none), the only
values whose plainness depends on more than the shape."""


def data_shape(data: dict[Any, Any]) -> Shape:
    """What decides how ``data`` is checked and processed, built in C: the exact type of each key and
    then each value, and the exact-``str`` ones among them (so the str keys and the text values)."""
    items = (*data, *data.values())
    kinds = tuple(map(type, items))
    return kinds, tuple(compress(items, map(_is_str, kinds)))


def known_plain(data: dict[Any, Any], shape: Shape) -> dict[str, Any] | None:
    """``plain_data(data)`` if ``shape`` (``data_shape(data)``) was found plain before, else ``None``.

    A shape fixes all :func:`plain_data` checks but whether its numbers are finite floats and ints
    of at most ``MAX_INT_DIGITS`` digits: they are if their float sum is finite, checked in C (a sum
    over 1e308, an int that no float holds, NaN or an infinity gives ``None``: the checking path).
    """
    numbers = _plain_shapes.get(shape)
    if numbers is None:
        return None
    if numbers:
        try:
            if not isfinite(fsum(compress(data.values(), numbers))):
                return None
        except (OverflowError, ValueError):
            return None
    return dict(data)


def plain_data(value: dict[Any, Any], shape: Shape | None = None) -> dict[str, Any] | None:
    """``value`` normalized as the ``data`` validator would, if it needs no marked replacement.

    ``None`` (full validation, then :func:`~swarm_observability.events.storable_event`) if a key is
    not a plain, storable str or a value needs replacing. Given its ``shape``, a plain dict of scalars
    and short texts has it remembered, for :func:`known_plain`.
    """
    plain = True
    for key, item in value.items():
        if key.__class__ is not str or not (key.isascii() or storable_text(key)):
            return None
        if plain:
            kind = item.__class__
            if kind is int:
                if abs(item) >= INT_LIMIT:  # storable_int, inlined
                    return None
            elif kind is float:
                plain = item - item == 0  # NaN and infinities become null: let pydantic_core do it
            elif kind is str:
                if not item.isascii() and not storable_text(item):
                    return None
            elif not (kind is bool or item is None):
                plain = False  # nested or non-JSON values: let pydantic_core convert them
    if plain:
        if shape is not None and len(_plain_shapes) < _SHAPES_LIMIT:
            _remember_plain(shape, len(value))
        return dict(value)
    data = jsonable_data(value)
    return None if needs_scrub(data) else data


def _remember_plain(shape: Shape, size: int) -> None:
    kinds = shape[0][size:]
    if _PLAIN_KINDS.issuperset(kinds) and all(len(text) <= _SHAPE_TEXT for text in shape[1]):
        numbers = tuple(kind is int or kind is float for kind in kinds)
        _plain_shapes[shape] = numbers if any(numbers) else ()
