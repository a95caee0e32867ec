"""The scan lifecycle of an instrumented graph, and the one-call live event stream.

An instrumented compiled graph gets a subclass of its own class (same name, swapped on the instance,
so ``with_config()`` copies stay instrumented) whose ``stream`` and ``astream`` wrap LangGraph's;
``invoke``/``ainvoke``/``batch``/``astream_events`` all go through them. The outermost call is one
*scan invocation*:

* it emits ``scan_started``, or ``scan_resumed`` when the input is ``None`` or a ``Command`` and the
  thread already has a checkpoint (``data.previous_invocation_id`` names the last invocation of the
  run in the event log);
* it ends with exactly one of ``scan_complete``; ``scan_paused`` (``reason`` ``"interrupt"`` when a
  node called ``interrupt()`` or a static ``interrupt_before/after`` stopped it, ``"drain"`` on
  ``GraphDrained``, which is re-raised); ``scan_cancelled`` (``ScanCancelled``, ``CancelledError``,
  ``KeyboardInterrupt``, or ``reason="abandoned"`` when the consumer closes the stream early);
  ``scan_error`` (the exception is re-raised).

Graph calls inside a running invocation (a subgraph node, ``graph.invoke()`` inside a node) pass
straight through: their nodes report into the enclosing invocation.

Events emitted inside nodes reach ``stream_mode="custom"`` through LangGraph's stream writer. The
invocation's own events are yielded here, shaped like LangGraph's custom items for the requested
``stream_mode``/``subgraphs``/``version``, and only when ``"custom"`` is requested. The terminal event
of a failed invocation is yielded before the exception is raised.

Control: unless the caller passes ``control=`` (or an enclosing LangGraph run provides one), each
invocation runs with a fresh ``RunControl`` from the scan's ``CancellationManager``, so
``manager.drain()`` works without extra wiring. The manager is reset as the invocation ends (just
before its terminal event), so a cancelled or drained scan can be resumed in the same process, while a
request made after that applies to the next invocation.

Durability: the outermost invocation waits, after its terminal event, until the emitter has stored
every event (a background writer may still hold some), so ``store.load()`` right after ``invoke``,
``ainvoke`` or the end of ``astream`` sees the whole invocation. A failed write is logged there and
raised by the next explicit ``emitter.flush()``, never into the graph's caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from langgraph._internal._config import ensure_config as _langgraph_config
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.errors import GraphDrained, GraphInterrupt
from langgraph.types import Command

from ..events import EventType, Outcome, StreamEvent
from ..exceptions import InstrumentationError, ScanCancelled
from .callbacks import SwarmCallbackHandler, with_run_callbacks
from .recorder import RunState, Scope, _current, new_scope_id

if TYPE_CHECKING:
    from langgraph.pregel import Pregel

    from ..emitter import EventEmitter
    from .observer import SwarmObserver

import logging

logger = logging.getLogger("swarm_observability")

_Shape = Callable[[StreamEvent], Any]


def observed_class(observer: SwarmObserver, cls: type) -> type:
    """The instrumented subclass of a compiled graph class for ``observer`` (cached)."""
    sub = observer._classes.get(cls)
    if sub is None:
        namespace = {
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
            "_swarm_observer": observer,
            "_swarm_original_class": cls,
            "stream": _stream,
            "astream": _astream,
        }
        sub = observer._classes[cls] = type(cls.__name__, (cls,), namespace)
    return sub


def _stream(self: Pregel, input: Any, config: Any = None, **kwargs: Any) -> Iterator[Any]:
    original = type(self)._swarm_original_class.stream  # type: ignore[attr-defined]
    if _current.get() is not None:
        return original(self, input, config, **kwargs)  # type: ignore[no-any-return]
    invocation = _Invocation(type(self)._swarm_observer, self, input, config, kwargs)  # type: ignore[attr-defined]
    return _run_sync(invocation, original, input, config, kwargs)


def _astream(self: Pregel, input: Any, config: Any = None, **kwargs: Any) -> AsyncIterator[Any]:
    original = type(self)._swarm_original_class.astream  # type: ignore[attr-defined]
    if _current.get() is not None:
        return original(self, input, config, **kwargs)  # type: ignore[no-any-return]
    invocation = _Invocation(type(self)._swarm_observer, self, input, config, kwargs)  # type: ignore[attr-defined]
    return _run_async(invocation, original, input, config, kwargs)


def _shape_for(graph: Pregel, kwargs: dict[str, Any]) -> _Shape | None:
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


def _enclosing_control(graph: Pregel, config: Any) -> Any:
    """The ``RunControl`` LangGraph would share from an enclosing run, if any.

    LangGraph shares it with a graph called inside a node when the call's config inherits the node's
    (its own ``ensure_config`` decides, so it is asked here too).
    """
    merged = _langgraph_config(graph.config, config)
    return getattr(merged["configurable"].get("__pregel_runtime"), "control", None)


def _stored(emitter: EventEmitter) -> Future[None] | None:
    """A future done once every event emitted so far is stored; ``None`` when nothing is queued.

    Unlike ``emitter.flush()`` it leaves a failed background write for the next explicit flush to raise.
    """
    return emitter.wait_stored()


class _Invocation:
    """Start and end of one scan invocation; shared by the sync and the async stream."""

    def __init__(
        self, observer: SwarmObserver, graph: Pregel, input: Any, config: Any, kwargs: dict[str, Any]
    ) -> None:
        from ..events import validate_run_id

        conf = {
            **((graph.config or {}).get("configurable") or {}),
            **((config or {}).get("configurable") or {}),
        }
        thread = conf.get("thread_id")
        thread_id = str(thread) if thread is not None else None
        scan_id = conf.get("scan_id")
        run_id = validate_run_id(str(scan_id) if scan_id is not None else thread_id or new_scope_id())
        self.observer = observer
        self.graph = graph
        self.invocation_id = new_scope_id()
        self.run = RunState(observer, run_id, thread_id, self.invocation_id, observer._manager_for(run_id))
        self.shape = _shape_for(graph, kwargs)
        saver = graph.checkpointer if isinstance(graph.checkpointer, BaseCheckpointSaver) else None
        self.saver = saver or conf.get("__pregel_checkpointer")
        self.lookup = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        self.may_resume = (input is None or isinstance(input, Command)) and thread is not None
        self.static_interrupts = bool(
            kwargs.get("interrupt_before")
            or kwargs.get("interrupt_after")
            or graph.interrupt_before_nodes
            or graph.interrupt_after_nodes
        )
        self.ended = False

    # -- start ------------------------------------------------------------------------------------

    def resumed(self) -> bool:
        if not self.may_resume or self.saver is None:
            return False
        try:
            return self.saver.get_tuple(self.lookup) is not None
        except Exception:
            logger.debug("swarm_observability: checkpoint lookup failed", exc_info=True)
            return False

    async def aresumed(self) -> bool:
        if not self.may_resume or self.saver is None:
            return False
        try:
            return await self.saver.aget_tuple(self.lookup) is not None
        except Exception:
            logger.debug("swarm_observability: checkpoint lookup failed", exc_info=True)
            return False

    def start(self, resumed: bool) -> StreamEvent | None:
        """Emit ``scan_started``/``scan_resumed`` and open the invocation scope."""
        observer, run = self.observer, self.run
        observer.emitter.forget_run(run.run_id)
        data: dict[str, Any] = {"graph": self.graph.name}
        if resumed:
            data["previous_invocation_id"] = self._previous_invocation()
        root = Scope(
            "scan",
            self.graph.name,
            run,
            None,
            {"thread_id": run.thread_id, "invocation_id": self.invocation_id}
            if run.thread_id is not None
            else {"invocation_id": self.invocation_id},
            scope_id=self.invocation_id,
        )
        run.root = root
        return observer._open_scope(root, EventType.SCAN_RESUMED if resumed else EventType.SCAN_STARTED, data)

    def _previous_invocation(self) -> str | None:
        try:
            done = _stored(self.observer.emitter)
            if done is not None:
                done.result()
            last = self.observer.store.query(
                self.run.run_id, types=[EventType.SCAN_STARTED, EventType.SCAN_RESUMED], limit=1
            )
        except Exception:
            logger.exception(
                "swarm_observability: could not read the previous invocation of %r", self.run.run_id
            )
            return None
        return last[0].invocation_id if last else None

    def run_config(self, config: Any) -> Any:
        """``config`` with this invocation's model and tool callback handler added (see :mod:`.callbacks`)."""
        return with_run_callbacks(config, SwarmCallbackHandler(self.run, self.observer.callback_settings))

    def stream_kwargs(self, config: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``kwargs`` for LangGraph's stream, with the manager's ``RunControl`` unless one is given."""
        manager = self.run.manager
        if manager is None or kwargs.get("control") is not None or _enclosing_control(self.graph, config):
            return kwargs
        return {**kwargs, "control": manager.run_control()}

    # -- end --------------------------------------------------------------------------------------

    def needs_state(self) -> bool:
        """Only a static interrupt can pause a run without a node raising; then ask the checkpointer."""
        return self.static_interrupts and not self.run.interrupts and self.saver is not None

    def finish(self, exc: BaseException | None, next_nodes: tuple[str, ...] = ()) -> StreamEvent | None:
        """Emit the invocation's one terminal event for how it ended."""
        if self.ended:
            return None
        self.ended = True
        interrupts = _unique(self.run.interrupts)
        data: dict[str, Any] = {}
        fields: dict[str, Any] = {}
        if exc is None or (isinstance(exc, GeneratorExit) and interrupts) or isinstance(exc, GraphInterrupt):
            if interrupts or next_nodes or isinstance(exc, GraphInterrupt):
                kind, outcome = EventType.SCAN_PAUSED, Outcome.INTERRUPTED
                data = {
                    "reason": "interrupt",
                    "interrupts": [{"id": i.id, "value": i.value} for i in interrupts],
                }
                if next_nodes:
                    data["next"] = list(next_nodes)
            else:
                kind, outcome = EventType.SCAN_COMPLETE, Outcome.OK
        elif isinstance(exc, GraphDrained):
            kind, outcome = EventType.SCAN_PAUSED, Outcome.PAUSED
            data = {"reason": "drain", "drain_reason": exc.reason}
        elif isinstance(exc, ScanCancelled):
            kind, outcome = EventType.SCAN_CANCELLED, Outcome.CANCELLED
            data = {"reason": exc.reason or "cancelled"}
            fields = {"node": exc.node} if exc.node else {}
        elif isinstance(exc, GeneratorExit):
            kind, outcome, data = EventType.SCAN_CANCELLED, Outcome.CANCELLED, {"reason": "abandoned"}
        elif isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
            kind, outcome = EventType.SCAN_CANCELLED, Outcome.CANCELLED
            data = {"reason": "cancelled" if isinstance(exc, asyncio.CancelledError) else "KeyboardInterrupt"}
        else:
            kind, outcome = EventType.SCAN_ERROR, Outcome.ERROR
            data = {"error_type": type(exc).__name__, "error_message": str(exc)}
        root = self.run.root
        assert root is not None
        observer = self.observer
        observer._end_control(self.run)
        try:
            return observer._close_scope(root, kind, outcome, data, **fields)
        finally:
            observer._release_managers()

    def settle(self) -> None:
        """Wait until the invocation's events are stored; a failed write is logged, not raised."""
        try:
            done = _stored(self.observer.emitter)
            if done is not None:
                done.result()
        except Exception:
            logger.exception("swarm_observability: could not wait for the events of %r", self.run.run_id)

    async def asettle(self) -> None:
        """:meth:`settle` without blocking the event loop."""
        try:
            done = _stored(self.observer.emitter)
            if done is not None:
                await asyncio.shield(asyncio.wrap_future(done))
        except Exception:
            logger.exception("swarm_observability: could not wait for the events of %r", self.run.run_id)


def _unique(interrupts: list[Any]) -> list[Any]:
    seen: dict[Any, Any] = {}
    for interrupt in interrupts:
        seen.setdefault(getattr(interrupt, "id", id(interrupt)), interrupt)
    return list(seen.values())


def _run_sync(
    inv: _Invocation, original: Callable[..., Iterator[Any]], input: Any, config: Any, kwargs: dict[str, Any]
) -> Iterator[Any]:
    root_event = inv.start(inv.resumed())
    root = inv.run.root
    inner: Iterator[Any] | None = None
    try:
        if inv.shape is not None and root_event is not None:
            yield inv.shape(root_event)
        token = _current.set(root)
        try:
            inner = original(inv.graph, input, inv.run_config(config), **inv.stream_kwargs(config, kwargs))
        finally:
            _current.reset(token)
        while True:
            token = _current.set(root)
            try:
                chunk = next(inner)
            except StopIteration:
                break
            finally:
                _current.reset(token)
            yield chunk
    except GeneratorExit as exc:
        token = _current.set(root)
        try:
            if inner is not None:
                inner.close()  # type: ignore[attr-defined]
        finally:
            _current.reset(token)
            inv.finish(exc)
            inv.settle()
        raise
    except BaseException as exc:
        event = inv.finish(exc)
        inv.settle()
        if inv.shape is not None and event is not None and isinstance(exc, Exception):
            yield inv.shape(event)
        raise
    next_nodes: tuple[str, ...] = ()
    if inv.needs_state():
        try:
            next_nodes = tuple(inv.graph.get_state(inv.lookup).next)
        except Exception:
            logger.debug("swarm_observability: get_state failed", exc_info=True)
    event = inv.finish(None, next_nodes)
    inv.settle()
    if inv.shape is not None and event is not None:
        yield inv.shape(event)


async def _run_async(
    inv: _Invocation,
    original: Callable[..., AsyncIterator[Any]],
    input: Any,
    config: Any,
    kwargs: dict[str, Any],
) -> AsyncIterator[Any]:
    root_event = inv.start(await inv.aresumed())
    root = inv.run.root
    inner: AsyncIterator[Any] | None = None
    try:
        if inv.shape is not None and root_event is not None:
            yield inv.shape(root_event)
        token = _current.set(root)
        try:
            inner = original(inv.graph, input, inv.run_config(config), **inv.stream_kwargs(config, kwargs))
        finally:
            _current.reset(token)
        while True:
            token = _current.set(root)
            try:
                chunk = await inner.__anext__()
            except StopAsyncIteration:
                break
            finally:
                _current.reset(token)
            yield chunk
    except GeneratorExit as exc:
        token = _current.set(root)
        try:
            if inner is not None:
                await inner.aclose()  # type: ignore[attr-defined]
        finally:
            _current.reset(token)
            inv.finish(exc)
        await inv.asettle()
        raise
    except BaseException as exc:
        event = inv.finish(exc)
        await inv.asettle()
        if inv.shape is not None and event is not None and isinstance(exc, Exception):
            yield inv.shape(event)
        raise
    next_nodes: tuple[str, ...] = ()
    if inv.needs_state():
        try:
            next_nodes = tuple((await inv.graph.aget_state(inv.lookup)).next)
        except Exception:
            logger.debug("swarm_observability: aget_state failed", exc_info=True)
    event = inv.finish(None, next_nodes)
    await inv.asettle()
    if inv.shape is not None and event is not None:
        yield inv.shape(event)


# -- the one-call live stream -----------------------------------------------------------------------

_SET_BY_US = ("stream_mode", "subgraphs", "version")


def _check_stream_args(graph: Any, kwargs: dict[str, Any]) -> None:
    if getattr(type(graph), "_swarm_observer", None) is None:
        raise InstrumentationError(
            f"{type(graph).__name__} is not instrumented: call SwarmObserver().instrument(graph) first"
        )
    given = [key for key in _SET_BY_US if key in kwargs]
    if given:
        raise TypeError(f"stream_events() sets {', '.join(given)} itself; do not pass them")


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


def stream_events(graph: Pregel, input: Any, config: Any = None, **kwargs: Any) -> EventStream:
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
    _check_stream_args(graph, kwargs)
    items = graph.astream(input, config, stream_mode="custom", subgraphs=True, **kwargs)
    return EventStream(_only_events(items))


async def _only_events(items: AsyncIterator[Any]) -> AsyncGenerator[StreamEvent, None]:
    try:
        async for _ns, payload in items:
            if isinstance(payload, StreamEvent):
                yield payload
    finally:
        await items.aclose()  # type: ignore[attr-defined]


def iter_events(graph: Pregel, input: Any, config: Any = None, **kwargs: Any) -> Iterator[StreamEvent]:
    """The sync twin of :func:`stream_events` (runs ``graph.stream``)."""
    _check_stream_args(graph, kwargs)
    items = graph.stream(input, config, stream_mode="custom", subgraphs=True, **kwargs)
    try:
        for _ns, payload in items:
            if isinstance(payload, StreamEvent):
                yield payload
    finally:
        items.close()  # type: ignore[attr-defined]
