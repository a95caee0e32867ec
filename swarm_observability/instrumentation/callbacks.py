"""Model calls and tool runs, recorded from LangChain's callback system without user code.

Each scan invocation has one :class:`SwarmCallbackHandler`. It is *not* in the invocation's config:
there LangChain would build it into the callback manager of every runnable LangGraph runs for every
node (and dispatch each node's chain end to it), which costs more than a no-op node itself. It joins
where user code runs instead, in the body of every node and in every router (conditional edge):
:func:`enter_user_code` puts it into that call's config (so a model called with that config reports
here, in any thread) and into the context, where LangChain's configure hook adds it to every callback
manager built below (a model called without a config, or in a ``@task``). So any
``BaseChatModel``/``BaseLLM`` and any ``BaseTool`` called inside the graph reports here: in
subgraphs, ``Send`` branches, ``ToolNode`` (also its parallel tool calls), routers, sync and async,
streaming or not, whatever the provider. The handler turns callback runs into scopes:

* ``llm_start`` / ``llm_end`` (or ``llm_error``) per model call, ``tool_start`` / ``tool_end`` (or
  ``tool_error``) per tool run, with the data contracts listed on :class:`~swarm_observability.EventType`.
* Parent scope: the scope of the callback's ``parent_run_id`` when that run is one of ours (a model
  called inside a tool nests under the tool), else the scope current where the callback runs (the
  node, agent or probe that made the call: the handler runs inline, in the caller's context).
* A tool's ``Command(goto=<agent>, graph=Command.PARENT)`` is a handoff too (see :mod:`.agents`).
* Control flow is not failure: ``GraphInterrupt`` ends a tool as ``interrupted``, ``ParentCommand``
  as ``ok``, a cancellation as ``cancelled`` (all with ``tool_end``/``llm_end``). A tool returning
  ``ToolMessage(status="error")`` is a ``tool_error``, as if it had raised.

The handler never changes what runs: it is not one of LangChain's streaming handlers (so a model
streams exactly when it would without us), it returns nothing, and every callback catches its own
failures (LangChain would only log them). ``run_inline`` keeps async callbacks on the caller's task
instead of a thread-pool hop per callback. Chain, retriever and custom-event callbacks are ignored,
so nodes cost nothing here.

Content (prompts, completions, tool arguments and results) is recorded only with
``capture_content`` (``SwarmObserver(capture_content=True)`` or
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``); it then goes through the emitter's
processors (redaction, size cap) like every payload. The settings live in :mod:`.callback_settings`,
the readers of LangChain's objects (model names, usage, messages) in :mod:`.langchain_readers`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.tracers.context import register_configure_hook
from langgraph.errors import ParentCommand

from ..events import EventType, Outcome
from .agents import enclosing_agent, handoff_targets, record_handoff
from .callback_settings import CallbackSettings, call_cost
from .langchain_readers import finish_reasons, message_record, message_records, model_name, text, token_usage
from .outcomes import outcome_of
from .recorder import Invocation, Scope, active_scope

logger = logging.getLogger("swarm_observability")

_MAX_WARNED_RUNS = 4096
_tool_context: ContextVar[object] = ContextVar("swarm_observability_tool_context")
_user_code_handler: ContextVar[SwarmCallbackHandler | None] = ContextVar(
    "swarm_observability_handler", default=None
)
register_configure_hook(_user_code_handler, True)


@dataclass(slots=True)
class _Call:
    scope: Scope
    started: float
    model: str | None = None
    provider: str | None = None
    first_token: float | None = None
    tool: str | None = None
    tool_call_id: str | None = None
    marker: Token[object] | None = None


class SwarmCallbackHandler(BaseCallbackHandler):
    """The LangChain callback handler of one scan invocation; see the module docstring."""

    run_inline = True
    raise_error = False

    def __init__(self, run: Invocation, settings: CallbackSettings) -> None:
        self._run = run
        self._settings = settings
        self._calls: dict[UUID, _Call] = {}

    # Class attributes rather than LangChain's properties: the callback manager reads ignore_chain
    # for every runnable of every node, and an attribute costs no call.
    ignore_chain = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    # -- model calls ------------------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        content = message_records(messages[0]) if self._settings.capture_content and messages else None
        self._start_llm(run_id, parent_run_id, metadata, kwargs, content)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        content = list(prompts) if self._settings.capture_content else None
        self._start_llm(run_id, parent_run_id, metadata, kwargs, content)

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._calls.get(run_id)
        if call is not None and call.first_token is None:
            call.first_token = time.perf_counter()

    def on_stream_event(self, event: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.on_llm_new_token("", run_id=run_id)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._calls.pop(run_id, None)
        if call is None:
            return
        try:
            data = self._llm_end_data(call, response)
            call.scope.invocation.recorder.close(call.scope, EventType.LLM_END, Outcome.OK, data)
        except Exception:
            logger.exception("swarm_observability: a model call's end was not recorded")

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._calls.pop(run_id, None)
        if call is None:
            return
        try:
            outcome, data = outcome_of(error)
            data.update(_model_fields(call))
            kind = EventType.LLM_ERROR if outcome == Outcome.ERROR else EventType.LLM_END
            call.scope.invocation.recorder.close(call.scope, kind, outcome, data)
        except Exception:
            logger.exception("swarm_observability: a model call's error was not recorded")

    def _start_llm(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: dict[str, Any] | None,
        kwargs: dict[str, Any],
        content: Any,
    ) -> None:
        try:
            metadata = metadata or {}
            params = kwargs.get("invocation_params") or {}
            model = model_name(metadata, params)
            provider = metadata.get("ls_provider")
            parent = self._parent(parent_run_id)
            scope = parent.child("llm", str(model or "chat"), **_agent_field(parent))
            call = _Call(scope, time.perf_counter(), model=model, provider=provider)
            data: dict[str, Any] = _model_fields(call)
            if content is not None:
                data["input_messages"] = content
            self._calls[run_id] = call
            scope.invocation.recorder.open(scope, EventType.LLM_START, data)
        except Exception:
            logger.exception("swarm_observability: a model call's start was not recorded")

    def _llm_end_data(self, call: _Call, response: Any) -> dict[str, Any]:
        data = _model_fields(call)
        generations = [g for batch in (getattr(response, "generations", None) or ()) for g in batch]
        message = getattr(generations[0], "message", None) if generations else None
        metadata = getattr(message, "response_metadata", None) or {}
        response_model = metadata.get("model_name") or metadata.get("model")
        if isinstance(response_model, str) and response_model:
            data["response_model"] = response_model
        usage = token_usage(message, getattr(response, "llm_output", None))
        if usage:
            data.update(usage)
        else:
            data["usage_missing"] = True
        reasons = finish_reasons(generations)
        if reasons:
            data["finish_reasons"] = reasons
        if call.first_token is not None:
            data["streamed"] = True
            data["time_to_first_token_ms"] = round((call.first_token - call.started) * 1000.0, 3)
        prices = self._settings.prices
        if prices is not None:
            data["cost_usd"] = call_cost(prices, call.model, data)
        if self._settings.capture_content:
            data["output_messages"] = [
                message_record(g.message) if hasattr(g, "message") else {"content": getattr(g, "text", "")}
                for g in generations
            ]
        if not usage and call.first_token is not None:
            self._warn_usage_missing(call)
        return data

    def _warn_usage_missing(self, call: _Call) -> None:
        warned = self._settings.warned_runs
        run_id = self._run.run_id
        if run_id in warned:
            return
        if len(warned) >= _MAX_WARNED_RUNS:
            warned.clear()
        warned.add(run_id)
        call.scope.invocation.recorder.emit(
            call.scope,
            EventType.LOG,
            message=(
                f"model {call.model or '(unnamed)'} streamed without reporting token usage, so this run's "
                "token counts miss its streamed calls; turn usage reporting on in the model "
                "(for example stream_usage=True on ChatOpenAI)"
            ),
            data={"usage_missing": True, "model": call.model},
        )

    # -- tool runs --------------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        tool_call_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        try:
            name = str(kwargs.get("name") or (serialized or {}).get("name") or "tool")
            parent = self._parent(parent_run_id)
            scope = parent.child("tool", name, **_agent_field(parent))
            call = _Call(scope, time.perf_counter(), tool=name, tool_call_id=tool_call_id)
            data: dict[str, Any] = {"tool": name, "tool_type": "function"}
            if tool_call_id:
                data["tool_call_id"] = tool_call_id
            destination = (metadata or {}).get("__handoff_destination")
            if isinstance(destination, str):
                data["handoff_to"] = destination
            if self._settings.capture_content:
                data["arguments"] = inputs if inputs is not None else input_str
            self._calls[run_id] = call
            call.marker = _tool_context.set(run_id)
            scope.invocation.recorder.open(scope, EventType.TOOL_START, data)
        except Exception:
            logger.exception("swarm_observability: a tool run's start was not recorded")

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._calls.pop(run_id, None)
        if call is None:
            return
        try:
            data = _tool_fields(call)
            status = getattr(output, "status", None) if isinstance(output, ToolMessage) else None
            if self._settings.capture_content:
                data["result"] = output.content if isinstance(output, ToolMessage) else output
            self._handoffs(call, output)
            if status == "error":
                data["error_type"] = "ToolMessageError"
                data["error_message"] = text(output.content)
                self._close_tool(call, EventType.TOOL_ERROR, Outcome.ERROR, data)
            else:
                self._close_tool(call, EventType.TOOL_END, Outcome.OK, data)
        except Exception:
            logger.exception("swarm_observability: a tool run's end was not recorded")

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        call = self._calls.pop(run_id, None)
        if call is None:
            return
        try:
            if isinstance(error, ParentCommand) and error.args:
                self._handoffs(call, error.args[0])
            outcome, extra = outcome_of(error)
            data = {**_tool_fields(call), **extra}
            kind = EventType.TOOL_ERROR if outcome == Outcome.ERROR else EventType.TOOL_END
            self._close_tool(call, kind, outcome, data)
        except Exception:
            logger.exception("swarm_observability: a tool run's error was not recorded")

    def _handoffs(self, call: _Call, output: Any) -> None:
        commands = output if isinstance(output, list) else (output,)
        agent_scope = enclosing_agent(call.scope.parent)
        for command in commands:
            for target in handoff_targets(command, parent_only=True):
                if agent_scope is not None:
                    record_handoff(agent_scope, target, "tool", tool=call.tool)

    def _close_tool(self, call: _Call, kind: EventType, outcome: Outcome, data: dict[str, Any]) -> None:
        if call.marker is not None:
            try:
                _tool_context.reset(call.marker)
            except (ValueError, RuntimeError):
                # Ending in another context than it started in: a context attached for the tool's
                # span there cannot be detached here, so leave it to the enclosing scope's reset.
                call.scope.token = None
        call.scope.invocation.recorder.close(call.scope, kind, outcome, data)

    # -- parentage --------------------------------------------------------------------------------

    def _parent(self, parent_run_id: UUID | None) -> Scope:
        if parent_run_id is not None:
            call = self._calls.get(parent_run_id)
            if call is not None:
                return call.scope
        scope = active_scope()
        if scope is None or scope.invocation is not self._run:
            root = self._run.root
            assert root is not None
            return root
        return scope


def enter_user_code(config: Any, run: Invocation) -> tuple[Any, Token[SwarmCallbackHandler | None] | None]:
    """``config`` for one node body or router call of ``run``, with its handler (see the module docstring).

    The handler joins the call's callback manager in place: LangGraph builds a fresh one for every
    node and router call, so nothing outside the call sees it (a config without a manager is copied
    instead). Returns the config to pass on and a token for :func:`leave_user_code` (``None``: ``run``
    has no handler).
    """
    handler: SwarmCallbackHandler | None = getattr(run, "handler", None)
    if handler is None:
        return config, None
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        callbacks.add_handler(handler)  # once: it skips a handler it has
    else:
        config = with_run_callbacks(config, handler)
    return config, _user_code_handler.set(handler)


leave_user_code: Callable[[Token[SwarmCallbackHandler | None]], None] = _user_code_handler.reset


def with_run_callbacks(config: Any, handler: BaseCallbackHandler) -> dict[str, Any]:
    """A copy of ``config`` whose callbacks include ``handler`` (inherited by every child run)."""
    config = dict(config or {})
    callbacks = config.get("callbacks")
    if callbacks is None:
        config["callbacks"] = [handler]
    elif isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        config["callbacks"] = manager
    else:
        config["callbacks"] = [*callbacks, handler]
    return config


# -- event fields -------------------------------------------------------------------------


def _agent_field(parent: Scope) -> dict[str, Any]:
    agent = enclosing_agent(parent)
    return {"agent": agent.name} if agent is not None and agent.name else {}


def _model_fields(call: _Call) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if call.model:
        data["model"] = call.model
    if call.provider:
        data["provider"] = call.provider
    return data


def _tool_fields(call: _Call) -> dict[str, Any]:
    data: dict[str, Any] = {"tool": call.tool}
    if call.tool_call_id:
        data["tool_call_id"] = call.tool_call_id
    return data
