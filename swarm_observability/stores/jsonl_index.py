"""What a JSONL store knows of its file without reading it: where each seq's line is, which ids exist.

Per run the byte offset and length of each seq's line (:class:`RunIndex`, 12 bytes per event), plus for
a writer the 64-bit event-id hashes for the duplicate check (:class:`IdHashes`: about 8 bytes per event
more, so a million-event file costs a writer ~20 MB). The open scan (:mod:`.jsonl_recovery`) fills a
:class:`FileIndex` from the file, and the store adds each batch it writes.
"""

from __future__ import annotations

import zlib
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import accumulate
from operator import attrgetter

from ..events import StreamEvent

_MERGE_AT = 1 << 16
_RUN_ID = attrgetter("run_id")


class RunIndex:
    """Where each seq of one run lives in the file: ``offsets[seq - 1]``, ``lengths[seq - 1]``."""

    __slots__ = ("lengths", "offsets")

    def __init__(self) -> None:
        self.offsets = array("q")
        self.lengths = array("I")


class IdHashes:
    """Set of 64-bit event-id hashes in ~8 bytes per member (a ``set[int]`` costs ~70).

    Members live in a sorted ``array('q')`` searched with ``bisect``; new ones go to a small set that is
    merged into the array once it holds :attr:`merge_at` members. A merge copies the array in slices
    between the insertion points, so it is C memcpy plus one ``bisect`` per new member.
    """

    __slots__ = ("merge_at", "recent", "sorted")

    def __init__(self, merge_at: int | None = None) -> None:
        self.merge_at = _MERGE_AT if merge_at is None else merge_at
        self.sorted = array("q")
        self.recent: set[int] = set()

    def __contains__(self, value: int) -> bool:
        if value in self.recent:
            return True
        ordered = self.sorted
        at = bisect_left(ordered, value)
        return at < len(ordered) and ordered[at] == value

    def members(self, values: Iterable[int]) -> list[int]:
        """The ``values`` that are members, in one pass (what ``in`` answers, for a whole batch)."""
        recent, ordered = self.recent, self.sorted
        size = len(ordered)
        return [
            value
            for value in values
            if value in recent or ((at := bisect_left(ordered, value)) < size and ordered[at] == value)
        ]

    def update(self, values: Iterable[int]) -> None:
        self.recent.update(values)
        if len(self.recent) >= self.merge_at:
            self._merge()

    def add(self, value: int) -> None:
        self.recent.add(value)
        if len(self.recent) >= self.merge_at:
            self._merge()

    def _merge(self) -> None:
        old, merged, start = self.sorted, array("q"), 0
        for value in sorted(self.recent):
            at = bisect_left(old, value, start)
            if at < len(old) and old[at] == value:
                continue
            merged += old[start:at]
            merged.append(value)
            start = at
        merged += old[start:]
        self.sorted = merged
        self.recent = set()


class FileIndex:
    """The complete batches of one file: per run its lines, the id hashes, and where they end.

    ``end`` is the byte offset after the last complete batch indexed: the file's valid prefix as far
    as this index knows, where the next append goes and where a read-only store resumes its scan.
    ``crc`` is the CRC-32 of those ``end`` bytes, kept as they are scanned or written, so the writer
    saves its sidecar (:mod:`.jsonl_sidecar`) without reading the file again.
    """

    __slots__ = ("crc", "end", "id_hashes", "runs")

    def __init__(self) -> None:
        self.runs: dict[str, RunIndex] = {}
        self.id_hashes = IdHashes()
        self.end = 0
        self.crc = 0

    def last_seq(self, run_id: str) -> int:
        """The last indexed seq of ``run_id``, 0 for an unknown run."""
        index = self.runs.get(run_id)
        return 0 if index is None else len(index.offsets)

    def add(self, run_id: str, offset: int, length: int) -> None:
        """Index the next seq of ``run_id``: its line is ``length`` bytes at ``offset``."""
        index = self.runs.get(run_id)
        if index is None:
            index = self.runs[run_id] = RunIndex()
        index.offsets.append(offset)
        index.lengths.append(length)

    def add_batch(
        self, events: Sequence[StreamEvent], data: bytes, lengths: list[int], id_hashes: list[int]
    ) -> None:
        """Index a batch just written at ``end`` as ``data``, one stretch of one run's events at a time."""
        self.crc = zlib.crc32(data, self.crc)
        offsets = list(accumulate(lengths, initial=self.end))
        stretches = [(0, len(events))]
        if len(set(map(_RUN_ID, events))) > 1:  # no Python bytecode per event
            cuts = [at for at in range(1, len(events)) if events[at].run_id != events[at - 1].run_id]
            stretches = list(zip([0, *cuts], [*cuts, len(events)], strict=True))
        for first, last in stretches:
            run_id = events[first].run_id
            index = self.runs.get(run_id) or self.runs.setdefault(run_id, RunIndex())
            index.offsets.extend(offsets[first:last])
            index.lengths.extend(lengths[first:last])
        self.id_hashes.update(id_hashes)
        self.end = offsets[-1]
