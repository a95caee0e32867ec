"""Spans that are ids while their scope runs and SDK spans once it has ended.

Why: an SDK span costs the node's thread three SDK calls (start, set the closing attributes, end),
each walking sampler, attribute cleaning, locks and span processors while LangGraph's own work has
pushed that code and data out of the CPU caches; measured on a 50-node chain, that is two to three
times what the same calls cost back to back. So the :class:`~.mapping.SpanMapper` gives a scope
whose parent span is known a :class:`DeferredSpan`: a span context with a span id made up front by
the provider's own id generator, enough for everything a running scope needs (it is the current
span in the node's body, so user and library spans nest under it; its ids are stamped on events;
children name it as parent), and a record of what happens to it. When the scope ends, the mapper
queues it, and a batch of ended scopes becomes SDK spans back to back (:meth:`DeferredSpan.build_all`:
one ``start_span`` with every attribute and the recorded start time, the recorded events and
status, ``end`` at the recorded end time), with :class:`PresetIdGenerator` handing the SDK the
span id made up front. The spans, their ids, parents, times and attributes are the ones an eager
span would have had; span processors see ``on_start`` and ``on_end`` together, after the scope ended.

A ``DeferredSpan`` records what user code does to the current span inside a node
(``set_attribute``, ``add_event``, ``set_status``, ``record_exception``, ``update_name``,
``add_link``) and replays it on the SDK span; ``end()`` from user code is ignored, as the scope's
closing event ends it. A span sampled out by the provider's sampler is still a no-op span when built.

Why the batch is built on the thread that ends it, not on a builder thread (measured in session 7,
chain50: ~35 us per span of ~850 us per node, all inside ``invoke`` because a run's root ends after
building its queued children): a builder thread takes that out of the caller's time only if the
root stops waiting for it, and then ``provider.force_flush()`` right after ``invoke`` (serverless
handlers, tests) would miss the run's spans, since a processor we could add runs after the user's
own and cannot drain us first. Waiting for it instead gains nothing where nodes keep the GIL busy,
and at most those ~35 us per node where they wait on I/O (with events 100 ms apart each span is
already built alone at the next event); the CPU spent is the same either way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.util import types

from ..events import StreamEvent
from .attributes import describe_scope

logger = logging.getLogger("swarm_observability.tracing")

MAX_PENDING = 256
"""Ended deferred spans queued before they are built."""
PENDING_NS = 100_000_000
"""Event time (ns) an ended deferred span waits at most before it is built."""


class PresetNext(threading.local):
    """Per thread: the span id a :class:`PresetIdGenerator` hands out next."""

    span_id: int | None = None
    """The span id the next ``generate_span_id`` on this thread returns (``None``: the inner one's)."""


class PresetIdGenerator(IdGenerator):
    """The provider's id generator, except that the next span id on this thread can be fixed.

    Installed on the mapper's own tracer only (``tracer.id_generator``), never on the provider.
    The preset is per thread: the tracer may be shared (a :class:`~.mapping.SpanMapper` on a
    user's tracer), and another thread's span must never take the id preset for ours.
    """

    def __init__(self, inner: IdGenerator) -> None:
        self.inner = inner
        self.next = PresetNext()
        """Set ``next.span_id`` to fix the next span id on this thread (``None``: clear); the
        attribute itself, not a method, as :meth:`DeferredSpan.build_all` sets and clears it per span."""

    def generate_span_id(self) -> int:
        next_ = self.next
        span_id = next_.span_id
        if span_id is None:
            return self.inner.generate_span_id()
        next_.span_id = None
        return span_id

    def generate_trace_id(self) -> int:
        return self.inner.generate_trace_id()

    def is_trace_id_random(self) -> bool:
        return bool(self.inner.is_trace_id_random())


def preset_ids_of(tracer: trace.Tracer) -> PresetIdGenerator | None:
    """The :class:`PresetIdGenerator` of an SDK tracer (installed on first use); ``None`` for other tracers.

    Only SDK tracers can be handed a span id, so only their scopes are deferred.
    """
    current = getattr(tracer, "id_generator", None)
    if isinstance(current, PresetIdGenerator):
        return current
    if not isinstance(current, IdGenerator):
        return None
    preset = PresetIdGenerator(current)
    tracer.id_generator = preset  # type: ignore[attr-defined]
    return preset


class Lineage(NamedTuple):
    """What every deferred child of one parent span shares: its trace, flags and state."""

    trace_id: int
    trace_flags: TraceFlags
    trace_state: TraceState
    trace_hex: str
    """``trace_id`` as 32 hex digits, as events are stamped with it."""
    flags: int | None
    """``trace_flags`` as a plain ``int`` when ``trace_state`` is empty, else ``None``."""

    def context(self, span_id: int) -> SpanContext:
        """The span context of the span ``span_id`` in this trace."""
        return SpanContext(self.trace_id, span_id, False, self.trace_flags, self.trace_state)


Remembered = tuple[int, int, int] | tuple[Lineage, int]
"""What an ended deferred span is remembered by until :func:`recall` makes its context: its trace id,
span id and :attr:`Lineage.flags`, or (with a trace state) its lineage and span id.

Ints alone where they say everything: a tuple of ints is untracked by the garbage collector at its
first young collection, so the thousands of ended spans remembered for late children never reach
the oldest generation, where each object promoted brings the next full collection nearer (~70 ms
with LangGraph and the SDK loaded)."""


def recall(remembered: Remembered) -> SpanContext:
    """The span context of an ended deferred span, from what it is :data:`Remembered` by."""
    if len(remembered) == 3:
        return SpanContext(remembered[0], remembered[1], False, TraceFlags(remembered[2]))
    return remembered[0].context(remembered[1])


class DeferredSpan(trace.Span):
    """A span known by its context while it runs; :meth:`build_all` makes the SDK span once it ended.

    Its name and opening attributes are described when it is built (in a batch, off the node's
    path), or earlier if something asks for the name.
    """

    _name: str | None = None
    _opening: dict[str, Any] | None = None
    _events: list[tuple[Any, ...]] | None = None
    _status: tuple[Status | StatusCode, str | None] | None = None
    _context: SpanContext | None = None
    _links: list[Link] | None = None
    _kind = SpanKind.INTERNAL
    """A class attribute: :class:`ClientDeferredSpan` is a model call's (``CLIENT``)."""
    """Links added by user code (a scope's own links start eagerly: only a scan has any)."""
    end_ns: int | None = None
    """Set by the mapper when the scope ended; nothing is recorded after it."""
    lineage: Lineage
    """The trace this span is in (its context is made from it when first asked for)."""
    span_id: int
    """The span id made up front, for the SDK span."""
    ids: dict[str, str]
    """The span's ``trace_id``/``span_id`` as hex, for stamping."""

    def __init__(
        self,
        opening: StreamEvent,
        kind: str,
        scope_id: str,
        lineage: Lineage,
        span_id: int,
        parent: Context,
        start_ns: int,
    ) -> None:
        """The span of scope ``scope_id`` (of ``kind``, opened by ``opening``) in ``lineage``'s trace,
        with the id ``span_id`` (from :attr:`DeferredSpans.new_span_id`).

        What :func:`~.attributes.describe_scope` needs is kept as attributes, not as a ``partial``: a
        span waits for its batch while its invocation runs, long enough for what it holds to reach
        the collector's oldest generation, and a ``partial`` would be two more objects there.
        """
        self._opening_event = opening
        self._scope_kind = kind
        self._scope_id = scope_id
        self.lineage = lineage
        self.span_id = span_id
        self.ids = {"trace_id": lineage.trace_hex, "span_id": f"{span_id:016x}"}
        self._parent = parent
        self._attributes: dict[str, Any] = {}
        self._start_ns = start_ns

    @property
    def name(self) -> str:
        """The span's name (described on first use)."""
        self._described()
        return self._name  # type: ignore[return-value]

    def _described(self) -> dict[str, Any]:
        if self._name is None:
            self._name, self._opening = describe_scope(self._opening_event, self._scope_kind, self._scope_id)
        return self._opening  # type: ignore[return-value]

    # -- the Span API, recorded -------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        context = self._context
        if context is None:  # most spans are never asked: nothing runs under them, nothing links them
            context = self._context = self.lineage.context(self.span_id)
        return context

    def is_recording(self) -> bool:
        return self.end_ns is None

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        if self.end_ns is None:
            self._attributes.update(attributes)

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if self.end_ns is None:
            self._attributes[key] = value

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self.end_ns is None:
            self._record(
                ("event", name, dict(attributes) if attributes else None, timestamp or time.time_ns())
            )

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self.end_ns is None:
            if self._links is None:
                self._links = []
            self._links.append(Link(context, attributes))

    def update_name(self, name: str) -> None:
        if self.end_ns is None:
            self._described()
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.end_ns is None:
            self._status = (status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        if self.end_ns is None:
            self._record(("exception", exception, attributes, timestamp or time.time_ns(), escaped))

    def end(self, end_time: int | None = None) -> None:
        """Ignored: the scope's closing event ends the span (the mapper sets ``end_ns``)."""

    def _record(self, entry: tuple[Any, ...]) -> None:
        if self._events is None:
            self._events = []
        self._events.append(entry)

    # -- building ---------------------------------------------------------------------------------

    @staticmethod
    def build_all(spans: Sequence[DeferredSpan], tracer: trace.Tracer, next_: PresetNext) -> None:
        """Start, fill and end the SDK span of each ended span of ``spans`` on ``tracer``, in order, its
        span id preset in ``next_`` (the ``next`` of the tracer's :class:`PresetIdGenerator`). One that
        fails is logged and missing from its trace; the others are made. A loop here, not a method
        per span: a call per span is a tenth of what building it costs us."""
        for span in spans:
            try:
                name = span._name
                if name is None:  # as it mostly is: nothing asked for the name before
                    name, attributes = describe_scope(span._opening_event, span._scope_kind, span._scope_id)
                else:
                    attributes = span._opening  # type: ignore[assignment]
                if span._attributes:
                    attributes.update(span._attributes)
                next_.span_id = span.span_id
                try:
                    made = tracer.start_span(
                        name,
                        context=span._parent,
                        kind=span._kind,
                        attributes=attributes,
                        links=span._links,
                        start_time=span._start_ns,
                    )  # record_exception and set_status_on_exception: only for a span used in a `with`
                finally:
                    next_.span_id = None
                if span._events is not None:
                    for entry in span._events:
                        if entry[0] == "event":
                            made.add_event(entry[1], entry[2], timestamp=entry[3])
                        else:
                            made.record_exception(entry[1], entry[2], timestamp=entry[3], escaped=entry[4])
                if span._status is not None:
                    made.set_status(*span._status)
                made.end(end_time=span.end_ns)
            except Exception:
                logger.exception("the span %r could not be made; its trace misses it", span.name)


class ClientDeferredSpan(DeferredSpan):
    """A :class:`DeferredSpan` of kind ``CLIENT``: a model call's."""

    _kind = SpanKind.CLIENT


class DeferredSpans:
    """The deferred spans of one mapper: made under a known parent, queued once ended, built in batches.

    :attr:`new_span_id` is ``None`` for tracers that cannot be handed a span id (not the SDK's):
    nothing is deferred then. Not thread-safe: the mapper calls it under its lock.
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self._preset = preset_ids_of(tracer)
        self.new_span_id: Callable[[], int] | None = (
            self._preset.inner.generate_span_id if self._preset else None
        )
        """Makes the span id of a new :class:`DeferredSpan` (the provider's generator); ``None`` when
        nothing is deferred."""
        self.queue: list[DeferredSpan] = []
        """Ended spans waiting to be built, in the order they ended (one list for the object's life)."""
        self.built = 0
        """Spans taken from :attr:`queue` to be built (made SDK spans, or failed to)."""

    def lineage(self, parent_span: trace.Span) -> Lineage | None:
        """What the deferred children of ``parent_span`` share; ``None``: it is not a valid span (start
        an SDK span now: a new trace needs the sampler's decision). Worked out once per parent."""
        if isinstance(parent_span, DeferredSpan):  # its children share its own (its context may not be made)
            return parent_span.lineage
        parent_context = parent_span.get_span_context()
        if not parent_context.is_valid:
            return None
        trace_id = parent_context.trace_id
        flags, state = parent_context.trace_flags, parent_context.trace_state
        return Lineage(trace_id, flags, state, f"{trace_id:032x}", None if state else int(flags))

    def build(self) -> None:
        """Make SDK spans of every queued span, in the order they ended."""
        pending = self.queue[:]
        self.queue.clear()
        self.built += len(pending)
        DeferredSpan.build_all(pending, self._tracer, self._preset.next)  # type: ignore[union-attr]
