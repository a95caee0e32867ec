"""The one-call live event stream: run an instrumented graph and yield only its :class:`StreamEvent`s.

Works whatever ``SwarmObserver(custom_stream=...)`` says: the run it starts carries our events in
LangGraph's custom stream (that one run only), and only our events are yielded; the graph's own custom
payloads are dropped here, never mixed in.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

from ..events import StreamEvent
from ..exceptions import InstrumentationError
from ._langgraph import shadowed_by
from .lifecycle import GraphEntry

_SET_BY_US = ("stream_mode", "subgraphs", "version")
_EVENT_STREAM_ARGS = {"stream_mode": "custom", "subgraphs": True}


def _entry(graph: Any, kwargs: dict[str, Any]) -> GraphEntry:
    entry = shadowed_by(graph)
    if not isinstance(entry, GraphEntry):
        raise InstrumentationError(
            f"{type(graph).__name__} is not instrumented: call SwarmObserver().instrument(graph) first"
        )
    given = [key for key in _SET_BY_US if key in kwargs]
    if given:
        raise TypeError(f"stream_events() sets {', '.join(given)} itself; do not pass them")
    return entry


class EventStream(AsyncIterator[StreamEvent]):
    """The live events of one run (from :func:`stream_events`): an async iterator and context manager.

    ``async with stream_events(...) as events:`` (or ``contextlib.aclosing``) closes the run when the
    block is left, whether the loop finished, broke early or raised.
    """

    __slots__ = ("_events",)

    def __init__(self, events: AsyncGenerator[StreamEvent, None]) -> None:
        self._events = events

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """End the run now if it is still going (``scan_cancelled``, ``reason="abandoned"``)."""
        await self._events.aclose()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def stream_events(graph: Any, input: Any, config: Any = None, **kwargs: Any) -> EventStream:
    """Run an instrumented graph with ``astream`` and yield only its :class:`StreamEvent`s, as they happen.

    Requests ``stream_mode="custom"`` and ``subgraphs=True`` itself (so events of subgraphs and of
    parallel branches are included) and unpacks LangGraph's tuples; other ``astream`` keyword arguments
    (``context``, ``durability``, ``control`` ...) are passed on.

    Leaving the loop early: ``break`` alone does *not* end the run. The graph stops being driven, but
    the invocation stays open (no terminal event, checkpoints and control as they were) until the
    stream is garbage collected, when the event loop closes it in the background. To end it at once,
    use the stream as an async context manager or wrap it in ``contextlib.aclosing``: leaving the
    block closes the run with ``scan_cancelled`` (``reason="abandoned"``)::

        async with stream_events(graph, inputs, config) as events:
            async for event in events:
                if event.type_name == "probe_result":
                    break          # scan_cancelled(abandoned) is stored as the block exits

    Raises:
        InstrumentationError: ``graph`` is not instrumented.
        TypeError: ``stream_mode``, ``subgraphs`` or ``version`` was passed.
    """
    entry = _entry(graph, kwargs)
    items = entry.run_astream(input, config, {**kwargs, **_EVENT_STREAM_ARGS}, streams=True)
    return EventStream(_only_events(items))


async def _only_events(items: AsyncIterator[Any]) -> AsyncGenerator[StreamEvent, None]:
    try:
        async for _ns, payload in items:
            if isinstance(payload, StreamEvent):
                yield payload
    finally:
        await items.aclose()  # type: ignore[attr-defined]


def iter_events(graph: Any, input: Any, config: Any = None, **kwargs: Any) -> Iterator[StreamEvent]:
    """The sync twin of :func:`stream_events` (runs ``graph.stream``)."""
    entry = _entry(graph, kwargs)
    items = entry.run_stream(input, config, {**kwargs, **_EVENT_STREAM_ARGS}, streams=True)
    try:
        for _ns, payload in items:
            if isinstance(payload, StreamEvent):
                yield payload
    finally:
        items.close()  # type: ignore[attr-defined]
