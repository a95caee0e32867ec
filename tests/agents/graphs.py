"""Real multi-agent graphs for the agent tests, each driven by scripted fake chat models.

Every builder returns a fresh compiled graph (with an ``InMemorySaver``) and the total usage its
models report, so tests compare the recorded token counts against what the models said.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Annotated, Any

from langchain.agents import create_agent
from langchain_core.messages import ToolMessage
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import interrupt
from langgraph_supervisor import create_supervisor
from langgraph_swarm import create_handoff_tool, create_swarm

from .fakes import USAGE, ScriptedChatModel, reply


@dataclass
class Built:
    """A compiled graph and what its models will report."""

    graph: Any
    llm_calls: int
    input_tokens: int
    output_tokens: int


def _usage(calls: int) -> dict[str, int]:
    return {
        "llm_calls": calls,
        "input_tokens": USAGE["input_tokens"] * calls,
        "output_tokens": USAGE["output_tokens"] * calls,
    }


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def lookup(query: str) -> str:
    """Look a fact up."""
    return f"facts about {query}"


@tool
def broken(query: str) -> str:
    """A tool whose backend is down."""
    raise ConnectionError(f"backend down for {query}")


@tool
def refuse(query: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> ToolMessage:
    """A tool that reports its own failure."""
    return ToolMessage(content=f"cannot look up {query}", tool_call_id=tool_call_id, status="error")


@tool
def ask_human(question: str) -> str:
    """Ask a person and wait for the answer."""
    return f"human said: {interrupt(question)}"


def swarm(**model_kwargs: Any) -> Built:
    """langgraph-swarm: alice adds, hands off to bob, bob hands back, alice answers (4 model calls)."""
    alice_model = ScriptedChatModel.of(
        reply(tool_calls=[("add", {"a": 1, "b": 2})]),
        reply(tool_calls=[("transfer_to_bob", {})]),
        reply("the answer is 3"),
        **model_kwargs,
    )
    bob_model = ScriptedChatModel.of(reply(tool_calls=[("transfer_to_alice", {})]), **model_kwargs)
    alice = create_agent(alice_model, [add, create_handoff_tool(agent_name="bob")], name="alice")
    bob = create_agent(bob_model, [create_handoff_tool(agent_name="alice")], name="bob")
    graph = create_swarm([alice, bob], default_active_agent="alice").compile(checkpointer=InMemorySaver())
    return Built(graph, **_usage(4))


def supervisor() -> Built:
    """langgraph-supervisor: the supervisor delegates to research, then to math, then answers (6 calls)."""
    research_model = ScriptedChatModel.of(
        reply(tool_calls=[("lookup", {"query": "tides"})]), reply("tides: 2/day")
    )
    math_model = ScriptedChatModel.of(reply(tool_calls=[("multiply", {"a": 2, "b": 7})]), reply("14"))
    supervisor_model = ScriptedChatModel.of(
        reply(tool_calls=[("transfer_to_research", {})]),
        reply(tool_calls=[("transfer_to_math", {})]),
        reply("done: 14 tides a week"),
    )
    research = create_agent(research_model, [lookup], name="research")
    math = create_agent(math_model, [multiply], name="math")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_supervisor builds on the deprecated create_react_agent
        builder = create_supervisor([research, math], model=supervisor_model, supervisor_name="supervisor")
    return Built(
        builder.compile(checkpointer=InMemorySaver()), llm_calls=7, input_tokens=77, output_tokens=49
    )


def parallel_agent() -> Built:
    """langchain create_agent whose model calls two tools at once, then answers (2 calls)."""
    model = ScriptedChatModel.of(
        reply(
            tool_calls=[("add", {"a": 2, "b": 3}), ("multiply", {"a": 4, "b": 5})],
            call_ids=["c-add", "c-mul"],
        ),
        reply("5 and 20"),
    )
    graph = create_agent(model, [add, multiply], name="calculator", checkpointer=InMemorySaver())
    return Built(graph, **_usage(2))


def tool_node_graph(
    *tools: Any, calls: list[tuple[str, dict[str, Any]]], handle_tool_errors: Any = False
) -> Built:
    """A hand-built graph: a model node, a ``ToolNode`` and ``tools_condition`` between them."""
    model = ScriptedChatModel.of(reply(tool_calls=calls), reply("finished"))

    def chat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("chat", chat)
    builder.add_node("tools", ToolNode(list(tools), handle_tool_errors=handle_tool_errors))
    builder.add_edge(START, "chat")
    builder.add_conditional_edges("chat", tools_condition)
    builder.add_edge("tools", "chat")
    return Built(builder.compile(checkpointer=InMemorySaver(), name="hand_built"), **_usage(2))
