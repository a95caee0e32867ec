"""LiveTracer: the live path builds the same tree as export_run, and node spans are current in node bodies."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swarm_observability.emitter import EventEmitter
from swarm_observability.events import EventType, StreamEvent, copy_event
from swarm_observability.stores import InMemoryEventStore
from swarm_observability.tracing import LiveTracer, export_run
from swarm_observability.tracing.deferred import DeferredSpan
from swarm_observability.tracing.mapping import CLOSING_TYPES, OPENING_TYPES

from .scenario import Scenario, tree


def _rich_scenario() -> Scenario:
    """Parallel probes, subgraph nesting, an error, an interrupt then a resume, a cancel with open scopes."""
    s = Scenario()
    first = s.start()
    outer = s.open("node", "research", step=1, task_id="t-r")
    inner = s.open("node", "plan_step", outer, step=1, namespace=("research:t-r",))
    agent = s.open("agent", "researcher", inner, data={"provider": "openai"})
    plan = s.open("plan", "researcher", agent)
    s.close(plan, steps=2)
    s.close(agent)
    s.close(inner)
    s.close(outer)
    scanner = s.open("node", "scanner", step=2)
    p1 = s.open("probe", "port_scan", scanner, data={"host": "10.0.0.1"})
    p2 = s.open("probe", "dns", scanner)
    s.point(EventType.PROBE_RESULT, p2, data={"a": "1.2.3.4"})
    s.close(p2, "error", error_type="TimeoutError", error_message="dns slow")
    s.point(EventType.NODE_PROGRESS, scanner, progress=0.5, message="half")
    s.close(p1)
    s.close(scanner)
    ask = s.open("node", "approve", step=3)
    s.close(ask, "interrupted")
    s.end(EventType.SCAN_PAUSED, "interrupted", reason="interrupt", interrupts=[{"value": "ok?"}])
    second = s.start(resumed_from=first)
    ask2 = s.open("node", "approve", step=3)
    s.point(EventType.LOG, ask2, message="approved", data={"by": "alice"})
    s.close(ask2)
    slow = s.open("node", "slow", step=4)
    s.point(EventType.HEARTBEAT, slow, data={"elapsed_s": 1})
    s.end(EventType.SCAN_CANCELLED, "cancelled", reason="consumer closed the stream")
    s.close(slow)
    assert second
    return s


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _live() -> tuple[InMemorySpanExporter, EventEmitter, LiveTracer]:
    """A provider with an in-memory exporter, and a live tracer installed on an in-memory emitter."""
    provider, exporter = _provider()
    emitter = EventEmitter(InMemoryEventStore())
    tracer = LiveTracer(provider)
    tracer.install(emitter)
    return exporter, emitter, tracer


def _drive_live(
    tracer: LiveTracer,
    emitter: EventEmitter,
    events: list[StreamEvent],
    before_close: Callable[[StreamEvent], object] | None = None,
) -> None:
    """Emit events the way the instrumentation does: hooks after opening and before closing events.

    ``before_close(event)`` runs while a closing event's scope is still current (as node code would).
    """
    tokens: dict[str, object] = {}
    for event in events:
        if event.type_name in CLOSING_TYPES:
            if before_close is not None:
                before_close(event)
            tracer.scope_closed(event, tokens.pop(event.scope_id, None))
        emitted = emitter.emit_event(event)
        if event.type_name in OPENING_TYPES and emitted is not None:
            tokens[event.scope_id] = tracer.scope_opened(emitted)


def test_live_tracing_and_export_run_build_the_same_tree():
    """Live spans and the spans export_run rebuilds from the stored log are equal as data, times included."""
    scenario = _rich_scenario()
    live_provider, live_exporter = _provider()
    store = InMemoryEventStore()
    emitter = EventEmitter(store)
    tracer = LiveTracer(live_provider, store=store)
    tracer.install(emitter)

    _drive_live(tracer, emitter, scenario.events)

    assert tracer.mapper.open_scope_count == 0
    replay_exporter = InMemorySpanExporter()
    result = export_run(store, scenario.run_id, replay_exporter)
    live, replayed = tree(live_exporter.get_finished_spans()), tree(replay_exporter.get_finished_spans())
    assert live == replayed
    assert len(live) == 12 and result.spans == 12 and len(result.trace_ids) == 2
    assert otel_context.get_current() == otel_context.Context()


def test_events_inside_a_traced_scope_carry_its_span_ids():
    """The stamp processor writes the open span's trace and span ids on the events of that scope."""
    provider, exporter = _provider()
    store = InMemoryEventStore()
    emitter = EventEmitter(store)
    tracer = LiveTracer(provider)
    tracer.install(emitter)
    s = Scenario()
    s.start()
    node = s.open("node", "scanner")
    s.point(EventType.NODE_PROGRESS, node, progress=0.3)
    s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")

    _drive_live(tracer, emitter, s.events)

    spans = {sp.attributes["swarm.scope_id"]: sp.context for sp in exporter.get_finished_spans()}
    stored = store.load(s.run_id)
    for event in stored:
        ctx = spans[event.scope_id]
        if event.type_name in OPENING_TYPES:  # emitted before its span exists
            assert (event.trace_id, event.span_id) == (None, None)
        else:
            assert (event.trace_id, event.span_id) == (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}")
    assert sum(e.trace_id is not None for e in stored) == 3


