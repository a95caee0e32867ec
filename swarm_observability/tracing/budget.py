"""The span budget: how many spans one run may have before further scopes are summarised.

A span budget per run (``span_budget`` of the :class:`~.mapping.SpanMapper`, 10,000 by default,
``$SWARM_OBS_SPAN_BUDGET`` or the argument to change it, ``None`` for none): once a run has that
many spans, its further node, probe, agent and plan scopes are *summarised* instead of becoming
spans: counted per kind and name (:class:`Summary`), with their errors, point events and seq range,
and written on the invocation's root span when it ends (:func:`write_summary`: one
``swarm.spans_summarised`` span event per kind and name, and the attributes
``swarm.spans.summarised`` and ``swarm.spans.budget``). A warning is logged per invocation. Root
spans are never summarised, and the events themselves are all in the log, so a stored run can be
re-exported with a larger budget.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.trace import Span

from ..events import Outcome, StreamEvent
from . import semconv as sc
from .attributes import describe_scope, outcome_of

logger = logging.getLogger("swarm_observability.tracing")

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


class Root(Protocol):
    """The open root scope of an invocation, as the budget sees it."""

    span: Span
    summary: dict[tuple[str, str], Summary] | None


class SpanBudget:
    """The spans each run has had, and the scopes summarised past the budget, for one mapper.

    A run's count is kept exactly while one of its invocations is open; only the counts of runs
    with no open invocation are forgotten, oldest first, past ``remember`` runs (a later invocation
    of such a run then starts counting again). Not thread-safe: the mapper calls it under its lock.
    """

    def __init__(self, limit: int | None, remember: int, roots: Mapping[str, Root]) -> None:
        """``roots``: the mapper's open root scope of each invocation, what is summarised on."""
        self.limit = limit
        self.summarised_total = 0
        self._roots = roots
        self._remember = remember
        self._open: dict[str, int] = {}
        """Run id -> spans, for runs with an open root (never forgotten while open)."""
        self._open_roots: dict[str, int] = {}
        self._idle: OrderedDict[str, int] = OrderedDict()
        """Run id -> spans, for runs with no open root, least recently closed first."""
        self._summarised: dict[str, Summary] = {}
        """Scope id -> its summary group, for summarised scopes not yet closed."""
        self._below = 0
        """A run with fewer spans is admitted at once: the limit (2**63 for none), 0 while anything
        is summarised (kept by :meth:`_summarised_changed`)."""
        self._summarised_changed()

    def _summarised_changed(self) -> None:
        self._below = 0 if self._summarised else (2**63 if self.limit is None else self.limit)

    def admit(self, event: StreamEvent, kind: str) -> bool:
        """Count a scope about to become a span; ``False``: it is summarised on its root instead
        (the open root of the event's invocation; without one nothing is summarised: better an
        extra span than a silent loss)."""
        run_id = event.run_id
        if kind != "scan":  # the common case first: a run under its budget with nothing summarised
            spans = self._open.get(run_id)
            if spans is not None and spans < self._below:
                self._open[run_id] = spans + 1
                return True
            if self.limit is None:
                return True
        else:
            self._open_roots[run_id] = self._open_roots.get(run_id, 0) + 1
            if run_id not in self._open:
                self._open[run_id] = self._idle.pop(run_id, 0)
        spans = self._open.get(run_id)
        if spans is None:  # no invocation of the run is open: no root to summarise on, so a span
            self._idle[run_id] = self._idle.pop(run_id, 0) + 1
            while len(self._idle) > self._remember:
                self._idle.popitem(last=False)
            return True
        over = kind != "scan" and (self._summarised or spans >= self.limit)  # type: ignore[operator]
        if over and self._summarise(event, kind, spans):
            return False
        self._open[run_id] = spans + 1
        return True

    def root_closed(self, run_id: str) -> None:
        """An invocation of ``run_id`` ended: its count may be forgotten once no root of it is open."""
        left = self._open_roots.get(run_id, 0) - 1
        if left > 0:
            self._open_roots[run_id] = left
            return
        self._open_roots.pop(run_id, None)
        count = self._open.pop(run_id, None)
        if count is not None:
            self._idle[run_id] = count
            while len(self._idle) > self._remember:
                self._idle.popitem(last=False)

    def _summarise(self, event: StreamEvent, kind: str, spans: int) -> bool:
        """Past the run's budget: count the scope in its root's summary instead of starting a span."""
        scope_id: str = event.scope_id  # type: ignore[assignment]  # set: scans are never summarised
        if scope_id in self._summarised:
            return True
        limit: int = self.limit  # type: ignore[assignment]
        root = self._roots.get(event.invocation_id) if event.invocation_id else None
        if spans < limit or root is None:
            return False
        run_id = event.run_id
        if root.summary is None:
            root.summary = {}
            logger.warning(
                "run %r reached its span budget of %d spans; further spans of invocation %r are "
                "summarised on its root span (swarm.spans_summarised); every event is still stored",
                run_id,
                limit,
                event.invocation_id,
            )
        key = (kind, describe_scope(event, kind)[0])
        if key not in root.summary and len(root.summary) >= MAX_SUMMARY_GROUPS:
            key = (kind, "*")
        group = root.summary.get(key)
        if group is None:
            group = root.summary[key] = Summary(root)
        group.count += 1
        group.saw(event)
        self._summarised[scope_id] = group
        self._summarised_changed()
        self.summarised_total += 1
        return True

    def closed(self, scope_id: str | None, event: StreamEvent) -> bool:
        """The closing event of a summarised scope (counted on its group); ``False``: not summarised."""
        group = self._summarised.pop(scope_id, None) if scope_id and self._summarised else None
        if group is None:
            return False
        self._summarised_changed()
        group.saw(event)
        group.errors += outcome_of(event) == Outcome.ERROR
        return True

    def point(self, event: StreamEvent) -> bool:
        """A point event of a summarised scope (counted on its group); ``False``: not summarised."""
        group = self._summarised.get(event.scope_id) if self._summarised and event.scope_id else None
        if group is None:
            return False
        group.events += 1
        group.saw(event)
        return True

    def write(self, root: Root, timestamp: int | None) -> None:
        """Put the summarised scopes of an ending invocation on its root span."""
        if not root.summary:
            return
        write_summary(root.span, root.summary, self.limit, timestamp)
        self._summarised = {k: g for k, g in self._summarised.items() if g.root is not root}
        self._summarised_changed()


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
