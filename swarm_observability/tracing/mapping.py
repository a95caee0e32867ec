"""The one mapping from :class:`StreamEvent` records to OpenTelemetry spans.

:class:`SpanMapper` consumes the events of a run in order and starts and ends spans with the
events' own timestamps. The live tracer feeds it while the graph runs; ``export_run`` feeds it a
stored log after the fact. Because both paths go through this class, they produce the same tree.

The contract:

* Opening events (``scan_started``/``scan_resumed``, ``node_enter``, ``probe_start``,
  ``agent_start``, ``plan_start``) start a span; the matching closing event ends it. Parentage
  comes only from ``scope_id``/``parent_scope_id`` (never from the ambient OpenTelemetry context),
  so parallel ``Send`` branches are siblings and subgraph nodes nest under their parent node. A
  scan invocation is the root of its own trace, unless its ``parent_scope_id`` names a scope this
  mapper knows (a graph invoked inside a node); ``root_parent`` may put it under a caller's span.
* Point events (``node_progress``, ``log``, ``heartbeat``, ``probe_result`` and unknown types) become
  span events on the span of their scope, named after the event type. So do a pause in place
  (``scan_paused`` with ``reason="pause"``: the invocation waits at a safe point, it does not end)
  and the ``scan_resumed`` that ends it: both are span events on the invocation's root span.
* Outcomes: ``error`` sets status ERROR with ``error.type`` and the message as description on every
  scope that failed; the ``exception`` span event is recorded once, on the innermost span where the
  error happened (an ancestor that fails with the same type and message gets none, as the semconv
  recording-errors guidance asks). ``interrupted``, ``paused`` and ``cancelled`` are not errors:
  status stays UNSET and ``swarm.outcome`` says what happened (a cancel is a requested stop, not a
  crash). ``ok`` leaves the status UNSET, as instrumentation libraries should.
* Times: each span starts and ends at its events' precise ``time_unix_nano`` (the millisecond
  ``timestamp`` for events that lack it), and a child never lies outside its parent: a child starts
  no earlier than its open parent, and a parent ends no earlier than its last child.
* Closing a node, probe, agent or plan that did not end as cancelled first ends its still-open
  descendants at the same time with ``swarm.outcome=incomplete`` and
  ``swarm.ended_by=<closing event type>``; so a crashed node leaves nothing open.
* Closing a scan invocation, or cancelling a scope, while work inside it still runs (a probe thread
  that goes on after its node was cancelled) does not cut that work short: the scope gets its outcome
  and a span event named after its closing event at that moment, and stays open until those scopes'
  own closing events end them at their real end, as ``swarm-obs show`` reports them. Stragglers are
  bounded: one that has not closed ``straggler_grace`` seconds (of event time) after its ancestor's
  closing event is ended at its last sign of life with ``swarm.outcome=cancelled`` (after a cancel,
  else ``incomplete``) and ``swarm.ended_by=straggler_grace``.
  :meth:`SpanMapper.end_open_scopes` ends whatever is left (a crashed run) as ``incomplete``.
* A ``scan_resumed`` with ``data.previous_invocation_id`` links its root span to the root of the
  invocation it continues (``swarm.link.type=resumes``), found among the roots this mapper has seen
  or through ``resolve_link`` (e.g. the trace ids stamped on the stored events).
* A span budget per run (``span_budget``, 10,000 by default, ``$SWARM_OBS_SPAN_BUDGET`` or the
  argument to change it, ``None`` for none): once a run has that many spans, its further node,
  probe, agent and plan scopes are *summarised* instead of becoming spans: counted per kind and
  name, with their errors, point events and seq range, and written on the invocation's root span
  when it ends (one ``swarm.spans_summarised`` span event per kind and name, and the attributes
  ``swarm.spans.summarised`` and ``swarm.spans.budget``). A warning is logged per invocation. Root
  spans are never summarised, and the events themselves are all in the log, so a stored run can be
  re-exported with a larger budget.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, SpanKind, Status, StatusCode

from ..events import EventType, Outcome, StreamEvent
from . import semconv as sc
from .attributes import (
    content,
    data_attributes,
    describe_scope,
    describe_start,
    handoff_attributes,
    inherited_outcome,
    is_pause_in_place,
    json_text,
    llm_close_attributes,
    outcome_of,
    scan_close_attributes,
    truncate,
)
from .budget import DEFAULT_SPAN_BUDGET as DEFAULT_SPAN_BUDGET
from .budget import MAX_SUMMARY_GROUPS, Summary, write_summary
from .budget import SPAN_BUDGET_ENV as SPAN_BUDGET_ENV
from .budget import resolve_span_budget as resolve_span_budget
from .deferred import DeferredSpan, preset_ids_of
from .ids import ScopeIdGenerator

logger = logging.getLogger("swarm_observability.tracing")

OPENING_TYPES: Mapping[str, str] = {
    EventType.SCAN_STARTED: "scan",
    EventType.SCAN_RESUMED: "scan",
    EventType.NODE_ENTER: "node",
    EventType.PROBE_START: "probe",
    EventType.AGENT_START: "agent",
    EventType.PLAN_START: "plan",
    EventType.LLM_START: "llm",
    EventType.TOOL_START: "tool",
}
"""Event type -> scope kind, for the events that open a scope (and a span)."""

CLOSING_TYPES: Mapping[str, str] = {
    EventType.SCAN_COMPLETE: "scan",
    EventType.SCAN_ERROR: "scan",
    EventType.SCAN_CANCELLED: "scan",
    EventType.SCAN_PAUSED: "scan",
    EventType.NODE_EXIT: "node",
    EventType.PROBE_COMPLETE: "probe",
    EventType.AGENT_COMPLETE: "agent",
    EventType.PLAN_COMPLETE: "plan",
    EventType.LLM_END: "llm",
    EventType.LLM_ERROR: "llm",
    EventType.TOOL_END: "tool",
    EventType.TOOL_ERROR: "tool",
}
"""Event type -> scope kind, for the events that close a scope."""

_SPAN_KINDS: Mapping[str, SpanKind] = {"llm": SpanKind.CLIENT}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MAX_PENDING = 256
_PENDING_NS = 100_000_000

RootParent = Callable[[StreamEvent], Context]
LinkResolver = Callable[[StreamEvent, str], SpanContext | None]


@dataclass(slots=True)
class _Scope:
    span: Span
    kind: str
    scope_id: str
    parent_id: str | None
    invocation_id: str | None
    opened_by: str
    children: dict[str, None] = field(default_factory=dict)
    child_error: tuple[str, str] | None = None
    start_ns: int = 0
    last_ns: int = 0
    """The latest time this scope is known to have been alive (its start, events, children's ends)."""
    context: Context | None = None
    """A context holding only this span, built once for all of its children."""
    checkpoint_id: str | None = None
    ids: dict[str, str] | None = None
    """The span's ``trace_id``/``span_id`` as hex, built once for stamping events."""
    closed_by: StreamEvent | None = None
    """The scope's closing event (a scan's end, a cancel), while it waits for work still inside it."""
    summary: dict[tuple[str, str], Summary] | None = None
    """On a root: the scopes of its invocation summarised past the span budget, by kind and name."""


class SpanMapper:
    """Turn an ordered stream of events into spans on ``tracer``. Thread-safe.

    Args:
        tracer: where spans are started.
        root_parent: context a scan root is started in; by default an empty one (a new trace).
        resolve_link: finds the root span of a previous invocation this mapper has not seen.
        id_generator: when the tracer's provider uses a :class:`ScopeIdGenerator`, the mapper primes
            it so ids are derived from ``invocation_id``/``scope_id`` (reproducible exports).
        remember: how many finished roots and scopes are kept for links and late children.
        straggler_grace: seconds of event time that scopes still running when an ancestor closed
            (a scan's end, a cancel) may take to close before they are ended for them.
        span_budget: spans per run before further scopes are summarised on the root (see the
            module docstring); by default ``$SWARM_OBS_SPAN_BUDGET`` or :data:`DEFAULT_SPAN_BUDGET`;
            ``None``: no budget.

    Raises:
        ValueError: a ``span_budget`` (or ``$SWARM_OBS_SPAN_BUDGET``) that is not a positive integer.
    """

    def __init__(
        self,
        tracer: trace.Tracer,
        *,
        root_parent: RootParent | None = None,
        resolve_link: LinkResolver | None = None,
        id_generator: ScopeIdGenerator | None = None,
        remember: int = 4096,
        straggler_grace: float = 60.0,
        span_budget: int | Literal["default"] | None = "default",
    ) -> None:
        self._budget = resolve_span_budget(span_budget)
        self._run_spans: OrderedDict[str, int] = OrderedDict()
        self._summarised: dict[str, Summary] = {}
        self._root_of: dict[str, _Scope] = {}
        self._spans_summarised = 0
        self._tracer = tracer
        self._root_parent = root_parent
        self._resolve_link = resolve_link
        self._ids = id_generator
        self._remember = remember
        self._lock = threading.RLock()
        self._open: dict[str, _Scope] = {}
        self._closed: OrderedDict[str, SpanContext] = OrderedDict()
        self._roots: OrderedDict[str, SpanContext] = OrderedDict()
        self._waiting: dict[str, _Scope] = {}
        self._grace_ns = int(straggler_grace * 1e9)
        self._last_ns = 0
        self._started = 0
        self._preset = preset_ids_of(tracer)
        self._pending: list[DeferredSpan] = []

    # -- queries ----------------------------------------------------------------------------------

    def span_for(self, scope_id: str | None) -> Span | None:
        """The open span of a scope, or ``None``."""
        scope = self._open.get(scope_id) if scope_id else None
        return scope.span if scope else None

    def ids_for(self, scope_id: str | None) -> dict[str, str] | None:
        """``{"trace_id": <32 hex>, "span_id": <16 hex>}`` of a scope's open, valid span, or ``None``."""
        scope = self._open.get(scope_id) if scope_id else None
        if scope is None:
            return None
        ids = scope.ids
        if ids is None:
            ctx = scope.span.get_span_context()
            if not ctx.is_valid:
                return None
            ids = scope.ids = {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}
        return ids

    def root_context(self, invocation_id: str) -> SpanContext | None:
        """The span context of an invocation's root span, if this mapper has started it."""
        return self._roots.get(invocation_id)

    @property
    def spans_started(self) -> int:
        """How many spans this mapper has started."""
        return self._started

    @property
    def spans_summarised(self) -> int:
        """How many scopes were summarised instead of becoming spans (runs over their span budget)."""
        return self._spans_summarised

    @property
    def span_budget(self) -> int | None:
        """Spans per run before further scopes are summarised; ``None``: no budget."""
        return self._budget

    @property
    def open_scope_count(self) -> int:
        """How many scopes are open (spans started and not yet ended)."""
        return len(self._open)

    # -- feeding ----------------------------------------------------------------------------------

    def feed(self, event: StreamEvent) -> None:
        """Apply one event. Unknown scopes and repeated opening/closing events are ignored."""
        type_ = event.type  # an EventType or a plain str: both look up the same entries
        with self._lock:
            ns = event.time_unix_nano
            if ns is None:
                ns = _ns(event)
            if ns > self._last_ns:
                self._last_ns = ns
            if self._waiting:
                self._expire_stragglers(ns)
            if self._pending and ns - self._pending[0].end_ns > _PENDING_NS:  # type: ignore[operator]
                self._build_pending()
            opening = OPENING_TYPES.get(type_)
            if opening is not None:
                self._start(event, opening, ns)
                return
            closing = CLOSING_TYPES.get(type_)
            if closing is not None and not (closing == "scan" and is_pause_in_place(event)):
                self._finish(event, closing, ns)
            else:
                self._point(event)

    def end_open_scopes(self, end_time_ns: int | None = None, ended_by: str = "end_of_log") -> int:
        """End every open span as ``swarm.outcome=incomplete`` (a crashed run); returns how many.

        ``end_time_ns`` defaults to the timestamp of the last event fed.
        """
        with self._lock:
            end_ns = end_time_ns if end_time_ns is not None else self._last_ns
            count = len(self._open)
            for scope in [s for s in self._open.values() if s.parent_id not in self._open]:
                self._end_subtree(scope, end_ns, sc.OUTCOME_INCOMPLETE, ended_by)
            self._build_pending()
            return count

    def _build_pending(self) -> None:
        pending, self._pending = self._pending, []
        for span in pending:
            try:
                span.build(self._tracer, self._preset)  # type: ignore[arg-type]
            except Exception:
                logger.exception("the span %r could not be made; its trace misses it", span.name)

    def _expire_stragglers(self, now_ns: int) -> None:
        for waiting in list(self._waiting.values()):
            closed_by = waiting.closed_by
            if closed_by is not None and now_ns - _ns(closed_by) > self._grace_ns:
                self._end_subtree(waiting, None, inherited_outcome(closed_by), sc.ENDED_BY_STRAGGLER_GRACE)

    # -- opening ----------------------------------------------------------------------------------

    def _start(self, event: StreamEvent, kind: str, start_ns: int) -> None:
        scope_id = event.scope_id or (event.invocation_id if kind == "scan" else None)
        if scope_id is None:
            logger.debug("%s without scope_id ignored by the span mapping", event.type_name)
            return
        if scope_id in self._open:
            if self._open[scope_id].opened_by != event.id:
                self._point(event)  # e.g. scan_resumed after a pause in place: the scope goes on
            return
        budget = self._budget
        if (
            kind != "scan"
            and budget is not None
            and (self._summarised or self._run_spans.get(event.run_id, 0) >= budget)
            and self._over_budget(event, kind, scope_id)
        ):
            return
        parent_id = event.parent_scope_id
        parent = self._open.get(parent_id) if parent_id else None
        links: list[Link] = []
        if kind == "scan":
            enclosing = self._known_context(event.parent_scope_id)
            if enclosing is not None:
                parent_ctx = enclosing
            else:
                parent_ctx = self._root_parent(event) if self._root_parent else Context()
            previous = event.data.get("previous_invocation_id")
            if isinstance(previous, str) and previous:
                target = self._roots.get(previous)
                if target is None and self._resolve_link is not None:
                    target = self._resolve_link(event, previous)
                if target is not None:
                    link_attributes = {sc.SWARM_LINK_TYPE: sc.LINK_RESUMES, sc.SWARM_INVOCATION_ID: previous}
                    links.append(Link(target, link_attributes))
        elif parent is not None:
            parent_ctx = parent.context or self._known_context(parent_id)  # type: ignore[assignment]
        else:
            parent_ctx = self._parent_context(event)
        if parent is not None and parent.start_ns > start_ns:
            start_ns = parent.start_ns
        span_kind = _SPAN_KINDS.get(kind, SpanKind.INTERNAL)
        span: Span | None = None
        if kind != "scan" and self._preset is not None:
            parent_span = parent.span if parent is not None else trace.get_current_span(parent_ctx)
            span = self._deferred(event, kind, parent_span, parent_ctx, span_kind, links, start_ns, scope_id)
        if span is None:
            name, attributes = describe_scope(event, kind, scope_id)
            if self._ids is not None:
                self._ids.prime(event.invocation_id or scope_id, scope_id)
            try:
                span = self._tracer.start_span(
                    name,
                    context=parent_ctx,
                    kind=span_kind,
                    attributes=attributes,
                    links=links,
                    start_time=start_ns,
                    record_exception=False,
                    set_status_on_exception=False,
                )
            finally:
                if self._ids is not None:
                    self._ids.prime(None, None)
        self._started += 1
        if self._budget is not None:
            spans = self._run_spans
            spans[event.run_id] = spans.pop(event.run_id, 0) + 1
            if len(spans) > self._remember:
                spans.popitem(last=False)
        scope = self._open[scope_id] = _Scope(
            span,
            kind,
            scope_id,
            parent_id,
            event.invocation_id,
            event.id,
            start_ns=start_ns,
            last_ns=start_ns,
            checkpoint_id=event.checkpoint_id,
        )
        if parent is not None:
            parent.children[scope_id] = None
        if kind == "scan":
            _remember(self._roots, event.invocation_id or scope_id, span.get_span_context(), self._remember)
            if event.invocation_id:
                self._root_of[event.invocation_id] = scope

    def _deferred(
        self,
        event: StreamEvent,
        kind: str,
        parent_span: Span,
        parent_ctx: Context,
        span_kind: SpanKind,
        links: list[Link],
        start_ns: int,
        scope_id: str,
    ) -> DeferredSpan | None:
        """A :class:`DeferredSpan` under a known, valid parent span; ``None``: start an SDK span now."""
        parent = parent_span.get_span_context()
        if not parent.is_valid:
            return None  # a new trace: the sampler's decision is needed now
        ids = self._preset.inner  # type: ignore[union-attr]
        if self._ids is not None:
            self._ids.prime(None, scope_id)
        span_id = ids.generate_span_id()
        context = SpanContext(
            parent.trace_id, span_id, False, trace_flags=parent.trace_flags, trace_state=parent.trace_state
        )
        return DeferredSpan(
            functools.partial(describe_scope, event, kind, scope_id),
            context,
            parent_ctx,
            span_kind,
            links,
            start_ns,
        )

    def _over_budget(self, event: StreamEvent, kind: str, scope_id: str) -> bool:
        """Past the run's budget: count the scope in its root's summary instead of starting a span."""
        if scope_id in self._summarised:
            return True
        if self._run_spans.get(event.run_id, 0) < self._budget:  # type: ignore[operator]
            return False
        root = self._root_of.get(event.invocation_id) if event.invocation_id else None
        if root is None:
            return False  # no root to report on: better an extra span than a silent loss
        if root.summary is None:
            root.summary = {}
            logger.warning(
                "run %r reached its span budget of %d spans; further spans of invocation %r are "
                "summarised on its root span (swarm.spans_summarised); every event is still stored",
                event.run_id,
                self._budget,
                event.invocation_id,
            )
        key = (kind, describe_start(event, kind)[0])
        if key not in root.summary and len(root.summary) >= MAX_SUMMARY_GROUPS:
            key = (kind, "*")
        group = root.summary.get(key)
        if group is None:
            group = root.summary[key] = Summary(root)
        group.count += 1
        group.saw(event)
        self._summarised[scope_id] = group
        self._spans_summarised += 1
        return True

    def _parent_context(self, event: StreamEvent) -> Context:
        for candidate in (event.parent_scope_id, event.invocation_id):
            found = self._known_context(candidate)
            if found is not None:
                return found
        return Context()

    def _known_context(self, scope_id: str | None) -> Context | None:
        """A context holding the span of ``scope_id``, open or recently ended; ``None`` if unknown."""
        if scope_id is None:
            return None
        scope = self._open.get(scope_id)
        if scope is not None:
            if scope.context is None:
                scope.context = trace.set_span_in_context(scope.span, Context())
            return scope.context
        ended = self._closed.get(scope_id) or self._roots.get(scope_id)
        if ended is not None:
            return trace.set_span_in_context(NonRecordingSpan(ended), Context())
        return None

    # -- closing ----------------------------------------------------------------------------------

    def _finish(self, event: StreamEvent, kind: str, end_ns: int) -> None:
        scope_id = event.scope_id or (event.invocation_id if kind == "scan" else None)
        scope = self._open.get(scope_id) if scope_id else None
        if scope is None or scope.closed_by is not None:
            group = self._summarised.pop(scope_id, None) if scope_id and scope is None else None
            if group is not None:
                group.saw(event)
                group.errors += outcome_of(event) == Outcome.ERROR
            else:
                logger.debug("%s for a scope that is not open (%s) ignored", event.type_name, scope_id)
            return
        outcome = outcome_of(event)
        if scope.children and kind != "scan" and outcome != Outcome.CANCELLED:
            for child_id in list(scope.children):
                child = self._open.get(child_id)
                if child is not None:
                    self._end_subtree(child, end_ns, inherited_outcome(event), event.type_name)
        span = scope.span
        attributes: dict[str, Any] = {sc.SWARM_OUTCOME: outcome}
        if event.seq is not None:
            attributes[sc.SWARM_SEQ_LAST] = event.seq
        if kind == "node" and event.checkpoint_id and event.checkpoint_id != scope.checkpoint_id:
            attributes[sc.SWARM_CHECKPOINT_ID] = event.checkpoint_id
        if kind == "scan":
            attributes.update(scan_close_attributes(event))
        elif kind in ("probe", "agent", "plan"):
            attributes.update(data_attributes(f"swarm.{kind}.", event.data))
        elif kind == "llm":
            attributes.update(llm_close_attributes(event.data))
        elif kind == "tool" and "result" in event.data:
            attributes[sc.GEN_AI_TOOL_CALL_RESULT] = content(event.data["result"])
        if outcome == Outcome.ERROR:
            error_type = str(event.data.get("error_type") or "_OTHER")
            message = str(event.data.get("error_message") or event.message or "")
            attributes[sc.ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, message or None))
            if scope.child_error != (error_type, message):
                span.add_event(
                    sc.EXCEPTION_EVENT,
                    {sc.EXCEPTION_TYPE: error_type, sc.EXCEPTION_MESSAGE: message},
                    timestamp=end_ns,
                )
            parent = self._open.get(scope.parent_id) if scope.parent_id else None
            if parent is not None:
                parent.child_error = (error_type, message)
        span.set_attributes(attributes)
        if end_ns > scope.last_ns:
            scope.last_ns = end_ns
        if scope.children:  # cancelled (or a scan), its work goes on: wait for it, bounded by straggler_grace
            marker = {sc.SWARM_SEQ: event.seq} if event.seq is not None else {}
            span.add_event(event.type_name, marker, timestamp=end_ns)
            scope.closed_by = event
            self._waiting[scope.scope_id] = scope
            return
        self._end(scope)

    def _end_subtree(self, scope: _Scope, end_ns: int | None, outcome: str, ended_by: str) -> None:
        """End ``scope`` and its open descendants at ``end_ns`` (``None``: each at its last sign of life)."""
        if scope.closed_by is not None:  # a waiting scope keeps its own outcome; its stragglers inherit
            outcome = inherited_outcome(scope.closed_by)
        for child_id in list(scope.children):
            child = self._open.get(child_id)
            if child is not None:
                self._end_subtree(child, end_ns, outcome, ended_by)
        if scope.scope_id not in self._open:
            return  # ended when its last straggler did
        if scope.closed_by is None:
            scope.span.set_attributes({sc.SWARM_OUTCOME: outcome, sc.SWARM_ENDED_BY: ended_by})
            if end_ns is not None and end_ns > scope.last_ns:
                scope.last_ns = end_ns
        self._end(scope)

    def _end(self, scope: _Scope) -> None:
        """End the span of ``scope`` at its last sign of life and release it; a waiting parent may end too.

        A deferred span is queued; the queue becomes SDK spans before any SDK span ends (so an
        invocation's root ends after its scopes), when it is full, when no open root of its
        invocation is left (a straggler), or 100 ms of event time later. A span lasts at least 1 ns:
        a scope seen only opening (the last event of a crashed log) would otherwise be zero-length,
        which Jaeger flags as a negative duration and rewrites.
        """
        if scope.last_ns <= scope.start_ns:
            scope.last_ns = scope.start_ns + 1
        parent = self._release(scope)
        span = scope.span
        end_ns = scope.last_ns
        if type(span) is DeferredSpan:
            span.finish(end_ns)
            self._pending.append(span)
            if len(self._pending) >= _MAX_PENDING or scope.invocation_id not in self._root_of:
                self._build_pending()  # full, or no open root left whose end would build it
        else:
            if self._pending:
                self._build_pending()
            span.end(end_time=end_ns)
        if parent is not None and parent.closed_by is not None and not parent.children:
            self._end(parent)

    def _release(self, scope: _Scope) -> _Scope | None:
        """Forget ``scope`` as open (remembering its span context); returns its open parent, if any."""
        if scope.kind == "scan":
            self._write_summary(scope)
            if scope.invocation_id and self._root_of.get(scope.invocation_id) is scope:
                del self._root_of[scope.invocation_id]
        self._open.pop(scope.scope_id, None)
        if self._waiting:
            self._waiting.pop(scope.scope_id, None)
        parent = self._open.get(scope.parent_id) if scope.parent_id else None
        if parent is not None:
            parent.children.pop(scope.scope_id, None)
            if scope.last_ns > parent.last_ns:
                parent.last_ns = scope.last_ns
        _remember(self._closed, scope.scope_id, scope.span.get_span_context(), self._remember)
        return parent

    def _write_summary(self, root: _Scope) -> None:
        """Put the summarised scopes of an ending invocation on its root span."""
        if not root.summary:
            return
        write_summary(root.span, root.summary, self._budget, self._last_ns or None)
        self._summarised = {k: g for k, g in self._summarised.items() if g.root is not root}

    # -- point events -----------------------------------------------------------------------------

    def _point(self, event: StreamEvent) -> None:
        if self._summarised and event.scope_id in self._summarised:
            group = self._summarised[event.scope_id]
            group.events += 1
            group.saw(event)
            return
        scope = None
        for candidate in (event.scope_id, event.parent_scope_id, event.invocation_id):
            if candidate is not None and candidate in self._open:
                scope = self._open[candidate]
                break
        if scope is None:
            logger.debug("%s outside any open scope ignored by the span mapping", event.type_name)
            return
        attributes: dict[str, Any] = {}
        if event.seq is not None:
            attributes[sc.SWARM_SEQ] = event.seq
        if event.message is not None:
            attributes[sc.SWARM_MESSAGE] = truncate(event.message)
        if event.progress is not None:
            attributes[sc.SWARM_PROGRESS] = event.progress
        name = event.type_name
        if name == EventType.HANDOFF:
            name = sc.SWARM_HANDOFF_EVENT
            attributes.update(handoff_attributes(event.data))
        elif event.data:
            attributes[sc.SWARM_DATA] = json_text(event.data)
        ns = _ns(event)
        if ns > scope.last_ns:
            scope.last_ns = ns
        scope.span.add_event(name, attributes, timestamp=ns)


