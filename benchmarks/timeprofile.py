"""Where the time of an instrumented chain50 run goes, including the work done in C.

Bytecode counts (``benchmarks.work``) miss all work done in C (pydantic-core, json, sqlite3, uuid,
allocation, the garbage collector, the interpreter's own lookups), and timing on a shared machine is
noisy, so this helper offers three views of the same loop of chain50 runs:

* default: blocks of runs alternating plain / instrumented and GC enabled / disabled (ABBA inside
  one process, so the machine's noise hits every side alike), with the collections of each
  generation and their time counted through ``gc.callbacks``.
* ``--callgrind OUT``: machine instructions per node of the timed loop only (valgrind's callgrind,
  started and stopped around the loop), by kind of C code: deterministic, C included.
* ``--pyspy OUT``: the loop sampled by py-spy (install it in its own venv and pass ``--pyspy-bin``;
  ``--native`` adds C frames but slows the run 3-20x), folded by who calls (ours, LangGraph,
  LangChain, OpenTelemetry) and what the innermost frame is (pydantic, json, sqlite3, threading...).

Run from the project root, e.g. ``python -m benchmarks.timeprofile sqlite --runs 200``,
``python -m benchmarks.timeprofile memory --callgrind /tmp/memory.cg --runs 5``,
``python -m benchmarks.timeprofile sqlite --commits`` (the SQLite run's end-of-run commit wait) or
``python -m benchmarks.timeprofile sqlite --pyspy /tmp/sqlite.txt --pyspy-bin /tmp/pyspy/bin/py-spy``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import gc
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._graphs import GraphRunner, compile_graph, graph_specs
from ._pyspy import summarize
from .overhead import make_instrumented

_CHAIN = next(s for s in graph_specs() if s.name == "chain50")


class GCTimer:
    """Counts collections per generation and the time spent in them, through ``gc.callbacks``."""

    def __init__(self) -> None:
        self.count: collections.Counter[int] = collections.Counter()
        self.seconds: collections.Counter[int] = collections.Counter()
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            gen = info["generation"]
            self.count[gen] += 1
            self.seconds[gen] += time.perf_counter() - self._start

    def __enter__(self) -> GCTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def _runners(config: str, folder: Path, mode: str) -> tuple[GraphRunner, GraphRunner, Any]:
    loop = asyncio.new_event_loop() if mode == "astream" else None
    inst = make_instrumented("memory" if config == "plain" else config, folder)
    plain = GraphRunner(compile_graph(_CHAIN), mode, loop)
    observed = GraphRunner(inst.observer.instrument(compile_graph(_CHAIN)), mode, loop)
    return plain, observed, inst


def _release(runner: GraphRunner, inst: Any) -> None:
    inst.close()
    if runner.loop is not None:
        runner.loop.close()


def _run_block(runner: GraphRunner, inst: Any, runs: int, flush: bool) -> float:
    total = 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        runner.run()
        if flush:
            inst.flush()
        total += time.perf_counter() - t0
        runner.cleanup()
        if inst.clear_spans is not None:
            inst.clear_spans()
    return total


def gc_share(config: str, mode: str = "invoke", runs: int = 200, block: int = 10) -> dict[str, Any]:
    """Per-node time of plain and instrumented runs with GC on and off, and collections per run."""
    sides = [(name, enabled) for name in ("plain", "instr") for enabled in (True, False)]
    times: dict[tuple[str, bool], list[float]] = {side: [] for side in sides}
    gcs = {name: GCTimer() for name in ("plain", "instr")}
    with tempfile.TemporaryDirectory(prefix="swarm-obs-timeprof-") as tmp:
        plain, observed, inst = _runners(config, Path(tmp), mode)
        try:
            for _ in range(3):
                _run_block(plain, inst, 1, False)
                _run_block(observed, inst, 1, True)
            order = sides + sides[::-1]
            for _ in range(max(1, runs // (block * 2))):
                for name, enabled in order:
                    runner = plain if name == "plain" else observed
                    gc.collect()
                    if enabled:
                        gc.enable()
                    else:
                        gc.disable()
                    with gcs[name] if enabled else contextlib.nullcontext():
                        spent = _run_block(runner, inst, block, name == "instr")
                    gc.enable()
                    times[(name, enabled)].append(spent / block / _CHAIN.nodes * 1e6)
        finally:
            _release(plain, inst)
    gc_runs = {name: len(times[(name, True)]) * block for name in gcs}
    out: dict[str, Any] = {"config": config, "mode": mode, "runs_per_side": gc_runs["plain"]}
    for (name, enabled), values in times.items():
        out[f"{name}_us_per_node_gc_{'on' if enabled else 'off'}"] = round(statistics.median(values), 1)
    for name, timer in gcs.items():
        per = gc_runs[name]
        out[f"{name}_collections_per_run"] = {g: round(timer.count[g] / per, 2) for g in (0, 1, 2)}
        out[f"{name}_us_per_node_in_collections"] = round(
            sum(timer.seconds.values()) / per / _CHAIN.nodes * 1e6, 1
        )
    return out


def commit_waits(mode: str = "invoke", runs: int = 60, durability: str = "full") -> dict[str, Any]:
    """What an instrumented chain50 run with the SQLite store waits for at its end, in ms.

    ``invoke`` returns once the run's events are committed; the background writer lingers through a
    dense run, so its last commit (usually the whole run) happens after the graph is done, while the
    caller waits. Reports commits per run, events per commit, and that last commit's duration
    (percentiles) beside the run's. Timing: compare configurations within one call only.
    """
    from swarm_observability.instrumentation.observer import SwarmObserver
    from swarm_observability.stores.sqlite import SQLiteEventStore

    commits: list[tuple[float, float, int]] = []

    class TimedStore(SQLiteEventStore):
        def append_batch(self, events: Any) -> None:
            start = time.perf_counter()
            super().append_batch(events)
            commits.append((start, time.perf_counter(), len(events)))

    loop = asyncio.new_event_loop() if mode == "astream" else None
    spans: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="swarm-obs-timeprof-") as tmp:
        store = TimedStore(Path(tmp) / "events.db", durability=durability)  # type: ignore[arg-type]
        observer = SwarmObserver(store=store)
        runner = GraphRunner(observer.instrument(compile_graph(_CHAIN)), mode, loop)
        try:
            for index in range(runs + 3):
                start = time.perf_counter()
                runner.run()
                if index >= 3:
                    spans.append((start, time.perf_counter()))
                runner.cleanup()
        finally:
            observer.emitter.close()
            store.close()
            if loop is not None:
                loop.close()
    last, sizes, count = [], [], 0
    for start, end in spans:
        inside = [c for c in commits if start <= c[1] <= end]
        count += len(inside)
        if inside:
            last.append((inside[-1][1] - inside[-1][0]) * 1e3)
            sizes.append(inside[-1][2])
    last.sort()
    run_ms = sorted((end - start) * 1e3 for start, end in spans)
    return {
        "mode": mode,
        "durability": durability,
        "runs": len(spans),
        "run_ms_p50": round(run_ms[len(run_ms) // 2], 2),
        "commits_per_run": round(count / len(spans), 2),
        "events_in_last_commit": round(statistics.mean(sizes), 1),
        "last_commit_ms": {
            f"p{q}": round(last[min(len(last) - 1, len(last) * q // 100)], 2) for q in (50, 90, 97)
        },
    }


def loop(config: str, mode: str, runs: int) -> float:
    """``runs`` chain50 runs of ``config`` (``plain``: uninstrumented) for a profiler; their seconds."""
    with tempfile.TemporaryDirectory(prefix="swarm-obs-timeprof-") as tmp:
        plain, observed, inst = _runners(config, Path(tmp), mode)
        runner = plain if config == "plain" else observed
        try:
            _run_block(runner, inst, 3, config != "plain")
            _callgrind("on")
            t0 = time.perf_counter()
            _run_block(runner, inst, runs, config != "plain")
            seconds = time.perf_counter() - t0
            _callgrind("off")
            return seconds
        finally:
            _release(plain, inst)


def _callgrind(state: str) -> None:
    """Under ``valgrind --tool=callgrind --instr-atstart=no``, count only the timed loop."""
    if os.environ.get("TIMEPROF_CALLGRIND"):
        subprocess.run(["callgrind_control", "-i", state, str(os.getpid())], check=True, capture_output=True)


_C_KINDS = (
    ("GC collections", r"gcmodule\.c:(gc_|collect|visit|update_refs|subtract_refs|move_|deduce|handle_)"),
    ("alloc/free", r"obmalloc\.c|malloc|free\b|_int_|memset|memcpy|memmove|dealloc|PyObject_GC_Del"),
    ("eval loop and calls", r"ceval\.c|call\.c|frame\.c|funcobject|methodobject|descrobject|classobject"),
    ("dict/set/attribute lookups", r"dictobject\.c|setobject\.c|typeobject\.c|Objects/object\.c"),
    ("pydantic-core", r"pydantic_core"),
    ("sqlite3", r"sqlite"),
    ("json (C)", r"_json"),
    ("threads and locks", r"thread|pthread|futex|_queue"),
)


def callgrind_kinds(out_file: Path, nodes: int) -> dict[str, float]:
    """Instructions per node by kind of C code, from a callgrind file of :func:`loop` (self cost)."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(out_file)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    kinds: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        match = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
        if match is None or "PROGRAM TOTALS" in line:
            continue
        where = match.group(2)
        kind = next((k for k, pattern in _C_KINDS if re.search(pattern, where)), "other CPython and C")
        kinds[kind] += int(match.group(1).replace(",", "")) / nodes
    kinds["TOTAL"] = sum(kinds.values())
    return dict(kinds)


