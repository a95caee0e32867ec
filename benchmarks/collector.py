"""Garbage-collector pressure per node: objects promoted to the oldest generation, and what they cost.

Why: CPython 3.11 runs a full collection once the objects promoted to the oldest generation since the
last one exceed a quarter of it (``long_lived_pending > long_lived_total / 4``), and with LangGraph,
pydantic and the OpenTelemetry SDK loaded a full collection walks ~110k objects in ~50-70 ms on the
reference VM. So every object of ours that is still alive when a middle-generation collection runs
(an event waiting for the writer, a span waiting for its batch, an entry in a bounded cache) brings
the next full collection nearer, for the user's whole process: about ``full_ms / (old / 4)`` per
promotion, 2 us or more here. Bytecode counts (``work``) do not see this, and timings are too noisy
to: a full collection is one 60 ms pause every few thousand nodes.

Method: on chain50, after warm-up runs and a ``gc.collect()``, a ``gc.callbacks`` hook diffs the
oldest generation around each middle-generation collection (``gc.get_objects(generation=2)``) and
counts the objects it gained, by type; that over ``runs`` runs, divided by their node executions,
is ``promoted`` per node. ``full_ms`` is the best of three ``gc.collect()`` at the end, ``old`` the
oldest generation's size then; ``estimate_us`` is ``promoted * full_ms / (old / 4)`` per node. The
in-memory store keeps every event by design (two tracked objects each, the event and its
``__dict__``), so part of its figure is the store itself.
"""

from __future__ import annotations

import collections
import gc
import time
from typing import Any

from ._graphs import graph_specs
from .work import chain_runs

CONFIGS = ("memory", "memory+otel", "sqlite", "sqlite+otel", "jsonl")
MODES = ("invoke", "astream")


class _Promotions:
    """While installed: the objects each middle-generation collection moves to the oldest, by type."""

    def __init__(self) -> None:
        self.by_type: collections.Counter[str] = collections.Counter()
        self._before: set[int] = set()

    def _hook(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 1:
            return
        if phase == "start":
            self._before = {id(o) for o in gc.get_objects(generation=2)}
            return
        before = self._before
        for o in gc.get_objects(generation=2):
            if id(o) not in before:
                self.by_type[type(o).__qualname__] += 1
        self._before = set()

    def __enter__(self) -> _Promotions:
        gc.callbacks.insert(0, self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._hook)


def _full_collection_ms() -> float:
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        gc.collect()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


def _measure(config: str | None, mode: str, spec: Any, runs: int, warmup: int) -> dict[str, Any]:
    """Promotions per node for one side (``config=None``: the plain graph), and the full-collection cost."""
    with chain_runs(config, mode, spec, warmup) as run:
        gc.collect()
        with _Promotions() as promotions:
            run(runs)
        full_ms = _full_collection_ms()
        old = len(gc.get_objects(generation=2))
    nodes = runs * spec.nodes
    promoted = sum(promotions.by_type.values()) / nodes
    return {
        "promoted": round(promoted, 2),
        "top_types": {k: round(v / nodes, 2) for k, v in promotions.by_type.most_common(6)},
        "full_ms": round(full_ms, 1),
        "old": old,
        "estimate_us": round(promoted * full_ms * 1e3 / (old / 4), 1),
    }


def run(smoke: bool = False) -> dict[str, Any]:
    """Promotions per node, plain vs instrumented, on the chain graph, every configuration and mode."""
    spec = graph_specs(smoke)[0]
    runs, warmup = (2, 1) if smoke else (100, 3)
    cells = []
    for mode in MODES:
        plain = _measure(None, mode, spec, runs, warmup)
        for config in CONFIGS if not smoke else ("memory+otel",):
            inst = _measure(config, mode, spec, runs, warmup)
            cells.append(
                {
                    "config": config,
                    "graph": spec.name,
                    "mode": mode,
                    "plain": plain["promoted"],
                    "instrumented": inst["promoted"],
                    "added": round(inst["promoted"] - plain["promoted"], 2),
                    "full_ms": inst["full_ms"],
                    "old": inst["old"],
                    "estimate_us": inst["estimate_us"],
                    "added_estimate_us": round(inst["estimate_us"] - plain["estimate_us"], 1),
                    "top_types": inst["top_types"],
                }
            )
    return {
        "method": "objects promoted to the oldest generation per node execution (gc.callbacks, generation 1)",
        "runs": runs,
        "warmup_runs": warmup,
        "cells": cells,
    }


def render(sec: dict[str, Any]) -> list[str]:
    """The section as markdown lines (after the meta line)."""
    lines = [
        f"{sec['method']}; {sec['runs']} runs after {sec['warmup_runs']} warm-up runs. A full collection "
        "runs once promotions exceed a quarter of the oldest generation, so each costs about "
        "full-collection time / (oldest / 4); the estimate is that times the promotions per node.",
        "",
        "| config | graph | mode | plain | instrumented | added | full collection ms | oldest gen "
        "| estimate us/node | added us/node | top promoted types |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for c in sec["cells"]:
        top = ", ".join(f"{name} {n:g}" for name, n in list(c["top_types"].items())[:4])
        lines.append(
            f"| {c['config']} | {c['graph']} | {c['mode']} | {c['plain']:g} | {c['instrumented']:g} "
            f"| {c['added']:g} | {c['full_ms']:g} | {c['old']:,} | {c['estimate_us']:g} "
            f"| {c['added_estimate_us']:g} | {top} |"
        )
    return lines
