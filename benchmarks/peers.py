"""The peer instrumentations on the same graphs, measured the same paired way as ours.

Peers (the ``peers`` extra): Arize OpenInference (``openinference-instrumentation-langchain``) and
Traceloop OpenLLMetry (``opentelemetry-instrumentation-langchain``). Both patch LangChain/LangGraph
classes globally, so A and B use *the same* compiled graph and the peer is toggled in-process between
runs. Toggling uses the peer's own patches: ``instrument()`` runs once, and every class and module
attribute under ``langchain_core``/``langgraph``/``langchain`` that it replaced is recorded, then
swapped back and forth (Traceloop's ``uninstrument()`` is a silent no-op in 0.62.x, see peers.md,
so it cannot be used). Spans go through a ``BatchSpanProcessor`` into an ``InMemorySpanExporter``.
Every baseline run is checked to produce no span, so a toggle that failed to switch a peer off
would show up as ``baseline_spans_per_run > 0``.

Besides the node graphs, every peer and ours run the agent graphs of :mod:`benchmarks._agents`
(``agent_cells``): added time per model call (``llm20``), per tool call (``tool20``) and per call of a
small ReAct loop with a ``ToolNode`` (``react``), against the same graph uninstrumented.

They must not be installed into the project's venv (they could move shared versions); run this
module from a separate venv, e.g. one made by ``python -m benchmarks.run --setup-peers /tmp/peers-venv``,
where ``swarm-observability`` itself is installed too, so ours is measured again in the same process
(``ours_same_process``) for a like-for-like comparison.
"""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._agents import agent_specs
from ._graphs import STREAM_MODES, GraphRunner, compile_graph, graph_specs
from ._stats import Side, paired
from .overhead import MODES
from .overhead import _cell as our_cell

_PATCHED_ROOTS = ("langchain_core", "langgraph", "langchain")
_PRELOAD = ("langchain_core.callbacks", "langgraph.pregel", "langgraph.types", "langgraph.graph.state")
_MISSING = object()
PIN = (
    "langgraph",
    "langgraph-checkpoint",
    "langchain-core",
    "pydantic",
    "opentelemetry-api",
    "opentelemetry-sdk",
)


@dataclass(frozen=True, slots=True)
class Peer:
    """One peer: its short key, distribution name, and how to import its instrumentor class."""

    key: str
    distribution: str
    module: str
    cls: str


PEERS = (
    Peer(
        "openinference",
        "openinference-instrumentation-langchain",
        "openinference.instrumentation.langchain",
        "LangChainInstrumentor",
    ),
    Peer(
        "traceloop",
        "opentelemetry-instrumentation-langchain",
        "opentelemetry.instrumentation.langchain",
        "LangchainInstrumentor",
    ),
)


def _snapshot() -> dict[tuple[int, str], tuple[Any, Any]]:
    """Every attribute of every loaded module (and class defined in it) under the patched roots."""
    snap: dict[tuple[int, str], tuple[Any, Any]] = {}
    for name, module in list(sys.modules.items()):
        if module is None or name.split(".", 1)[0] not in _PATCHED_ROOTS:
            continue
        for attr, value in list(vars(module).items()):
            snap[(id(module), attr)] = (module, value)
            if isinstance(value, type) and value.__module__ == name:
                for cattr, cvalue in list(vars(value).items()):
                    snap[(id(value), cattr)] = (value, cvalue)
    return snap


class PatchToggle:
    """The attributes a peer's ``instrument()`` replaced, with both values, to switch it on and off."""

    def __init__(
        self, before: dict[tuple[int, str], tuple[Any, Any]], after: dict[tuple[int, str], tuple[Any, Any]]
    ):
        known_owners = {owner_id for owner_id, _ in before}
        self.changes: list[tuple[Any, str, Any, Any]] = []
        for key, (owner, new) in after.items():
            if key[0] not in known_owners:
                continue
            old = before.get(key, (owner, _MISSING))[1]
            # Only replacements count: attributes that appear (lazy imports of langchain_core's
            # module ``__getattr__``, submodules) are not patches and must never be deleted.
            if old is not _MISSING and old is not new:
                self.changes.append((owner, key[1], old, new))

    def describe(self) -> list[str]:
        """``owner.attribute`` of every patch, for the results file."""
        return sorted(f"{getattr(o, '__name__', o)}.{a}" for o, a, _, _ in self.changes)

    def set(self, on: bool) -> None:
        for owner, attr, old, new in self.changes:
            setattr(owner, attr, new if on else old)


