"""Node runs as scopes: ``node_enter``, the body, ``node_exit``, with a safe point on either side.

:class:`ObservedNode` runs where LangGraph runs a node's ``bound`` runnable (before the node's channel
writers, so a node that ends cancelled or failed leaves no writes) and delegates ``invoke``,
``ainvoke`` and ``astream`` to it with the *same* input, config and keyword arguments, so LangGraph's
parameter injection (``config``, ``writer``, ``store``, ``runtime``), ``Command`` returns, ``Send``,
``interrupt()``, retries, timeouts, a sync node returning a runnable under ``ainvoke`` and subgraphs
behave exactly as without it. The node's ``bound`` is never replaced (see :mod:`._langgraph`).

Outcomes: ``GraphInterrupt`` -> ``interrupted`` (and the interrupts are recorded on the invocation),
``GraphDrained`` -> ``paused``, ``ParentCommand`` -> ``ok``; all three are re-raised as LangGraph needs.
``ScanCancelled`` and ``asyncio.CancelledError`` -> ``cancelled``; anything else -> ``error``.

With ``SwarmObserver(durable_node_exit=True)`` a node returns (or raises) only once its
``node_exit`` is stored, because LangGraph checkpoints the node's writes right after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import Token
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.errors import GraphInterrupt

from ..events import EventType, Outcome, plain_node_fields
from ._langgraph import (
    START,
    graph_nodes,
    node_bound_runner,
    node_execution,
    node_routers,
    node_steps,
    run_in_place_of_bound,
)
from .agents import AgentNode, arun_agent, run_agent
from .callbacks import enter_user_code, leave_user_code
from .outcomes import outcome_of
from .recorder import Recorder, Scope, active_scope, enter_scope, exit_scope
from .safe_points import safe_point, safe_point_sync

_STOPPING = (KeyboardInterrupt, asyncio.CancelledError)


def open_node(parent: Scope, name: str, config: RunnableConfig) -> tuple[Scope, Token[Scope | None]]:
    """Open a node scope under ``parent``, make it current and emit ``node_enter``.

    Fields come from the node's config: ``langgraph_step``, the task id and checkpoint id of
    ``runtime.execution_info`` (falling back to the checkpoint namespace and config), and the
    namespace: the ``|``-separated checkpoint namespace without the node's own last element, which is
    also the namespace LangGraph streams the node's custom items under.
    """
    runtime, ns, step, task_id, checkpoint_id, attempt = node_execution(config)
    own: dict[str, Any] = {"node": name}
    if step is not None:
        own["step"] = step
    if task_id is not None:
        own["task_id"] = task_id
    if checkpoint_id is not None:
        own["checkpoint_id"] = checkpoint_id
    namespace = tuple(ns.split("|")[:-1]) if "|" in ns else None
    if namespace is not None:
        own["namespace"] = namespace
    plain = plain_node_fields(name, step, task_id, checkpoint_id, namespace)
    scope = parent.node_child(name, own, config, getattr(runtime, "stream_writer", None), plain=plain)
    invocation = parent.invocation
    token = enter_scope(scope)
    scope.attempt = attempt
    invocation.recorder.open(scope, EventType.NODE_ENTER, {"attempt": attempt} if attempt else {})
    return scope, token


def close_node(scope: Scope, token: Token[Scope | None], exc: BaseException | None) -> None:
    """Emit ``node_exit`` with the outcome of ``exc`` and restore the previous scope."""
    try:
        data: dict[str, Any]
        if exc is None:
            outcome, data = Outcome.OK, {}
        else:
            if isinstance(exc, GraphInterrupt):
                scope.invocation.interrupts.extend(exc.args[0] if exc.args else ())
            outcome, data = outcome_of(exc)
        if scope.attempt:
            data["attempt"] = scope.attempt
        scope.invocation.recorder.close(scope, EventType.NODE_EXIT, outcome, data)
    finally:
        exit_scope(token)


def node_exit_durable(recorder: Recorder, exc: BaseException | None = None) -> None:
    """With ``durable_node_exit``, block until the ``node_exit`` just emitted is stored.

    Not for a cancelled node (``KeyboardInterrupt``, ``CancelledError``): stopping must not wait on disk.
    """
    if not recorder.durable_node_exit or isinstance(exc, _STOPPING):
        return
    done = recorder.node_exit_stored()
    if done is not None:
        done.result()


async def anode_exit_durable(recorder: Recorder, exc: BaseException | None = None) -> None:
    """:func:`node_exit_durable` for async nodes: awaits the store without blocking the event loop.

    A cancellation during the wait propagates after a successful node (LangGraph then keeps none of its
    writes) and is dropped after a failed one, whose own exception must reach LangGraph.
    """
    if not recorder.durable_node_exit or isinstance(exc, _STOPPING):
        return
    done = recorder.node_exit_stored()
    if done is None:
        return
    try:
        await asyncio.shield(asyncio.wrap_future(done))
    except asyncio.CancelledError:
        if exc is None:
            raise


def run_node(
    parent: Scope, name: str, config: RunnableConfig, call: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Any:
    """Run one sync node execution as a scope: safe point, ``node_enter``, ``call(*args, **kwargs)``,
    safe point, ``node_exit``. The safe points are called only when the manager is cancelled or
    paused (checked inline: this runs for every node execution)."""
    recorder = parent.invocation.recorder
    manager = parent.invocation.manager
    if manager is not None and manager.needs_safe_point:
        safe_point_sync(parent, name, config)
    scope, token = open_node(parent, name, config)
    try:
        out = call(*args, **kwargs)
        if manager is not None and manager.needs_safe_point:
            safe_point_sync(scope)
    except BaseException as exc:
        close_node(scope, token, exc)
        node_exit_durable(recorder, exc)
        raise
    close_node(scope, token, None)
    if recorder.durable_node_exit:
        node_exit_durable(recorder)
    return out


async def arun_node(
    parent: Scope,
    name: str,
    config: RunnableConfig,
    call: Callable[..., Awaitable[Any]],
    /,
    *args: Any,
    **kwargs: Any,
) -> Any:
    """:func:`run_node` for async bodies, which also run inside the manager's hard-cancel scope."""
    recorder = parent.invocation.recorder
    manager = parent.invocation.manager
    if manager is not None and manager.needs_safe_point:
        await safe_point(parent, name, config)
    scope, token = open_node(parent, name, config)
    try:
        if manager is not None:
            with manager.cancel_scope(name):
                out = await call(*args, **kwargs)
            if manager.needs_safe_point:
                await safe_point(scope)
        else:
            out = await call(*args, **kwargs)
    except BaseException as exc:
        close_node(scope, token, exc)
        await anode_exit_durable(recorder, exc)
        raise
    close_node(scope, token, None)
    if recorder.durable_node_exit:
        await anode_exit_durable(recorder)
    return out


