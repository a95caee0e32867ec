"""The run state's data model: :class:`RunState` and the records in it (frozen pydantic models)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

STATE_VERSION = 2
"""Version of the fold; bump it when the same events would give a different state."""


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
