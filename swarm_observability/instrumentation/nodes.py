"""Node wrappers: the runnables that put every node execution into a ``node_enter``/``node_exit`` scope.

A wrapper delegates to the node's original runnable with the *same* config, so LangGraph's own
parameter injection (``config``, ``writer``, ``store``, ``runtime``), ``Command`` returns, ``Send``
fan-out, ``interrupt()``, retry policies and subgraphs behave exactly as without it. Two classes keep
LangGraph's view of the node intact:

* :class:`ObservedNode` overrides only ``invoke``. It wraps sync-only nodes: under ``astream``
  LangGraph's default ``ainvoke`` runs the whole wrapper in an executor thread, so the node body runs
  in the context where the scope was opened, and the node still counts as sync (a ``timeout=`` is
  still refused, as LangGraph refuses it for sync nodes).
* :class:`AsyncObservedNode` also overrides ``ainvoke``, for async nodes and other runnables
  (subgraphs). Its ``invoke`` on an async-only node defers to the node, which raises LangGraph's own
  ``TypeError``.

Outcomes: ``GraphInterrupt`` -> ``interrupted`` (and the interrupts are recorded on the invocation),
``GraphDrained`` -> ``paused``, ``ParentCommand`` -> ``ok``; all three are re-raised as LangGraph needs.
``ScanCancelled`` and ``asyncio.CancelledError`` -> ``cancelled``; anything else -> ``error``.

With ``SwarmObserver(durable_node_exit=True)`` a wrapper returns (or raises) only once the node's
``node_exit`` is stored (:func:`node_exit_durable` / :func:`anode_exit_durable`), because LangGraph
checkpoints the node's writes right after that.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from contextvars import Token
from typing import TYPE_CHECKING, Any, TypeVar, overload

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import run_in_executor, var_child_runnable_config
from langgraph.errors import GraphInterrupt

from ..events import EventType, validate_run_id
from ..exceptions import NoActiveRunError
from .agents import AgentNode, arun_agent, detect_agents, run_agent
from .recorder import RunState, Scope, _current, outcome_of

if TYPE_CHECKING:
    from langgraph.pregel import Pregel

    from .observer import SwarmObserver

logger = logging.getLogger("swarm_observability")

F = TypeVar("F", bound=Callable[..., Any])

_RUNTIME_KEY = "__pregel_runtime"
START = "__start__"
_NOTHING: dict[str, Any] = {}
_STOPPING = (KeyboardInterrupt, asyncio.CancelledError)


def open_node(parent: Scope, name: str, config: RunnableConfig) -> tuple[Scope, Token[Scope | None]]:
    """Open a node scope under ``parent``, make it current and emit ``node_enter``.

    Fields come from the node's config: ``langgraph_step``, the task id and checkpoint id of
    ``runtime.execution_info`` (falling back to the checkpoint namespace and config), and the
    namespace: the ``|``-separated checkpoint namespace without the node's own last element, which is
    also the namespace LangGraph streams the node's custom items under.
    """
    conf = config.get("configurable") or _NOTHING
    metadata = config.get("metadata") or _NOTHING
    runtime = conf.get(_RUNTIME_KEY)
    info = getattr(runtime, "execution_info", None)
    ns = metadata.get("langgraph_checkpoint_ns") or conf.get("checkpoint_ns") or ""
    fields = parent.node_fields()
    fields["node"] = name
    step = metadata.get("langgraph_step")
    if step is not None:
        fields["step"] = step
    task_id = getattr(info, "task_id", None) or (ns.rpartition("|")[2].partition(":")[2] if ns else None)
    if task_id is not None:
        fields["task_id"] = task_id
    checkpoint_id = getattr(info, "checkpoint_id", None) or conf.get("checkpoint_id")
    if checkpoint_id is not None:
        fields["checkpoint_id"] = checkpoint_id
    if "|" in ns:
        fields["namespace"] = tuple(ns.split("|")[:-1])
    scope = Scope(
        "node",
        name,
        parent.run,
        parent,
        fields,
        config=config,
        writer=getattr(runtime, "stream_writer", None),
    )
    if parent.kind == "scan" and parent.run.root is None:
        del scope.fields["parent_scope_id"]
    token = _current.set(scope)
    attempt = getattr(info, "node_attempt", None)
    scope.run.observer._open_scope(scope, EventType.NODE_ENTER, {"attempt": attempt} if attempt else {})
    return scope, token


def close_node(scope: Scope, token: Token[Scope | None], exc: BaseException | None) -> None:
    """Emit ``node_exit`` with the outcome of ``exc`` and restore the previous scope."""
    try:
        if isinstance(exc, GraphInterrupt):
            scope.run.interrupts.extend(exc.args[0] if exc.args else ())
        outcome, data = outcome_of(exc)
        runtime = (scope.config.get("configurable") or {}).get(_RUNTIME_KEY)
        attempt = getattr(getattr(runtime, "execution_info", None), "node_attempt", None)
        if attempt:
            data["attempt"] = attempt
        scope.run.observer._close_scope(scope, EventType.NODE_EXIT, outcome, data)
    finally:
        _current.reset(token)


def node_exit_durable(observer: SwarmObserver, exc: BaseException | None = None) -> None:
    """With ``durable_node_exit``, block until the ``node_exit`` just emitted is stored.

    Not for a cancelled node (``KeyboardInterrupt``, ``CancelledError``): stopping must not wait on disk.
    """
    if not observer.durable_node_exit or isinstance(exc, _STOPPING):
        return
    done = observer._node_exit_stored()
    if done is not None:
        done.result()


async def anode_exit_durable(observer: SwarmObserver, exc: BaseException | None = None) -> None:
    """:func:`node_exit_durable` for async nodes: awaits the store without blocking the event loop.

    A cancellation during the wait propagates after a successful node (LangGraph then keeps none of its
    writes) and is dropped after a failed one, whose own exception must reach LangGraph.
    """
    if not observer.durable_node_exit or isinstance(exc, _STOPPING):
        return
    done = observer._node_exit_stored()
    if done is None:
        return
    try:
        await asyncio.shield(asyncio.wrap_future(done))
    except asyncio.CancelledError:
        if exc is None:
            raise


def run_node(parent: Scope, name: str, config: RunnableConfig, call: Callable[[], Any]) -> Any:
    """Run one sync node execution as a scope: safe point, ``node_enter``, body, safe point, ``node_exit``."""
    observer = parent.run.observer
    observer._safe_point_sync(parent, name)
    scope, token = open_node(parent, name, config)
    try:
        out = call()
        observer._safe_point_sync(scope)
    except BaseException as exc:
        close_node(scope, token, exc)
        node_exit_durable(observer, exc)
        raise
    close_node(scope, token, None)
    node_exit_durable(observer)
    return out


async def arun_node(
    parent: Scope, name: str, config: RunnableConfig, call: Callable[[], Awaitable[Any]]
) -> Any:
    """:func:`run_node` for async bodies, which also run inside the manager's hard-cancel scope."""
    observer = parent.run.observer
    await observer._safe_point(parent, name)
    scope, token = open_node(parent, name, config)
    try:
        manager = parent.run.manager
        if manager is not None:
            with manager.cancel_scope(name):
                out = await call()
        else:
            out = await call()
        await observer._safe_point(scope)
    except BaseException as exc:
        close_node(scope, token, exc)
        await anode_exit_durable(observer, exc)
        raise
    close_node(scope, token, None)
    await anode_exit_durable(observer)
    return out