class ObservedNode(Runnable[Any, Any]):
    """What LangGraph runs for an instrumented node; ``inner`` is what it would run without us.

    Outside an instrumented invocation (an uninstrumented copy, a direct call) it only delegates.
    ``agent``: the node is that agent (see :mod:`.agents`); its runs get an agent scope too.
    """

    def __init__(self, name: str, inner: Runnable[Any, Any], agent: AgentNode | None = None) -> None:
        self.name = name
        self.node = name
        self.inner = inner
        self.agent = agent

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.inner!r})"

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        parent = active_scope()
        if parent is None or config is None:
            return self.inner.invoke(input, config, **kwargs)
        config, handler = enter_user_code(config, parent.invocation)
        try:
            if self.agent is not None:
                body = functools.partial(self.inner.invoke, input, config, **kwargs)
                return run_node(parent, self.node, config, functools.partial(run_agent, self.agent, body))
            return run_node(parent, self.node, config, self.inner.invoke, input, config, **kwargs)
        finally:
            if handler is not None:
                leave_user_code(handler)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        parent = active_scope()
        if parent is None or config is None:
            return await self.inner.ainvoke(input, config, **kwargs)
        config, handler = enter_user_code(config, parent.invocation)
        try:
            if self.agent is not None:
                body = functools.partial(self.inner.ainvoke, input, config, **kwargs)
                agent = functools.partial(arun_agent, self.agent, body)
                return await arun_node(parent, self.node, config, agent)
            return await arun_node(parent, self.node, config, self.inner.ainvoke, input, config, **kwargs)
        finally:
            if handler is not None:
                leave_user_code(handler)

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """LangGraph streams a node (instead of ``ainvoke``) when a streaming callback listens."""
        parent = active_scope()
        if self.agent is not None and parent is not None and config is not None:
            yield await self.ainvoke(input, config, **kwargs)  # the agent scope needs one body call
            return
        if parent is None or config is None:
            async for chunk in self.inner.astream(input, config, **kwargs):
                yield chunk
            return
        recorder = parent.invocation.recorder
        manager = parent.invocation.manager
        config, handler = enter_user_code(config, parent.invocation)
        try:
            if manager is not None and manager.needs_safe_point:
                await safe_point(parent, self.node, config)
            scope, token = open_node(parent, self.node, config)
            try:
                with manager.cancel_scope(self.node) if manager is not None else contextlib.nullcontext():
                    async for chunk in self.inner.astream(input, config, **kwargs):
                        yield chunk
                if manager is not None and manager.needs_safe_point:
                    await safe_point(scope)
            except BaseException as exc:
                close_node(scope, token, exc)
                await anode_exit_durable(recorder, exc)
                raise
            close_node(scope, token, None)
            await anode_exit_durable(recorder)
        finally:
            if handler is not None:
                with contextlib.suppress(ValueError):  # closed from another context
                    leave_user_code(handler)


