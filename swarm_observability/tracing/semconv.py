"""Attribute names, span names and values the event-to-span mapping writes.

GenAI names follow OpenTelemetry semantic conventions **v1.41.0** (the last release of the main
semconv repository that carries ``gen_ai.*``; every ``gen_ai.*`` item there is "Development").
``plan`` comes from the successor repository ``semantic-conventions-genai`` (not yet released).
Everything LangGraph- or product-specific lives under the one ``swarm.`` prefix.

Span names (all ``INTERNAL``, the kind semconv gives in-process frameworks, except ``chat``, a
``CLIENT`` span as semconv asks for inference calls):

=====================  ============================  =====================================
event scope            span name                     ``gen_ai.operation.name``
=====================  ============================  =====================================
scan invocation        ``invoke_workflow {graph}``   ``invoke_workflow``
node execution         ``node {node}``               (none: semconv has no node span)
agent                  ``invoke_agent {agent}``      ``invoke_agent``
probe                  ``execute_tool {probe}``      ``execute_tool``
plan                   ``plan {agent or node}``      ``plan``
model call             ``chat {model}`` (``chat``)   ``chat``
tool run               ``execute_tool {tool}``       ``execute_tool``
=====================  ============================  =====================================

Token counts (``gen_ai.usage.*``) go on ``chat`` spans only, never on agent or workflow spans, so a
backend summing a trace's children counts each token once. A ``handoff`` event becomes the span event
``swarm.handoff`` on the span of the agent control leaves.
"""

from __future__ import annotations

import importlib.metadata
from typing import Final

from opentelemetry import trace

SEMCONV_VERSION: Final = "1.41.0"
SCHEMA_URL: Final = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
INSTRUMENTATION_NAME: Final = "swarm_observability"

# -- GenAI / general semconv v1.41 -----------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_CLIENT_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
GEN_AI_CLIENT_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"
ERROR_TYPE: Final = "error.type"
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"

OP_INVOKE_WORKFLOW: Final = "invoke_workflow"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_PLAN: Final = "plan"
OP_CHAT: Final = "chat"

# -- swarm.* -----------------------------------------------------------------------------------------
SWARM_RUN_ID: Final = "swarm.run_id"
SWARM_INVOCATION_ID: Final = "swarm.invocation_id"
SWARM_SCOPE_ID: Final = "swarm.scope_id"
SWARM_NODE: Final = "swarm.node"
SWARM_STEP: Final = "swarm.step"
SWARM_TASK_ID: Final = "swarm.task_id"
SWARM_NAMESPACE: Final = "swarm.namespace"
SWARM_CHECKPOINT_ID: Final = "swarm.checkpoint_id"
SWARM_SEQ_FIRST: Final = "swarm.seq.first"
SWARM_SEQ_LAST: Final = "swarm.seq.last"
SWARM_SEQ: Final = "swarm.seq"
SWARM_OUTCOME: Final = "swarm.outcome"
SWARM_RESUMED: Final = "swarm.resumed"
SWARM_PREVIOUS_INVOCATION_ID: Final = "swarm.previous_invocation_id"
SWARM_FORK_CHECKPOINT_ID: Final = "swarm.fork.from_checkpoint_id"
SWARM_FORK_DISCARDED_EVENTS: Final = "swarm.fork.discarded_events"
SWARM_PAUSE_REASON: Final = "swarm.pause.reason"
SWARM_INTERRUPTS: Final = "swarm.interrupts"
SWARM_CANCEL_REASON: Final = "swarm.cancel.reason"
SWARM_CANCEL_NODE: Final = "swarm.cancel.node"
SWARM_ENDED_BY: Final = "swarm.ended_by"
SWARM_MESSAGE: Final = "swarm.message"
SWARM_PROGRESS: Final = "swarm.progress"
SWARM_DATA: Final = "swarm.data"
SWARM_LINK_TYPE: Final = "swarm.link.type"
SWARM_SPAN_BUDGET: Final = "swarm.spans.budget"
SWARM_SPANS_SUMMARISED: Final = "swarm.spans.summarised"
SWARM_SUMMARY_KIND: Final = "swarm.summary.kind"
SWARM_SUMMARY_NAME: Final = "swarm.summary.name"
SWARM_SUMMARY_COUNT: Final = "swarm.summary.count"
SWARM_SUMMARY_ERRORS: Final = "swarm.summary.errors"
SWARM_SUMMARY_EVENTS: Final = "swarm.summary.events"
SPANS_SUMMARISED_EVENT: Final = "swarm.spans_summarised"
"""Span event on an invocation's root: one per (kind, name) of the spans past the run's span budget."""
SWARM_HANDOFF_EVENT: Final = "swarm.handoff"
"""Span event on the agent span control leaves (a ``handoff`` event)."""
SWARM_HANDOFF_FROM: Final = "swarm.handoff.from_agent"
SWARM_HANDOFF_TO: Final = "swarm.handoff.to_agent"
SWARM_HANDOFF_TOOL: Final = "swarm.handoff.tool"
SWARM_HANDOFF_VIA: Final = "swarm.handoff.via"
SWARM_TIME_TO_FIRST_TOKEN_MS: Final = "swarm.llm.time_to_first_token_ms"
SWARM_COST_USD: Final = "swarm.llm.cost_usd"

OUTCOME_INCOMPLETE: Final = "incomplete"
"""``swarm.outcome`` of a scope whose closing event never came (crashed or abandoned run)."""

ENDED_BY_STRAGGLER_GRACE: Final = "straggler_grace"
"""``swarm.ended_by`` of a scope that was still open ``straggler_grace`` seconds after its scan ended."""

LINK_RESUMES: Final = "resumes"
"""``swarm.link.type`` on the link from a resumed invocation's root to the root it continues."""


def tracer_for(provider: trace.TracerProvider | None) -> trace.Tracer:
    """This package's tracer on ``provider`` (the global provider when ``None``)."""
    provider = provider if provider is not None else trace.get_tracer_provider()
    return provider.get_tracer(INSTRUMENTATION_NAME, instrumentation_version(), schema_url=SCHEMA_URL)


def instrumentation_version() -> str:
    """The installed version of swarm-observability, as instruments and tracers report it."""
    try:
        return importlib.metadata.version("swarm-observability")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"
