"""Run state derived from the event log: a pure fold, rebuilt identically any time.

:class:`RunStateBuilder` folds events one by one (live consumers, the CLI's follow mode);
:func:`rebuild_run_state` folds a whole log from scratch. The fold reads nothing but the events (no
clock, no LangGraph state), so a cached :class:`RunState` can be thrown away and rebuilt to the same
value. That matters because LangGraph's own view can mislead: after an aborted stream
``get_state().next == ()`` although nodes never ran; the log decides.

Rules:

* ``seq`` must run 1, 2, 3 ... without a gap or repeat; anything else raises
  :class:`StoreCorruptionError`, never a silently wrong state.
* The status is decided by the latest scan lifecycle event: ``scan_started``/``scan_resumed`` ->
  running, ``scan_complete`` -> completed, ``scan_error`` -> failed, ``scan_cancelled`` -> cancelled,
  ``scan_paused`` -> paused. A pause at a safe point (``scan_paused`` with reason ``pause``) followed by
  ``scan_resumed`` is therefore running again. A log without any event is ``pending``.
* Model and tool calls (``llm_end``/``llm_error``, ``tool_end``/``tool_error``) add up in ``usage``:
  calls, tokens as the models reported them, per agent and per model; a call that reported no usage
  is counted in ``calls_without_usage``, never as 0 tokens. With a price table the ``cost_usd`` of each
  call (stamped on ``llm_end`` by the observer) adds up in ``usage.cost``; models without a price are
  listed in ``usage.cost.unpriced_models``, never priced as zero.
* ``handoffs`` lists the ``handoff`` events in order; ``active_agent`` is the agent that got control
  last: the ``to_agent`` of the latest handoff or the latest ``agent_start``, whichever came later.
* Event types unknown to this release are counted and otherwise ignored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .events import EventType, StreamEvent
from .exceptions import EventValidationError, StoreCorruptionError

STATE_VERSION = 2
"""Version of the fold; bump it when the same events would give a different state."""

_T = EventType


class RunStatus(StrEnum):
    """Where a run stands, according to its log."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class NodeActivity(_Frozen):
    """A node execution that has entered and not exited."""

    node: str = Field(description="Node name.")
    scope_id: str | None = Field(description="Scope of the execution (node_enter.scope_id).")
    invocation_id: str | None = Field(description="Invocation it runs in.")
    step: int | None = Field(description="LangGraph superstep.")
    task_id: str | None = Field(description="LangGraph task id.")
    entered_at: datetime = Field(description="Timestamp of node_enter.")
    progress: float | None = Field(description="Latest progress reported in this execution.")


class ScopeStats(_Frozen):
    """Executions of one node, probe, agent or plan, aggregated over the run."""

    name: str = Field(description="Node, probe, agent or plan name.")
    started: int = Field(description="How many executions opened (enter/start events).")
    finished: int = Field(description="How many closed (exit/complete events).")
    outcomes: dict[str, int] = Field(description="Closed executions per outcome (ok, error, ...).")
    last_outcome: str | None = Field(description="Outcome of the latest closed execution.")
    total_duration_ms: float = Field(description="Sum of data.duration_ms over closed executions.")
    results: int = Field(default=0, description="probe_result events (probes only).")


class ErrorRecord(_Frozen):
    """One failure found in the log."""

    seq: int = Field(description="Seq of the event that reported it.")
    event_type: str = Field(description="scan_error, node_exit, probe_complete, agent_complete ...")
    error_type: str | None = Field(description="Exception class name.")
    message: str | None = Field(description="Exception message.")
    node: str | None = Field(description="Node it happened in, if known.")
    probe: str | None = Field(default=None, description="Probe it happened in, if any.")
    agent: str | None = Field(default=None, description="Agent it happened in, if any.")


class UsageTotals(_Frozen):
    """Model and tool calls and their tokens (one agent's, one model's, or the whole run's)."""

    llm_calls: int = Field(default=0, description="Model calls that ended (llm_end or llm_error).")
    tool_calls: int = Field(default=0, description="Tool runs that ended (tool_end or tool_error).")
    input_tokens: int = Field(default=0, description="Sum of the models' reported input tokens.")
    output_tokens: int = Field(default=0, description="Sum of the models' reported output tokens.")
    total_tokens: int = Field(default=0, description="Sum of the models' reported total tokens.")
    calls_without_usage: int = Field(default=0, description="Model calls that reported no token usage.")
    cost_usd: float | None = Field(default=None, description="Sum of the priced calls' cost (with prices).")


class CostSummary(_Frozen):
    """What the run's model calls cost, by the observer's price table."""

    total_usd: float = Field(description="Sum of cost_usd over the priced calls.")
    priced_calls: int = Field(description="Calls with a price.")
    unpriced_calls: int = Field(description="Calls of models the price table does not know.")
    unpriced_models: tuple[str, ...] = Field(description="Those models (sorted), never priced as zero.")