_last_ns_of: tuple[datetime, int] = (_EPOCH, 0)


def _ns(event: StreamEvent) -> int:
    """The event's time in Unix nanoseconds: its precise time, else its millisecond ``timestamp``."""
    precise = event.time_unix_nano
    if precise is not None:
        return precise
    # Events of the same millisecond share one datetime object: remember the last conversion.
    global _last_ns_of
    timestamp = event.timestamp
    last = _last_ns_of
    if last[0] is timestamp:
        return last[1]
    ns = (timestamp - _EPOCH) // _MICROSECOND * 1000
    _last_ns_of = (timestamp, ns)
    return ns


def _remember(cache: OrderedDict[str, SpanContext], key: str, value: SpanContext, limit: int) -> None:
    if key in cache:
        cache.move_to_end(key)
    cache[key] = value
    while len(cache) > limit:
        cache.popitem(last=False)


def tracer_for(provider: trace.TracerProvider | None) -> trace.Tracer:
    """This package's tracer on ``provider`` (the global provider when ``None``)."""
    provider = provider if provider is not None else trace.get_tracer_provider()
    return provider.get_tracer(sc.INSTRUMENTATION_NAME, instrumentation_version(), schema_url=sc.SCHEMA_URL)


def instrumentation_version() -> str:
    """The installed version of swarm-observability, as instruments and tracers report it."""
    try:
        return importlib.metadata.version("swarm-observability")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
