"""Shared measurement helpers: paired A/B timing, robust summaries, machine facts.

The machine the project runs on is a shared 2-vCPU VM whose speed drifts by up to 2x between minutes
(see ``/work/shared/research/event_store.md`` section 3). Absolute times are therefore reported
with their spread, and overhead is measured as *paired* A/B runs in one process: A (baseline) and
B (instrumented) run back to back in alternating ABBA order, and the statistic is the median of the
per-pair ratios and differences, which cancels the slow drift that would swamp two separate series.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.metadata
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_VERSIONED = (
    "swarm-observability",
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-sqlite",
    "langchain-core",
    "pydantic",
    "opentelemetry-sdk",
    "openinference-instrumentation-langchain",
    "opentelemetry-instrumentation-langchain",
)


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile ``q`` (0..1) of ``values``; raises ``ValueError`` when empty."""
    if not values:
        raise ValueError("quantile of an empty sequence")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(values: Iterable[float], digits: int = 3) -> dict[str, float | int]:
    """Median, quartiles, extremes and count of a sample, rounded for the results file."""
    data = [float(v) for v in values]
    if not data:
        raise ValueError("cannot summarize an empty sample")
    out: dict[str, float | int] = {
        "median": statistics.median(data),
        "p25": quantile(data, 0.25),
        "p75": quantile(data, 0.75),
        "min": min(data),
        "max": max(data),
    }
    if len(data) >= 20:
        out["p99"] = quantile(data, 0.99)
    rounded: dict[str, float | int] = {k: round(v, digits) for k, v in out.items()}
    rounded["n"] = len(data)
    return rounded


@dataclass(frozen=True, slots=True)
class Sample:
    """One timed run: wall time of the call, wall and process-CPU time including the final flush."""

    wall_ns: int
    wall_flushed_ns: int
    cpu_flushed_ns: int


def timed(run: Callable[[], Any], flush: Callable[[], Any] | None = None) -> Sample:
    """Time ``run()``; then ``flush()`` (if given), reported separately as the flushed figures.

    CPU time is the whole process's (``time.process_time_ns``), so work handed to background threads
    (the emitter's writer, the span processor's exporter) is counted once it is flushed.
    """
    cpu0 = time.process_time_ns()
    t0 = time.perf_counter_ns()
    run()
    t1 = time.perf_counter_ns()
    if flush is not None:
        flush()
    t2 = time.perf_counter_ns()
    cpu1 = time.process_time_ns()
    return Sample(t1 - t0, t2 - t0, cpu1 - cpu0)


@dataclass(slots=True)
class Side:
    """How to run one side (A or B) of a pair: the call, an optional flush, set-up and clean-up."""

    run: Callable[[], Any]
    flush: Callable[[], Any] | None = None
    after: Callable[[], Any] | None = None
    """Called after each run outside the timed region (e.g. drop the thread's checkpoints)."""
    before: Callable[[], Any] | None = None
    """Called before each run outside the timed region (e.g. switch a peer's patches on)."""

    def once(self) -> Sample:
        if self.before is not None:
            self.before()
        sample = timed(self.run, self.flush)
        if self.after is not None:
            self.after()
        return sample


@dataclass(slots=True)
class PairedResult:
    """Raw samples of a paired A/B series, with the derived per-pair statistics."""

    a: list[Sample]
    b: list[Sample]

    def summary(self, units: int) -> dict[str, Any]:
        """Per-unit (e.g. per node) figures: absolute A and B, added time and ratio, per pair.

        ``added_us`` and ``ratio`` use the call's wall time; ``*_flushed`` include the final flush,
        and ``cpu_ratio`` is the process-CPU ratio including the flush (background threads counted).
        """
        a_us = [s.wall_ns / 1e3 / units for s in self.a]
        b_us = [s.wall_ns / 1e3 / units for s in self.b]
        a_fl = [s.wall_flushed_ns / 1e3 / units for s in self.a]
        b_fl = [s.wall_flushed_ns / 1e3 / units for s in self.b]
        return {
            "pairs": len(self.a),
            "baseline_us": summarize(a_us, 1),
            "instrumented_us": summarize(b_us, 1),
            "added_us": summarize([b - a for a, b in zip(a_us, b_us, strict=True)], 1),
            "ratio": summarize([b / a for a, b in zip(a_us, b_us, strict=True)], 3),
            "added_us_flushed": summarize([b - a for a, b in zip(a_fl, b_fl, strict=True)], 1),
            "ratio_flushed": summarize([b / a for a, b in zip(a_fl, b_fl, strict=True)], 3),
            "cpu_ratio": summarize(
                [
                    sb.cpu_flushed_ns / max(sa.cpu_flushed_ns, 1)
                    for sa, sb in zip(self.a, self.b, strict=True)
                ],
                3,
            ),
        }


def paired(a: Side, b: Side, *, pairs: int, warmup: int = 2) -> PairedResult:
    """Run ``pairs`` A/B pairs in ABBA order after ``warmup`` unrecorded pairs.

    A full garbage collection runs before every pair (outside the timed region) so that a collection
    triggered by one side's garbage is less likely to land in the other side's timing.
    """
    if pairs < 1:
        raise ValueError("pairs must be at least 1")
    for _ in range(warmup):
        a.once()
        b.once()
    result = PairedResult([], [])
    for i in range(pairs):
        gc.collect()
        if i % 2 == 0:
            sa, sb = a.once(), b.once()
        else:
            sb, sa = b.once(), a.once()
        result.a.append(sa)
        result.b.append(sb)
    return result


def repeat(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Seconds taken by each of ``repeats`` calls of ``fn``."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _versions() -> dict[str, str]:
    found = {}
    for name in _VERSIONED:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    return found


def calibration_ms() -> float:
    """Milliseconds a fixed pure-Python loop takes now: a speed gauge for comparing runs on a drifting VM."""
    t0 = time.perf_counter()
    total = 0
    for i in range(1_000_000):
        total += i * i % 7
    return round((time.perf_counter() - t0) * 1e3, 1)


def machine_info() -> dict[str, Any]:
    """Facts a reader needs to judge the numbers: when, where, how loaded, which versions."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "calibration_loop_ms": calibration_ms(),
        "versions": _versions(),
    }
