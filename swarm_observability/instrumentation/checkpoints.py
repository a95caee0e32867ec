"""Named resume points and the record of a fork: ``checkpoint(label)``, ``create_checkpoint``, forks.

A label names a LangGraph checkpoint of the run's thread in the event log (a ``checkpoint`` event
with ``data.label`` and the checkpoint's id in ``checkpoint_id``), so a person can later say "go back
to *before-review*" instead of copying ids. Inside a node, :func:`checkpoint` names the checkpoint
the node started from: forking from the label runs that node again, and everything after it.

When an invocation is given a ``checkpoint_id`` that is not the thread's newest checkpoint, LangGraph
forks the thread: it continues from that checkpoint and leaves the later ones as a side branch. The
``scan_resumed`` event of such an invocation records the fork (:func:`fork_record`):
``from_checkpoint_id``, the checkpoints of the branch left behind (``discarded_checkpoints``, oldest
first) and how many events that branch had recorded (``discarded_events``, ``discarded_seq``:
first and last seq). Nothing is deleted: the old branch stays readable in the log and the saver.
The log, not the checkpointer, says which invocation a resumed one continues (:func:`previous_invocation`).
"""

from __future__ import annotations

import logging
from typing import Any

from ..events import EventType, StreamEvent
from ..exceptions import EventValidationError, InstrumentationError, NoActiveRunError
from ._langgraph import config_checkpointer
from .recorder import active_scope

logger = logging.getLogger("swarm_observability")

_MAX_LABEL = 200
_MAX_LISTED = 100


def check_label(label: object) -> str:
    """``label`` if it can name a checkpoint (a non-empty string of at most 200 characters)."""
    if not isinstance(label, str) or not label.strip() or len(label) > _MAX_LABEL:
        raise EventValidationError(
            f"a checkpoint label must be a non-empty string of at most {_MAX_LABEL} characters, got {label!r}"
        )
    return label


def checkpoint(label: str) -> StreamEvent | None:
    """Name the checkpoint the current node started from ``label`` (a ``checkpoint`` event).

    Resume or fork from it later with ``resume_from_checkpoint(graph, thread, label)`` or
    ``swarm-obs resume THREAD --graph M:A --checkpoint LABEL``; ``rebuild_run_state(store, run,
    until=label)`` gives the run state at that point.

    Raises:
        NoActiveRunError: outside an instrumented run.
        InstrumentationError: the graph has no checkpointer, or the node runs in a subgraph (name a
            checkpoint of the parent graph instead).
        EventValidationError: an empty or over-long label.
    """
    check_label(label)
    scope = active_scope()
    if scope is None:
        raise NoActiveRunError(
            "checkpoint() was called outside an instrumented run; call it inside a node of a graph "
            "instrumented by SwarmObserver, or use SwarmObserver.create_checkpoint(run_id, label)"
        )
    checkpoint_id = scope.fields.get("checkpoint_id")
    configurable = (scope.config or {}).get("configurable") or {}
    if not checkpoint_id or configurable.get("__pregel_checkpointer") is None:
        raise InstrumentationError(
            f"checkpoint({label!r}): this run has no LangGraph checkpoint to name; compile the graph "
            "with a checkpointer (e.g. get_checkpointer())"
        )
    if scope.fields.get("namespace"):
        raise InstrumentationError(
            f"checkpoint({label!r}) inside a subgraph: label a node of the parent graph instead"
        )
    return scope.invocation.recorder.emit(
        scope, EventType.CHECKPOINT, strict=True, message=label, data={"label": label}
    )


def previous_invocation(emitter: Any, run_id: str) -> str | None:
    """The id of run ``run_id``'s latest invocation in the event log (``None``: none, or unreadable)."""
    try:
        done = emitter.wait_stored()
        if done is not None:
            done.result()
        last = emitter.store.query(run_id, types=[EventType.SCAN_STARTED, EventType.SCAN_RESUMED], limit=1)
    except Exception:
        logger.exception("swarm_observability: could not read the previous invocation of %r", run_id)
        return None
    return last[0].invocation_id if last else None


def resumed_from(
    emitter: Any, graph: Any, run_id: str, lookup: dict[str, Any], fork_from: str | None
) -> dict[str, Any] | None:
    """What the opening event of a resumed invocation records: ``previous_invocation_id`` and, when it
    starts from checkpoint ``fork_from``, :func:`fork_record`'s keys; ``None`` if the log has no
    invocation of the run (then it is a start, not a resume)."""
    previous = previous_invocation(emitter, run_id)
    if previous is None:
        return None
    data: dict[str, Any] = {"previous_invocation_id": previous}
    if fork_from is not None:
        saver = config_checkpointer(graph, None)
        origin = {"configurable": {**lookup["configurable"], "checkpoint_id": fork_from}}
        data.update(
            fork_record(saver, emitter.store, run_id, origin)
            if saver is not None
            else {"from_checkpoint_id": fork_from}
        )
    return data


def fork_record(saver: Any, store: Any, run_id: str, lookup: dict[str, Any]) -> dict[str, Any]:
    """What a fork from ``lookup``'s ``checkpoint_id`` leaves behind (see the module docstring).

    Best effort: if the saver or the store cannot be read here, only ``from_checkpoint_id`` is kept.
    """
    configurable = lookup["configurable"]
    origin = configurable["checkpoint_id"]
    record: dict[str, Any] = {"from_checkpoint_id": origin}
    try:
        thread = {"configurable": {k: v for k, v in configurable.items() if k != "checkpoint_id"}}
        parents: dict[str, str | None] = {}
        newest = None
        for item in saver.list(thread):
            checkpoint_id = item.config["configurable"]["checkpoint_id"]
            newest = newest or checkpoint_id
            parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
            parents[checkpoint_id] = parent
        chain: list[str] = []
        current = newest
        while current is not None and current != origin:
            chain.append(current)
            current = parents.get(current)
        if current is None:
            chain = []  # the origin is not behind the newest checkpoint: no branch is left
        chain.reverse()
        left = {origin, *chain} if chain else set()
        seqs = [e.seq for e in store.iter_events(run_id) if e.checkpoint_id in left and e.seq is not None]
    except Exception:
        logger.debug("swarm_observability: could not describe the fork from %s", origin, exc_info=True)
        return record
    record["discarded_checkpoints"] = chain[:_MAX_LISTED]
    if len(chain) > _MAX_LISTED:
        record["discarded_checkpoint_count"] = len(chain)
    record["discarded_events"] = len(seqs)
    if seqs:
        record["discarded_seq"] = [seqs[0], seqs[-1]]
    return record