class ObservedNode(Runnable[Any, Any]):
    """Wraps a sync node's runnable; see the module docstring. ``inner`` is the original runnable."""

    def __init__(
        self, observer: SwarmObserver, name: str, inner: Runnable[Any, Any], agent: AgentNode | None = None
    ) -> None:
        self.observer = observer
        self.name = name
        self.inner = inner
        self.agent = agent

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.inner!r})"

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        parent = _current.get()
        if parent is None or config is None:
            return self.inner.invoke(input, config, **kwargs)
        if self.agent is not None:
            body = functools.partial(self.inner.invoke, input, config, **kwargs)
            return run_node(parent, self.name, config, functools.partial(run_agent, self.agent, body))
        return run_node(parent, self.name, config, lambda: self.inner.invoke(input, config, **kwargs))


class AsyncObservedNode(ObservedNode):
    """Wraps an async node (or any runnable with a native ``ainvoke``, such as a subgraph)."""

    def __init__(
        self, observer: SwarmObserver, name: str, inner: Runnable[Any, Any], agent: AgentNode | None = None
    ) -> None:
        super().__init__(observer, name, inner, agent)
        self._sync_missing = getattr(inner, "func", True) is None and hasattr(inner, "afunc")

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        if self._sync_missing:
            return self.inner.invoke(input, config, **kwargs)
        return super().invoke(input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        parent = _current.get()
        if parent is None or config is None:
            return await self.inner.ainvoke(input, config, **kwargs)
        if self.agent is not None:
            body = functools.partial(self.inner.ainvoke, input, config, **kwargs)
            return await arun_node(parent, self.name, config, functools.partial(arun_agent, self.agent, body))
        return await arun_node(parent, self.name, config, lambda: self.inner.ainvoke(input, config, **kwargs))


def _is_sync_only(runnable: Runnable[Any, Any]) -> bool:
    """A ``RunnableCallable`` built from a plain function: its async path is LangGraph's executor hop."""
    func, afunc = getattr(runnable, "func", None), getattr(runnable, "afunc", None)
    if func is None or not hasattr(runnable, "func_accepts"):
        return False
    return afunc is None or (isinstance(afunc, functools.partial) and afunc.func is run_in_executor)


def wrap_node(
    observer: SwarmObserver, name: str, runnable: Runnable[Any, Any], agent: AgentNode | None = None
) -> ObservedNode:
    """The right wrapper class for ``runnable``; ``agent``: the node is that agent (see :mod:`.agents`)."""
    cls = ObservedNode if _is_sync_only(runnable) else AsyncObservedNode
    return cls(observer, name, runnable, agent)


def wrap_nodes(observer: SwarmObserver, graph: Pregel) -> list[Pregel]:
    """Wrap every node of a compiled graph in place (not ``__start__``); returns its subgraphs.

    Already-wrapped nodes are left alone, so calling this twice does not double-wrap. The node's
    ``subgraphs`` list is carried over, because LangGraph cannot see a subgraph through the wrapper
    and ``get_state(subgraphs=True)`` needs it.
    """
    subgraphs: list[Pregel] = []
    agents = detect_agents(graph) if observer.detect_agents else {}
    for name, node in list(graph.nodes.items()):
        subgraphs.extend(node.subgraphs)  # type: ignore[arg-type]
        if name == START or isinstance(node.bound, ObservedNode) or node.bound is None:
            continue
        bound = wrap_node(observer, name, node.bound, agents.get(name))
        graph.nodes[name] = node.copy({"bound": bound, "subgraphs": list(node.subgraphs)})
    return subgraphs


def unwrap_nodes(graph: Pregel) -> list[Pregel]:
    """Put the original runnables back; returns the graph's subgraphs."""
    subgraphs: list[Pregel] = []
    for name, node in list(graph.nodes.items()):
        subgraphs.extend(node.subgraphs)  # type: ignore[arg-type]
        if isinstance(node.bound, ObservedNode):
            graph.nodes[name] = node.copy({"bound": node.bound.inner, "subgraphs": list(node.subgraphs)})
    return subgraphs


# -- @observe_node ----------------------------------------------------------------------------------


def _standalone_parent(observer: SwarmObserver, config: RunnableConfig) -> Scope:
    """A parent scope for a decorated node in a graph that is not instrumented (no invocation)."""
    conf = config.get("configurable") or {}
    thread_id = conf.get("thread_id")
    thread = str(thread_id) if thread_id is not None else None
    run_id = validate_run_id(str(conf.get("scan_id") or thread or uuid.uuid4().hex))
    run = RunState(observer, run_id, thread, None, observer._manager_for(run_id))
    scope = Scope("scan", None, run, None, {"thread_id": thread} if thread else {})
    del scope.fields["scope_id"]
    return scope


def _decorated_parent(observer: SwarmObserver | None, name: str) -> tuple[Scope, RunnableConfig] | None:
    config = var_child_runnable_config.get()
    if config is None:
        return None
    parent = _current.get()
    if parent is not None:
        if parent.config is not None:
            task = (parent.config.get("metadata") or {}).get("langgraph_checkpoint_ns")
            if task == (config.get("metadata") or {}).get("langgraph_checkpoint_ns"):
                return None  # the same node execution: already reported by the node wrapper
        return parent, config
    if observer is None:
        raise NoActiveRunError(
            f"@observe_node on {name!r} found no instrumented run: instrument the graph with "
            "SwarmObserver.instrument(graph) or pass @observe_node(observer=...)"
        )
    return _standalone_parent(observer, config), config


@overload
def observe_node(fn: F, /) -> F: ...
@overload
def observe_node(*, name: str | None = None, observer: SwarmObserver | None = None) -> Callable[[F], F]: ...


def observe_node(
    fn: F | None = None, /, *, name: str | None = None, observer: SwarmObserver | None = None
) -> F | Callable[[F], F]:
    """Decorate one node function so its executions emit ``node_enter``/``node_exit``.

    For graphs you do not instrument as a whole. Works on sync and async functions and keeps their
    signature (``functools.wraps``), so LangGraph still injects ``config``, ``writer``, ``store`` and
    ``runtime``. The observer is the current run's (inside an instrumented graph) or ``observer=``;
    in an instrumented graph the wrapper already reports the node, and the decorator adds nothing.
    Called outside any LangGraph run (a plain function call, a unit test), the function just runs.

    Raises:
        NoActiveRunError: called inside a LangGraph run, but no observer is active and none was given.
    """

    def decorate(func: F) -> F:
        node_name = name or func.__name__

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                found = _decorated_parent(observer, node_name)
                if found is None:
                    return await func(*args, **kwargs)
                parent, config = found
                return await arun_node(parent, node_name, config, lambda: func(*args, **kwargs))

            return awrapper  # type: ignore[return-value]

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            found = _decorated_parent(observer, node_name)
            if found is None:
                return func(*args, **kwargs)
            parent, config = found
            return run_node(parent, node_name, config, lambda: func(*args, **kwargs))

        return wrapper  # type: ignore[return-value]

    return decorate(fn) if fn is not None else decorate
