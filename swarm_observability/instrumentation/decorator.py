"""``@observe_node``: node events for one function, in graphs that are not instrumented as a whole."""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import var_child_runnable_config

from ..exceptions import NoActiveRunError
from ._langgraph import run_identity, task_namespace
from .nodes import arun_node, run_node
from .recorder import Invocation, Scope, active_scope

if TYPE_CHECKING:
    from .observer import SwarmObserver

F = TypeVar("F", bound=Callable[..., Any])


def _standalone_parent(observer: SwarmObserver, config: RunnableConfig) -> Scope:
    """A parent scope for a decorated node in a graph that is not instrumented (no invocation)."""
    run_id, thread = run_identity(None, config, lambda: uuid.uuid4().hex)
    invocation = Invocation(observer.recorder, run_id, thread, None, observer.leases.lease(run_id))
    scope = Scope("scan", None, invocation, None, {"thread_id": thread} if thread else {})
    del scope.fields["scope_id"]
    return scope


def _decorated_parent(observer: SwarmObserver | None, name: str) -> tuple[Scope, RunnableConfig] | None:
    config = var_child_runnable_config.get()
    if config is None:
        return None
    parent = active_scope()
    if parent is not None:
        if parent.config is not None and task_namespace(parent.config) == task_namespace(config):
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
