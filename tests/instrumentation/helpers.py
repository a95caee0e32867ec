"""Helpers shared by the instrumentation tests: run one invocation with any API, group events."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

from langgraph.graph import START, StateGraph

from swarm_observability.events import StreamEvent


class ChainState(TypedDict, total=False):
    """The state of :func:`chain` graphs: what each node returns in ``x`` is appended."""

    x: Annotated[list[str], operator.add]


def chain(*nodes: tuple[str, Any] | str) -> StateGraph:
    """A builder of ``START -> nodes[0] -> nodes[1] -> ...`` over :class:`ChainState`.

    A node is ``(name, function)``, or a bare name for a node that appends its name to ``x``.
    """
    builder = StateGraph(ChainState)
    previous = START
    for node in nodes:
        name, fn = (node, lambda state, name=node: {"x": [name]}) if isinstance(node, str) else node
        builder.add_node(name, fn)
        builder.add_edge(previous, name)
        previous = name
    return builder


def run_api(
    graph: Any, api: str, inp: Any, config: Any, **kwargs: Any
) -> tuple[list[tuple[Any, StreamEvent]], Any]:
    """Run one invocation with ``api`` (invoke/stream/ainvoke/astream).

    Returns the ``(namespace, event)`` custom items a stream consumer saw (empty for invoke) and the
    exception the call raised (``None`` if it returned).
    """
    seen: list[tuple[Any, StreamEvent]] = []

    def take(chunk: Any) -> None:
        ns, mode, payload = chunk
        if mode == "custom":
            seen.append((ns, payload))

    stream_kwargs = {"stream_mode": ["updates", "custom"], "subgraphs": True, **kwargs}
    try:
        if api == "invoke":
            graph.invoke(inp, config, **kwargs)
        elif api == "stream":
            for chunk in graph.stream(inp, config, **stream_kwargs):
                take(chunk)
        elif api == "ainvoke":
            asyncio.run(graph.ainvoke(inp, config, **kwargs))
        elif api == "astream":

            async def consume() -> None:
                async for chunk in graph.astream(inp, config, **stream_kwargs):
                    take(chunk)

            asyncio.run(consume())
        else:
            raise ValueError(api)
    except Exception as exc:
        return seen, exc
    return seen, None


def types(events: list[StreamEvent]) -> list[str]:
    """The type names of ``events``."""
    return [e.type_name for e in events]


def by_scope(events: list[StreamEvent]) -> dict[str, list[StreamEvent]]:
    """Events grouped by ``scope_id``, each group in emission order."""
    out: dict[str, list[StreamEvent]] = {}
    for event in events:
        out.setdefault(event.scope_id or "", []).append(event)
    return out
