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
* A span budget per run (``span_budget``) summarises the scopes of a run past that many spans on
  its invocation's root span instead of making spans of them (see :mod:`.budget`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Literal

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanContext, SpanKind

from ..events import Outcome, StreamEvent
from . import semconv as sc
from .attributes import (
    close_attributes,
    describe_scope,
    inherited_outcome,
    is_pause_in_place,
    outcome_of,
    point_attributes,
)
from .budget import DEFAULT_SPAN_BUDGET as DEFAULT_SPAN_BUDGET
from .budget import SpanBudget
from .budget import resolve_span_budget as resolve_span_budget
from .deferred import MAX_PENDING, PENDING_NS, ClientDeferredSpan, DeferredSpan, DeferredSpans
from .ids import ScopeIdGenerator
from .scopes import CLOSING_TYPES as CLOSING_TYPES
from .scopes import OPENING_TYPES as OPENING_TYPES
from .scopes import OpenScope, ScopeTree, event_ns
from .semconv import tracer_for as tracer_for

logger = logging.getLogger("swarm_observability.tracing")

_CLIENT = SpanKind.CLIENT
"""The kind of a model call's span (``llm``); every other scope's is ``_INTERNAL``."""
_INTERNAL = SpanKind.INTERNAL
_opening_kind = OPENING_TYPES.get
_closing_kind = CLOSING_TYPES.get
_NEVER = 2**63
_ERROR = Outcome.ERROR.value

