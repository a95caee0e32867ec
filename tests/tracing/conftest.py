"""Fixtures for the tracing tests: an SDK provider exporting synchronously into memory."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swarm_observability.events import StreamEvent
from swarm_observability.tracing.mapping import SpanMapper, tracer_for


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Finished spans land here."""
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """A provider exporting every span synchronously to ``exporter``."""
    tp = TracerProvider(shutdown_on_exit=False)
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    yield tp
    tp.shutdown()


def map_events(
    provider: TracerProvider, exporter: InMemorySpanExporter, events: Iterable[StreamEvent]
) -> tuple[ReadableSpan, ...]:
    """Feed events through a fresh SpanMapper and return the finished spans."""
    mapper = SpanMapper(tracer_for(provider))
    for event in events:
        mapper.feed(event)
    assert mapper.open_scope_count == 0, "the scenario left spans open"
    return exporter.get_finished_spans()