def test_scope_ids_are_the_ids_later_events_of_the_scope_are_stamped_with():
    """scope_ids(opening event) gives a recorder the ids to build into the scope's events; None outside."""
    exporter, emitter, tracer = _live()
    s = Scenario()
    s.start()
    node = s.open("node", "scanner")
    s.point(EventType.NODE_PROGRESS, node, progress=0.3)
    s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")
    emitter.emit_event(s.events[0])
    opened = emitter.emit_event(s.events[1])
    assert opened is not None
    ids = tracer.scope_ids(opened)
    progress = emitter.emit_event(s.events[2])
    assert progress is not None and ids == {"trace_id": progress.trace_id, "span_id": progress.span_id}
    assert tracer.scope_ids(opened.model_copy(update={"scope_id": "unknown"})) is None
    for event in s.events[3:]:
        emitter.emit_event(event)
    assert {sp.name for sp in exporter.get_finished_spans()} == {"node scanner", "invoke_workflow swarm"}


def test_a_resume_in_another_process_links_to_the_root_found_in_the_event_log():
    """A fresh LiveTracer (a new process) links scan_resumed to the root span ids stamped in the store."""
    store = InMemoryEventStore()
    first_provider, first_exporter = _provider()
    emitter = EventEmitter(store)
    uninstall = LiveTracer(first_provider).install(emitter)
    s = Scenario()
    first = s.start()
    s.end(EventType.SCAN_PAUSED, "paused", reason="drain")
    for event in s.events:
        emitter.emit_event(event)
    uninstall()

    second_provider, second_exporter = _provider()
    emitter2 = EventEmitter(store)
    LiveTracer(second_provider, store=store).install(emitter2)
    s.start(resumed_from=first)
    s.end(EventType.SCAN_COMPLETE, "ok")
    for event in s.events[2:]:
        emitter2.emit_event(event)

    (old_root,) = first_exporter.get_finished_spans()
    (new_root,) = second_exporter.get_finished_spans()
    assert [link.context.span_id for link in new_root.links] == [old_root.context.span_id]
    assert new_root.links[0].context.trace_id == old_root.context.trace_id
    assert new_root.context.trace_id != old_root.context.trace_id


