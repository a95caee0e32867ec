"""Tamper evidence for audit logs: an opt-in hash chain over the events of each run.

With ``EventEmitter(hash_chain=True)`` (or ``SwarmObserver(hash_chain=True)``) every event carries in
``prev_hash`` the SHA-256 of the event before it in its run, taken over that event's stored JSON
(:meth:`StreamEvent.to_json_bytes`, its own ``prev_hash`` included); the first event of a run
carries the hash of the run id (:func:`genesis_hash`). ``swarm-obs verify`` recomputes the chain, so
editing any byte of a stored event, deleting one (even with the later seqs renumbered) or
reordering events shows up as a broken link right after the change. Because each link covers the
previous ``prev_hash``, the last event's hash (:attr:`ChainChecker.head`, printed by ``verify``)
commits to the whole run: record it elsewhere (a ticket, a second system) to also detect events cut
from the end or a run rewritten wholesale, which a chain kept in the same file cannot show by itself.

The hash is over the canonical JSON every backend reproduces byte for byte, so a chain written to
SQLite checks the same after an export to JSONL or a copy into PostgreSQL. A run may start its chain
late (a run resumed by a chained emitter): the first chained event links to the stored event before
it, and from there on every event must carry a link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from hashlib import sha256

from .events import StreamEvent

ALGORITHM = "sha256"
"""The hash function of every link; links are written ``sha256:<64 hex digits>``."""
_GENESIS = b"swarm-observability hash chain v1\x00"


def genesis_hash(run_id: str) -> str:
    """The ``prev_hash`` of seq 1 of ``run_id``: binds the chain to its run."""
    return f"{ALGORITHM}:{sha256(_GENESIS + run_id.encode()).hexdigest()}"


def event_hash(event: StreamEvent) -> str:
    """The link to ``event``: the hash the next event of its run carries in ``prev_hash``."""
    return f"{ALGORITHM}:{sha256(event.to_json_bytes()).hexdigest()}"


@dataclass
class ChainChecker:
    """Checks one run's events, fed in seq order, against their hash chain.

    Args:
        run_id: the run.
        require: every event must carry a link (``verify --require-chain``), so a run whose
            ``prev_hash`` fields were all stripped is reported too.
    """

    run_id: str
    require: bool = False
    problems: list[str] = field(default_factory=list)
    chained: int = 0
    """How many events carried a link."""
    head: str | None = None
    """The link to the last event checked (``None`` before the first)."""

    def check(self, event: StreamEvent) -> None:
        """Check ``event``, the next of the run; problems are appended to :attr:`problems`."""
        expected = genesis_hash(self.run_id) if self.head is None else self.head
        link = event.prev_hash
        if link is None:
            if self.chained or self.require:
                self.problems.append(
                    f"hash chain: seq {event.seq} carries no prev_hash"
                    + (" after a chained event" if self.chained else " (--require-chain)")
                )
        elif link != expected:
            before = "the run id" if self.head is None else f"seq {(event.seq or 1) - 1} as stored"
            self.problems.append(
                f"hash chain broken at seq {event.seq}: its prev_hash does not match {before} "
                "(an event was edited, deleted or reordered here)"
            )
        if link is not None:
            self.chained += 1
        self.head = event_hash(event)