def callgrind(config: str, mode: str, runs: int, out_file: Path) -> dict[str, float]:
    """Count the machine instructions of ``runs`` runs of the loop under callgrind (the timed loop only).

    Deterministic and C included, unlike bytecodes; but valgrind slows the process ~50x, so a
    background writer (which lingers in wall-clock time) batches differently than at full speed.
    """
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out_file}"]
    command += [sys.executable, "-m", __spec__.name, config, "--mode", mode, "--runs", str(runs), "--loop"]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "TIMEPROF_CALLGRIND": "1"})
    return callgrind_kinds(out_file, runs * _CHAIN.nodes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="plain, memory, memory+otel, sqlite, sqlite+otel or jsonl")
    parser.add_argument("--mode", default="invoke", choices=("invoke", "astream"))
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--pyspy", type=Path, help="record a native py-spy profile into this file")
    parser.add_argument("--pyspy-bin", default="py-spy")
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--native", action="store_true", help="native stacks (slows the run ~3-20x)")
    parser.add_argument("--loop", action="store_true", help="only run the loop (what py-spy records)")
    parser.add_argument("--commits", action="store_true", help="the SQLite run's end-of-run commit wait")
    parser.add_argument("--durability", default="full", choices=("full", "normal"))
    parser.add_argument("--callgrind", type=Path, help="count instructions under callgrind into this file")
    parser.add_argument("--summary", type=Path, help="fold a raw py-spy file by owner and leaf")
    parser.add_argument("--us-per-node", type=float, help="with --summary: the loop's us per node")
    args = parser.parse_args(argv)
    if args.summary:
        print(summarize(args.summary, args.us_per_node))
        return 0
    if args.loop:
        seconds = loop(args.config, args.mode, args.runs)
        print(f"loop {seconds:.3f} s, {seconds / max(1, args.runs) / _CHAIN.nodes * 1e6:.1f} us/node")
        return 0
    if args.commits:
        print(commit_waits(args.mode, args.runs, args.durability))
        return 0
    if args.callgrind:
        for kind, count in sorted(callgrind(args.config, args.mode, args.runs, args.callgrind).items()):
            print(f"{count / 1000:10.1f}k Ir/node  {kind}")
        return 0
    if args.pyspy:
        command = [args.pyspy_bin, "record", "--threads", "--full-filenames", "--rate", str(args.rate)]
        command += ["--native"] if args.native else ["--nonblocking"]
        command += ["-f", "raw", "-o", str(args.pyspy), "--", sys.executable, "-m", __spec__.name]
        command += [args.config, "--mode", args.mode, "--runs", str(args.runs), "--loop"]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        per_node = float(done.stdout.rsplit(",", 1)[1].split()[0])
        print(done.stdout.strip())
        print(summarize(args.pyspy, per_node))
        return 0
    print(gc_share(args.config, args.mode, args.runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
