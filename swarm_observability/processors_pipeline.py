"""The emitter's processor :class:`Pipeline`: which processors an event must pass, known per kind of event.

Kept apart from the processors themselves (:mod:`swarm_observability.processors`, where the
``unchanged_for`` and ``unchanged_for_kind`` promises are described): this is the emitter's hot path,
run for every event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .event_fast import Shape, data_shape
from .events import StreamEvent

Processor = Callable[[StreamEvent], StreamEvent | None]
"""A processor: returns the event (possibly a changed copy) or ``None`` to drop it."""

_SHAPE_TYPES = frozenset({int, float, bool, type(None)})
_SHAPE_TEXT = 64
_PLANS_LIMIT = 1024


def _promise(processor: Processor, name: str) -> Callable[..., bool] | None:
    """``processor.<name>`` if the class defining its ``__call__`` defines it too, else ``None``.

    So a subclass that changes what ``__call__`` does never inherits a promise it may not keep.
    """
    for klass in type(processor).__mro__:
        if "__call__" in vars(klass):
            return getattr(processor, name, None) if name in vars(klass) else None
    return None


class Pipeline:
    """A processor list and, per kind of event, the processors it must pass.

    For the emitter's hot path: an event skips the leading processors that promised to return it
    unchanged, by its ``data`` shape (``unchanged_for``, for events without a message) or by its type
    and whether it carries span ids (``unchanged_for_kind``); each promise is asked once per shape or
    kind. ``processors`` is a copy of the list given.
    """

    __slots__ = ("_event_plans", "_kind_plans", "_kinds", "_plans", "processors")

    def __init__(self, processors: Iterable[Processor]) -> None:
        self.processors = list(processors)
        self._plans: dict[Shape, Sequence[Processor]] = {}
        self._kind_plans: dict[tuple[Any, bool, int], Sequence[Processor]] = {}
        self._event_plans: dict[tuple[Shape, Any, bool], Sequence[Processor]] = {}
        self._kinds = any(_promise(p, "unchanged_for_kind") is not None for p in self.processors)

    def for_event(self, values: dict[str, Any], shape: Shape | None = None) -> Sequence[Processor]:
        """The processors an event with these ``__dict__`` values must pass (in order); ``shape``: its
        data's ``data_shape``, if the caller has it.

        One lookup per event once its kind was seen: the plan is kept by data shape and, when a
        processor promises by kind, by type and whether the event carries span ids too.
        """
        if values["message"]:
            plan: Sequence[Processor] = self.processors
            if self._kinds:
                return self._for_kind(plan, values["type"], values["trace_id"] is not None)
            return plan
        if shape is None:
            shape = data_shape(values["data"])
        if not self._kinds:
            plan_of_shape = self._plans.get(shape)
            return self._new_plan(values["data"], shape) if plan_of_shape is None else plan_of_shape
        key = (shape, values["type"], values["trace_id"] is not None)
        found = self._event_plans.get(key)
        if found is None:
            found = self._plans.get(shape)
            if found is None:
                found = self._new_plan(values["data"], shape)
            if found:
                found = self._for_kind(found, key[1], key[2])
            if len(self._event_plans) < _PLANS_LIMIT:
                self._event_plans[key] = found
        return found

    def _for_kind(self, plan: Sequence[Processor], type: Any, traced: bool) -> Sequence[Processor]:
        key = (type, traced, len(plan))  # a plan is a suffix of the list: its length names it
        kept = self._kind_plans.get(key)
        if kept is None:
            skipped = 0
            for processor in plan:
                check = _promise(processor, "unchanged_for_kind")
                if check is None or not check(type, traced):
                    break
                skipped += 1
            kept = plan[skipped:]
            if len(self._kind_plans) < _PLANS_LIMIT:
                self._kind_plans[key] = kept
        return kept

    def _new_plan(self, data: dict[str, Any], key: Shape) -> Sequence[Processor]:
        shape: dict[str, str | type] = {}
        for (name, value), kind in zip(data.items(), key[0][len(data) :], strict=True):
            if kind is str:
                if len(value) > _SHAPE_TEXT:  # not remembered: texts that long rarely recur
                    return self.processors
                shape[name] = value
            elif kind in _SHAPE_TYPES:
                shape[name] = kind
            else:  # a container or another type: no promise covers it
                return self.processors
        if len(self._plans) >= _PLANS_LIMIT:
            return self.processors
        plan = self._plans[key] = self._plan(shape)
        return plan

    def _plan(self, shape: dict[str, str | type]) -> Sequence[Processor]:
        # Only leading processors are skipped: what a later one sees may have been changed by an
        # earlier one, and a promise covers only the event as it was emitted.
        for index, processor in enumerate(self.processors):
            check = _promise(processor, "unchanged_for")
            if check is None or not check(shape):
                return self.processors[index:]
        return ()