class Usage(UsageTotals):
    """The run's model and tool usage, with breakdowns of the same fields."""

    by_agent: dict[str, UsageTotals] = Field(
        default_factory=dict, description="Per agent ('' for calls outside any agent)."
    )
    by_model: dict[str, UsageTotals] = Field(
        default_factory=dict, description="Per request model (else response model; '' if unnamed)."
    )
    cost: CostSummary | None = Field(default=None, description="Only when calls were priced.")


class HandoffRecord(_Frozen):
    """Control passed from one agent to another (a ``handoff`` event)."""

    seq: int = Field(description="Seq of the handoff event.")
    at: datetime = Field(description="Its timestamp.")
    from_agent: str | None = Field(description="Agent control left.")
    to_agent: str | None = Field(description="Agent control went to.")
    tool: str | None = Field(default=None, description="Handoff tool, when a tool did it.")
    via: str | None = Field(default=None, description="tool, command or graph.")


class RunState(_Frozen):
    """Everything the log says about one run. Build with :func:`rebuild_run_state` or RunStateBuilder."""

    version: int = Field(default=STATE_VERSION, description="Version of the fold that made this state.")
    run_id: str = Field(description="The run.")
    status: RunStatus = Field(description="See the module docstring.")
    status_reason: str | None = Field(description="data.reason of the deciding cancel/pause event.")
    graph: str | None = Field(description="data.graph of the latest scan_started/scan_resumed.")
    thread_id: str | None = Field(description="LangGraph thread id of the latest invocation.")
    invocations: int = Field(description="Distinct invocations (graph calls) seen.")
    current_invocation_id: str | None = Field(description="The latest invocation.")
    current_nodes: tuple[NodeActivity, ...] = Field(description="Node executions entered and not exited.")
    nodes: dict[str, ScopeStats] = Field(description="Per node name.")
    probes: dict[str, ScopeStats] = Field(description="Per probe name.")
    agents: dict[str, ScopeStats] = Field(description="Per agent name.")
    plans: dict[str, ScopeStats] = Field(description="Per plan (keyed by node, or '' outside nodes).")
    node_progress: dict[str, float] = Field(description="Latest progress reported per node.")
    progress: float | None = Field(description="1.0 once completed, else the latest progress reported.")
    last_message: str | None = Field(description="Latest node_progress or log message.")
    errors: tuple[ErrorRecord, ...] = Field(description="Every failure, in log order.")
    started_at: datetime | None = Field(description="Timestamp of the first event.")
    ended_at: datetime | None = Field(description="Timestamp of the deciding terminal event, if not running.")
    last_event_at: datetime | None = Field(description="Timestamp of the last event.")
    duration_s: float | None = Field(description="(ended_at or last_event_at) - started_at.")
    event_counts: dict[str, int] = Field(description="Events per type name.")
    last_seq: int = Field(description="Seq of the last event folded (0 for none).")
    tools: dict[str, ScopeStats] = Field(default_factory=dict, description="Per tool name.")
    usage: Usage = Field(default_factory=Usage, description="Model and tool calls and tokens.")
    handoffs: tuple[HandoffRecord, ...] = Field(default=(), description="Handoffs, in log order.")
    active_agent: str | None = Field(default=None, description="The agent holding control now.")

    @property
    def is_terminal(self) -> bool:
        """Whether the run has stopped (completed, failed, cancelled or paused)."""
        return self.status not in (RunStatus.PENDING, RunStatus.RUNNING)


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
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
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
        self._usage = _Totals()
        self._by_agent: dict[str, _Totals] = {}
        self._by_model: dict[str, _Totals] = {}
        self._unpriced: set[str] = set()
        self._priced_calls = 0
        self._unpriced_calls = 0
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

    def _node_progress(self, event: StreamEvent) -> None:
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
        data = event.data
        model = data.get("model") or data.get("response_model")
        model = model if isinstance(model, str) else ""
        tokens = {k: data.get(k) for k in _TOKEN_FIELDS}
        cost = data.get("cost_usd") if "cost_usd" in data else _NOT_PRICED
        for totals in self._totals(event.agent or "", model):
            totals.llm(tokens, cost)
        if cost is not _NOT_PRICED:
            if isinstance(cost, int | float):
                self._priced_calls += 1
            else:
                self._unpriced_calls += 1
                self._unpriced.add(model or "(unnamed)")
        if data.get("outcome") == "error":
            self._record_error(event)

    def _tool_start(self, event: StreamEvent) -> None:
        self._scope("tools", _tool_name(event)).started += 1

    def _tool_closed(self, event: StreamEvent) -> None:
        self._scope("tools", _tool_name(event)).close(event.data)
        self._usage.tool_calls += 1
        self._agent_totals(event.agent or "").tool_calls += 1
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

    def _totals(self, agent: str, model: str) -> tuple[_Totals, _Totals, _Totals]:
        by_model = self._by_model.get(model)
        if by_model is None:
            by_model = self._by_model[model] = _Totals()
        return self._usage, self._agent_totals(agent), by_model

    def _agent_totals(self, agent: str) -> _Totals:
        totals = self._by_agent.get(agent)
        if totals is None:
            totals = self._by_agent[agent] = _Totals()
        return totals

    def _freeze_usage(self) -> Usage:
        priced = self._priced_calls or self._unpriced_calls
        cost = None
        if priced:
            cost = CostSummary(
                total_usd=self._usage.cost or 0.0,
                priced_calls=self._priced_calls,
                unpriced_calls=self._unpriced_calls,
                unpriced_models=tuple(sorted(self._unpriced)),
            )
        return Usage(
            **self._usage.fields(),
            by_agent={k: UsageTotals(**v.fields()) for k, v in self._by_agent.items()},
            by_model={k: UsageTotals(**v.fields()) for k, v in self._by_model.items()},
            cost=cost,
        )

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
            usage=self._freeze_usage(),
            handoffs=tuple(self._handoffs),
            active_agent=self._active_agent,
        )


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def _tool_name(event: StreamEvent) -> str:
    name = event.data.get("tool")
    return name if isinstance(name, str) and name else "?"


