"""Span names and attributes from events: what the :class:`~.mapping.SpanMapper` writes on spans.

Pure functions of one event (no mapper state), so the live tracer and ``export_run`` describe a scope
the same way, and a deferred span can be described only when it is built (see :mod:`.deferred`).
GenAI semantic conventions where they name the thing (``gen_ai.*``), ``swarm.*`` otherwise; strings
are cut at 4096 characters and non-scalar values are written as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..events import EventType, Outcome, StreamEvent
from . import semconv as sc
from .semconv import (  # by name where every span writes them: one global lookup per key, not two
    GEN_AI_CONVERSATION_ID,
    SWARM_CHECKPOINT_ID,
    SWARM_NODE,
    SWARM_OUTCOME,
    SWARM_SCOPE_ID,
    SWARM_SEQ_FIRST,
    SWARM_SEQ_LAST,
    SWARM_STEP,
    SWARM_TASK_ID,
)

_RESERVED_DATA = frozenset({"outcome", "duration_ms", "error_type", "error_message"})
_MAX_STR = 4096
_MAX_DATA_KEYS = 32
_DEFAULT_OUTCOME: Mapping[str, Outcome] = {
    EventType.SCAN_COMPLETE: Outcome.OK,
    EventType.SCAN_ERROR: Outcome.ERROR,
    EventType.SCAN_CANCELLED: Outcome.CANCELLED,
}


def describe_scope(event: StreamEvent, kind: str, scope_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """A span's name and opening attributes (``swarm.scope_id`` too when ``scope_id`` is given).

    What is the same for a whole invocation is written on its root span (``swarm.run_id``,
    ``swarm.invocation_id``, ``gen_ai.conversation.id``), as trace-level attributes are. Every other
    span carries only the run's search key: ``gen_ai.conversation.id`` (the thread id), so a backend
    finds a trace by it while the invocation still runs (its root is exported last), and
    ``swarm.run_id`` only where it is not that thread id (a thread id stored under a safe run id).
    Each attribute costs every span the SDK's cleaning and copying, so none is written twice.
    """
    thread_id = event.thread_id
    if kind == "node":  # the most common span: one dict display
        attributes: dict[str, Any] = {
            GEN_AI_CONVERSATION_ID: thread_id or None,
            SWARM_SCOPE_ID: scope_id,
            SWARM_SEQ_FIRST: event.seq,
            SWARM_NODE: event.node or None,
            SWARM_STEP: event.step,
            SWARM_TASK_ID: event.task_id,
            SWARM_CHECKPOINT_ID: event.checkpoint_id,
        }
        if None in attributes.values():
            attributes = {key: value for key, value in attributes.items() if value is not None}
        if thread_id != event.run_id:
            attributes[sc.SWARM_RUN_ID] = event.run_id
        if event.namespace:
            attributes[sc.SWARM_NAMESPACE] = list(event.namespace)
        return f"node {event.node or 'unknown'}", attributes
    if kind == "scan":
        attributes = {sc.SWARM_RUN_ID: event.run_id}
        if thread_id:
            attributes[sc.GEN_AI_CONVERSATION_ID] = thread_id
        if event.invocation_id:
            attributes[sc.SWARM_INVOCATION_ID] = event.invocation_id
    elif thread_id:
        attributes = {sc.GEN_AI_CONVERSATION_ID: thread_id}
        if thread_id != event.run_id:
            attributes[sc.SWARM_RUN_ID] = event.run_id
    else:
        attributes = {sc.SWARM_RUN_ID: event.run_id}
    if scope_id is not None:
        attributes[sc.SWARM_SCOPE_ID] = scope_id
    if event.seq is not None:
        attributes[sc.SWARM_SEQ_FIRST] = event.seq
    if event.node and kind != "scan":
        attributes[sc.SWARM_NODE] = event.node
    if kind == "scan":
        graph = event.data.get("graph")
        attributes[sc.GEN_AI_OPERATION_NAME] = sc.OP_INVOKE_WORKFLOW
        if isinstance(graph, str) and graph:
            attributes[sc.GEN_AI_WORKFLOW_NAME] = graph
        attributes[sc.SWARM_RESUMED] = event.type_name == EventType.SCAN_RESUMED
        previous = event.data.get("previous_invocation_id")
        if isinstance(previous, str) and previous:
            attributes[sc.SWARM_PREVIOUS_INVOCATION_ID] = previous
        fork = event.data.get("from_checkpoint_id")
        if isinstance(fork, str) and fork:
            attributes[sc.SWARM_FORK_CHECKPOINT_ID] = fork
            discarded = event.data.get("discarded_events")
            if isinstance(discarded, int):
                attributes[sc.SWARM_FORK_DISCARDED_EVENTS] = discarded
        if isinstance(graph, str) and graph:
            return f"{sc.OP_INVOKE_WORKFLOW} {graph}", attributes
        return sc.OP_INVOKE_WORKFLOW, attributes
    attributes.update(data_attributes(f"swarm.{kind}.", event.data))
    if kind == "probe":
        tool = event.probe or "unknown"
        attributes[sc.GEN_AI_OPERATION_NAME] = sc.OP_EXECUTE_TOOL
        attributes[sc.GEN_AI_TOOL_NAME] = tool
        call_id = event.data.get("tool_call_id")
        if isinstance(call_id, str):
            attributes[sc.GEN_AI_TOOL_CALL_ID] = call_id
        return f"{sc.OP_EXECUTE_TOOL} {tool}", attributes
    if kind == "llm":
        return _llm_start(event, attributes)
    if kind == "tool":
        return _tool_start(event, attributes)
    if kind == "agent":
        agent = event.agent or "unknown"
        attributes[sc.GEN_AI_OPERATION_NAME] = sc.OP_INVOKE_AGENT
        attributes[sc.GEN_AI_AGENT_NAME] = agent
        for data_key, attr in (
            ("provider", sc.GEN_AI_PROVIDER_NAME),
            ("model", sc.GEN_AI_REQUEST_MODEL),
            ("agent_id", sc.GEN_AI_AGENT_ID),
        ):
            value = event.data.get(data_key)
            if isinstance(value, str) and value:
                attributes[attr] = value
        return f"{sc.OP_INVOKE_AGENT} {agent}", attributes
    owner = event.agent or event.node
    attributes[sc.GEN_AI_OPERATION_NAME] = sc.OP_PLAN
    if event.agent:
        attributes[sc.GEN_AI_AGENT_NAME] = event.agent
    return (f"{sc.OP_PLAN} {owner}" if owner else sc.OP_PLAN), attributes


def _llm_start(event: StreamEvent, attributes: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    data = event.data
    attributes[sc.GEN_AI_OPERATION_NAME] = sc.OP_CHAT
    if event.agent:
        attributes[sc.GEN_AI_AGENT_NAME] = event.agent
    for key, attr in (("provider", sc.GEN_AI_PROVIDER_NAME), ("model", sc.GEN_AI_REQUEST_MODEL)):
        value = data.get(key)
        if isinstance(value, str) and value:
            attributes[attr] = value
    if "input_messages" in data:
        attributes[sc.GEN_AI_INPUT_MESSAGES] = content(data["input_messages"])
    model = data.get("model")
    return (f"{sc.OP_CHAT} {model}" if isinstance(model, str) and model else sc.OP_CHAT), attributes


_USAGE_ATTRIBUTES = (
    ("input_tokens", sc.GEN_AI_USAGE_INPUT_TOKENS),
    ("output_tokens", sc.GEN_AI_USAGE_OUTPUT_TOKENS),
    ("cache_read_tokens", sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS),
    ("reasoning_tokens", sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS),
)


def llm_close_attributes(data: Mapping[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    response_model = data.get("response_model")
    if isinstance(response_model, str) and response_model:
        attributes[sc.GEN_AI_RESPONSE_MODEL] = response_model
    for key, attr in _USAGE_ATTRIBUTES:
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            attributes[attr] = value
    reasons = data.get("finish_reasons")
    if isinstance(reasons, list) and reasons:
        attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [str(r) for r in reasons]
    ttft = data.get("time_to_first_token_ms")
    if isinstance(ttft, int | float):
        attributes[sc.SWARM_TIME_TO_FIRST_TOKEN_MS] = float(ttft)
    cost = data.get("cost_usd")
    if isinstance(cost, int | float):
        attributes[sc.SWARM_COST_USD] = float(cost)
    if "output_messages" in data:
        attributes[sc.GEN_AI_OUTPUT_MESSAGES] = content(data["output_messages"])
    return attributes


def _tool_start(event: StreamEvent, attributes: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    data = event.data
    tool = data.get("tool")
    tool = tool if isinstance(tool, str) and tool else "unknown"
    attributes[sc.GEN_AI_OPERATION_NAME] = sc.OP_EXECUTE_TOOL
    attributes[sc.GEN_AI_TOOL_NAME] = tool
    attributes[sc.GEN_AI_TOOL_TYPE] = str(data.get("tool_type") or "function")
    call_id = data.get("tool_call_id")
    if isinstance(call_id, str) and call_id:
        attributes[sc.GEN_AI_TOOL_CALL_ID] = call_id
    if event.agent:
        attributes[sc.GEN_AI_AGENT_NAME] = event.agent
    if "arguments" in data:
        attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = content(data["arguments"])
    return f"{sc.OP_EXECUTE_TOOL} {tool}", attributes


def close_attributes(event: StreamEvent, kind: str, outcome: str, opened_at: str | None) -> dict[str, Any]:
    """The attributes a closing event adds to its scope's span (``opened_at``: the opening checkpoint)."""
    seq = event.seq
    attributes: dict[str, Any] = (
        {SWARM_OUTCOME: outcome} if seq is None else {SWARM_OUTCOME: outcome, SWARM_SEQ_LAST: seq}
    )
    if kind == "node":
        if event.checkpoint_id and event.checkpoint_id != opened_at:
            attributes[SWARM_CHECKPOINT_ID] = event.checkpoint_id
    elif kind == "scan":
        attributes.update(scan_close_attributes(event))
    elif kind in ("probe", "agent", "plan"):
        attributes.update(data_attributes(f"swarm.{kind}.", event.data))
    elif kind == "llm":
        attributes.update(llm_close_attributes(event.data))
    elif kind == "tool" and "result" in event.data:
        attributes[sc.GEN_AI_TOOL_CALL_RESULT] = content(event.data["result"])
    return attributes


