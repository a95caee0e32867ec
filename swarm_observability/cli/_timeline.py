"""The scope tree of a run (``swarm-obs show``): invocations > nodes > probes / agents / plans.

Built from the events' ``scope_id`` / ``parent_scope_id`` alone, the same tree the OpenTelemetry
mapping turns into spans. A scope whose closing event is missing is ``open`` while its invocation
has not ended, and ``incomplete`` once it has (or when the log simply stops, as after a crash).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..events import StreamEvent
from ._format import TreeNode, fmt_duration, fmt_time

_OPEN = {"node_enter": "node", "probe_start": "probe", "agent_start": "agent", "plan_start": "plan"}
_CLOSE = {"node_exit", "probe_complete", "agent_complete", "plan_complete"}
_TERMINAL = {
    "scan_complete": "ok",
    "scan_error": "error",
    "scan_cancelled": "cancelled",
    "scan_paused": "paused",
}


@dataclass
class Scope:
    """One scope of the run and what its events say about it."""

    scope_id: str
    kind: str
    name: str
    parent_scope_id: str | None
    start: datetime
    first_seq: int
    end: datetime | None = None
    outcome: str | None = None
    duration_ms: float | None = None
    step: int | None = None
    results: int = 0
    progress: float | None = None
    error: str | None = None
    pauses: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    children: list[Scope] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view, children included."""
        out: dict[str, Any] = {
            "scope_id": self.scope_id,
            "kind": self.kind,
            "name": self.name,
            "start": self.start,
            "end": self.end,
            "outcome": self.outcome,
            "duration_ms": self.duration_ms,
        }
        for key in ("step", "error", "progress"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.kind == "probe":
            out["results"] = self.results
        if self.kind == "invocation":
            out["pauses"] = self.pauses
        out.update(self.detail)
        out["children"] = [child.to_dict() for child in self.children]
        return out


def build_timeline(events: Iterable[StreamEvent]) -> list[Scope]:
    """The invocations of a run, each with its scope tree, in the order they started."""
    scopes: dict[str, Scope] = {}
    invocations: list[Scope] = []
    orphans: list[Scope] = []
    for event in events:
        kind = event.type_name
        sid = event.scope_id
        if kind in ("scan_started", "scan_resumed") and sid:
            if sid in scopes:
                continue
            scope = Scope(
                sid,
                "invocation",
                "started" if kind == "scan_started" else "resumed",
                None,
                event.timestamp,
                event.seq or 0,
            )
            scope.detail["graph"] = event.data.get("graph")
            if event.data.get("previous_invocation_id"):
                scope.detail["previous_invocation_id"] = event.data["previous_invocation_id"]
            scopes[sid] = scope
            invocations.append(scope)
        elif kind in _OPEN and sid:
            name = (
                event.node if kind == "node_enter" else event.probe if kind == "probe_start" else event.agent
            )
            scope = Scope(
                sid,
                _OPEN[kind],
                name or _OPEN[kind],
                event.parent_scope_id,
                event.timestamp,
                event.seq or 0,
                step=event.step,
            )
            if kind == "plan_start" and event.data.get("steps"):
                scope.detail["steps"] = event.data["steps"]
            scopes[sid] = scope
            parent = scopes.get(event.parent_scope_id or "")
            (parent.children if parent else orphans).append(scope)
        elif kind in _CLOSE and sid in scopes:
            _close(scopes[sid], event, event.data.get("outcome"))
            if kind == "plan_complete" and event.data.get("steps"):
                scopes[sid].detail["steps"] = event.data["steps"]
        elif kind in _TERMINAL and sid in scopes:
            scope = scopes[sid]
            if kind == "scan_paused" and event.data.get("reason") == "pause":
                scope.pauses += 1
            elif scope.outcome is None:
                _close(scope, event, event.data.get("outcome") or _TERMINAL[kind])
                if kind == "scan_paused":
                    scope.detail["reason"] = event.data.get("reason")
        elif kind == "probe_result" and sid in scopes:
            scopes[sid].results += 1
        elif kind == "node_progress" and sid in scopes and event.progress is not None:
            scopes[sid].progress = event.progress
    if orphans:
        holder = Scope("?", "invocation", "unknown", None, orphans[0].start, orphans[0].first_seq)
        holder.children = orphans
        invocations.append(holder)
    for invocation in invocations:
        _mark_unclosed(invocation, ended=invocation.outcome is not None)
    return invocations


def _close(scope: Scope, event: StreamEvent, outcome: Any) -> None:
    scope.end = event.timestamp
    scope.outcome = str(outcome or "ok")
    duration = event.data.get("duration_ms")
    scope.duration_ms = (
        float(duration) if isinstance(duration, int | float) else _ms(scope.start, event.timestamp)
    )
    if event.data.get("error_type"):
        scope.error = f"{event.data['error_type']}: {event.data.get('error_message', '')}".rstrip(": ")


def _mark_unclosed(scope: Scope, *, ended: bool) -> None:
    if scope.outcome is None:
        scope.outcome = "incomplete" if ended else "open"
    for child in scope.children:
        _mark_unclosed(child, ended=ended)


def _ms(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000


def to_tree(run_id: str, invocations: list[Scope], *, status: str, events: int) -> TreeNode:
    """The display tree of ``show``."""
    root = TreeNode(f"run {run_id}", status, f"{len(invocations)} invocation(s), {events} events")
    for number, inv in enumerate(invocations, start=1):
        extra = [fmt_time(inv.start), fmt_duration(inv.duration_ms)]
        if inv.detail.get("graph"):
            extra.append(f"graph {inv.detail['graph']}")
        if inv.pauses:
            extra.append(f"paused {inv.pauses}x")
        if inv.detail.get("reason"):
            extra.append(f"reason {inv.detail['reason']}")
        node = TreeNode(f"invocation {number} ({inv.name})", inv.outcome or "", "  ".join(extra))
        node.children = [_scope_node(child) for child in inv.children]
        root.children.append(node)
    return root


def _scope_node(scope: Scope) -> TreeNode:
    label = f"{scope.kind} {scope.name}" if scope.kind != "plan" else "plan"
    if scope.kind == "node" and scope.step is not None:
        label += f" (step {scope.step})"
    parts = [fmt_duration(scope.duration_ms)]
    if scope.kind == "probe":
        parts.append(f"{scope.results} result(s)")
    if scope.outcome == "open" and scope.progress is not None:
        parts.append(f"{scope.progress:.0%}")
    if scope.kind == "plan" and scope.detail.get("steps"):
        parts.append("steps: " + ", ".join(map(str, scope.detail["steps"])))
    if scope.error:
        parts.append(scope.error)
    node = TreeNode(label, scope.outcome or "", "  ".join(parts))
    node.children = [_scope_node(child) for child in scope.children]
    return node
