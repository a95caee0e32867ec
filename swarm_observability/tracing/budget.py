"""The span budget: how many spans one run may have before further scopes are summarised.

See the "span budget" paragraph of :mod:`.mapping`: past the budget, node, probe, agent and plan
scopes are counted per kind and name (:class:`Summary`) and written on the invocation's root span
when it ends (:func:`write_summary`); every event stays in the log.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from opentelemetry.trace import Span

from ..events import StreamEvent
from . import semconv as sc

DEFAULT_SPAN_BUDGET = 10_000
"""Spans one run may have before the rest are summarised (see the module docstring)."""
SPAN_BUDGET_ENV = "SWARM_OBS_SPAN_BUDGET"
"""Environment variable overriding :data:`DEFAULT_SPAN_BUDGET` (a positive integer, or ``none``)."""
MAX_SUMMARY_GROUPS = 128
"""Kind-and-name groups per root; further names are counted under ``*``."""


@dataclass(slots=True)
class Summary:
    """Scopes of one kind and name that did not become spans because the run was over its budget."""

    root: object
    """The root scope whose span the summary is written on."""
    count: int = 0
    errors: int = 0
    events: int = 0
    seq_first: int | None = None
    seq_last: int | None = None

    def saw(self, event: StreamEvent) -> None:
        """Widen the seq range to ``event``."""
        if event.seq is not None:
            if self.seq_first is None:
                self.seq_first = event.seq
            self.seq_last = event.seq


def write_summary(
    span: Span, groups: dict[tuple[str, str], Summary], budget: int | None, timestamp: int | None
) -> None:
    """Put the summarised scopes of an ending invocation on its root ``span``."""
    total = 0
    for (kind, name), group in groups.items():
        total += group.count
        attributes: dict[str, Any] = {
            sc.SWARM_SUMMARY_KIND: kind,
            sc.SWARM_SUMMARY_NAME: name,
            sc.SWARM_SUMMARY_COUNT: group.count,
            sc.SWARM_SUMMARY_ERRORS: group.errors,
            sc.SWARM_SUMMARY_EVENTS: group.events,
        }
        if group.seq_first is not None:
            attributes[sc.SWARM_SEQ_FIRST] = group.seq_first
            attributes[sc.SWARM_SEQ_LAST] = group.seq_last
        span.add_event(sc.SPANS_SUMMARISED_EVENT, attributes, timestamp=timestamp)
    span.set_attributes({sc.SWARM_SPANS_SUMMARISED: total, sc.SWARM_SPAN_BUDGET: budget or 0})


def resolve_span_budget(value: int | str | None = "default") -> int | None:
    """The span budget ``value`` stands for: ``"default"`` is ``$SWARM_OBS_SPAN_BUDGET`` or
    :data:`DEFAULT_SPAN_BUDGET`; ``None`` is no budget.

    Raises:
        ValueError: not a positive integer (nor ``none`` in the environment variable).
    """
    if value == "default":
        text = os.environ.get(SPAN_BUDGET_ENV, "").strip()
        if not text:
            return DEFAULT_SPAN_BUDGET
        if text.lower() == "none":
            return None
        try:
            value = int(text)
        except ValueError:
            message = f"${SPAN_BUDGET_ENV} must be a positive integer or 'none', not {text!r}"
            raise ValueError(message) from None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"span_budget must be a positive integer or None, not {value!r}")
    return value