@pytest.mark.timeout(30)
@pytest.mark.parametrize("mode", ["thread", "task"])
async def test_spans_made_inside_a_node_body_nest_under_the_node_span(mode):
    """User spans in sync (thread) and async (task) node bodies nest under their node; context is restored."""
    provider, exporter = _provider()
    emitter = EventEmitter(InMemoryEventStore())
    tracer = LiveTracer(provider)
    tracer.install(emitter)
    user_tracer = provider.get_tracer("user-code")
    s = Scenario()
    inv = s.start()
    emitter.emit_event(s.events[0])
    tracer.scope_opened(s.events[0])
    before = otel_context.get_current()

    def body(name: str) -> None:
        scope = s.open("node", name)
        opened = emitter.emit_event(s.events[-1])
        token = tracer.scope_opened(opened)
        with user_tracer.start_as_current_span(f"http {name}"):
            pass
        closing = s.close(scope)
        tracer.scope_closed(closing, token)
        emitter.emit_event(closing)

    if mode == "thread":
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(contextvars.copy_context().run, body, n) for n in ("a", "b")]
            for future in futures:
                future.result()
    else:

        async def abody(name: str) -> None:
            await asyncio.sleep(0)
            body(name)

        await asyncio.gather(asyncio.create_task(abody("a")), asyncio.create_task(abody("b")))
    end = s.end(EventType.SCAN_COMPLETE, "ok")
    tracer.scope_closed(end, None)
    emitter.emit_event(end)

    assert otel_context.get_current() == before
    spans = exporter.get_finished_spans()
    by_name = {sp.name: sp for sp in spans}
    for name in ("a", "b"):
        node, user = by_name[f"node {name}"], by_name[f"http {name}"]
        assert user.parent.span_id == node.context.span_id
        assert node.parent.span_id == by_name["invoke_workflow swarm"].context.span_id
    assert by_name["invoke_workflow swarm"].attributes["swarm.scope_id"] == inv


def test_the_scan_root_nests_under_the_callers_span_only_when_asked():
    """A scan started in a caller's span is its child by default; nest_in_current_span=False: a new trace."""
    for nest in (True, False):
        provider, exporter = _provider()
        emitter = EventEmitter(InMemoryEventStore())
        LiveTracer(provider, nest_in_current_span=nest).install(emitter)
        s = Scenario()
        s.start()
        s.end(EventType.SCAN_COMPLETE, "ok")
        with provider.get_tracer("app").start_as_current_span("request") as request:
            for event in s.events:
                emitter.emit_event(event)
        root = next(sp for sp in exporter.get_finished_spans() if sp.name == "invoke_workflow swarm")
        parent_id = root.parent.span_id if root.parent else None
        assert parent_id == (request.get_span_context().span_id if nest else None)


def test_a_failing_span_processor_never_breaks_emitting(caplog):
    """A span processor that raises is logged; the events are still stored and later scopes still traced."""

    class Exploding(SimpleSpanProcessor):
        def on_start(self, span, parent_context=None):
            if span.name.startswith("node"):
                raise RuntimeError("processor bug")

    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(Exploding(exporter))
    store = InMemoryEventStore()
    emitter = EventEmitter(store)
    tracer = LiveTracer(provider)
    tracer.install(emitter)
    s = Scenario()
    s.start()
    s.close(s.open("node", "scanner"))
    s.end(EventType.SCAN_COMPLETE, "ok")

    with caplog.at_level(logging.ERROR, logger="swarm_observability"):
        _drive_live(tracer, emitter, s.events)

    assert len(store.load(s.run_id)) == len(s.events)
    assert [sp.name for sp in exporter.get_finished_spans()] == ["invoke_workflow swarm"]
    assert "processor bug" in caplog.text
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_what_node_code_does_to_the_current_span_lands_on_the_node_span():
    """Attributes, events, a status, an exception and a link set on the current span land on the node span."""
    exporter, emitter, tracer = _live()
    s = Scenario()
    s.start()
    node = s.open("node", "fetch")
    s.close(node, "error", error_type="ValueError", error_message="bad page")
    s.end(EventType.SCAN_ERROR, "error", error_type="ValueError", error_message="bad page")
    linked = trace.SpanContext(0x1234, 0x5678, is_remote=True)

    def node_code(event: StreamEvent) -> None:
        if event.scope_id == node:
            current = trace.get_current_span()
            current.set_attribute("app.page", 3)
            current.add_event("cache miss", {"app.key": "k"})
            current.add_link(linked)
            current.record_exception(KeyError("k"))
            current.end()  # ignored: the node's closing event ends it

    _drive_live(tracer, emitter, s.events, before_close=node_code)

    span = next(sp for sp in exporter.get_finished_spans() if sp.name == "node fetch")
    assert span.attributes["app.page"] == 3 and span.attributes["swarm.outcome"] == "error"
    assert [e.name for e in span.events] == ["cache miss", "exception", "exception"]
    assert span.events[1].attributes["exception.type"] == "KeyError"
    assert span.events[2].attributes["exception.type"] == "ValueError"
    assert [link.context.span_id for link in span.links] == [0x5678]
    assert span.status.status_code == trace.StatusCode.ERROR and span.end_time == _ns(s.events[2])