def point_attributes(event: StreamEvent) -> tuple[str, dict[str, Any]]:
    """The name and attributes of the span event a point event becomes."""
    attributes: dict[str, Any] = {}
    if event.seq is not None:
        attributes[sc.SWARM_SEQ] = event.seq
    if event.message is not None:
        attributes[sc.SWARM_MESSAGE] = truncate(event.message)
    if event.progress is not None:
        attributes[sc.SWARM_PROGRESS] = event.progress
    name = event.type_name
    if name == EventType.HANDOFF:
        name = sc.SWARM_HANDOFF_EVENT
        attributes.update(handoff_attributes(event.data))
    elif event.data:
        attributes[sc.SWARM_DATA] = json_text(event.data)
    return name, attributes


def handoff_attributes(data: Mapping[str, Any]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for key, attr in (
        ("from_agent", sc.SWARM_HANDOFF_FROM),
        ("to_agent", sc.SWARM_HANDOFF_TO),
        ("tool", sc.SWARM_HANDOFF_TOOL),
        ("via", sc.SWARM_HANDOFF_VIA),
    ):
        value = data.get(key)
        if isinstance(value, str) and value:
            attributes[attr] = truncate(value)
    return attributes


def content(value: Any) -> str:
    return truncate(value) if isinstance(value, str) else json_text(value)


def is_pause_in_place(event: StreamEvent) -> bool:
    """A pause at a safe point (``reason="pause"``) holds the invocation; it does not end it."""
    return event.type_name == EventType.SCAN_PAUSED and event.data.get("reason") == "pause"


def scan_close_attributes(event: StreamEvent) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    data = event.data
    if event.type_name == EventType.SCAN_PAUSED:
        if isinstance(data.get("reason"), str):
            attributes[sc.SWARM_PAUSE_REASON] = data["reason"]
        if data.get("interrupts"):
            attributes[sc.SWARM_INTERRUPTS] = json_text(data["interrupts"])
    elif event.type_name == EventType.SCAN_CANCELLED:
        if isinstance(data.get("reason"), str):
            attributes[sc.SWARM_CANCEL_REASON] = data["reason"]
        if event.node:
            attributes[sc.SWARM_CANCEL_NODE] = event.node
    return attributes


def inherited_outcome(event: StreamEvent) -> str:
    """The outcome of scopes that a closing event ends: ``cancelled`` after a cancel, else ``incomplete``."""
    return Outcome.CANCELLED.value if outcome_of(event) == Outcome.CANCELLED else sc.OUTCOME_INCOMPLETE


def outcome_of(event: StreamEvent) -> str:
    value = event.data.get("outcome")
    if isinstance(value, str) and value:
        return value
    default = _DEFAULT_OUTCOME.get(event.type_name)
    if default is not None:
        return default.value
    if event.type_name == EventType.SCAN_PAUSED:
        return Outcome.INTERRUPTED.value if event.data.get("reason") == "interrupt" else Outcome.PAUSED.value
    return Outcome.ERROR.value if event.data.get("error_type") else Outcome.OK.value


def data_attributes(prefix: str, data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key in _RESERVED_DATA or not isinstance(key, str):
            continue
        if len(out) >= _MAX_DATA_KEYS:
            break
        out[prefix + key] = _attribute_value(value)
    return out


def _attribute_value(value: Any) -> Any:
    if isinstance(value, bool | float) or (isinstance(value, int) and -(2**63) <= value < 2**63):
        return value
    if isinstance(value, str):
        return truncate(value)
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return [truncate(v) for v in value]
    if isinstance(value, list | tuple) and value and all(isinstance(v, bool) for v in value):
        return list(value)
    return json_text(value)


def json_text(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)
    return truncate(text)


def truncate(text: str) -> str:
    return text if len(text) <= _MAX_STR else text[: _MAX_STR - 3] + "..."
