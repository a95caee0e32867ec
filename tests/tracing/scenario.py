"""Build realistic event sequences (as the instrumentation emits them) and compare span trees as data.

``Scenario`` hands out seqs and a fake clock that advances 5 ms per event, and remembers each open
scope so closing events carry the same scope fields. ``tree`` turns finished SDK spans into plain
dicts keyed by the ``swarm.scope_id`` attribute, with parents and links expressed as scope ids, so
two trees built with different span ids compare equal.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from swarm_observability.events import EventType, StreamEvent, make_event

_KINDS = {
    "node": (EventType.NODE_ENTER, EventType.NODE_EXIT, "node"),
    "probe": (EventType.PROBE_START, EventType.PROBE_COMPLETE, "probe"),
    "agent": (EventType.AGENT_START, EventType.AGENT_COMPLETE, "agent"),
    "plan": (EventType.PLAN_START, EventType.PLAN_COMPLETE, "agent"),
}
_SCOPE_FIELDS = ("node", "probe", "agent", "step", "task_id", "namespace")
T0 = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


class Scenario:
    """Events of one run (one thread), invocation after invocation."""

    def __init__(self, run_id: str = "run-1", thread_id: str = "thread-1", graph: str = "swarm") -> None:
        self.run_id = run_id
        self.thread_id = thread_id
        self.graph = graph
        self.events: list[StreamEvent] = []
        self.now = T0
        self.invocation: str | None = None
        self._scopes: dict[str, dict[str, Any]] = {}

    def _emit(self, type: EventType | str, **fields: Any) -> StreamEvent:
        self.now += timedelta(milliseconds=5)
        fields.setdefault("timestamp", self.now)
        event = make_event(
            type,
            self.run_id,
            seq=len(self.events) + 1,
            thread_id=self.thread_id,
            invocation_id=self.invocation,
            **fields,
        )
        self.events.append(event)
        return event

    def start(self, *, resumed_from: str | None = None) -> str:
        """Open a scan invocation (``scan_resumed`` when it continues ``resumed_from``)."""
        self.invocation = uuid.uuid4().hex
        data: dict[str, Any] = {"graph": self.graph}
        if resumed_from:
            data["previous_invocation_id"] = resumed_from
        self._emit(
            EventType.SCAN_RESUMED if resumed_from else EventType.SCAN_STARTED,
            scope_id=self.invocation,
            data=data,
        )
        return self.invocation

    def end(self, type: EventType, outcome: str, **data: Any) -> StreamEvent:
        """Close the invocation with a terminal scan event."""
        node = data.pop("node", None)
        return self._emit(
            type, scope_id=self.invocation, node=node, data={"outcome": outcome, "duration_ms": 1.0, **data}
        )

    def open(
        self,
        kind: str,
        name: str,
        parent: str | None = None,
        *,
        data: dict[str, Any] | None = None,
        **fields: Any,
    ) -> str:
        """Open a node/probe/agent/plan scope under ``parent`` (the invocation when omitted)."""
        opener, _, name_field = _KINDS[kind]
        scope = uuid.uuid4().hex
        parent = parent or self.invocation
        common = {"scope_id": scope, "parent_scope_id": parent, **fields}
        if kind in ("node",):
            common["node"] = name
        else:
            common[name_field if kind != "plan" else "agent"] = name
        if kind != "node" and "node" not in common:
            common["node"] = self._node_of(parent)
        self._scopes[scope] = {"kind": kind, **common}
        self._emit(opener, data=data or {}, **common)
        return scope

    def close(self, scope: str, outcome: str = "ok", **data: Any) -> StreamEvent:
        """Close a scope opened by :meth:`open`."""
        info = dict(self._scopes[scope])
        _, closer, _ = _KINDS[info.pop("kind")]
        return self._emit(closer, data={"outcome": outcome, "duration_ms": 1.0, **data}, **info)

    def point(self, type: EventType | str, scope: str, **fields: Any) -> StreamEvent:
        """A point event (progress, log, heartbeat, probe_result) inside ``scope``."""
        info = self._scopes.get(scope, {"parent_scope_id": None})
        keep = {k: v for k, v in info.items() if k in _SCOPE_FIELDS}
        return self._emit(type, scope_id=scope, parent_scope_id=info["parent_scope_id"], **keep, **fields)

    def _node_of(self, scope: str | None) -> str | None:
        while scope in self._scopes:
            if self._scopes[scope]["kind"] == "node":
                return self._scopes[scope]["node"]
            scope = self._scopes[scope]["parent_scope_id"]
        return None


def tree(spans: Iterable[ReadableSpan], *, timings: bool = True) -> dict[str, dict[str, Any]]:
    """Span tree as data: scope id -> name, kind, parent scope, attributes, status, events, links."""
    spans = list(spans)
    scope_of = {(s.context.trace_id, s.context.span_id): s.attributes["swarm.scope_id"] for s in spans}
    out: dict[str, dict[str, Any]] = {}
    for s in spans:
        scope = s.attributes["swarm.scope_id"]
        parent = (s.parent.trace_id, s.parent.span_id) if s.parent else None
        entry = {
            "name": s.name,
            "kind": s.kind.name,
            "parent": scope_of.get(parent, "<outside>") if parent else None,
            "attributes": dict(s.attributes),
            "status": (s.status.status_code.name, s.status.description),
            "events": [(e.name, dict(e.attributes)) for e in s.events],
            "links": [
                (scope_of.get((ln.context.trace_id, ln.context.span_id), "<outside>"), dict(ln.attributes))
                for ln in s.links
            ],
            "same_trace_as_parent": s.parent is None or s.parent.trace_id == s.context.trace_id,
        }
        if timings:
            entry["times"] = (s.start_time, s.end_time)
            entry["event_times"] = [e.timestamp for e in s.events]
        assert scope not in out, f"two spans for scope {scope}"
        out[scope] = entry
    return out


def by_name(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    """The finished spans called ``name``."""
    return [s for s in spans if s.name == name]
