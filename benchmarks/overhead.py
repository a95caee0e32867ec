"""Per-node overhead of swarm-observability against the same graph uninstrumented.

Method (the same as the peer measurements in ``/work/shared/research/peers.md``): for every cell
(configuration x graph x ``invoke``/``astream``) one process runs paired A/B runs in ABBA order;
A is a separately built, identical, uninstrumented graph, B the instrumented one. Reported per node:
the median of the per-pair differences (added us) and ratios, with p25-p75 and min-max.

Two timings are kept per run: the graph call alone (``added_us``), and the call plus the final flush
(``added_us_flushed``: ``emitter.flush()``, which waits until the background writer has committed
every event of the run, and ``TracerProvider.force_flush()``, which exports the queued spans). For the
in-memory store without tracing the two are the same; for SQLite and JSONL the flushed figure is the
honest one for "the run's events are durable when the call returns".

Configurations:

* ``memory``: events to the in-memory store (synchronous writes), default processors.
* ``memory+otel``: the same plus OpenTelemetry spans through a ``BatchSpanProcessor`` into an
  ``InMemorySpanExporter``.
* ``sqlite``: the SQLite store at its default durability, written by the emitter's background writer.
* ``sqlite+otel``: the production set-up, SQLite plus spans.
* ``jsonl``: the JSONL store, background writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import pstats
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._graphs import STREAM_MODES, GraphRunner, GraphSpec, compile_graph, graph_specs
from ._stats import Side, paired

CONFIG_NAMES = ("memory", "memory+otel", "sqlite", "sqlite+otel", "jsonl")
MODES = ("invoke", "astream")


@dataclass(slots=True)
class Instrumented:
    """A ready observer plus how to flush it, count what it produced, and release it."""

    observer: Any
    flush: Callable[[], None]
    close: Callable[[], None]
    span_count: Callable[[], int] | None = None
    clear_spans: Callable[[], None] | None = None
    notes: list[str] = field(default_factory=list)


def _tracing(with_otel: bool) -> tuple[Any, Any]:
    if not with_otel:
        return None, None
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, exporter


def _store(kind: str, folder: Path) -> Any:
    if kind == "memory":
        from swarm_observability.stores.memory import InMemoryEventStore

        return InMemoryEventStore()
    if kind == "sqlite":
        from swarm_observability.stores.sqlite import SQLiteEventStore

        return SQLiteEventStore(folder / "events.db")
    if kind == "jsonl":
        from swarm_observability.stores.jsonl import JSONLEventStore

        return JSONLEventStore(folder / "jsonl")
    raise ValueError(f"unknown store kind {kind!r}")


def make_instrumented(config: str, folder: Path, **observer_kwargs: Any) -> Instrumented:
    """Build the observer of configuration ``config`` (one of :data:`CONFIG_NAMES`) in ``folder``.

    ``observer_kwargs`` go to ``SwarmObserver`` (the latency benchmark asks for ``custom_stream=True``).
    """
    from swarm_observability.instrumentation.observer import SwarmObserver

    kind, _, extra = config.partition("+")
    provider, exporter = _tracing(extra == "otel")
    store = _store(kind, folder)
    kwargs: dict[str, Any] = {"store": store, **observer_kwargs}
    if provider is not None:
        kwargs["tracer_provider"] = provider
    observer = SwarmObserver(**kwargs)

    def flush() -> None:
        observer.emitter.flush()
        if provider is not None:
            provider.force_flush()

    def close() -> None:
        closer = getattr(observer, "close", None)
        if callable(closer):
            closer()
        observer.emitter.close()
        store.close()
        if provider is not None:
            provider.shutdown()

    inst = Instrumented(observer, flush, close)
    if exporter is not None:
        inst.span_count = lambda: len(exporter.get_finished_spans())
        inst.clear_spans = exporter.clear
    inst.notes.append(f"emitter write mode: {observer.emitter.write}")
    return inst


def _cell(config: str, spec: GraphSpec, mode: str, pairs: int, warmup: int) -> dict[str, Any]:
    loop = asyncio.new_event_loop() if mode == "astream" else None
    with tempfile.TemporaryDirectory(prefix="swarm-obs-bench-") as tmp:
        inst = make_instrumented(config, Path(tmp))
        try:
            base = GraphRunner(compile_graph(spec), mode, loop, spec.input)
            observed = GraphRunner(inst.observer.instrument(compile_graph(spec)), mode, loop, spec.input)
            produced: dict[str, int] = {}

            def after_b() -> None:
                produced["events"] = inst.observer.emitter.store.last_sequence(observed.last_thread)
                if inst.span_count is not None and inst.clear_spans is not None:
                    produced["spans"] = inst.span_count()
                    inst.clear_spans()
                observed.cleanup()

            result = paired(
                Side(base.run, flush=None, after=base.cleanup),
                Side(observed.run, flush=inst.flush, after=after_b),
                pairs=pairs,
                warmup=warmup,
            )
        finally:
            inst.close()
            if loop is not None:
                loop.close()
    out: dict[str, Any] = {"config": config, "graph": spec.name, "mode": mode, "nodes": spec.nodes}
    out.update(result.summary(spec.nodes))
    out["events_per_run"] = produced.get("events", 0)
    if "spans" in produced:
        out["spans_per_run"] = produced["spans"]
    out["notes"] = inst.notes
    return out


def _per_call_us(fn: Callable[[], Any], calls: int, repeats: int = 5) -> float:
    for _ in range(min(calls, 500)):
        fn()
    best = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best.append((time.perf_counter() - t0) / calls * 1e6)
    return round(min(best), 2)


def components(smoke: bool = False) -> dict[str, float]:
    """What the per-node work costs in isolation (one thread, tight loop, best of 5), in us per call.

    A node execution costs two events (``node_enter``/``node_exit``) and, with tracing, one span; so
    these figures are the floor under the per-node overhead measured on the graphs, and show how much
    of that is the work itself rather than thread hand-offs or contention.
    """
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from swarm_observability.emitter import EventEmitter
    from swarm_observability.events import EventType, make_event
    from swarm_observability.stores.memory import InMemoryEventStore

    calls = 200 if smoke else 20_000
    fields: dict[str, Any] = {
        "thread_id": "thread",
        "node": "n3",
        "step": 3,
        "task_id": uuid.uuid4().hex,
        "checkpoint_id": "1f0" + uuid.uuid4().hex,
        "invocation_id": uuid.uuid4().hex,
        "scope_id": uuid.uuid4().hex,
        "parent_scope_id": uuid.uuid4().hex,
        "data": {"outcome": "ok", "duration_ms": 0.12},
    }
    bare = EventEmitter(InMemoryEventStore(), processors=[])
    default = EventEmitter(InMemoryEventStore())
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("benchmarks")
    attributes = {"a": 1, "b": "x", "c": 2.0, "d": "y", "e": "z", "f": 1, "g": 2}

    def span() -> None:
        tracer.start_span("node", attributes=attributes).end()

    try:
        return {
            "make_event": _per_call_us(lambda: make_event(EventType.NODE_EXIT, "run", **fields), calls),
            "emit_no_processors_memory": _per_call_us(
                lambda: bare.emit(EventType.NODE_EXIT, "run", **fields), calls
            ),
            "emit_default_processors_memory": _per_call_us(
                lambda: default.emit(EventType.NODE_EXIT, "run", **fields), calls
            ),
            "otel_span_start_end_7_attributes": _per_call_us(span, calls),
        }
    finally:
        bare.close()
        default.close()
        provider.shutdown()


def cell_selected(patterns: list[str] | None, config: str, graph: str, mode: str) -> bool:
    """Whether a cell is among ``patterns`` (``CONFIG[:GRAPH[:MODE]]``, ``*`` for any part; none: all)."""
    if not patterns:
        return True
    cell = (config, graph, mode)
    return any(
        all(want in ("*", have) for want, have in zip(pattern.split(":"), cell, strict=False))
        for pattern in patterns
    )


def run(
    smoke: bool = False, configs: tuple[str, ...] = CONFIG_NAMES, cells_wanted: list[str] | None = None
) -> dict[str, Any]:
    """Measure every configuration on both graphs with ``invoke`` and ``astream``.

    ``cells_wanted``: only the cells matching one of these ``CONFIG[:GRAPH[:MODE]]`` patterns.
    """
    pairs, warmup = (2, 1) if smoke else (40, 3)
    cells: list[dict[str, Any]] = []
    unavailable: dict[str, str] = {}
    if cells_wanted:
        configs = tuple(c for c in configs if any(p.split(":")[0] in ("*", c) for p in cells_wanted))
    for config in configs:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                make_instrumented(config, Path(tmp)).close()
        except ImportError as exc:
            unavailable[config] = f"{type(exc).__name__}: {exc}"
            continue
        for spec in graph_specs(smoke):
            for mode in MODES:
                if cell_selected(cells_wanted, config, spec.name, mode):
                    cells.append(_cell(config, spec, mode, pairs, warmup))
    return {
        "method": "paired A/B in one process, ABBA order, median of per-pair differences and ratios",
        "baseline": "a separately built identical graph, uninstrumented, same InMemorySaver set-up",
        "astream_stream_mode": STREAM_MODES,
        "timing": "added_us = the graph call only; added_us_flushed = call + emitter.flush() + span flush",
        "pairs": pairs,
        "warmup_pairs": warmup,
        "cells": cells,
        "unavailable": unavailable,
        "components_us": components(smoke),
    }


def profile(config: str, graph: str, mode: str, runs: int = 30, top: int = 30) -> str:
    """cProfile ``runs`` instrumented runs of one cell; return the top entries by own time."""
    specs = {s.name: s for s in graph_specs(False) + graph_specs(True)}
    loop = asyncio.new_event_loop() if mode == "astream" else None
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory() as tmp:
        inst = make_instrumented(config, Path(tmp))
        try:
            runner = GraphRunner(inst.observer.instrument(compile_graph(specs[graph])), mode, loop)
            for _ in range(3):
                runner.run()
            profiler.enable()
            for _ in range(runs):
                runner.run()
                inst.flush()
            profiler.disable()
        finally:
            inst.close()
            if loop is not None:
                with contextlib.suppress(Exception):
                    loop.close()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()