class ObservedRouter(Runnable[Any, Any]):
    """What LangGraph runs for a router (a conditional edge's writer): ``inner`` with the invocation's
    model and tool handler, as a node body has it (see :mod:`.callbacks`), so a model called while
    routing is recorded too (under the invocation: a router runs after its node's scope closed)."""

    def __init__(self, inner: Runnable[Any, Any]) -> None:
        self.inner = inner
        self.name = inner.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        scope = active_scope()
        if scope is None or config is None:
            return self.inner.invoke(input, config, **kwargs)
        config, handler = enter_user_code(config, scope.invocation)
        try:
            return self.inner.invoke(input, config, **kwargs)
        finally:
            if handler is not None:
                leave_user_code(handler)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        scope = active_scope()
        if scope is None or config is None:
            return await self.inner.ainvoke(input, config, **kwargs)
        config, handler = enter_user_code(config, scope.invocation)
        try:
            return await self.inner.ainvoke(input, config, **kwargs)
        finally:
            if handler is not None:
                leave_user_code(handler)


def wrap_nodes(graph: Any, agents: dict[str, AgentNode] | None = None) -> list[Any]:
    """Wrap what LangGraph runs for every node of a compiled graph and its routers; returns subgraphs.

    ``agents``: the agent nodes found in ``graph`` (:func:`~.agents.detect_agents`). Already-wrapped
    nodes are left alone, so calling this twice does not double-wrap. ``__start__`` has no body of
    its own; only its routers are wrapped.
    """
    subgraphs: list[Any] = []
    for name, node in graph_nodes(graph).items():
        subgraphs.extend(node.subgraphs)
        if _observed(node):
            continue
        runner = node_bound_runner(node)
        if name == START or runner is None:
            if node_routers(node):
                run_in_place_of_bound(node, None, ObservedRouter)
            continue
        run_in_place_of_bound(node, ObservedNode(name, runner, (agents or {}).get(name)), ObservedRouter)
    return subgraphs


def unwrap_nodes(graph: Any) -> list[Any]:
    """Let LangGraph run its own node runnables again; returns the graph's subgraphs."""
    subgraphs: list[Any] = []
    for node in graph_nodes(graph).values():
        subgraphs.extend(node.subgraphs)
        if _observed(node):
            run_in_place_of_bound(node, None)
    return subgraphs


def _observed(node: Any) -> bool:
    return any(isinstance(step, ObservedNode | ObservedRouter) for step in node_steps(node))
