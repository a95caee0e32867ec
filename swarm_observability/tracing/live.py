"""``LiveTracer``: OpenTelemetry spans for a graph while it runs, from the same mapping as exports.

How it plugs into the instrumentation (three seams, all on the hot path, none of them raises):

1. ``tracer.install(emitter)`` subscribes :meth:`LiveTracer.on_event` (every event, after it was
   stored, feeds the shared :class:`SpanMapper`: opening events start spans, closing events end
   them, point events become span events) and appends :attr:`LiveTracer.stamp` to the emitter's
   processors (every event emitted inside an open traced scope gets that span's ``trace_id`` and
   ``span_id``; that is how a resumed invocation in another process finds the root span it links to;
   and ``scan_started``/``scan_resumed`` record the provider's ``service.name``, so a later export
   of the run names the same service, see :mod:`.service`).
2. ``token = tracer.scope_opened(event)`` right after an opening event was emitted, in the context
   where the scope's body runs: makes the scope's span the current OpenTelemetry span, so spans
   made by user code, HTTP clients or LLM SDKs inside a node (or a tool run) nest under its span,
   in sync (thread) and async (task) nodes alike. The scan root is never made current: ``astream``
   is a generator, and a context attached there would leak into the consumer between chunks. Nor
   is a model call's span: LangChain ends async model runs in a copy of the caller's context.
3. ``tracer.scope_closed(event, token)`` right before the closing event is emitted, in that same
   context: detaches, so the caller's context is exactly what it was.

The span itself ends when the closing event reaches the subscriber, with the event's timestamp
and seq, exactly as ``export_run`` would end it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import attach, detach
from opentelemetry.trace import SpanContext, set_span_in_context

from ..events import EventType, StreamEvent, copy_event
from ..stores.base import EventStore
from .ids import find_stamped_root
from .mapping import OPENING_TYPES, SpanMapper, tracer_for
from .service import service_name_of, stamp_service_name

logger = logging.getLogger("swarm_observability.tracing")

_SCAN_OPENING = frozenset({EventType.SCAN_STARTED, EventType.SCAN_RESUMED})
_NEVER_CURRENT = frozenset({"scan", "llm"})
"""Scope kinds whose span is never made current: a scan root (a generator) and a model call (LangChain
ends async model runs in a copied context, where the attached context could not be detached)."""


class SpanIdStamp:
    """Emitter processor: put the ids of the event's open span on it (if it has none).

    An invocation's opening event also records the provider's service name. A callable object, not
    a bound method, so that it can promise (``unchanged_for_kind``) what it passes unchanged: an
    event that carries span ids already (every event the recorder builds in a traced scope) and the
    opening event of a node, probe, agent, plan or model call (its own span does not exist yet). The
    emitter then skips it for those (see :mod:`swarm_observability.processors`).
    """

    __slots__ = ("_mapper", "_service_name")

    def __init__(self, mapper: SpanMapper, service_name: str | None) -> None:
        self._mapper = mapper
        self._service_name = service_name

    def unchanged_for_kind(self, type: str, traced: bool) -> bool:
        """``True`` for events this processor returns as they are, whatever their data."""
        return traced or (type in OPENING_TYPES and type not in _SCAN_OPENING)

    def __call__(self, event: StreamEvent) -> StreamEvent:
        if event.trace_id is not None or event.scope_id is None:
            return event
        try:
            type_ = event.type
            if type_ in _SCAN_OPENING:
                if self._service_name:
                    event = stamp_service_name(event, self._service_name)
            elif type_ in OPENING_TYPES:
                return event  # stamped before it is fed: its own scope has no span yet
            ids = self._mapper.ids_for(event.scope_id)
            return event if ids is None else copy_event(event, **ids)
        except Exception:
            logger.exception("could not stamp span ids on %s", event.type_name)
            return event


class LiveTracer:
    """Create spans from a running graph's events on the given tracer provider.

    Args:
        tracer_provider: where spans go; the global provider when omitted. Nothing global is
            replaced.
        store: the event log, used to find the root span of an invocation that ran in another
            process when a ``scan_resumed`` links to it.
        nest_in_current_span: start each scan root under the span that is current when the scan
            starts (for example a web request's span); ``False`` makes every invocation a new trace.
        remember: how many finished roots and scopes are kept for links and late children.
        span_budget: spans per run before the rest are summarised on the root span (see
            :class:`~swarm_observability.tracing.mapping.SpanMapper`); ``None``: no budget.
    """

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        *,
        store: EventStore | None = None,
        nest_in_current_span: bool = True,
        remember: int = 4096,
        span_budget: int | Literal["default"] | None = "default",
    ) -> None:
        self._store = store
        service_name = service_name_of(
            tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        )
        self.mapper = SpanMapper(
            tracer_for(tracer_provider),
            root_parent=(lambda _event: otel_context.get_current()) if nest_in_current_span else None,
            resolve_link=self._resolve_from_store,
            remember=remember,
            span_budget=span_budget,
        )
        self._open = self.mapper.open_scopes
        self._feed = self.mapper.feed
        self.stamp = SpanIdStamp(self.mapper, service_name)
        """The emitter processor :meth:`install` adds (see :class:`SpanIdStamp`)."""

    def install(self, emitter: Any) -> Callable[[], None]:
        """Subscribe to ``emitter`` and add the id-stamping processor; returns an uninstaller."""
        if self.stamp not in emitter.processors:
            emitter.processors = [*emitter.processors, self.stamp]
        unsubscribe = emitter.subscribe(self.on_event)

        def uninstall() -> None:
            unsubscribe()
            emitter.processors = [p for p in emitter.processors if p != self.stamp]

        return uninstall

    # -- seams ------------------------------------------------------------------------------------

    def on_event(self, event: StreamEvent) -> None:
        """Emitter subscriber: feed one stored event to the mapping. Never raises."""
        try:
            self._feed(event)
        except Exception:
            logger.exception(
                "tracing failed on %s; the span tree of run %r may be incomplete",
                event.type_name,
                event.run_id,
            )

    def scope_opened(self, event: StreamEvent) -> object | None:
        """Make the span of a just-opened scope current here; returns the token for :meth:`scope_closed`.

        Returns ``None`` (nothing attached) for scan roots and for events that open no scope.
        """
        try:
            scope = self._open.get(event.scope_id)
            if scope is not None and scope.opening is event:  # as mostly: the subscriber fed it
                kind: str | None = scope.kind
            else:
                kind = OPENING_TYPES.get(event.type)
                if kind is None:
                    return None
                if scope is None:  # not fed by the subscriber (an emitter without it)
                    self.mapper.feed(event)
                    scope = self._open.get(event.scope_id)
                    if scope is None:
                        return None
            if kind in _NEVER_CURRENT:
                return None
            return attach(set_span_in_context(scope.span))
        except Exception:
            logger.exception("tracing could not open the span of %s", event.type_name)
            return None

    def scope_ids(self, event: StreamEvent) -> dict[str, str] | None:
        """The ``trace_id``/``span_id`` (hex) the later events of a just-opened scope should carry.

        For a recorder that builds them into the scope's fields, so that :meth:`stamp` has nothing
        to add (no copy of the event). ``None`` when the scope has no valid span. Never raises.
        """
        try:
            scope = self._open.get(event.scope_id)
            if scope is None:
                return None
            if scope.deferred is not None:  # its ids were made with it
                return scope.deferred.ids
            return self.mapper.ids_for(event.scope_id)
        except Exception:
            logger.exception("tracing could not give the span ids of %s", event.type_name)
            return None

    def scope_closed(self, event: StreamEvent, token: object | None) -> None:
        """Restore the context :meth:`scope_opened` replaced; call in the same context. Never raises."""
        if token is None:
            return
        try:
            detach(token)  # type: ignore[arg-type]
        except Exception:
            logger.exception("tracing could not restore the context after %s", event.type_name)

    def close(self) -> int:
        """End every span still open as ``incomplete`` (observer shutdown); returns how many."""
        return self.mapper.end_open_scopes(ended_by="tracer_closed")

    # -- links across processes -------------------------------------------------------------------

    def _resolve_from_store(self, event: StreamEvent, previous: str) -> SpanContext | None:
        if self._store is None:
            return None
        try:
            return find_stamped_root(self._store, event.run_id, previous)
        except Exception:
            logger.exception("could not look up the root span of invocation %r in the event log", previous)
        return None


def trace_observer(
    observer: Any,
    tracer_provider: trace.TracerProvider | None = None,
    *,
    nest_in_current_span: bool = True,
) -> LiveTracer:
    """Wire a :class:`LiveTracer` into a ``SwarmObserver``: its emitter and its recorder's hooks.

    Sets ``observer.recorder.hooks`` and ``observer.tracer`` (public attributes; no patching).

    Idempotent: a second call returns the tracer already wired in. ``tracer_provider`` defaults to
    ``observer.tracer_provider``, then to the global provider.
    """
    existing = getattr(observer, "tracer", None)
    if isinstance(existing, LiveTracer):
        return existing
    provider = tracer_provider if tracer_provider is not None else getattr(observer, "tracer_provider", None)
    tracer = LiveTracer(provider, store=observer.store, nest_in_current_span=nest_in_current_span)
    tracer.install(observer.emitter)
    observer.recorder.hooks = tracer
    observer.tracer = tracer
    return tracer
