"""The fold: :class:`RunStateBuilder` turns one run's events, in seq order, into a :class:`RunState`.

It reads nothing but the events (see :mod:`swarm_observability.state` for the rules).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ..events import EventType, StreamEvent, validate_run_id
from ..exceptions import EventValidationError, StoreCorruptionError
from .models import ErrorRecord, HandoffRecord, NodeActivity, RunState, RunStatus, ScopeStats
from .usage import UsageLedger

_T = EventType


class _Scope:
    __slots__ = ("finished", "last_outcome", "name", "outcomes", "results", "started", "total_ms")

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = 0
        self.finished = 0
        self.outcomes: Counter[str] = Counter()
        self.last_outcome: str | None = None
        self.total_ms = 0.0
        self.results = 0

    def close(self, data: Mapping[str, Any]) -> None:
        self.finished += 1
        outcome = str(data.get("outcome", "ok"))
        self.outcomes[outcome] += 1
        self.last_outcome = outcome
        duration = data.get("duration_ms")
        if isinstance(duration, int | float):
            self.total_ms += float(duration)

    def freeze(self) -> ScopeStats:
        return ScopeStats(
            name=self.name,
            started=self.started,
            finished=self.finished,
            outcomes=dict(self.outcomes),
            last_outcome=self.last_outcome,
            total_duration_ms=self.total_ms,
            results=self.results,
        )


_TERMINAL_STATUS = {
    _T.SCAN_COMPLETE.value: RunStatus.COMPLETED,
    _T.SCAN_ERROR.value: RunStatus.FAILED,
    _T.SCAN_CANCELLED.value: RunStatus.CANCELLED,
    _T.SCAN_PAUSED.value: RunStatus.PAUSED,
}
_SCOPE_KINDS = {
    _T.PROBE_START.value: ("probes", "probe", True),
    _T.PROBE_COMPLETE.value: ("probes", "probe", False),
    _T.AGENT_START.value: ("agents", "agent", True),
    _T.AGENT_COMPLETE.value: ("agents", "agent", False),
    _T.PLAN_START.value: ("plans", "node", True),
    _T.PLAN_COMPLETE.value: ("plans", "node", False),
}


class RunStateBuilder:
    """Fold the events of one run, in seq order, into a :class:`RunState`.

    Args:
        run_id: the run; events of any other run are refused.

    Raises:
        InvalidRunIdError: ``run_id`` is no run id a store could hold (empty, not a string, ...), so
            no log could fold into it: refused rather than answered with an empty ``pending`` run.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = validate_run_id(run_id)
        self._last_seq = 0
        self._status = RunStatus.PENDING
        self._status_reason: str | None = None
        self._graph: str | None = None
        self._thread_id: str | None = None
        self._invocations: list[str] = []
        self._open_nodes: dict[str, dict[str, Any]] = {}
        self._scopes: dict[str, dict[str, _Scope]] = {
            "nodes": {},
            "probes": {},
            "agents": {},
            "plans": {},
            "tools": {},
        }
        self._usage = UsageLedger()
        self._handoffs: list[HandoffRecord] = []
        self._active_agent: str | None = None
        self._node_progress: dict[str, float] = {}
        self._progress: float | None = None
        self._last_message: str | None = None
        self._errors: list[ErrorRecord] = []
        self._started_at: datetime | None = None
        self._ended_at: datetime | None = None
        self._last_at: datetime | None = None
        self._counts: Counter[str] = Counter()
        self._cached: RunState | None = None

    @property
    def last_seq(self) -> int:
        """Seq of the last event folded."""
        return self._last_seq

    def apply(self, event: StreamEvent) -> None:
        """Fold one event; it must be the next seq of this run.

        Raises:
            StoreCorruptionError: ``event.seq`` is not ``last_seq + 1`` (a gap, repeat or reorder).
            EventValidationError: the event belongs to another run.
        """
        if event.run_id != self.run_id:
            raise EventValidationError(
                f"event {event.id} of run {event.run_id!r} given to the state of run {self.run_id!r}"
            )
        if event.seq != self._last_seq + 1:
            raise StoreCorruptionError(
                f"events of run {self.run_id!r} are not contiguous: expected seq {self._last_seq + 1}, "
                f"got {event.seq}",
                location=f"run {self.run_id} seq {event.seq}",
            )
        self._last_seq = event.seq
        self._cached = None
        kind = event.type_name
        self._counts[kind] += 1
        if self._started_at is None:
            self._started_at = event.timestamp
        self._last_at = event.timestamp
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event)
        elif kind in _SCOPE_KINDS:
            self._scope_event(event, *_SCOPE_KINDS[kind])

    def apply_all(self, events: Iterable[StreamEvent]) -> RunStateBuilder:
        """Fold every event in order; returns ``self``."""
        for event in events:
            self.apply(event)
        return self

    @property
    def state(self) -> RunState:
        """The state after the events folded so far (cached until the next :meth:`apply`)."""
        if self._cached is None:
            self._cached = self._freeze()
        return self._cached

    def _scan_start(self, event: StreamEvent) -> None:
        invocation = event.invocation_id or event.scope_id
        is_new = invocation is None or invocation not in self._invocations
        if is_new:
            self._invocations.append(invocation or f"seq-{event.seq}")
        self._graph = event.data.get("graph", self._graph)
        self._thread_id = event.thread_id or self._thread_id
        self._status = RunStatus.RUNNING
        self._status_reason = None
        self._ended_at = None

    def _scan_end(self, event: StreamEvent) -> None:
        self._status = _TERMINAL_STATUS[event.type_name]
        reason = event.data.get("reason")
        self._status_reason = str(reason) if reason is not None else None
        self._ended_at = event.timestamp
        if event.type_name == _T.SCAN_ERROR.value:
            self._record_error(event)
        if event.type_name == _T.SCAN_COMPLETE.value:
            self._progress = 1.0
        if not (event.type_name == _T.SCAN_PAUSED.value and reason == "pause"):
            invocation = event.invocation_id or event.scope_id
            self._open_nodes = {
                scope: info for scope, info in self._open_nodes.items() if info["invocation_id"] != invocation
            }

    def _node_enter(self, event: StreamEvent) -> None:
        name = event.node or "?"
        self._scope("nodes", name).started += 1
        self._open_nodes[event.scope_id or f"seq-{event.seq}"] = {
            "node": name,
            "scope_id": event.scope_id,
            "invocation_id": event.invocation_id,
            "step": event.step,
            "task_id": event.task_id,
            "entered_at": event.timestamp,
            "progress": None,
        }

    def _node_exit(self, event: StreamEvent) -> None:
        name = event.node or "?"
        self._scope("nodes", name).close(event.data)
        self._open_nodes.pop(event.scope_id or "", None)
        if event.data.get("outcome") == "error":
            self._record_error(event)

    def _node_progressed(self, event: StreamEvent) -> None:
        if event.progress is not None:
            if event.node is not None:
                self._node_progress[event.node] = event.progress
            if event.scope_id in self._open_nodes:
                self._open_nodes[event.scope_id]["progress"] = event.progress
            if self._status is not RunStatus.COMPLETED:
                self._progress = event.progress
        if event.message is not None:
            self._last_message = event.message

    def _log(self, event: StreamEvent) -> None:
        if event.message is not None:
            self._last_message = event.message

    def _probe_result(self, event: StreamEvent) -> None:
        self._scope("probes", event.probe or "?").results += 1

    def _agent_start(self, event: StreamEvent) -> None:
        self._scope_event(event, "agents", "agent", True)
        if event.agent:
            self._active_agent = event.agent

    def _llm_closed(self, event: StreamEvent) -> None:
        self._usage.model_call(event)
        if event.data.get("outcome") == "error":
            self._record_error(event)

    def _tool_start(self, event: StreamEvent) -> None:
        self._scope("tools", _tool_name(event)).started += 1

    def _tool_closed(self, event: StreamEvent) -> None:
        self._scope("tools", _tool_name(event)).close(event.data)
        self._usage.tool_call(event.agent or "")
        if event.data.get("outcome") == "error":
            self._record_error(event)

    def _handoff(self, event: StreamEvent) -> None:
        data = event.data
        to_agent = _str_or_none(data.get("to_agent"))
        self._handoffs.append(
            HandoffRecord(
                seq=event.seq or 0,
                at=event.timestamp,
                from_agent=_str_or_none(data.get("from_agent")),
                to_agent=to_agent,
                tool=_str_or_none(data.get("tool")),
                via=_str_or_none(data.get("via")),
            )
        )
        if to_agent:
            self._active_agent = to_agent

    def _scope_event(self, event: StreamEvent, kind: str, name_field: str, opens: bool) -> None:
        name = getattr(event, name_field) or ""
        if kind == "probes" or kind == "agents":
            name = name or "?"
        scope = self._scope(kind, name)
        if opens:
            scope.started += 1
            return
        scope.close(event.data)
        if event.data.get("outcome") == "error":
            self._record_error(event)

    def _scope(self, kind: str, name: str) -> _Scope:
        table = self._scopes[kind]
        scope = table.get(name)
        if scope is None:
            scope = table[name] = _Scope(name)
        return scope

    def _record_error(self, event: StreamEvent) -> None:
        data = event.data
        self._errors.append(
            ErrorRecord(
                seq=event.seq or 0,
                event_type=event.type_name,
                error_type=_str_or_none(data.get("error_type")),
                message=_str_or_none(data.get("error_message")) or event.message,
                node=event.node,
                probe=event.probe,
                agent=event.agent,
            )
        )

    def _freeze(self) -> RunState:
        ended = self._ended_at if self._status not in (RunStatus.PENDING, RunStatus.RUNNING) else None
        until = ended or self._last_at
        duration = (until - self._started_at).total_seconds() if until and self._started_at else None
        return RunState(
            run_id=self.run_id,
            status=self._status,
            status_reason=self._status_reason,
            graph=self._graph,
            thread_id=self._thread_id,
            invocations=len(self._invocations),
            current_invocation_id=self._invocations[-1] if self._invocations else None,
            current_nodes=tuple(NodeActivity(**info) for info in self._open_nodes.values()),
            nodes={k: s.freeze() for k, s in self._scopes["nodes"].items()},
            probes={k: s.freeze() for k, s in self._scopes["probes"].items()},
            agents={k: s.freeze() for k, s in self._scopes["agents"].items()},
            plans={k: s.freeze() for k, s in self._scopes["plans"].items()},
            node_progress=dict(self._node_progress),
            progress=self._progress,
            last_message=self._last_message,
            errors=tuple(self._errors),
            started_at=self._started_at,
            ended_at=ended,
            last_event_at=self._last_at,
            duration_s=duration,
            event_counts=dict(self._counts),
            last_seq=self._last_seq,
            tools={k: s.freeze() for k, s in self._scopes["tools"].items()},
            usage=self._usage.freeze(),
            handoffs=tuple(self._handoffs),
            active_agent=self._active_agent,
        )


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _tool_name(event: StreamEvent) -> str:
    name = event.data.get("tool")
    return name if isinstance(name, str) and name else "?"


_HANDLERS = {
    _T.SCAN_STARTED.value: RunStateBuilder._scan_start,
    _T.SCAN_RESUMED.value: RunStateBuilder._scan_start,
    **{kind: RunStateBuilder._scan_end for kind in _TERMINAL_STATUS},
    _T.NODE_ENTER.value: RunStateBuilder._node_enter,
    _T.NODE_EXIT.value: RunStateBuilder._node_exit,
    _T.NODE_PROGRESS.value: RunStateBuilder._node_progressed,
    _T.LOG.value: RunStateBuilder._log,
    _T.PROBE_RESULT.value: RunStateBuilder._probe_result,
    _T.AGENT_START.value: RunStateBuilder._agent_start,
    _T.LLM_END.value: RunStateBuilder._llm_closed,
    _T.LLM_ERROR.value: RunStateBuilder._llm_closed,
    _T.TOOL_START.value: RunStateBuilder._tool_start,
    _T.TOOL_END.value: RunStateBuilder._tool_closed,
    _T.TOOL_ERROR.value: RunStateBuilder._tool_closed,
    _T.HANDOFF.value: RunStateBuilder._handoff,
}
