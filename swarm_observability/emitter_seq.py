"""``RunSequences``: the seqs an :class:`EventEmitter` assigns, and the hash-chain links it writes.

The emitter keeps the last seq of each run it writes and assigns ``last + 1`` under its lock. The first
emit of a run it has no cached seq for reads ``store.last_sequence`` once; it never waits for the
background writer (which may be blocked on another process's lock): if the emitter's own events of
that run are still queued, their last seq is the answer. A sync emitter that meets a
:class:`SequenceConflictError` (another process appended to the run) re-reads the last seq and
retries the event once, so the run continues instead of failing from then on.
"""

from __future__ import annotations

from .chain import event_hash, genesis_hash
from .emitter_writer import FAILED
from .event_fast import mark_set
from .event_model import StreamEvent
from .stores.base import EventStore


class RunSequences:
    """The per-run seq state of one emitter; every method but :meth:`forget_failed` runs under its lock.

    ``last`` is the last seq assigned per run (the emitter reads and sets it on its hot path),
    ``committed`` the last one its background writer stored (written by that thread, or
    :data:`~swarm_observability.emitter_writer.FAILED`), ``heads`` the ``(seq, hash)`` of the last
    event of each hash-chained run, ``conflicts`` the appends retried after a
    :class:`SequenceConflictError`.
    """

    def __init__(self, store: EventStore, *, background: bool) -> None:
        self.store = store
        self.background = background
        self.last: dict[str, int] = {}
        self.committed: dict[str, int] = {}
        self.heads: dict[str, tuple[int, str]] = {}
        self.conflicts = 0
        self._forgotten: dict[str, int] = {}

    def after_fork(self) -> None:
        """Forget every cached seq: the parent may go on appending to the same runs."""
        self.last.clear()
        self.committed.clear()
        self.heads.clear()
        self._forgotten.clear()

    def read_last(self, run_id: str) -> int:
        """The last seq of a run missing from the cache, never waiting for the background writer."""
        if self.background:
            queued = self._forgotten.pop(run_id, None)
            committed = self.committed.get(run_id)
            if queued is not None and committed != queued and committed != FAILED:
                return queued  # our own events of the run are still on their way to the store
        return self.store.last_sequence(run_id)

    def next(self, run_id: str) -> int:
        """The seq the next event of ``run_id`` will get (cached from now on)."""
        last = self.last.get(run_id)
        if last is None:
            last = self.last[run_id] = self.read_last(run_id)
        return last + 1

    def forget(self, run_id: str) -> None:
        """Drop what is cached of a run, so its next emit reads the store again (or, while its events
        are still queued for the background writer, continues from them).

        The lifecycle calls it as each invocation starts and ends, so the caches hold the runs in
        flight only, not one entry per run ever seen (a server runs millions): a run forgotten with
        events still queued stays in ``_forgotten`` until a later call finds them committed.
        """
        last = self.last.pop(run_id, None)
        if not self.background:
            self.heads.pop(run_id, None)  # stored when emitted: the store answers
            return
        committed = self.committed
        if last is not None:
            self._forgotten[run_id] = last
        elif run_id not in self._forgotten:
            committed.pop(run_id, None)  # nothing of it queued (a failed run's FAILED, say)
        for forgotten, queued in list(self._forgotten.items()):
            done = committed.get(forgotten)
            if done in (queued, FAILED):  # all of it stored (or lost): the store answers
                self._forgotten.pop(forgotten, None)
                committed.pop(forgotten, None)
                self.heads.pop(forgotten, None)

    def reload(self, run_id: str, *, hash_chain: bool) -> None:
        """:meth:`forget`, then read the run's last seq now (and, when chained, the hash of its event), so
        that the run's next emit reads nothing: the async lifecycle calls it off the event loop."""
        self.forget(run_id)
        last = self.next(run_id) - 1
        if hash_chain and last > 0 and self.heads.get(run_id, (None, ""))[0] != last:
            stored = self.store.load_since(run_id, last - 1)
            if stored and stored[-1].seq == last:
                self.heads[run_id] = (last, event_hash(stored[-1]))

    def forget_failed(self, run_id: str) -> None:
        """A background commit of ``run_id`` failed: its next emit reads the last seq from the store."""
        self.last.pop(run_id, None)
        self._forgotten.pop(run_id, None)
        self.heads.pop(run_id, None)

    def retry(self, event: StreamEvent, *, hash_chain: bool) -> StreamEvent:
        """Another writer appended to the run: re-read its last seq and append once more.

        Safe to re-number: nobody has seen the event yet (subscribers are called after the append).
        A second conflict raises, and the next emit of the run reads the store again.
        """
        self.last.pop(event.run_id, None)
        self.conflicts += 1
        event.__dict__["seq"] = seq = self.store.last_sequence(event.run_id) + 1  # its seq is in place
        if hash_chain:
            self.link(event, seq - 1)
        self.store.append(event)
        return event

    def link(self, event: StreamEvent, last: int) -> None:
        """Set ``event.prev_hash`` to the link to seq ``last`` of its run (the emitter owns ``event``)."""
        run_id = event.run_id
        cached = self.heads.get(run_id)
        if cached is not None and cached[0] == last:
            previous = cached[1]
        elif last == 0:
            previous = genesis_hash(run_id)
        else:
            stored = self.store.load_since(run_id, last - 1)
            previous = event_hash(stored[-1]) if stored else genesis_hash(run_id)
        event.__dict__["prev_hash"] = previous
        mark_set(event, "prev_hash")

    def record_head(self, event: StreamEvent) -> None:
        """Remember ``event`` (just stored) as the head its run's next link points to."""
        self.heads[event.run_id] = (event.seq, event_hash(event))  # type: ignore[assignment]