def _tracing() -> tuple[Any, Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, exporter


def _peer_version(peer: Peer) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(peer.distribution)
    except PackageNotFoundError:
        return None


def _measure_peer(peer: Peer, smoke: bool, pairs: int, warmup: int) -> dict[str, Any]:
    try:
        instrumentor_cls = getattr(importlib.import_module(peer.module), peer.cls)
    except Exception as exc:  # any import failure means "not measurable here"
        return {"skipped": f"not importable in {sys.executable}: {type(exc).__name__}: {exc}"}
    for name in _PRELOAD:
        importlib.import_module(name)
    provider, exporter = _tracing()
    before = _snapshot()
    instrumentor_cls().instrument(tracer_provider=provider)
    toggle = PatchToggle(before, _snapshot())
    toggle.set(False)
    if not toggle.changes:
        return {"skipped": "instrument() patched nothing that could be toggled"}
    cells, agent_cells = [], []
    try:
        for spec in graph_specs(smoke):
            for mode in MODES:
                cells.append(_peer_cell(spec, mode, toggle, provider, exporter, pairs, warmup))
        for spec in agent_specs(smoke):
            for mode in MODES:
                agent_cells.append(_peer_cell(spec, mode, toggle, provider, exporter, pairs, warmup))
    finally:
        toggle.set(False)
        provider.shutdown()
    return {
        "version": _peer_version(peer),
        "patched": toggle.describe(),
        "cells": cells,
        "agent_cells": agent_cells,
    }


def _peer_cell(
    spec: Any, mode: str, toggle: PatchToggle, provider: Any, exporter: Any, pairs: int, warmup: int
) -> dict[str, Any]:
    loop = asyncio.new_event_loop() if mode == "astream" else None
    runner = GraphRunner(compile_graph(spec), mode, loop, spec.input)
    spans = {"a": 0, "b": 0}

    def side(on: bool) -> Side:
        key = "b" if on else "a"

        def after() -> None:
            toggle.set(False)
            provider.force_flush()
            spans[key] = max(spans[key], len(exporter.get_finished_spans()))
            exporter.clear()
            runner.cleanup()

        return Side(runner.run, flush=provider.force_flush, after=after, before=lambda: toggle.set(on))

    try:
        result = paired(side(False), side(True), pairs=pairs, warmup=warmup)
    finally:
        toggle.set(False)
        if loop is not None:
            loop.close()
    out: dict[str, Any] = {"graph": spec.name, "mode": mode, "nodes": spec.nodes}
    out.update(result.summary(spec.nodes))
    out["spans_per_run"] = spans["b"]
    out["baseline_spans_per_run"] = spans["a"]
    return out


def run(smoke: bool = False) -> dict[str, Any]:
    """Measure each importable peer, and ours again in this process, on both graphs and modes."""
    pairs, warmup = (2, 1) if smoke else (40, 3)
    result: dict[str, Any] = {
        "method": "paired A/B in one process per peer, ABBA, peer toggled by swapping its patches",
        "astream_stream_mode": STREAM_MODES,
        "exporter": "BatchSpanProcessor(InMemorySpanExporter)",
        "pairs": pairs,
        "warmup_pairs": warmup,
    }
    try:
        ours = [
            our_cell("memory+otel", spec, mode, pairs, warmup)
            for spec in graph_specs(smoke)
            for mode in MODES
        ]
        agents = [
            our_cell("memory+otel", spec, mode, pairs, warmup)
            for spec in agent_specs(smoke)
            for mode in MODES
        ]
        result["ours_same_process"] = {"config": "memory+otel", "cells": ours, "agent_cells": agents}
    except (ImportError, AttributeError) as exc:
        result["ours_same_process"] = {"skipped": f"{type(exc).__name__}: {exc}"}
    result["peers"] = {peer.key: _measure_peer(peer, smoke, pairs, warmup) for peer in PEERS}
    return result


def run_in(python: str, smoke: bool, out: Path) -> dict[str, Any]:
    """Run this section under another interpreter (the peers venv) and return its section."""
    import json

    cmd = [python, "-m", "benchmarks.run", "--only", "peers", "--out", str(out)]
    if smoke:
        cmd.append("--smoke")
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        return {"skipped": f"{python} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}"}
    return json.loads(out.read_text())["sections"]["peers"]


def setup_venv(path: Path) -> int:
    """Create a venv with swarm-observability (editable) and the peers, pinned to this venv's versions.

    The pins keep LangGraph, LangChain core, pydantic and the OpenTelemetry SDK at the versions the
    project venv has; if a peer needed others, pip reports the conflict and this returns non-zero.
    """
    from importlib.metadata import version

    repo = Path(__file__).resolve().parent.parent
    constraints = path.with_suffix(".constraints.txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    constraints.write_text("".join(f"{name}=={version(name)}\n" for name in PIN))
    py = path / "bin" / "python"
    steps = [
        [sys.executable, "-m", "venv", str(path)],
        [str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [
            str(py),
            "-m",
            "pip",
            "install",
            "--quiet",
            "-c",
            str(constraints),
            "-e",
            str(repo),
            *(p.distribution for p in PEERS),
        ],
        [str(py), "-m", "pip", "check"],
    ]
    for step in steps:
        print("+", " ".join(step), flush=True)
        code = subprocess.call(step)
        if code != 0:
            return code
    print(f"peers venv ready: SWARM_OBS_PEERS_PYTHON={py} python -m benchmarks.run")
    return 0