_TOKEN_FIELDS = ("input_tokens", "output_tokens", "total_tokens")
_NOT_PRICED = object()


class _Totals:
    __slots__ = ("calls_without_usage", "cost", "llm_calls", "tokens", "tool_calls")

    def __init__(self) -> None:
        self.llm_calls = 0
        self.tool_calls = 0
        self.calls_without_usage = 0
        self.tokens = dict.fromkeys(_TOKEN_FIELDS, 0)
        self.cost: float | None = None

    def llm(self, tokens: Mapping[str, Any], cost: Any) -> None:
        self.llm_calls += 1
        reported = False
        for key, value in tokens.items():
            if isinstance(value, int) and not isinstance(value, bool):
                self.tokens[key] += value
                reported = True
        if not reported:
            self.calls_without_usage += 1
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            self.cost = (self.cost or 0.0) + float(cost)

    def fields(self) -> dict[str, Any]:
        return {
            "llm_calls": self.llm_calls,
            "tool_calls": self.tool_calls,
            "calls_without_usage": self.calls_without_usage,
            "cost_usd": self.cost,
            **self.tokens,
        }


_HANDLERS = {
    _T.SCAN_STARTED.value: RunStateBuilder._scan_start,
    _T.SCAN_RESUMED.value: RunStateBuilder._scan_start,
    **{kind: RunStateBuilder._scan_end for kind in _TERMINAL_STATUS},
    _T.NODE_ENTER.value: RunStateBuilder._node_enter,
    _T.NODE_EXIT.value: RunStateBuilder._node_exit,
    _T.NODE_PROGRESS.value: RunStateBuilder._node_progress,
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


def rebuild_run_state(store_or_events: Any, run_id: str, *, until: int | str | None = None) -> RunState:
    """Fold the log of ``run_id`` from scratch, whole or up to a point.

    Args:
        store_or_events: an :class:`~swarm_observability.stores.base.EventStore` (read with
            ``iter_events``), or any iterable of events (events of other runs are skipped).
        run_id: the run.
        until: stop at a point of the log: a seq (events ``<= until``), a checkpoint label recorded
            with ``checkpoint(label)`` / ``create_checkpoint`` (its latest use), or a LangGraph
            checkpoint id. A checkpoint is the state the run had when the graph stood at it: every
            event before the first one emitted under that checkpoint (the nodes that ran from it are
            not yet begun); a label whose checkpoint no event ran under cuts at the label itself.

    Raises:
        StoreCorruptionError: the run's seqs are not 1..n contiguous.
        ValueError: ``until`` names no seq, label or checkpoint of the run.
    """
    builder = RunStateBuilder(run_id)
    if hasattr(store_or_events, "iter_events"):
        events: Iterable[StreamEvent] = store_or_events.iter_events(run_id)
    else:
        events = (e for e in store_or_events if e.run_id == run_id)
    if until is None:
        return builder.apply_all(events).state
    if isinstance(until, bool) or not isinstance(until, int | str):
        raise ValueError(f"until must be a seq, a checkpoint label or a checkpoint id, not {until!r}")
    if isinstance(until, int):
        if until < 0:
            raise ValueError(f"until={until}: a seq is 0 or more")
        return builder.apply_all(e for e in events if (e.seq or 0) <= until).state
    events = list(events)
    return builder.apply_all(events[: cut_index(events, until)]).state


def cut_index(events: list[StreamEvent], point: str) -> int:
    """How many leading ``events`` (one run's, in seq order) happened before ``point``, a checkpoint
    label (its latest use) or a LangGraph checkpoint id; see :func:`rebuild_run_state`.

    Raises:
        ValueError: ``point`` is neither a label nor a checkpoint id of these events.
    """
    checkpoint_id, label_at = point, None
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if event.type_name == _T.CHECKPOINT and event.data.get("label") == point and event.checkpoint_id:
            checkpoint_id, label_at = event.checkpoint_id, index + 1
            break
    for index, event in enumerate(events):
        if event.checkpoint_id == checkpoint_id and event.type_name != _T.CHECKPOINT:
            return index
    if label_at is not None:
        return label_at
    for index, event in enumerate(events):
        if event.checkpoint_id == checkpoint_id:
            return index
    raise ValueError(f"{point!r} is neither a checkpoint label nor a checkpoint id of this run")
