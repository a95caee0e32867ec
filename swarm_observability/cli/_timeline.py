"""The ``swarm-obs show`` tree: :func:`swarm_observability.scope_tree.build_timeline` as text lines."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..scope_tree import Scope, build_timeline
from ._format import TreeNode, fmt_duration, fmt_time

__all__ = ["build_timeline", "to_tree"]

_COLLAPSE_AT = 4


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
        if inv.detail.get("from_checkpoint_id"):
            later = len(inv.detail.get("discarded_checkpoints") or ())
            left = inv.detail.get("discarded_events", 0)
            extra.append(
                f"fork from checkpoint {inv.detail['from_checkpoint_id']} "
                f"({later} later checkpoint(s), {left} event(s) left on the old branch)"
            )
        node = TreeNode(f"invocation {number} ({inv.name})", inv.outcome or "", "  ".join(extra))
        node.children = [_scope_node(child) for child in inv.children] + _point_nodes(inv)
        root.children.append(node)
    return root


_LABELS = {"llm": "model", "plan": "plan"}


def _scope_node(scope: Scope) -> TreeNode:
    label = f"{_LABELS.get(scope.kind, scope.kind)} {scope.name}" if scope.kind != "plan" else "plan"
    if scope.kind == "node" and scope.step is not None:
        label += f" (step {scope.step})"
    parts = [fmt_duration(scope.duration_ms)]
    if scope.kind == "llm" and "input_tokens" in scope.detail:
        parts.append(f"{scope.detail['input_tokens']} in / {scope.detail.get('output_tokens', 0)} out tokens")
    if scope.kind == "probe":
        parts.append(f"{scope.results} result(s)")
    if scope.outcome == "open" and scope.progress is not None:
        parts.append(f"{scope.progress:.0%}")
    if scope.kind == "plan" and scope.detail.get("steps"):
        parts.append("steps: " + ", ".join(map(str, scope.detail["steps"])))
    if scope.error:
        parts.append(scope.error)
    node = TreeNode(label, scope.outcome or "", "  ".join(parts))
    node.children = [_scope_node(child) for child in scope.children] + _point_nodes(scope)
    return node


def _point_nodes(scope: Scope) -> list[TreeNode]:
    """One line per point event; a type seen more than a few times in a scope is one summary line."""
    counts = Counter(event["type"] for event in scope.events)
    lines: list[TreeNode] = []
    summarized: set[str] = set()
    for event in scope.events:
        kind = event["type"]
        if counts[kind] > _COLLAPSE_AT:
            if kind not in summarized:
                summarized.add(kind)
                last = next(e for e in reversed(scope.events) if e["type"] == kind)
                lines.append(TreeNode(f"{kind} x{counts[kind]}", "", f"last: {_describe(last)}".rstrip(": ")))
            continue
        lines.append(TreeNode(f"{kind} (seq {event['seq']})", "", _describe(event)))
    return lines


def _describe(event: dict[str, Any]) -> str:
    if event["type"] == "handoff":
        data = event.get("data") or {}
        via = f" via {data['tool']}" if data.get("tool") else f" ({data['via']})" if data.get("via") else ""
        return f"{data.get('from_agent', '?')} -> {data.get('to_agent', '?')}{via}"
    parts = [f"{key}={event[key]}" for key in ("node", "probe", "agent") if key in event]
    if "progress" in event:
        parts.append(f"{event['progress']:.0%}")
    if event.get("message"):
        parts.append(str(event["message"]))
    return " ".join(parts)
