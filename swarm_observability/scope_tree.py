"""The scope tree of a run: invocations > nodes > probes / agents / plans, with every other event attached.

One read model shared by ``swarm-obs show``, the server's ``/api/runs/{run_id}/tree`` and the page's
timeline. It is built from the events alone:

* Scoped events (what :class:`~swarm_observability.SwarmObserver` records) form the tree through
  ``scope_id`` / ``parent_scope_id``, the same tree the OpenTelemetry mapping turns into spans.
* Events emitted straight through :class:`~swarm_observability.EventEmitter` without scopes are placed
  by what they name: ``scan_started`` opens an invocation, ``node_enter`` / ``node_exit`` (and the probe,
  agent and plan pairs) open and close a scope matched by kind and name, inside the innermost open
  node of the same name and else the current invocation.
* A ``<kind>_start`` event with a scope id of its own opens a scope of that kind (``llm_start`` /
  ``llm_end`` model calls, ``tool_start`` / ``tool_end`` tool calls, types newer than this module), closed
  by the ``<kind>_end``, ``_complete`` or ``_error`` event of the same scope id.
* Every other event (logs, progress, probe results, handoffs, types unknown to this release) is kept
  as a *point* event of the innermost scope it belongs to, so the tree accounts for every event.

A scope whose closing event is missing is ``open`` while its invocation has not ended, and
``incomplete`` once it has (or when the log simply stops, as after a crash).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .events import StreamEvent

_OPEN = {"node_enter": "node", "probe_start": "probe", "agent_start": "agent", "plan_start": "plan"}
_CLOSE = {"node_exit": "node", "probe_complete": "probe", "agent_complete": "agent", "plan_complete": "plan"}
_STARTS = {"scan_started": "started", "scan_resumed": "resumed"}
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
    last_seq: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    children: list[Scope] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    """Point events (not opening or closing a scope) in this scope, as :func:`point_event` dicts."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view, children and point events included."""
        out: dict[str, Any] = {
            "scope_id": self.scope_id,
            "kind": self.kind,
            "name": self.name,
            "start": self.start,
            "end": self.end,
            "outcome": self.outcome,
            "duration_ms": self.duration_ms,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq or self.first_seq,
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
        out["events"] = list(self.events)
        return out


def point_event(event: StreamEvent) -> dict[str, Any]:
    """The short form of an event kept in a scope: seq, time, type and what it says."""
    out: dict[str, Any] = {"seq": event.seq, "timestamp": event.timestamp, "type": event.type_name}
    for key in ("node", "probe", "agent", "message", "progress"):
        value = getattr(event, key)
        if value is not None:
            out[key] = value
    if event.data:
        out["data"] = event.data
    return out


class _Builder:
    def __init__(self) -> None:
        self.scopes: dict[str, Scope] = {}
        self.invocations: list[Scope] = []
        self.current: Scope | None = None
        self.unscoped: dict[tuple[str, str], list[Scope]] = {}
        self.holder: Scope | None = None

    def add(self, event: StreamEvent) -> None:
        kind = event.type_name
        sid = event.scope_id
        seq = event.seq or 0
        if kind in _STARTS:
            self._start(event, sid or event.invocation_id)
        elif kind in _OPEN and not (sid and sid in self.scopes):
            self._open(event, _OPEN[kind], sid)
        elif kind in _CLOSE and (scope := self._closing(event, _CLOSE[kind])) is not None:
            _close(scope, event, event.data.get("outcome"))
            if kind == "plan_complete" and event.data.get("steps"):
                scope.detail["steps"] = event.data["steps"]
        elif kind in _TERMINAL and (scope := self._invocation_of(event)) is not None:
            scope.last_seq = seq
            if kind == "scan_paused" and event.data.get("reason") == "pause":
                scope.pauses += 1
                scope.events.append(point_event(event))
            elif scope.outcome is None:
                _close(scope, event, event.data.get("outcome") or _TERMINAL[kind])
                if kind == "scan_paused":
                    scope.detail["reason"] = event.data.get("reason")
            else:
                scope.events.append(point_event(event))
        elif sid and (generic := _generic_kind(kind)) is not None and self._generic(event, sid, *generic):
            pass
        else:
            scope = self._home(event)
            scope.events.append(point_event(event))
            scope.last_seq = max(scope.last_seq, seq)
            if kind == "probe_result":
                scope.results += 1
            elif kind == "node_progress" and event.progress is not None:
                scope.progress = event.progress

    def _generic(self, event: StreamEvent, sid: str, kind: str, opens: bool) -> bool:
        """A ``<kind>_start`` / ``<kind>_end`` pair with its own scope id (model and tool calls, handoffs)."""
        if opens:
            if sid in self.scopes:
                return False
            data = event.data
            name = next(
                (
                    str(data[k])
                    for k in ("name", "tool", "model", "model_name")
                    if isinstance(data.get(k), str)
                ),
                event.agent or kind,
            )
            opened = Scope(sid, kind, name, event.parent_scope_id, event.timestamp, event.seq or 0)
            self.scopes[sid] = opened
            parent = self.scopes.get(event.parent_scope_id or "") or self._home(event)
            parent.children.append(opened)
            return True
        scope = self.scopes.get(sid)
        if scope is None or scope.kind != kind or scope.end is not None:
            return False
        outcome = event.data.get("outcome") or ("error" if event.type_name.endswith("_error") else "ok")
        _close(scope, event, outcome)
        for key in ("input_tokens", "output_tokens"):
            if isinstance(event.data.get(key), int):
                scope.detail[key] = event.data[key]
        return True

    def _start(self, event: StreamEvent, sid: str | None) -> None:
        sid = sid or f"invocation@{event.seq}"
        if sid in self.scopes:
            self.scopes[sid].events.append(point_event(event))
            return
        name = _STARTS[event.type_name]
        scope = Scope(sid, "invocation", name, None, event.timestamp, event.seq or 0)
        scope.detail["graph"] = event.data.get("graph")
        if event.data.get("previous_invocation_id"):
            scope.detail["previous_invocation_id"] = event.data["previous_invocation_id"]
        for key in ("from_checkpoint_id", "discarded_events", "discarded_checkpoints"):
            if event.data.get(key) is not None:
                scope.detail[key] = event.data[key]
        self.scopes[sid] = scope
        self.invocations.append(scope)
        self.current = scope

    def _open(self, event: StreamEvent, kind: str, sid: str | None) -> None:
        name = {"node": event.node, "probe": event.probe, "agent": event.agent}.get(kind) or kind
        scope = Scope(
            sid or f"{kind}@{event.seq}",
            kind,
            name,
            event.parent_scope_id,
            event.timestamp,
            event.seq or 0,
            step=event.step,
        )
        if kind == "plan" and event.data.get("steps"):
            scope.detail["steps"] = event.data["steps"]
        self.scopes[scope.scope_id] = scope
        if sid is None:
            self.unscoped.setdefault((kind, name), []).append(scope)
            parent = self._unscoped_parent(event, kind)
        else:
            parent = self.scopes.get(event.parent_scope_id or "")
        (parent or self._holder(event)).children.append(scope)

    def _closing(self, event: StreamEvent, kind: str) -> Scope | None:
        if event.scope_id:
            return self.scopes.get(event.scope_id)
        name = {"node": event.node, "probe": event.probe, "agent": event.agent}.get(kind) or kind
        stack = self.unscoped.get((kind, name))
        return stack.pop() if stack else None

    def _unscoped_parent(self, event: StreamEvent, kind: str) -> Scope | None:
        if kind != "node" and event.node:
            stack = self.unscoped.get(("node", event.node))
            if stack:
                return stack[-1]
        return self.current

    def _invocation_of(self, event: StreamEvent) -> Scope | None:
        sid = event.scope_id or event.invocation_id
        if sid:
            return self.scopes.get(sid)
        return self.current

    def _home(self, event: StreamEvent) -> Scope:
        """The innermost scope a point event belongs to."""
        if event.scope_id and event.scope_id in self.scopes:
            return self.scopes[event.scope_id]
        for kind, name in (("probe", event.probe), ("agent", event.agent), ("node", event.node)):
            stack = self.unscoped.get((kind, name or ""))
            if name and stack:
                return stack[-1]
        if event.parent_scope_id and event.parent_scope_id in self.scopes:
            return self.scopes[event.parent_scope_id]
        invocation = self._invocation_of(event) if not event.scope_id else None
        return invocation or self.current or self._holder(event)

    def _holder(self, event: StreamEvent) -> Scope:
        if self.holder is None:
            self.holder = Scope("?", "invocation", "unknown", None, event.timestamp, event.seq or 0)
        return self.holder


_KNOWN = frozenset(_OPEN) | frozenset(_CLOSE) | frozenset(_STARTS) | frozenset(_TERMINAL)


def _generic_kind(type_name: str) -> tuple[str, bool] | None:
    """``("llm", True)`` for ``llm_start``, ``("tool", False)`` for ``tool_end``; ``None`` otherwise."""
    if type_name in _KNOWN:
        return None
    for suffix, opens in (("_start", True), ("_end", False), ("_complete", False), ("_error", False)):
        if type_name.endswith(suffix) and len(type_name) > len(suffix):
            return type_name[: -len(suffix)], opens
    return None


def build_timeline(events: Iterable[StreamEvent]) -> list[Scope]:
    """The invocations of a run, each with its scope tree, in the order they started.

    Events that fit no invocation (a log without ``scan_started``, scopes whose parent is missing)
    are collected in a last invocation named ``unknown``.
    """
    builder = _Builder()
    for event in events:
        builder.add(event)
    invocations = list(builder.invocations)
    if builder.holder is not None:
        invocations.append(builder.holder)
    for invocation in invocations:
        _mark_unclosed(invocation, ended=invocation.outcome is not None)
    return invocations


def _close(scope: Scope, event: StreamEvent, outcome: Any) -> None:
    scope.end = event.timestamp
    scope.last_seq = event.seq or scope.last_seq
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
