"""Attribute names, span names and values the event-to-span mapping writes.

GenAI names follow OpenTelemetry semantic conventions **v1.41.0** (the last release of the main
semconv repository that carries ``gen_ai.*``; every ``gen_ai.*`` item there is "Development").
``plan`` comes from the successor repository ``semantic-conventions-genai`` (not yet released).
Everything LangGraph- or product-specific lives under the one ``swarm.`` prefix.

Span names (all spans are ``INTERNAL``, the kind semconv gives in-process frameworks):

=====================  ============================  =====================================
event scope            span name                     ``gen_ai.operation.name``
=====================  ============================  =====================================
scan invocation        ``invoke_workflow {graph}``   ``invoke_workflow``
node execution         ``node {node}``               (none: semconv has no node span)
agent                  ``invoke_agent {agent}``      ``invoke_agent``
probe                  ``execute_tool {probe}``      ``execute_tool``
plan                   ``plan {agent or node}``      ``plan``
=====================  ============================  =====================================
"""

from __future__ import annotations

from typing import Final

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
ERROR_TYPE: Final = "error.type"
EXCEPTION_EVENT: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"

OP_INVOKE_WORKFLOW: Final = "invoke_workflow"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_PLAN: Final = "plan"

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

OUTCOME_INCOMPLETE: Final = "incomplete"
"""``swarm.outcome`` of a scope whose closing event never came (crashed or abandoned run)."""

ENDED_BY_STRAGGLER_GRACE: Final = "straggler_grace"
"""``swarm.ended_by`` of a scope that was still open ``straggler_grace`` seconds after its scan ended."""

LINK_RESUMES: Final = "resumes"
"""``swarm.link.type`` on the link from a resumed invocation's root to the root it continues."""
