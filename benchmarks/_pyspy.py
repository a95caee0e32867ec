"""Folding py-spy's raw stacks of the time-profile loop (:mod:`benchmarks.timeprofile`) by caller and leaf."""

from __future__ import annotations

import collections
from pathlib import Path

_OWNERS = (
    ("/swarm_observability/", "ours"),
    ("/opentelemetry/", "otel"),
    ("/langgraph/", "langgraph"),
    ("/langchain_core/", "langchain"),
    ("/langsmith/", "langchain"),
    ("/benchmarks/", "bench"),
)
_LEAVES = (
    ("pydantic", "pydantic"),
    ("/json/", "json"),
    ("_json", "json"),
    ("sqlite", "sqlite3"),
    ("/uuid.py", "uuid"),
    ("gc_collect", "GC"),
    ("threading.py", "threading"),
    ("/concurrent/", "threading"),
    ("/asyncio/", "asyncio"),
    ("/queue.py", "threading"),
    ("/copy.py", "copy"),
    ("libpython", "CPython (C)"),
    ("libc.so", "libc"),
)
_IDLE = ("PyThread_acquire_lock_timed", "take_gil", "select (", "epoll_wait", "time_sleep")


def _owner(frame: str) -> str | None:
    for needle, owner in _OWNERS:
        if needle in frame:
            return owner
    return None


def _leaf(frame: str, owner: str | None) -> str:
    for needle, leaf in _LEAVES:
        if needle in frame:
            return leaf
    if owner is not None:
        return "self"
    return "python other" if ".py:" in frame else "C other"


def fold(raw: Path) -> dict[str, collections.Counter[str]]:
    """py-spy's raw stacks (``--full-filenames``) folded into sample counts per thread kind.

    Per thread kind (``loop``: the main thread inside the benchmark loop; ``other threads``: busy
    samples of every other thread), the key is ``caller/leaf``: ``caller`` the innermost frame of one
    of ours, LangGraph, LangChain, OpenTelemetry or the benchmark loop; ``leaf`` what the innermost frame
    is (``self`` when it is the caller itself, else pydantic, json, sqlite3, GC, CPython's C, ...).
    Idle samples (waiting on a lock, the GIL, a selector or a sleep) are counted apart.
    """
    out: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        main = "MainThread" in frames[0]
        if main and not any("_run_block" in f for f in frames):
            continue
        kind = "loop" if main else "other threads"
        if any(marker in f for f in frames for marker in _IDLE):
            out[kind]["idle"] += count
            continue
        caller = next((o for f in reversed(frames) if (o := _owner(f)) is not None), "none")
        out[kind][f"{caller}/{_leaf(frames[-1], _owner(frames[-1]))}"] += count
    return out


def summarize(raw: Path, loop_us_per_node: float | None = None, top: int = 30) -> str:
    """A text table of :func:`fold`: share of busy samples by caller/leaf, and by caller.

    With ``loop_us_per_node`` (the loop's measured wall time per node) each share is also given in
    us per node: every thread is sampled at the same period, so one loop sample's share of that time
    is what any sample stands for.
    """
    folded = fold(raw)
    us = (loop_us_per_node or 0.0) / max(1, sum(folded["loop"].values()))
    lines = []
    for kind, counter in folded.items():
        busy = sum(n for k, n in counter.items() if k != "idle")
        lines.append(f"== {kind}: {busy} busy samples, {counter['idle']} idle")
        callers: collections.Counter[str] = collections.Counter()
        for key, n in counter.items():
            if key != "idle":
                callers[key.split("/")[0]] += n
        lines += [f"{n / busy * 100:6.1f}% {n * us:7.1f} us  {k} (all)" for k, n in callers.most_common()]
        lines += [
            f"{n / busy * 100:6.1f}% {n * us:7.1f} us  {k}"
            for k, n in counter.most_common(top)
            if k != "idle"
        ]
    return "\n".join(lines)