RootParent = Callable[[StreamEvent], Context]
LinkResolver = Callable[[StreamEvent, str], SpanContext | None]
Links = list[Link] | tuple[()]


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
        self._tracer = tracer
        self._root_parent = root_parent
        self._resolve_link = resolve_link
        self._ids = id_generator
        self._lock = threading.RLock()
        self._tree = ScopeTree(remember)
        self._budget = SpanBudget(resolve_span_budget(span_budget), remember, self._tree.root_of)
        self._open = self._tree.open
        self.open_scopes: Mapping[str | None, OpenScope] = self._open
        """The open scopes by scope id (read only; one dict for the mapper's life): the live tracer's
        hooks look a node's span and ids up in it, without a call per lookup."""
        self._root_of = self._tree.root_of
        self._waiting: dict[str, OpenScope] = {}
        self._grace_ns = int(straggler_grace * 1e9)
        self._last_ns = 0
        self._started = 0
        """SDK spans started (deferred ones are counted by :attr:`spans_started` as it is read)."""
        self._deferred = DeferredSpans(tracer)
        self._pending = self._deferred.queue
        self._new_span_id = self._deferred.new_span_id
        self._build_due = _NEVER
        """Event time (ns) past which the queued deferred spans are built (their oldest + PENDING_NS)."""

    # -- queries ----------------------------------------------------------------------------------

    def span_for(self, scope_id: str | None) -> Span | None:
        """The open span of a scope, or ``None``."""
        scope = self._open.get(scope_id)
        return scope.span if scope else None

    def ids_for(self, scope_id: str | None) -> dict[str, str] | None:
        """``{"trace_id": <32 hex>, "span_id": <16 hex>}`` of a scope's open, valid span, or ``None``."""
        scope = self._open.get(scope_id)
        return scope.span_ids() if scope is not None else None

    def root_context(self, invocation_id: str) -> SpanContext | None:
        """The span context of an invocation's root span, if this mapper has started it."""
        return self._tree.roots.get(invocation_id)

    @property
    def spans_started(self) -> int:
        """How many spans this mapper has started (counted as they are read, not per span)."""
        with self._lock:
            running = sum(1 for scope in self._open.values() if scope.deferred is not None)
            return self._started + running + len(self._pending) + self._deferred.built

    @property
    def spans_summarised(self) -> int:
        """How many scopes were summarised instead of becoming spans (runs over their span budget)."""
        return self._budget.summarised_total

    @property
    def span_budget(self) -> int | None:
        """Spans per run before further scopes are summarised; ``None``: no budget."""
        return self._budget.limit

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
                ns = event_ns(event)
            if ns > self._last_ns:
                self._last_ns = ns
            if self._waiting:
                self._expire_stragglers(ns)
            if ns > self._build_due:
                self._build_pending()
            opening = _opening_kind(type_)
            if opening is not None:
                self._start(event, opening, ns)
                return
            closing = _closing_kind(type_)
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

    def _expire_stragglers(self, now_ns: int) -> None:
        for waiting in list(self._waiting.values()):
            closed_by = waiting.closed_by
            if closed_by is not None and now_ns - event_ns(closed_by) > self._grace_ns:
                self._end_subtree(waiting, None, inherited_outcome(closed_by), sc.ENDED_BY_STRAGGLER_GRACE)

    # -- opening ----------------------------------------------------------------------------------

    def _start(self, event: StreamEvent, kind: str, start_ns: int) -> None:
        scope_id = event.scope_id or (event.invocation_id if kind == "scan" else None)
        if not scope_id:  # so "" is never a key of the open scopes either
            logger.debug("%s without scope_id ignored by the span mapping", event.type_name)
            return
        if scope_id in self._open:
            if self._open[scope_id].opening.id != event.id:
                self._point(event)  # e.g. scan_resumed after a pause in place: the scope goes on
            return
        if not self._budget.admit(event, kind):
            return
        parent_id = event.parent_scope_id
        parent = self._open.get(parent_id)
        if parent is not None and parent.start_ns > start_ns:
            start_ns = parent.start_ns
        deferred: DeferredSpan | None
        if kind == "scan":  # a root: never deferred (a new trace needs the sampler's decision now)
            parent_ctx, links = self._tree.root_start(event, self._root_parent, self._resolve_link)
            span = self._start_now(event, kind, scope_id, parent_ctx, links, start_ns)
            deferred = None
        else:
            if parent is not None:
                parent_ctx = parent.context or self._tree.known_context(parent_id)  # type: ignore[assignment]
                lineage = parent.lineage
                if lineage is None and self._new_span_id is not None:
                    lineage = parent.lineage = self._deferred.lineage(parent.span)
            else:
                parent_ctx = self._tree.parent_context(event)
                lineage = None
                if self._new_span_id is not None:
                    lineage = self._deferred.lineage(trace.get_current_span(parent_ctx))
            if lineage is not None:
                if self._ids is not None:
                    self._ids.prime(None, scope_id)
                made = ClientDeferredSpan if kind == "llm" else DeferredSpan
                span_id = self._new_span_id()  # type: ignore[misc]
                span = deferred = made(event, kind, scope_id, lineage, span_id, parent_ctx, start_ns)
            else:
                span = self._start_now(event, kind, scope_id, parent_ctx, (), start_ns)
                deferred = None
        scope = OpenScope(span, kind, scope_id, parent_id, event, start_ns, deferred)
        self._tree.add(scope, parent)

    def _start_now(
        self, event: StreamEvent, kind: str, scope_id: str, parent_ctx: Context, links: Links, start_ns: int
    ) -> Span:
        """Start the SDK span of a scope that is not deferred (a root, or a scope of a new trace)."""
        name, attributes = describe_scope(event, kind, scope_id)
        self._started += 1
        if self._ids is not None:
            self._ids.prime(event.invocation_id or scope_id, scope_id)
        try:
            return self._tracer.start_span(
                name,
                context=parent_ctx,
                kind=_CLIENT if kind == "llm" else _INTERNAL,
                attributes=attributes,
                links=links,
                start_time=start_ns,
                record_exception=False,
                set_status_on_exception=False,
            )
        finally:
            if self._ids is not None:
                self._ids.prime(None, None)

    # -- closing ----------------------------------------------------------------------------------

    def _finish(self, event: StreamEvent, kind: str, end_ns: int) -> None:
        scope_id = event.scope_id or (event.invocation_id if kind == "scan" else None)
        scope = self._open.get(scope_id)
        if scope is None or scope.closed_by is not None:
            if scope is not None or not self._budget.closed(scope_id, event):
                logger.debug("%s for a scope that is not open (%s) ignored", event.type_name, scope_id)
            return
        outcome = outcome_of(event)
        if scope.children and kind != "scan" and outcome != Outcome.CANCELLED:
            for child_id in list(scope.children):
                child = self._open.get(child_id)
                if child is not None:
                    self._end_subtree(child, end_ns, inherited_outcome(event), event.type_name)
        span = scope.span
        attributes = close_attributes(event, kind, outcome, scope.opening.checkpoint_id)
        if outcome == _ERROR:
            error = scope.fail(event, attributes, end_ns)
            parent = self._open.get(scope.parent_id)
            if parent is not None:
                parent.child_error = error
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

    def _end_subtree(self, scope: OpenScope, end_ns: int | None, outcome: str, ended_by: str) -> None:
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

    def _end(self, scope: OpenScope) -> None:
        """End the span of ``scope`` at its last sign of life and release it; a waiting parent may end too.

        A deferred span is queued; the queue becomes SDK spans before any SDK span ends (so an
        invocation's root ends after its scopes), when it is full, when no open root of its
        invocation is left (a straggler), or 100 ms of event time later. A span lasts at least 1 ns:
        a scope seen only opening (the last event of a crashed log) would otherwise be zero-length,
        which Jaeger flags as a negative duration and rewrites.
        """
        if scope.last_ns <= scope.start_ns:
            scope.last_ns = scope.start_ns + 1
        parent = self._release(scope) if scope.kind == "scan" or self._waiting else self._tree.release(scope)
        end_ns = scope.last_ns
        deferred = scope.deferred
        if deferred is not None:
            deferred.end_ns = end_ns
            pending = self._pending
            if not pending:
                self._build_due = end_ns + PENDING_NS
            pending.append(deferred)
            if len(pending) >= MAX_PENDING or scope.opening.invocation_id not in self._root_of:
                self._build_pending()  # full, or no open root left whose end would build it
        else:
            if self._pending:
                self._build_pending()
            scope.span.end(end_time=end_ns)
        if self._waiting and parent is not None and parent.closed_by is not None and not parent.children:
            self._end(parent)

    def _build_pending(self) -> None:
        self._build_due = _NEVER
        self._deferred.build()

    def _release(self, scope: OpenScope) -> OpenScope | None:
        """Forget ``scope`` as open (remembering its span context); returns its open parent, if any."""
        if scope.kind == "scan":
            self._budget.write(scope, self._last_ns or None)
            self._budget.root_closed(scope.opening.run_id)
        if self._waiting:
            self._waiting.pop(scope.scope_id, None)
        return self._tree.release_root(scope) if scope.kind == "scan" else self._tree.release(scope)

    # -- point events -----------------------------------------------------------------------------

    def _point(self, event: StreamEvent) -> None:
        if self._budget.point(event):
            return
        scope = self._tree.scope_of(event)
        if scope is None:
            logger.debug("%s outside any open scope ignored by the span mapping", event.type_name)
            return
        name, attributes = point_attributes(event)
        ns = event_ns(event)
        if ns > scope.last_ns:
            scope.last_ns = ns
        scope.span.add_event(name, attributes, timestamp=ns)
