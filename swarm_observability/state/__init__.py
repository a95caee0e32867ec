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

from .builder import RunStateBuilder
from .models import (
    STATE_VERSION,
    CostSummary,
    ErrorRecord,
    HandoffRecord,
    NodeActivity,
    RunState,
    RunStatus,
    ScopeStats,
    Usage,
    UsageTotals,
)
from .rebuild import cut_index, rebuild_run_state

__all__ = [
    "STATE_VERSION",
    "CostSummary",
    "ErrorRecord",
    "HandoffRecord",
    "NodeActivity",
    "RunState",
    "RunStateBuilder",
    "RunStatus",
    "ScopeStats",
    "Usage",
    "UsageTotals",
    "cut_index",
    "rebuild_run_state",
]
