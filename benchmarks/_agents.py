"""Agent graphs for the per-call benchmarks: model calls and tool calls, offline and deterministic.

* ``llm20``: one node calls a chat model 20 times (each answer reports token usage, as providers do).
* ``tool20``: one node runs a ``BaseTool`` 20 times, with a tool-call id as LangGraph's ``ToolNode``
  passes it.
* ``react``: a ReAct agent loop as users build it: a model node, a ``ToolNode`` running 3 tool calls
  of one answer in parallel, the model again (2 model calls and 3 tool calls per run).

The calls happen inside one node so the added time per call is the instrumentation of that call, not
of a node (``units`` is the number of calls per run; per-run figures are divided by it). The model is
a minimal ``BaseChatModel`` that answers instantly, so what is measured is the callback path.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

from ._graphs import GraphSpec

CALLS = 20
_USAGE = {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}


class InstantChatModel(BaseChatModel):
    """Answers at once: tool calls for a human turn, text after tool results; reports usage."""

    model_name: str = "bench-model"
    tool_calls: int = 3

    @property
    def _llm_type(self) -> str:
        return "bench-instant"

    def bind_tools(self, tools: Any, **kwargs: Any) -> InstantChatModel:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Any:
        if messages and isinstance(messages[-1], ToolMessage):
            message = AIMessage(content="done", usage_metadata=dict(_USAGE))  # type: ignore[arg-type]
        else:
            calls = [
                {"name": "lookup", "args": {"query": f"q{i}"}, "id": f"call-{i}", "type": "tool_call"}
                for i in range(self.tool_calls)
            ]
            message = AIMessage(content="", tool_calls=calls, usage_metadata=dict(_USAGE))  # type: ignore[arg-type]
        return ChatResult(generations=[ChatGeneration(message=message)])


@tool
def lookup(query: str) -> str:
    """Look something up (instantly)."""
    return query


def _llm_calls() -> StateGraph:
    model = InstantChatModel()
    prompt = [("user", "hi")]

    def call_model(state: dict[str, Any]) -> None:
        for _ in range(CALLS):
            model.invoke(prompt)

    builder = StateGraph(MessagesState)
    builder.add_node("call_model", call_model)
    builder.add_edge(START, "call_model")
    builder.add_edge("call_model", END)
    return builder


def _tool_calls() -> StateGraph:
    def call_tools(state: dict[str, Any]) -> None:
        for i in range(CALLS):
            lookup.invoke({"type": "tool_call", "name": "lookup", "args": {"query": "x"}, "id": f"c{i}"})

    builder = StateGraph(MessagesState)
    builder.add_node("call_tools", call_tools)
    builder.add_edge(START, "call_tools")
    builder.add_edge("call_tools", END)
    return builder


def _react() -> StateGraph:
    model = InstantChatModel()

    def agent(state: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    def route(state: dict[str, Any]) -> str:
        return "tools" if state["messages"][-1].tool_calls else END

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([lookup]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["tools", END])
    builder.add_edge("tools", "agent")
    return builder


AGENT_INPUT = {"messages": [("user", "hi")]}
"""The input every agent graph is run with."""


def agent_specs(smoke: bool = False) -> list[GraphSpec]:
    """The agent benchmark graphs; ``nodes`` holds the calls per run (the per-call divisor)."""
    specs = [
        GraphSpec("llm20", CALLS, _llm_calls, AGENT_INPUT),
        GraphSpec("tool20", CALLS, _tool_calls, AGENT_INPUT),
        GraphSpec("react(2 llm+3 tool)", 5, _react, AGENT_INPUT),
    ]
    return specs[:2] if smoke else specs
