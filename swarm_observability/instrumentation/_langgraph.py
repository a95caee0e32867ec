"""The one module that knows LangGraph's internals: config keys, the node runnable slot, graph copies.

Everything here is checked against ``langgraph`` 1.2.x. Keeping it in one place means a LangGraph
upgrade is a review of this file, and every other module of the core talks about scopes and events.

How an instrumented graph stays *transparent*:

* Nodes: LangGraph runs ``PregelNode.node`` (a ``cached_property`` combining ``bound`` and the
  writers); drawing (``get_graph``), subgraph discovery, ``.bound.func`` and a ``ToolNode``'s
  ``tools_by_name`` read ``bound``. The wrapper is put into the cached slot only (:func:`set_node_runnable`),
  so ``bound`` is the user's object, untouched.
* Graphs: the class is not swapped (``type(graph) is CompiledStateGraph`` still holds); ``stream``,
  ``astream`` and ``copy`` are shadowed on the instance (:func:`shadow_methods`), so ``invoke``,
  ``ainvoke``, ``batch`` and ``astream_events``, which all call ``self.stream``/``self.astream``, go
  through the lifecycle, and ``with_config()`` copies (``copy()``) stay instrumented.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable
from typing import Any

from langchain_core.runnables import Runnable
from langchain_core.runnables.config import var_child_runnable_config
from langgraph._internal._config import ensure_config
from langgraph._internal._runnable import RunnableSeq
from langgraph.pregel._read import DEFAULT_BOUND, PregelNode
from langgraph.pregel._write import ChannelWrite

from ..events import safe_run_id

logger = logging.getLogger("swarm_observability")

RUNTIME_KEY = "__pregel_runtime"
START = "__start__"
SHADOWED = ("stream", "astream", "copy")
"""The graph methods an instrumented graph shadows on the instance (never in its class)."""

_NOTHING: dict[str, Any] = {}


def node_runtime(config: Any) -> Any:
    """The LangGraph ``Runtime`` of the node whose config this is (``None`` outside a node)."""
    return ((config or _NOTHING).get("configurable") or _NOTHING).get(RUNTIME_KEY)


def task_namespace(config: Any) -> str:
    """The node's checkpoint namespace (``parent:task|node:task``), ``""`` at the root."""
    metadata = config.get("metadata") or _NOTHING
    return (
        metadata.get("langgraph_checkpoint_ns")
        or (config.get("configurable") or _NOTHING).get("checkpoint_ns")
        or ""
    )


def node_execution(config: Any) -> tuple[Any, str, Any, str | None, str | None, int | None]:
    """What LangGraph tells a node execution: ``(runtime, namespace, step, task_id, checkpoint_id, attempt)``.

    The namespace is the one :func:`task_namespace` reads; the step is ``langgraph_step``; the task
    id, checkpoint id and attempt come from ``runtime.execution_info``, else (no execution info) from
    the namespace's last element and the config's ``checkpoint_id``.
    """
    configurable = config.get("configurable") or _NOTHING
    metadata = config.get("metadata") or _NOTHING
    runtime: Any = configurable.get(RUNTIME_KEY)
    ns = metadata.get("langgraph_checkpoint_ns") or configurable.get("checkpoint_ns") or ""
    try:  # attributes, not getattr(): this runs for every node execution
        info = runtime.execution_info
        task_id, checkpoint_id, attempt = info.task_id, info.checkpoint_id, info.node_attempt
    except AttributeError:  # no runtime, or no (or an older) execution info: the config's
        task_id = checkpoint_id = attempt = None
    if not task_id:
        task_id = ns.rpartition("|")[2].partition(":")[2] if ns else None
    checkpoint_id = checkpoint_id or configurable.get("checkpoint_id")
    return runtime, ns, metadata.get("langgraph_step"), task_id, checkpoint_id, attempt


def enclosing_control(graph: Any, config: Any) -> Any:
    """The ``RunControl`` LangGraph would share from an enclosing run, if any.

    LangGraph shares it with a graph called inside a node when the call's config inherits the node's
    (its own ``ensure_config`` decides, so it is asked here too).
    """
    return getattr(node_runtime(ensure_config(graph.config, config)), "control", None)


def run_identity(graph_config: Any, config: Any, fallback: Callable[[], str]) -> tuple[str, str | None]:
    """``(run_id, thread_id)`` of an invocation: ``scan_id``, else the thread id, else ``fallback()``.

    ``configurable`` of the call overrides the graph's own (``with_config``). An empty ``scan_id`` or
    thread id counts as given (LangGraph keeps a thread ``""``), mapped like any id the log cannot
    store (:func:`safe_run_id`); ``None`` as missing.
    """
    conf = {
        **((graph_config or _NOTHING).get("configurable") or _NOTHING),
        **((config or _NOTHING).get("configurable") or _NOTHING),
    }
    thread = conf.get("thread_id")
    thread_id = str(thread) if thread is not None else None
    scan_id = conf.get("scan_id")
    raw = str(scan_id) if scan_id is not None else thread_id
    return (safe_run_id(raw) if raw is not None else fallback()), thread_id


