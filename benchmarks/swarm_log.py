"""A synthetic but realistic swarm event log, for the analytics tests and benchmark.

Runs of scan invocations (some resumed, some failed, some cut short as after a crash), each with
nodes, probes, agents making model calls (tokens) and tool calls, progress, logs and custom events,
with seeded randomness, increasing timestamps and the same fields and shapes the instrumentation
writes. Deterministic for a seed, so a test can regenerate the same log.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from swarm_observability.events import StreamEvent, make_event

NODES = ("planner", "probe", "reviewer", "report")
PROBES = ("secrets", "syntax", "dependencies", "todos")
AGENTS = ("researcher", "coder")
MODELS = ("gpt-5-mini", "claude-sonnet")
TOOLS = ("search", "read_file")


class _Run:
    def __init__(self, run_id: str, rng: random.Random, start: datetime) -> None:
        self.run_id = run_id
        self.rng = rng
        self.now = start
        self.seq = 0
        self.invocation: str | None = None
        self.events: list[StreamEvent] = []

    def emit(self, type: str, scope: str | None, parent: str | None, **fields: Any) -> None:
        self.seq += 1
        self.now += timedelta(milliseconds=self.rng.randint(0, 40))
        self.events.append(
            make_event(
                type,
                self.run_id,
                seq=self.seq,
                timestamp=self.now,
                thread_id=self.run_id,
                invocation_id=self.invocation,
                scope_id=scope,
                parent_scope_id=parent,
                **fields,
            )
        )


def _close(outcome: str, duration: float, **data: Any) -> dict[str, Any]:
    return {"outcome": outcome, "duration_ms": round(duration, 3), **data}


def _node(run: _Run, name: str, parent: str, step: int) -> bool:
    """One node execution with its inner scopes; returns False if it failed."""
    rng = run.rng
    scope = uuid.UUID(int=rng.getrandbits(128)).hex
    task = str(uuid.UUID(int=rng.getrandbits(128)))
    common = {"node": name, "step": step, "task_id": task}
    run.emit("node_enter", scope, parent, data={"attempt": 1}, **common)
    if name == "probe":
        probe = rng.choice(PROBES)
        inner = uuid.UUID(int=rng.getrandbits(128)).hex
        run.emit("probe_start", inner, scope, probe=probe, data={"files": rng.randint(1, 50)}, **common)
        for i in range(rng.randint(1, 4)):
            run.emit("node_progress", inner, scope, probe=probe, progress=(i + 1) / 4, **common)
        run.emit("probe_result", inner, scope, probe=probe, data={"finding": rng.randint(0, 9)}, **common)
        failed = rng.random() < 0.1
        data = (
            _close("error", rng.uniform(1, 900), error_type="OSError", error_message="gone")
            if failed
            else (_close("ok", rng.uniform(1, 900)))
        )
        run.emit("probe_complete", inner, scope, probe=probe, data=data, **common)
    if name == "reviewer":
        agent = rng.choice(AGENTS)
        inner = uuid.UUID(int=rng.getrandbits(128)).hex
        run.emit("agent_start", inner, scope, agent=agent, **common)
        for _ in range(rng.randint(1, 3)):
            call = uuid.UUID(int=rng.getrandbits(128)).hex
            model = rng.choice(MODELS)
            run.emit("llm_start", call, inner, agent=agent, data={"model": model}, **common)
            tokens = {
                "input_tokens": rng.randint(50, 4000),
                "output_tokens": rng.randint(10, 800),
                "model": model,
            }
            run.emit(
                "llm_end",
                call,
                inner,
                agent=agent,
                data=_close("ok", rng.uniform(100, 5000), **tokens),
                **common,
            )
            if rng.random() < 0.5:
                tool_scope = uuid.UUID(int=rng.getrandbits(128)).hex
                tool = rng.choice(TOOLS)
                run.emit("tool_start", tool_scope, inner, agent=agent, data={"tool": tool}, **common)
                bad = rng.random() < 0.15
                data = _close("error" if bad else "ok", rng.uniform(1, 300), tool=tool)
                if bad:
                    data.update(error_type="ToolException", error_message="no such file")
                run.emit("tool_end", tool_scope, inner, agent=agent, data=data, **common)
        run.emit(
            "agent_complete", inner, scope, agent=agent, data=_close("ok", rng.uniform(100, 9000)), **common
        )
    if rng.random() < 0.2:
        run.emit("log", scope, parent, message="checked", data={"n": rng.randint(0, 5)}, **common)
    if rng.random() < 0.1:
        ok = rng.random() < 0.8
        run.emit(
            "order_checked", scope, parent, data={"outcome": "ok" if ok else "error", "total": 3}, **common
        )
    failed = rng.random() < 0.05
    data = (
        _close("error", rng.uniform(1, 2000), error_type="ValueError", error_message="bad")
        if failed
        else (_close("ok", rng.uniform(1, 2000)))
    )
    run.emit("node_exit", scope, parent, data=data, **common)
    return not failed


def _invocation(run: _Run, resumed: bool, nodes: int, crash: bool) -> None:
    rng = run.rng
    run.invocation = uuid.UUID(int=rng.getrandbits(128)).hex
    root = run.invocation
    kind = "scan_resumed" if resumed else "scan_started"
    run.emit(kind, root, None, data={"graph": "synthetic_swarm"})
    for step in range(1, nodes + 1):
        if not _node(run, rng.choice(NODES), root, step):
            run.emit(
                "scan_error",
                root,
                None,
                data=_close("error", 10.0, error_type="ValueError", error_message="bad"),
            )
            return
        if crash and rng.random() < 0.3:
            return  # the process died here: no terminal event
    if rng.random() < 0.1:
        run.emit("scan_paused", root, None, data={"outcome": "interrupted", "reason": "interrupt"})
    else:
        run.emit("scan_complete", root, None, data=_close("ok", 100.0))


def synthetic_runs(events: int, *, seed: int = 0, run_size: int = 200) -> Iterator[list[StreamEvent]]:
    """Runs (lists of events in seq order) until about ``events`` events were produced."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    made = 0
    index = 0
    while made < events:
        run = _Run(f"run-{seed}-{index:06d}", rng, start + timedelta(minutes=index))
        invocations = 1 + (rng.random() < 0.3)
        for i in range(invocations):
            _invocation(
                run, resumed=i > 0, nodes=max(1, run_size // (8 * invocations)), crash=rng.random() < 0.1
            )
        made += len(run.events)
        index += 1
        yield run.events