def test_an_ended_node_span_is_exported_within_100_ms_of_event_time_while_its_invocation_runs():
    """Ended scopes are batched into SDK spans, but none waits more than 100 ms of event time."""
    exporter, emitter, tracer = _live()
    s = Scenario()
    s.start()
    s.close(s.open("node", "first"))
    _drive_live(tracer, emitter, s.events)
    assert exporter.get_finished_spans() == ()  # queued, the invocation goes on
    start = len(s.events)
    s.now += timedelta(milliseconds=200)
    s.point(EventType.LOG, s.invocation, message="still running")
    _drive_live(tracer, emitter, s.events[start:])
    assert [sp.name for sp in exporter.get_finished_spans()] == ["node first"]
    assert tracer.mapper.open_scope_count == 1


def _ns(event: StreamEvent) -> int:
    return (event.timestamp - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def test_a_tracer_that_cannot_be_handed_span_ids_gets_every_span_started_at_once():
    """With a non-SDK tracer (no id generator) scopes are not deferred; nothing fails, nothing stays open."""
    emitter = EventEmitter(InMemoryEventStore())
    tracer = LiveTracer(trace.NoOpTracerProvider())
    tracer.install(emitter)
    s = Scenario()
    s.start()
    s.close(s.open("node", "scanner"))
    s.end(EventType.SCAN_COMPLETE, "ok")
    kinds: list[type] = []
    _drive_live(tracer, emitter, s.events, lambda e: kinds.append(type(tracer.mapper.span_for(e.scope_id))))
    assert len(kinds) == 2 and DeferredSpan not in kinds
    assert tracer.mapper.spans_started == 2 and tracer.mapper.open_scope_count == 0
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_a_scope_ending_after_its_invocation_is_exported_at_once():
    """A late scope (its node and invocation already ended) is not left queued: no root end would build it."""
    exporter, emitter, tracer = _live()
    s = Scenario()
    s.start()
    node = s.open("node", "scanner")
    s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")
    s.close(s.open("probe", "late_thread", node))
    _drive_live(tracer, emitter, s.events)
    spans = {sp.name: sp for sp in exporter.get_finished_spans()}
    assert set(spans) == {"invoke_workflow swarm", "node scanner", "execute_tool late_thread"}
    assert spans["execute_tool late_thread"].parent.span_id == spans["node scanner"].context.span_id


def test_the_stamp_processor_passes_unchanged_every_event_it_promises_to():
    """stamp.unchanged_for_kind(type, traced) is True only where stamp returns the very event it got."""
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}), shutdown_on_exit=False)
    emitter = EventEmitter(InMemoryEventStore())
    tracer = LiveTracer(provider)
    tracer.install(emitter)
    stamp = tracer.stamp
    s = Scenario()
    s.start()
    node = s.open("node", "fetch")
    s.point(EventType.NODE_PROGRESS, node, message="half way")
    probe = s.open("probe", "scan", node)
    s.close(probe)
    s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")
    changed = []

    def check(event: StreamEvent) -> None:
        for variant in (event, copy_event(event, trace_id="1" * 32, span_id="2" * 16)):  # as recorded
            if stamp.unchanged_for_kind(variant.type, variant.trace_id is not None):
                assert stamp(variant) is variant, variant.type_name
            elif stamp(variant) is not variant:
                changed.append(variant.type_name)

    tokens: dict[str, object] = {}
    for event in s.events:  # as _drive_live, checking each event just before the emitter stamps it
        if event.type_name in CLOSING_TYPES:
            tracer.scope_closed(event, tokens.pop(event.scope_id, None))
        check(event)
        emitted = emitter.emit_event(event)
        if event.type_name in OPENING_TYPES and emitted is not None:
            tokens[event.scope_id] = tracer.scope_opened(emitted)
    assert tracer.mapper.open_scope_count == 0 and otel_context.get_current() == otel_context.Context()
    # not vacuous: what it does not promise, it does change
    assert changed == ["scan_started", "node_progress", "probe_complete", "node_exit", "scan_complete"]