# -- nodes ------------------------------------------------------------------------------------------


def node_bound_runner(node: PregelNode) -> Runnable[Any, Any] | None:
    """What LangGraph runs where ``node.bound`` runs (``bound`` unless replaced); ``None``: no bound."""
    if node.bound is DEFAULT_BOUND:
        return None
    cached = node.__dict__.get("node")
    if isinstance(cached, RunnableSeq):
        return cached.steps[0]
    return cached if cached is not None else node.bound


def run_in_place_of_bound(
    node: PregelNode,
    runner: Runnable[Any, Any] | None,
    route: Callable[[Runnable[Any, Any]], Runnable[Any, Any]] | None = None,
) -> None:
    """Make LangGraph run ``runner`` where it runs ``node.bound`` (``None``: ``bound`` itself), before
    the writers, and ``route(router)`` for each router (a writer that is not a ``ChannelWrite``: a
    conditional edge). Both ``None`` undoes it.

    Only the cached ``PregelNode.node`` (``bound`` then the writers, exactly as LangGraph builds it)
    changes; ``bound`` and ``writers`` stay the user's and LangGraph's own.
    """
    node.__dict__.pop("node", None)
    if runner is None and route is None:
        return
    writers = node.flat_writers
    if route is not None:
        writers = [w if isinstance(w, ChannelWrite) else route(w) for w in writers]
    bound = node.bound if runner is None else runner
    if bound is not DEFAULT_BOUND:
        steps = [bound, *writers]
    elif writers:
        steps = writers
    else:
        return
    trace_policy = node.trace_policy
    node.__dict__["node"] = RunnableSeq(*steps, trace_policy=trace_policy) if len(steps) > 1 else steps[0]


def node_routers(node: PregelNode) -> list[Runnable[Any, Any]]:
    """The node's routers: its writers that are not ``ChannelWrite``s (conditional edges)."""
    return [w for w in node.flat_writers if not isinstance(w, ChannelWrite)]


def node_steps(node: PregelNode) -> list[Runnable[Any, Any]]:
    """What LangGraph runs for the node, step by step, if it was replaced (else ``[]``)."""
    cached = node.__dict__.get("node")
    if cached is None:
        return []
    return list(cached.steps) if isinstance(cached, RunnableSeq) else [cached]


def graph_nodes(graph: Any) -> dict[str, PregelNode]:
    """The compiled graph's nodes (``__start__`` included)."""
    return graph.nodes


# -- graphs -----------------------------------------------------------------------------------------


def is_instrumentable(graph: Any) -> bool:
    """Whether ``graph`` is a compiled LangGraph graph (``Pregel``)."""
    from langgraph.pregel import Pregel

    return isinstance(graph, Pregel)


def shadow_methods(graph: Any, bind: Callable[[Any], dict[str, Callable[..., Any]]]) -> None:
    """Shadow ``stream``, ``astream`` and ``copy`` on the instance with ``bind(graph)``.

    The class stays LangGraph's own. ``copy.copy``/``copy.deepcopy`` (through an instance
    ``__reduce_ex__``, which ``copy`` looks up on the object) rebuild the copy with its own methods
    from ``bind``, so a copy is instrumented like the original and never runs the original.
    """
    for name, method in bind(graph).items():
        graph.__dict__[name] = method
    graph.__dict__["__reduce_ex__"] = _Reducer(graph, bind)


def shadowed_by(graph: Any) -> Any:
    """The object whose methods shadow ``graph``'s (``__self__`` of its ``stream``), or ``None``."""
    return getattr(graph.__dict__.get("stream"), "__self__", None)


def unshadow_methods(graph: Any) -> None:
    """Drop the shadowing methods: the instance uses its class's again."""
    for name in (*SHADOWED, "__reduce_ex__"):
        graph.__dict__.pop(name, None)


def copy_graph(graph: Any, update: dict[str, Any] | None) -> Any:
    """``Pregel.copy`` without the shadowing methods (they are not constructor arguments)."""
    attrs = _plain_state(graph)
    attrs.pop("__orig_class__", None)
    attrs.update(update or {})
    return type(graph)(**attrs)


def _plain_state(graph: Any) -> dict[str, Any]:
    return {k: v for k, v in graph.__dict__.items() if k not in SHADOWED and k != "__reduce_ex__"}


