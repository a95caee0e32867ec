"""Folding a whole log from scratch, whole or up to a point (a seq, a checkpoint label or id)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..events import EventType, StreamEvent
from .builder import RunStateBuilder
from .models import RunState

_T = EventType


def rebuild_run_state(store_or_events: Any, run_id: str, *, until: int | str | None = None) -> RunState:
    """Fold the log of ``run_id`` from scratch, whole or up to a point.

    Args:
        store_or_events: an :class:`~swarm_observability.stores.base.EventStore` (read with
            ``iter_events``), or any iterable of events (events of other runs are skipped).
        run_id: the run.
        until: stop at a point of the log: a seq (events ``<= until``), a checkpoint label recorded
            with ``checkpoint(label)`` / ``create_checkpoint`` (its latest use), or a LangGraph
            checkpoint id. A checkpoint is the state the run had when the graph stood at it: every
            event before the first one emitted under that checkpoint (the nodes that ran from it are
            not yet begun); a label whose checkpoint no event ran under cuts at the label itself.

    Raises:
        InvalidRunIdError: ``run_id`` is no run id (empty, not a string, ...).
        StoreCorruptionError: the run's seqs are not 1..n contiguous.
        ValueError: ``until`` names no seq, label or checkpoint of the run.
    """
    builder = RunStateBuilder(run_id)
    if hasattr(store_or_events, "iter_events"):
        events: Iterable[StreamEvent] = store_or_events.iter_events(run_id)
    else:
        events = (e for e in store_or_events if e.run_id == run_id)
    if until is None:
        return builder.apply_all(events).state
    if isinstance(until, bool) or not isinstance(until, int | str):
        raise ValueError(f"until must be a seq, a checkpoint label or a checkpoint id, not {until!r}")
    if isinstance(until, int):
        if until < 0:
            raise ValueError(f"until={until}: a seq is 0 or more")
        return builder.apply_all(e for e in events if (e.seq or 0) <= until).state
    events = list(events)
    return builder.apply_all(events[: cut_index(events, until)]).state


def cut_index(events: list[StreamEvent], point: str) -> int:
    """How many leading ``events`` (one run's, in seq order) happened before ``point``, a checkpoint
    label (its latest use) or a LangGraph checkpoint id; see :func:`rebuild_run_state`.

    Raises:
        ValueError: ``point`` is neither a label nor a checkpoint id of these events.
    """
    checkpoint_id, label_at = point, None
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if event.type_name == _T.CHECKPOINT and event.data.get("label") == point and event.checkpoint_id:
            checkpoint_id, label_at = event.checkpoint_id, index + 1
            break
    for index, event in enumerate(events):
        if event.checkpoint_id == checkpoint_id and event.type_name != _T.CHECKPOINT:
            return index
    if label_at is not None:
        return label_at
    for index, event in enumerate(events):
        if event.checkpoint_id == checkpoint_id:
            return index
    raise ValueError(f"{point!r} is neither a checkpoint label nor a checkpoint id of this run")
