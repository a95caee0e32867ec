"""Time travel: list a thread's checkpoints with their events and labels, and fork from an earlier one.

LangGraph keeps every checkpoint of a thread. Invoking a thread with an older ``checkpoint_id``
continues from there: the nodes after that checkpoint run again, the new checkpoints branch off it,
and the later ones stay as a side branch. :func:`resume_from_checkpoint` does that for a checkpoint id
or a label (named with ``checkpoint(label)`` in a node or ``SwarmObserver.create_checkpoint``); the
instrumented invocation records the fork in its ``scan_resumed`` event (``from_checkpoint_id``, what
was discarded) and the event log simply goes on, so the old branch stays readable.
:func:`list_checkpoints` lines the checkpoints up with the events that ran from each and marks the
ones on the thread's current branch.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from .events import EventType, StreamEvent, safe_run_id, validate_run_id
from .exceptions import CheckpointerError

__all__ = [
    "CheckpointInfo",
    "aresume_from_checkpoint",
    "list_checkpoints",
    "resolve_checkpoint",
    "resume_from_checkpoint",
]


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint of a thread, oldest first in :func:`list_checkpoints`."""

    checkpoint_id: str
    """LangGraph's checkpoint id."""
    parent_id: str | None
    """The checkpoint it was written after (``None`` for the first)."""
    step: int | None
    """``metadata["step"]`` (-1 for the input checkpoint)."""
    source: str | None
    """``metadata["source"]``: ``input``, ``loop``, ``update`` or ``fork``."""
    current: bool
    """On the thread's current branch (the newest checkpoint and its ancestors)."""
    labels: tuple[str, ...] = ()
    """Labels naming it, in the order they were given."""
    events: tuple[StreamEvent, ...] = field(default=(), repr=False)
    """Events emitted by the nodes that ran from it (their subgraphs' events included), in seq order."""


def _events(store: Any, run_id: str) -> list[StreamEvent]:
    return list(store.iter_events(run_id)) if store is not None else []


def _thread_run(thread_id: Any) -> str:
    """The run id an instrumented run of ``thread_id`` stores its events under (a thread id the log
    cannot store as given, e.g. ``""``, is mapped as the instrumentation maps it)."""
    return safe_run_id(str(thread_id))


def _attach_nested(by_checkpoint: dict[str, list[StreamEvent]], nested: list[StreamEvent]) -> None:
    """Give each subgraph event (its ``checkpoint_id`` is the subgraph's own) to the thread's checkpoint whose
    events enclose it by seq: a subgraph runs inside one node of one superstep, so the events that ran from a
    checkpoint stay one unbroken seq range, subgraph events included."""
    if not nested:
        return
    spans = sorted((evs[0].seq or 0, evs[-1].seq or 0, cid) for cid, evs in by_checkpoint.items())
    firsts = [lo for lo, _hi, _cid in spans]
    for event in nested:
        at = bisect_right(firsts, event.seq or 0) - 1
        if at >= 0 and (event.seq or 0) <= spans[at][1]:
            by_checkpoint[spans[at][2]].append(event)
    for evs in by_checkpoint.values():
        evs.sort(key=lambda e: e.seq or 0)


def resolve_checkpoint(store: Any, run_id: str, checkpoint: str) -> str:
    """The checkpoint id named by ``checkpoint``: a label of the run (its latest use), else the id itself.

    Raises:
        CheckpointerError: an empty reference.
        InvalidRunIdError: ``run_id`` is no run id (empty, not a string, ...).
    """
    validate_run_id(run_id)
    if not isinstance(checkpoint, str) or not checkpoint.strip():
        raise CheckpointerError(f"a checkpoint id or label is needed, got {checkpoint!r}")
    for event in reversed(_events(store, run_id)):
        if (
            event.type_name == EventType.CHECKPOINT
            and event.data.get("label") == checkpoint
            and event.checkpoint_id
        ):
            return event.checkpoint_id
    return checkpoint


def _fork_config(graph: Any, store: Any, thread_id: str, checkpoint: str, config: Any) -> dict[str, Any]:
    checkpoint_id = resolve_checkpoint(store, _thread_run(thread_id), checkpoint)
    base = dict(config or {})
    configurable = {
        **(base.get("configurable") or {}),
        "thread_id": thread_id,
        "checkpoint_id": checkpoint_id,
    }
    base["configurable"] = configurable
    return base