class _Reducer:
    """An instrumented graph's ``__reduce_ex__``: its state without the shadows, rebuilt with new ones."""

    __slots__ = ("bind", "graph")

    def __init__(self, graph: Any, bind: Callable[[Any], dict[str, Callable[..., Any]]]) -> None:
        self.graph = graph
        self.bind = bind

    def __call__(self, protocol: int) -> tuple[Any, ...]:
        return (_rebuild, (type(self.graph), self.bind), _plain_state(self.graph))


def _rebuild(cls: type[Any], bind: Callable[[Any], dict[str, Callable[..., Any]]]) -> Any:
    graph = object.__new__(cls)
    shadow_methods(graph, bind)
    return graph


def config_checkpointer(graph: Any, config: Any) -> Any:
    """The checkpointer an invocation of ``graph`` uses: its own, or the one LangGraph passes a subgraph."""
    from langgraph.checkpoint.base import BaseCheckpointSaver

    if isinstance(graph.checkpointer, BaseCheckpointSaver):
        return graph.checkpointer
    return ((config or _NOTHING).get("configurable") or _NOTHING).get("__pregel_checkpointer")


_MAX_SHAPE_NODES = 500


_SHAPES: weakref.WeakKeyDictionary[Any, tuple[tuple[str, ...], dict[str, Any] | None]] = (
    weakref.WeakKeyDictionary()
)


def graph_shape(graph: Any) -> dict[str, Any] | None:
    """The graph's nodes and edges, from its public ``get_graph()``, for the page's graph view.

    Recorded once per run (``scan_started`` ``data["graph_shape"]``): ``{"nodes": [...], "edges":
    [{"source", "target", "conditional"?}]}``. ``None`` when the graph cannot be drawn or has more than
    500 nodes; telemetry never fails the run over it. Drawing costs milliseconds, more than a whole short
    run, so the shape is kept per compiled graph (keyed weakly, redrawn if its node set changes).
    """
    key = tuple(getattr(graph, "nodes", None) or ())
    try:
        cached = _SHAPES.get(graph)
    except TypeError:
        cached = None
    if cached is None or cached[0] != key:
        cached = (key, _draw_shape(graph))
        with contextlib.suppress(TypeError):
            _SHAPES[graph] = cached
    shape = cached[1]
    if shape is None:
        return None
    return {"nodes": list(shape["nodes"]), "edges": [dict(edge) for edge in shape["edges"]]}


def _draw_shape(graph: Any) -> dict[str, Any] | None:
    try:
        drawable = graph.get_graph()
        nodes = [str(node) for node in drawable.nodes]
        if len(nodes) > _MAX_SHAPE_NODES:
            return None
        edges = [
            {
                "source": str(e.source),
                "target": str(e.target),
                **({"conditional": True} if e.conditional else {}),
            }
            for e in drawable.edges
        ]
    except Exception:
        logger.debug("swarm_observability: could not draw the graph for its shape", exc_info=True)
        return None
    return {"nodes": nodes, "edges": edges}


def custom_item_shape(graph: Any, kwargs: dict[str, Any]) -> Callable[[Any], Any] | None:
    """How LangGraph would yield a custom item at the root for these stream arguments (None: not at all)."""
    mode = kwargs.get("stream_mode")
    if mode is None:
        mode = graph.stream_mode
    modes = [mode] if isinstance(mode, str) else list(mode)
    if "custom" not in modes:
        return None
    if kwargs.get("version", "v1") == "v2":
        return lambda event: {"type": "custom", "ns": (), "data": event}
    subgraphs = bool(kwargs.get("subgraphs"))
    if isinstance(mode, str):
        return (lambda event: ((), event)) if subgraphs else (lambda event: event)
    return (lambda event: ((), "custom", event)) if subgraphs else (lambda event: ("custom", event))


def write_custom(writer: Callable[[Any], None] | None, config: Any, item: Any, what: str) -> None:
    """Put ``item`` into LangGraph's custom stream of a node through its ``writer``; never raises.

    The writer is the node's ``runtime.stream_writer``; it reads the namespace from the current
    runnable config, which is set to the node's ``config`` for the call: the node wrapper runs
    outside the config LangGraph sets for the node's body, and the heartbeat thread has none.
    """
    if writer is None:
        return
    try:
        if config is None:
            writer(item)
            return
        token = var_child_runnable_config.set(config)
        try:
            writer(item)
        finally:
            var_child_runnable_config.reset(token)
    except Exception:  # the stream is gone (consumer finished, loop closed)
        logger.debug("swarm_observability: %s not written to the stream", what, exc_info=True)
