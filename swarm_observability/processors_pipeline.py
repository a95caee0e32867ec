"""The emitter's processor :class:`Pipeline`: which processors an event must pass, known per ``data`` shape.

Kept apart from the processors themselves (:mod:`swarm_observability.processors`, where the
``unchanged_for`` promise is described): this is the emitter's hot path, run for every event.
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


def _skip_check(processor: Processor) -> Callable[[dict[str, str | type]], bool] | None:
    """``processor.unchanged_for`` if the class defining its ``__call__`` defines it too, else ``None``.

    So a subclass that changes what ``__call__`` does never inherits a promise it may not keep.
    """
    for klass in type(processor).__mro__:
        if "__call__" in vars(klass):
            return getattr(processor, "unchanged_for", None) if "unchanged_for" in vars(klass) else None
    return None


class Pipeline:
    """A processor list and, per ``data`` shape, the processors an event without a message must pass.

    For the emitter's hot path: an event of a shape seen before skips the leading processors that
    promised (``unchanged_for``) to return it unchanged. ``processors`` is a copy of the list given.
    """

    __slots__ = ("_plans", "processors")

    def __init__(self, processors: Iterable[Processor]) -> None:
        self.processors = list(processors)
        self._plans: dict[Shape, Sequence[Processor]] = {}

    def for_data(self, data: dict[str, Any], shape: Shape | None = None) -> Sequence[Processor]:
        """The processors an event with ``data`` and no message must pass (in order); ``shape``: its
        ``data_shape``, if the caller has it."""
        if shape is None:
            shape = data_shape(data)
        plan = self._plans.get(shape)
        if plan is None:
            return self._new_plan(data, shape)
        return plan

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
            check = _skip_check(processor)
            if check is None or not check(shape):
                return self.processors[index:]
        return ()
