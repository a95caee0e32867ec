"""Work per node, counted: Python bytecodes the graph call executes, plain and instrumented, by owner.

Why: on this VM a timing varies by 2x between runs, but the number of bytecodes a run executes does not
(it is the same on a loaded machine and a quiet one, to a fraction of a percent). So this section says
*where* the added cost per node is, and whether a change removed work, independently of the noise; the
``overhead`` section says what that work costs in time. The two agree in direction: a plain LangGraph
no-op node is ~14k bytecodes and ~300-400 us on the reference VM.

Method: ``sys.settrace`` with opcode events on, in every thread (``threading.settrace`` before the
observer, its writer threads and the span processor's thread exist), counting each executed bytecode
by the file of its code object. Warm-up runs first, then the counts of ``runs`` runs are divided by
their node executions. Owners: ``ours`` (``swarm_observability``), ``opentelemetry`` (API and SDK:
attribute cleaning, sampler, span objects, processors), ``pydantic``, and ``langgraph``/``langchain``
and ``other`` (stdlib and the rest), whose added part is what LangGraph and the standard library do
more because of us (callback managers, thread hand-offs, queues). Bytecodes inside C code (a dict
copy, ``json`` encoding, SQLite) count nothing, so the writer thread's SQLite work is under-counted.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ._graphs import GraphRunner, compile_graph, graph_specs
from .overhead import make_instrumented

CONFIGS = ("memory", "memory+otel", "sqlite", "sqlite+otel", "jsonl")
MODES = ("invoke", "astream")
OWNERS = ("ours", "opentelemetry", "pydantic", "langgraph", "langchain", "other")
_MARKERS = (
    ("/swarm_observability/", "ours"),
    ("/opentelemetry/", "opentelemetry"),
    ("/pydantic", "pydantic"),
    ("/langgraph/", "langgraph"),
    ("/langchain_core/", "langchain"),
)


def _owner(filename: str) -> str:
    for marker, owner in _MARKERS:
        if marker in filename:
            return owner
    return "other"


class _Counter:
    """Counts executed bytecodes per code object while installed (all threads started meanwhile too)."""

    def __init__(self) -> None:
        self.by_code: collections.Counter[Any] = collections.Counter()

    def _trace(self, frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            self.by_code[frame.f_code] += 1
        return self._trace

    def __enter__(self) -> _Counter:
        threading.settrace(self._trace)
        sys.settrace(self._trace)
        return self

    def __exit__(self, *exc: object) -> None:
        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type]

    def snapshot(self) -> collections.Counter[Any]:
        return collections.Counter(self.by_code)


@contextlib.contextmanager
def chain_runs(config: str | None, mode: str, spec: Any, warmup: int) -> Iterator[Callable[[int], None]]:
    """The chain graph instrumented with ``config`` (``None``: plain), after ``warmup`` runs; yields
    ``run(n)``, which runs it ``n`` times, each flushed, its checkpoints and spans cleared."""
    loop = asyncio.new_event_loop() if mode == "astream" else None
    with tempfile.TemporaryDirectory(prefix="swarm-obs-bench-") as tmp:
        inst = make_instrumented(config or "memory", Path(tmp))
        try:
            graph = compile_graph(spec)
            runner = GraphRunner(graph if config is None else inst.observer.instrument(graph), mode, loop)
            for _ in range(warmup):
                runner.run()
                inst.flush()
                runner.cleanup()

            def run(n: int) -> None:
                for _ in range(n):
                    runner.run()
                    inst.flush()
                    runner.cleanup()
                    if inst.clear_spans is not None:
                        inst.clear_spans()

            yield run
        finally:
            inst.close()
            if loop is not None:
                loop.close()


def _count(config: str | None, mode: str, spec: Any, runs: int, warmup: int) -> dict[str, Any]:
    """Bytecodes per node by owner for one side (``config=None``: the plain graph)."""
    with _Counter() as counter, chain_runs(config, mode, spec, warmup) as run:
        before = counter.snapshot()
        run(runs)
        after = counter.snapshot()
    nodes = runs * spec.nodes
    owners = dict.fromkeys(OWNERS, 0.0)
    modules: collections.Counter[str] = collections.Counter()
    for code, count in (after - before).items():
        owner = _owner(code.co_filename)
        owners[owner] += count / nodes
        if owner == "ours":
            modules[code.co_filename.rpartition("/swarm_observability/")[2]] += count / nodes
    return {
        "total": round(sum(owners.values())),
        "owners": {k: round(v) for k, v in owners.items()},
        "ours_by_module": {k: round(v) for k, v in modules.most_common(8)},
    }


def run(smoke: bool = False) -> dict[str, Any]:
    """Count plain vs instrumented bytecodes per node on the chain graph, every configuration and mode."""
    spec = graph_specs(smoke)[0]
    runs, warmup = (1, 1) if smoke else (3, 2)
    cells = []
    for mode in MODES:
        plain = _count(None, mode, spec, runs, warmup)
        for config in CONFIGS if not smoke else ("memory+otel",):
            inst = _count(config, mode, spec, runs, warmup)
            added = {k: inst["owners"][k] - plain["owners"][k] for k in OWNERS}
            cells.append(
                {
                    "config": config,
                    "graph": spec.name,
                    "mode": mode,
                    "plain": plain["total"],
                    "instrumented": inst["total"],
                    "added": inst["total"] - plain["total"],
                    "added_pct": round(100 * (inst["total"] - plain["total"]) / plain["total"], 1),
                    "added_by_owner": added,
                    "ours_by_module": inst["ours_by_module"],
                }
            )
    return {
        "method": "Python bytecodes executed per node execution (sys.settrace opcode events, all threads)",
        "runs": runs,
        "warmup_runs": warmup,
        "cells": cells,
    }


def render(sec: dict[str, Any]) -> list[str]:
    """The section as markdown lines (after the meta line)."""
    lines = [
        f"{sec['method']}; {sec['runs']} runs after {sec['warmup_runs']} warm-up runs; deterministic, so "
        "comparable across runs and machines' load. Bytecodes in C code (dict copies, JSON, SQLite) count "
        "nothing.",
        "",
        "| config | graph | mode | plain | instrumented | added | of which ours | OpenTelemetry "
        "| pydantic | LangGraph + LangChain | other | our top modules |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in sec["cells"]:
        a = c["added_by_owner"]
        top = ", ".join(f"{m} {n:,}" for m, n in list(c["ours_by_module"].items())[:4])
        lines.append(
            f"| {c['config']} | {c['graph']} | {c['mode']} | {c['plain']:,} | {c['instrumented']:,} "
            f"| {c['added']:,} (+{c['added_pct']}%) | {a['ours']:,} | {a['opentelemetry']:,} "
            f"| {a['pydantic']:,} | {a['langgraph'] + a['langchain']:,} | {a['other']:,} | {top} |"
        )
    return lines
