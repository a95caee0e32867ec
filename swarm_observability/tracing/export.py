"""``export_run``: rebuild a stored run's span tree after the fact, with the original timestamps.

Use it for a run recorded without tracing, or one whose process crashed (a scope without its closing
event is ended at the last event's time with ``swarm.outcome=incomplete``). The events go through the
same :class:`SpanMapper` as live tracing, so the tree is the one a live tracer would have produced.

Ids: given a ``SpanExporter``, the spans are built on a private provider whose ids are derived from
the events (trace id from ``invocation_id``, span id from ``scope_id``), so exporting a run twice
gives identical ids and a backend keeps one copy. Given your ``TracerProvider``, its own id
generator, processors and sampler apply. A run that was already traced live gets a second copy
with different ids; export only runs that were not traced live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from ..events import validate_run_id
from ..exceptions import EventStoreError, TracingConfigError
from ..stores.base import EventStore
from .ids import ScopeIdGenerator, find_stamped_root
from .mapping import SpanMapper, tracer_for
from .service import recorded_service_name, service_resource


@dataclass(frozen=True, slots=True)
class ExportedRun:
    """What :func:`export_run` (or :func:`export_jaeger_json`) produced."""

    run_id: str
    """The exported run."""
    spans: int
    """Number of spans built."""
    trace_ids: tuple[str, ...]
    """Hex trace id of each invocation's root span, in the order the invocations started."""
    incomplete: int
    """Spans ended as ``swarm.outcome=incomplete`` because their closing event is missing."""
    summarised: int = 0
    """Scopes past the run's span budget, summarised on their root span instead of exported."""


def export_run(
    store: EventStore,
    run_id: str,
    target: SpanExporter | trace.TracerProvider,
    *,
    service_name: str | None = None,
    span_budget: int | Literal["default"] | None = "default",
) -> ExportedRun:
    """Build the spans of a stored run and hand them to ``target``.

    Args:
        store: the event log holding the run.
        run_id: the run (scan) to export.
        target: a ``SpanExporter`` (spans are exported synchronously with deterministic ids and a
            ``service.name`` resource) or a ``TracerProvider`` (its processors export; it is
            flushed before returning).
        service_name: ``service.name`` of the private provider used with an exporter; by default
            the one recorded in the run, else ``OTEL_SERVICE_NAME``, else ``swarm-observability``
            (see :mod:`.service`). A provider target names its own service.
        span_budget: spans before the rest of the run is summarised on the root spans (see
            :class:`~swarm_observability.tracing.mapping.SpanMapper`); ``None`` exports every span.

    Raises:
        InvalidRunIdError: ``run_id`` is not a valid run id.
        EventStoreError: the store holds no events for ``run_id``.
        TracingConfigError: ``target`` is neither an exporter nor a tracer provider.
    """
    if isinstance(target, SpanExporter):
        provider, ids = private_provider(target, service_name or recorded_service_name(store, run_id))
        try:
            return replay_run(store, run_id, provider, ids, span_budget=span_budget)
        finally:
            provider.force_flush()
    if isinstance(target, trace.TracerProvider):
        result = replay_run(store, run_id, target, None, span_budget=span_budget)
        flush = getattr(target, "force_flush", None)
        if callable(flush):
            flush()
        return result
    raise TracingConfigError(
        f"export target must be a SpanExporter or a TracerProvider, not {type(target).__name__}"
    )


def private_provider(
    exporter: SpanExporter, service_name: str | None
) -> tuple[TracerProvider, ScopeIdGenerator]:
    """A throwaway provider exporting synchronously to ``exporter`` with event-derived ids."""
    ids = ScopeIdGenerator()
    provider = TracerProvider(
        resource=service_resource(service_name),
        id_generator=ids,
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, ids


def replay_run(
    store: EventStore,
    run_id: str,
    provider: trace.TracerProvider,
    ids: ScopeIdGenerator | None,
    *,
    span_budget: int | Literal["default"] | None = "default",
) -> ExportedRun:
    """Feed every stored event of ``run_id`` through a fresh :class:`SpanMapper` on ``provider``."""
    validate_run_id(run_id)
    mapper = SpanMapper(
        tracer_for(provider),
        resolve_link=lambda event, previous: find_stamped_root(store, event.run_id, previous),
        id_generator=ids,
        span_budget=span_budget,
    )
    roots: list[str] = []
    count = 0
    for event in store.iter_events(run_id):
        count += 1
        mapper.feed(event)
        if event.invocation_id and event.invocation_id not in roots:
            root = mapper.root_context(event.invocation_id)
            if root is not None:
                roots.append(event.invocation_id)
    if count == 0:
        raise EventStoreError(f"run {run_id!r} has no events in the store")
    incomplete = mapper.end_open_scopes()
    trace_ids = tuple(dict.fromkeys(f"{ctx.trace_id:032x}" for r in roots if (ctx := mapper.root_context(r))))
    return ExportedRun(
        run_id=run_id,
        spans=mapper.spans_started,
        trace_ids=trace_ids,
        incomplete=incomplete,
        summarised=mapper.spans_summarised,
    )