def _check_exists(snapshot: Any, thread_id: str, checkpoint: str) -> None:
    if snapshot is None or snapshot.created_at is None:
        raise CheckpointerError(
            f"thread {thread_id!r} has no checkpoint {checkpoint!r} (neither a label in the event log "
            "nor a checkpoint id; list them with `swarm-obs checkpoints THREAD`)"
        )


def resume_from_checkpoint(
    graph: Any, thread_id: str, checkpoint: str, *, store: Any = None, input: Any = None, config: Any = None
) -> Any:
    """Continue (fork) ``thread_id`` from an earlier checkpoint; return what ``graph.invoke`` returns.

    Args:
        graph: the compiled graph with its checkpointer (instrumented, so the fork is recorded).
        thread_id: the thread (the run id unless the scan used a ``scan_id``).
        checkpoint: a checkpoint id, or a label given with ``checkpoint(label)``/``create_checkpoint``.
        store: the event log, to resolve labels (default: the instrumenting observer's store, when
            ``graph`` was instrumented with ``SwarmObserver.resume_from_checkpoint``).
        input: ``None`` to re-run from the checkpoint; a ``Command`` works as with ``invoke``.
        config: more config (``scan_id``, callbacks...); its ``thread_id``/``checkpoint_id`` are set here.

    Raises:
        CheckpointerError: the thread has no such checkpoint.
    """
    fork = _fork_config(graph, store, thread_id, checkpoint, config)
    _check_exists(graph.get_state(fork), thread_id, checkpoint)
    return graph.invoke(input, fork)


async def aresume_from_checkpoint(
    graph: Any, thread_id: str, checkpoint: str, *, store: Any = None, input: Any = None, config: Any = None
) -> Any:
    """:func:`resume_from_checkpoint` with ``ainvoke``."""
    fork = _fork_config(graph, store, thread_id, checkpoint, config)
    _check_exists(await graph.aget_state(fork), thread_id, checkpoint)
    return await graph.ainvoke(input, fork)


def list_checkpoints(
    saver_or_graph: Any, thread_id: str, store: Any = None, *, run_id: str | None = None
) -> list[CheckpointInfo]:
    """Every checkpoint of ``thread_id`` (all branches), oldest first, with labels and events.

    Args:
        saver_or_graph: a LangGraph checkpointer, or a compiled graph that has one.
        thread_id: the thread.
        store: the event log of the run (optional; without it no events or labels are shown).
        run_id: the run the events are stored under, when the scan used a ``scan_id``.

    Raises:
        CheckpointerError: no checkpointer.
        InvalidRunIdError: ``run_id`` is given but no run id (empty, not a string, ...).
    """
    events_of = _thread_run(thread_id) if run_id is None else validate_run_id(run_id)
    saver = getattr(saver_or_graph, "checkpointer", saver_or_graph)
    if saver is None or not hasattr(saver, "list"):
        raise CheckpointerError("list_checkpoints needs a checkpointer or a graph compiled with one")
    items = list(saver.list({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}))
    parents = {
        item.config["configurable"]["checkpoint_id"]: (item.parent_config or {})
        .get("configurable", {})
        .get("checkpoint_id")
        for item in items
    }
    current: set[str] = set()
    cursor = items[0].config["configurable"]["checkpoint_id"] if items else None
    while cursor is not None and cursor not in current:
        current.add(cursor)
        cursor = parents.get(cursor)
    events = _events(store, events_of)
    by_checkpoint: dict[str, list[StreamEvent]] = {}
    labels: dict[str, list[str]] = {}
    nested: list[StreamEvent] = []
    for event in events:
        if not event.checkpoint_id:
            continue
        if event.type_name == EventType.CHECKPOINT and isinstance(event.data.get("label"), str):
            labels.setdefault(event.checkpoint_id, []).append(event.data["label"])
        elif event.checkpoint_id in parents:
            by_checkpoint.setdefault(event.checkpoint_id, []).append(event)
        else:
            nested.append(event)
    _attach_nested(by_checkpoint, nested)
    out = []
    for item in reversed(items):
        checkpoint_id = item.config["configurable"]["checkpoint_id"]
        metadata = item.metadata or {}
        out.append(
            CheckpointInfo(
                checkpoint_id,
                parents[checkpoint_id],
                metadata.get("step"),
                metadata.get("source"),
                checkpoint_id in current,
                tuple(labels.get(checkpoint_id, ())),
                tuple(by_checkpoint.get(checkpoint_id, ())),
            )
        )
    return out
