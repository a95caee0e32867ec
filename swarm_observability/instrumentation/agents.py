"""Agents without user code: agent subgraph nodes get an agent scope, and handoffs are recorded.

A node is an *agent node* when its runnable is (or calls, as langgraph-supervisor's workers do) a
compiled graph that is an agent: one built by ``langchain.agents.create_agent`` or
``langgraph.prebuilt.create_react_agent`` (a model node beside a ``ToolNode``), or, in a multi-agent
graph (one with such an agent, or a langgraph-swarm graph), any compiled subgraph named like the node
it is, which is how ``create_swarm`` and ``create_supervisor`` add their agents. Its executions run
inside an ``agent_start``/``agent_complete`` scope named after the agent (the subgraph's name, or the
node's when the graph has LangGraph's default name), nested in the node's scope, so the model calls
and tool runs of the agent carry its name.

A graph that *is* such an agent, instrumented as the root (``instrument(create_agent(...))``), gets
the same scope around each whole invocation, under the scan scope and named after the graph
(:func:`root_agent_name`, :func:`open_root_agent`): its model and tool nodes run inside it, as they
do inside a sub-agent. A root agent has no peers, so it records no handoffs.

Handoffs (``handoff`` point events on the scope of the agent control leaves; ``via`` says how it was
seen):

* ``tool``: a tool returned ``Command(goto=<agent>, graph=Command.PARENT)`` (langgraph-swarm and
  langgraph-supervisor handoff tools); recorded by the callback handler.
* ``command``: the agent node's run ended with such a ``Command`` without a tool (a node inside the
  agent raised ``ParentCommand``, or the node returned a ``Command``).
* ``graph``: the agent finished and the graph's only static edge out of its node leads to another
  agent node: a supervisor's worker handing control back has no callback of its own.

A handoff to the same target is recorded once per agent execution, whichever way it was seen first.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langgraph.errors import ParentCommand
from langgraph.types import Command, Send

from ..events import EventType, Outcome, StreamEvent
from .outcomes import outcome_of
from .recorder import Scope, active_scope, enter_scope, exit_scope

if TYPE_CHECKING:
    from langgraph.pregel import Pregel

DEFAULT_GRAPH_NAME = "LangGraph"
"""The name LangGraph gives a compiled graph that was not named."""

_MODEL_NODES = ("model", "agent")
_FACTORY_MODEL_FUNCTIONS = frozenset(
    {"create_agent.<locals>.model_node", "create_react_agent.<locals>.call_model"}
)
_SWARM_CHANNEL = "active_agent"
_END = "__end__"


@dataclass(frozen=True, slots=True)
class AgentNode:
    """What instrumenting found about one agent node of a graph.

    Attributes:
        name: the agent's name (``agent`` field of its events).
        node: the node it runs as.
        peers: node name -> agent name of every agent node of the same graph (handoff targets).
        returns_to: the agent node the node's only static outgoing edge leads to, if any.
    """

    name: str
    node: str
    peers: Mapping[str, str]
    returns_to: str | None = None


def detect_agents(graph: Pregel) -> dict[str, AgentNode]:
    """The agent nodes of a compiled graph, by node name (see the module docstring)."""
    shaped: dict[str, str] = {}
    named: dict[str, str] = {}
    for node_name, node in graph.nodes.items():
        for sub in getattr(node, "subgraphs", None) or ():
            sub_name = getattr(sub, "name", None)
            if _is_agent_graph(sub):
                shaped[node_name] = sub_name if sub_name and sub_name != DEFAULT_GRAPH_NAME else node_name
                break
            if sub_name == node_name:
                named[node_name] = node_name
                break
    # A subgraph named like its node is an agent in a multi-agent graph: next to a create_agent-style
    # agent (create_supervisor's supervisor) or in a langgraph-swarm graph (its state tracks the
    # active agent). Elsewhere it is just a named subgraph.
    multi_agent = bool(shaped) or _SWARM_CHANNEL in getattr(graph, "channels", {})
    names = {**named, **shaped} if multi_agent else shaped
    if not names:
        return {}
    successors: dict[str, set[str]] = {}
    builder = getattr(graph, "builder", None)
    for start, end in getattr(builder, "edges", None) or ():
        if start in names:
            successors.setdefault(start, set()).add(end)
    found = {}
    for node_name, agent_name in names.items():
        after = successors.get(node_name, set())
        returns_to = next(iter(after)) if len(after) == 1 and next(iter(after)) in names else None
        found[node_name] = AgentNode(agent_name, node_name, names, returns_to)
    return found


def root_agent_name(graph: Any) -> str | None:
    """The name of a compiled graph that is itself a create_agent-style agent, else ``None``."""
    return str(graph.name) if _is_agent_graph(graph) else None


def _is_agent_graph(graph: Any) -> bool:
    """The shape of create_agent / create_react_agent graphs: a model node next to a ``ToolNode``, or alone.

    An agent made without tools has no ``tools`` node; its model node is then recognised by the factory's own
    node function (its qualified name, so nothing of langchain is imported), never by the node's name alone.
    """
    nodes = getattr(graph, "nodes", None)
    if not isinstance(nodes, Mapping):
        return False
    model = next((nodes[name] for name in _MODEL_NODES if name in nodes), None)
    if model is None:
        return False
    if "tools" not in nodes:
        func = getattr(getattr(model, "bound", None), "func", None)
        return getattr(func, "__qualname__", None) in _FACTORY_MODEL_FUNCTIONS
    from langgraph.prebuilt import ToolNode

    return isinstance(getattr(nodes["tools"], "bound", None), ToolNode)


# -- the scopes of agents and their handoffs ----------------------------------------------------------

_handed_off: dict[str, set[str]] = {}
"""Targets already handed off to, per open agent scope id (removed when the scope closes)."""
_peers: dict[str, Mapping[str, str]] = {}
_lock = threading.Lock()


def enclosing_agent(scope: Scope | None) -> Scope | None:
    """The innermost agent scope at or above ``scope``."""
    while scope is not None and scope.kind != "agent":
        scope = scope.parent
    return scope


def handoff_targets(command: Any, *, parent_only: bool = False) -> list[str]:
    """Nodes a ``Command`` sends control to (``[]`` for any other value).

    ``parent_only``: only a ``Command`` addressed to the parent graph counts (a tool's ``Command``
    without ``graph`` moves within the agent's own graph). A ``ParentCommand`` that reaches the agent
    node carries a ``graph`` LangGraph has already rewritten to the graph it is for.
    """
    if not isinstance(command, Command) or (parent_only and command.graph != Command.PARENT):
        return []
    goto = command.goto
    items: Iterable[Any] = goto if isinstance(goto, list | tuple) else (goto,)
    targets = []
    for item in items:
        node = item.node if isinstance(item, Send) else item
        if isinstance(node, str) and node and node != _END and node not in targets:
            targets.append(node)
    return targets


def record_handoff(agent_scope: Scope, target_node: str, via: str, tool: str | None = None) -> None:
    """Emit a ``handoff`` from ``agent_scope``'s agent to ``target_node``, once per target and execution.

    A target that is not an agent node of the graph (when the agent's peers are known) is no handoff.
    """
    peers = _peers.get(agent_scope.scope_id)
    if peers is not None and target_node not in peers:
        return
    to_agent = peers[target_node] if peers is not None else target_node
    with _lock:
        done = _handed_off.setdefault(agent_scope.scope_id, set())
        if to_agent in done or agent_scope.closed:
            return
        done.add(to_agent)
    data: dict[str, Any] = {"from_agent": agent_scope.name, "to_agent": to_agent, "via": via}
    if tool is not None:
        data["tool"] = tool
    agent_scope.invocation.recorder.emit(agent_scope, EventType.HANDOFF, data=data)


def _open(info: AgentNode) -> tuple[Scope, Any]:
    node_scope = active_scope()
    assert node_scope is not None, "an agent node runs inside its node scope"
    scope = node_scope.child("agent", info.name, agent=info.name)
    _peers[scope.scope_id] = info.peers
    token = enter_scope(scope)
    scope.invocation.recorder.open(scope, EventType.AGENT_START, {"detected": True})
    return scope, token


def _close(scope: Scope, token: Any, info: AgentNode, exc: BaseException | None, out: Any) -> None:
    try:
        command = exc.args[0] if isinstance(exc, ParentCommand) and exc.args else out
        targets = handoff_targets(command)
        for target in targets:
            record_handoff(scope, target, "command")
        if not targets and exc is None and info.returns_to and not _handed_off.get(scope.scope_id):
            record_handoff(scope, info.returns_to, "graph")
        outcome, data = outcome_of(exc)
        scope.invocation.recorder.close(scope, EventType.AGENT_COMPLETE, outcome, data)
    finally:
        _handed_off.pop(scope.scope_id, None)
        _peers.pop(scope.scope_id, None)
        exit_scope(token)


def open_root_agent(root: Scope, name: str) -> tuple[Scope, StreamEvent | None]:
    """Open the agent scope of a root graph that is an agent, in its invocation's scope ``root``.

    The opening event (returned with the scope) is emitted without the ``scope_opened`` hook, as the
    scan's own is: the scope lasts the whole stream, a generator, so no context may be attached for
    it. Its span exists all the same (the tracer subscribes to events), and the node spans nest in it
    by parent scope id.
    """
    scope = root.child("agent", name, agent=name)
    _peers[scope.scope_id] = {}
    return scope, root.invocation.recorder.emit(scope, EventType.AGENT_START, data={"detected": True})


def close_root_agent(scope: Scope, outcome: Outcome, data: Mapping[str, Any]) -> StreamEvent | None:
    """Close a root agent's scope with its invocation's outcome (``data``: the terminal event's)."""
    _peers.pop(scope.scope_id, None)
    kept = {k: v for k, v in data.items() if k not in ("interrupts", "next")}
    return scope.invocation.recorder.close(scope, EventType.AGENT_COMPLETE, outcome, kept)


def run_agent(info: AgentNode, call: Callable[[], Any]) -> Any:
    """Run one execution of an agent node's body (``call``) in its agent scope, inside the node's scope."""
    scope, token = _open(info)
    try:
        out = call()
    except BaseException as exc:
        _close(scope, token, info, exc, None)
        raise
    _close(scope, token, info, None, out)
    return out


async def arun_agent(info: AgentNode, call: Callable[[], Awaitable[Any]]) -> Any:
    """:func:`run_agent` for async bodies."""
    scope, token = _open(info)
    try:
        out = await call()
    except BaseException as exc:
        _close(scope, token, info, exc, None)
        raise
    _close(scope, token, info, None, out)
    return out
