"""The scopes a :class:`~.mapping.SpanMapper` follows: which events open and close them, what it
keeps about an open one (:class:`OpenScope`), the tree of open scopes and the span contexts of
recently ended ones (:class:`ScopeTree`: where a new span's parent is found), and event times.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, Status, StatusCode

from ..events import EventType, StreamEvent
from . import semconv as sc
from .budget import Summary
from .deferred import DeferredSpan, Lineage, Remembered, recall

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


class OpenScope:
    """What the mapper keeps about a scope whose span has started and not yet ended.

    A plain class, not a dataclass: one is made per span, so ``__init__`` sets only what every
    scope has; what few scopes get (a context for children, a failed child, a summary...) is a
    class-level default until it is set.
    """

    opening: StreamEvent
    """The event that opened the scope (its ``invocation_id``, ``run_id``, ``checkpoint_id``...)."""
    last_ns: int
    """The latest time this scope is known to have been alive (its start, events, children's ends)."""
    deferred: DeferredSpan | None
    """``span`` when it is a :class:`~.deferred.DeferredSpan` (typed as one), else ``None``."""
    ids: dict[str, str] | None = None
    """An SDK span's ``trace_id``/``span_id`` as hex, built once for stamping events (a deferred
    span has its own)."""
    child_error: tuple[str, str] | None = None
    context: Context | None = None
    """A context holding only this span, built once for all of its children."""
    lineage: Lineage | None = None
    """What this span's deferred children share (see :mod:`.deferred`), worked out for the first."""
    closed_by: StreamEvent | None = None
    """The scope's closing event (a scan's end, a cancel), while it waits for work still inside it."""
    summary: dict[tuple[str, str], Summary] | None = None
    """On a root: the scopes of its invocation summarised past the span budget, by kind and name."""

    def __init__(
        self,
        span: Span,
        kind: str,
        scope_id: str,
        parent_id: str | None,
        opening: StreamEvent,
        start_ns: int,
        deferred: DeferredSpan | None,
    ) -> None:
        self.span = span
        self.kind = kind
        self.scope_id = scope_id
        self.parent_id = parent_id
        self.opening = opening
        self.start_ns = start_ns
        self.last_ns = start_ns
        self.deferred = deferred
        self.children: dict[str, None] = {}

    def span_ids(self) -> dict[str, str] | None:
        """``{"trace_id": <32 hex>, "span_id": <16 hex>}`` of this scope's span; ``None`` if not valid."""
        if self.deferred is not None:  # its ids were made with it
            return self.deferred.ids
        ids = self.ids
        if ids is None:
            ctx = self.span.get_span_context()
            if not ctx.is_valid:
                return None
            ids = self.ids = {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}
        return ids

    def fail(self, event: StreamEvent, attributes: dict[str, Any], end_ns: int) -> tuple[str, str]:
        """Record the error ``event`` closes this scope with; returns its ``(error type, message)``.

        The span gets status ERROR with the message, ``attributes`` (its closing ones) ``error.type``,
        and an ``exception`` span event unless a child already recorded the same error (the semconv
        asks for the exception once, where it happened), which :attr:`child_error` tells.
        """
        error_type = str(event.data.get("error_type") or "_OTHER")
        message = str(event.data.get("error_message") or event.message or "")
        attributes[sc.ERROR_TYPE] = error_type
        self.span.set_status(Status(StatusCode.ERROR, message or None))
        if self.child_error != (error_type, message):
            self.span.add_event(
                sc.EXCEPTION_EVENT,
                {sc.EXCEPTION_TYPE: error_type, sc.EXCEPTION_MESSAGE: message},
                timestamp=end_ns,
            )
        return error_type, message


class ScopeTree:
    """The open scopes by id, the open root of each invocation, and the span contexts of the last
    ``remember`` ended scopes and roots (for late children and links). Not thread-safe: the mapper
    uses it under its lock.
    """

    def __init__(self, remember: int) -> None:
        self.open: dict[str | None, OpenScope] = {}
        """Scope id -> its open scope. Typed to be looked up with an optional id: ``None`` (and ``""``)
        is never a key, so ``open.get(event.parent_scope_id)`` needs no guard."""
        self.root_of: dict[str, OpenScope] = {}
        """Invocation id -> its open root scope."""
        self.roots: OrderedDict[str, SpanContext] = OrderedDict()
        """Invocation id -> the span context of its root (open or ended), most recent last."""
        self._closed: OrderedDict[str, SpanContext | Remembered] = OrderedDict()
        """Scope id -> span context of the last ``remember`` ended scopes, oldest first (of a deferred
        span: what it is :data:`~.deferred.Remembered` by, a context only if a late child asks). An
        OrderedDict: dropping a plain dict's first key walks the deleted slots before it, ~2 us per
        ended scope once 4096 are remembered, against ~0.35 us for ``popitem(last=False)``."""
        self._remember = remember

    def add(self, scope: OpenScope, parent: OpenScope | None) -> None:
        """Put a just-started scope into the tree, under its open ``parent``."""
        self.open[scope.scope_id] = scope
        if parent is not None:
            parent.children[scope.scope_id] = None
        if scope.kind == "scan":
            invocation_id = scope.opening.invocation_id
            remember(
                self.roots, invocation_id or scope.scope_id, scope.span.get_span_context(), self._remember
            )
            if invocation_id:
                self.root_of[invocation_id] = scope

    def release_root(self, scope: OpenScope) -> OpenScope | None:
        """:meth:`release` a scan's scope, and forget it as its invocation's open root."""
        invocation_id = scope.opening.invocation_id
        if invocation_id and self.root_of.get(invocation_id) is scope:
            del self.root_of[invocation_id]
        return self.release(scope)

    def release(self, scope: OpenScope) -> OpenScope | None:
        """Forget ``scope`` as open (remembering its span context); returns its open parent, if any.

        A scan's scope goes through :meth:`release_root`."""
        self.open.pop(scope.scope_id, None)
        parent = self.open.get(scope.parent_id)
        if parent is not None:
            parent.children.pop(scope.scope_id, None)
            if scope.last_ns > parent.last_ns:
                parent.last_ns = scope.last_ns
        closed = self._closed  # scope ids are unique: first in, first forgotten
        deferred = scope.deferred
        if deferred is None:
            closed[scope.scope_id] = scope.span.get_span_context()
        else:
            lineage = deferred.lineage
            flags, span_id = lineage.flags, deferred.span_id
            key = scope.scope_id
            closed[key] = (lineage.trace_id, span_id, flags) if flags is not None else (lineage, span_id)
        if len(closed) > self._remember:
            closed.popitem(last=False)
        return parent

    def root_start(
        self,
        event: StreamEvent,
        root_parent: Callable[[StreamEvent], Context] | None,
        resolve_link: Callable[[StreamEvent, str], SpanContext | None] | None,
    ) -> tuple[Context, list[Link]]:
        """Where a scan root starts (under a known enclosing scope, else ``root_parent``'s context,
        else a new trace) and its link to the root of the invocation it resumes, if found."""
        enclosing = self.known_context(event.parent_scope_id)
        if enclosing is None:
            enclosing = root_parent(event) if root_parent else Context()
        previous = event.data.get("previous_invocation_id")
        if not isinstance(previous, str) or not previous:
            return enclosing, []
        target = self.roots.get(previous)
        if target is None and resolve_link is not None:
            target = resolve_link(event, previous)
        if target is None:
            return enclosing, []
        return enclosing, [
            Link(target, {sc.SWARM_LINK_TYPE: sc.LINK_RESUMES, sc.SWARM_INVOCATION_ID: previous})
        ]

    def parent_context(self, event: StreamEvent) -> Context:
        """The context of the event's parent scope, else of its invocation's root, else an empty one."""
        for candidate in (event.parent_scope_id, event.invocation_id):
            found = self.known_context(candidate)
            if found is not None:
                return found
        return Context()

    def scope_of(self, event: StreamEvent) -> OpenScope | None:
        """The open scope a point event belongs to: its own, else its parent's, else its invocation's."""
        open_ = self.open
        for candidate in (event.scope_id, event.parent_scope_id, event.invocation_id):
            if candidate is not None and candidate in open_:
                return open_[candidate]
        return None

    def known_context(self, scope_id: str | None) -> Context | None:
        """A context holding the span of ``scope_id``, open or recently ended; ``None`` if unknown."""
        if scope_id is None:
            return None
        scope = self.open.get(scope_id)
        if scope is not None:
            if scope.context is None:
                scope.context = trace.set_span_in_context(scope.span, Context())
            return scope.context
        ended = self._closed.get(scope_id) or self.roots.get(scope_id)
        if ended is None:
            return None
        if type(ended) is tuple:  # not isinstance: a SpanContext is a tuple too
            ended = recall(cast(Remembered, ended))
        return trace.set_span_in_context(NonRecordingSpan(cast(SpanContext, ended)), Context())


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_last_ns_of: tuple[datetime, int] = (_EPOCH, 0)


def event_ns(event: StreamEvent) -> int:
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


def remember(cache: OrderedDict[str, SpanContext], key: str, value: SpanContext, limit: int) -> None:
    """Put ``key`` in the LRU ``cache`` (most recent last), dropping the oldest past ``limit``."""
    if key in cache:
        cache.move_to_end(key)
    cache[key] = value
    while len(cache) > limit:
        cache.popitem(last=False)
