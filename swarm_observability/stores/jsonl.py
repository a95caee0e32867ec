"""``JSONLEventStore``: an append-only ``events.jsonl`` that people can read and a crash cannot corrupt.

The record format is in :mod:`.jsonl_format`, the recovery of a torn tail on open in
:mod:`.jsonl_recovery`, the in-memory index in :mod:`.jsonl_index`, its copy on disk that spares a
read-only open the scan in :mod:`.jsonl_sidecar`.

Writing: a whole batch is one ``os.write`` on an ``O_APPEND`` descriptor, and one writer per file is
enforced with ``fcntl.flock`` (a second writer, in this or another process, gets
:class:`EventStoreError`). ``fsync="none"`` (default) survives a process crash or SIGKILL: data in the
page cache reaches the disk without us. ``fsync="batch"`` also ``fdatasync``\\ s every batch before
``append_batch`` returns, so acknowledged events survive a power loss too.

Reads ``pread`` the lines they need (found in the index the open scan leaves), so ``load_since`` and
``last_sequence`` near the end of a long run cost the same as at its start; ``query`` and ``runs``
parse events and are a scan.
"""

from __future__ import annotations

import logging
import os
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from .._fork import reinit_after_fork
from ..events import StreamEvent, validate_run_id
from ..exceptions import DuplicateEventError, EventStoreError, StoreClosedError, StoreCorruptionError
from .base import (
    PagedReads,
    QueryFilter,
    RunInfo,
    StoreStats,
    batch_events,
    check_batch,
    oldest_first,
    one_line,
)
from .jsonl_format import (
    EVENT_KEY,
    FILE_NAME,
    SUFFIX,
    event_start,
    file_lines,
    frame_batch,
    holds_id,
    open_log,
    read_lines,
    refuse,
    write_all,
)
from .jsonl_index import FileIndex
from .jsonl_recovery import scan
from .jsonl_sidecar import load_index, save_index, sidecar_path

logger = logging.getLogger("swarm_observability")

_PAGE_EVENTS = 1000
_PAGE_BYTES = 8 << 20


class JSONLEventStore(PagedReads):
    """Event log in one append-only JSONL file (:mod:`.jsonl_format`; recovery: :mod:`.jsonl_recovery`).

    Args:
        location: a directory (the file is ``<directory>/events.jsonl``; folders are created) or a path
            ending in ``.jsonl``.
        fsync: ``"none"`` (default): acknowledged events survive a process crash, not a power loss.
            ``"batch"``: every ``append_batch`` is fdatasynced before it returns.
        read_only: read a file that another process may be writing: no lock, no repair; each read
            first indexes the batches completed since. Appends raise :class:`EventStoreError`. The
            open scans only what follows the last writer's saved index (:mod:`.jsonl_sidecar`).

    Raises:
        StoreCorruptionError: the file is damaged before its end (see :mod:`.jsonl_recovery`).
        EventStoreError: another writer holds the file.
    """

    backend = "jsonl"

    def __init__(
        self,
        location: str | os.PathLike[str],
        *,
        fsync: Literal["none", "batch"] = "none",
        read_only: bool = False,
    ) -> None:
        if fsync not in ("none", "batch"):
            raise ValueError(f"fsync must be 'none' or 'batch', not {fsync!r}")
        location = Path(location).expanduser().absolute()
        self.path = location if location.suffix == ".jsonl" else location / FILE_NAME
        """The ``events.jsonl`` file."""
        self.fsync = fsync
        self.read_only = read_only
        self._lock = threading.Lock()
        self._failed: BaseException | None = None
        self._closed = False
        self._fd = open_log(self.path, read_only=read_only, fsync=fsync)
        try:
            loaded = load_index(self.path, self._fd) if read_only else None
            self._index = loaded or FileIndex()
            scan(self._fd, self.path, self._index, read_only=read_only)
        except BaseException:
            os.close(self._fd)
            raise
        self._opened_end = self._index.end
        self._writer_pid: int | None = None if read_only else os.getpid()
        reinit_after_fork(self)

    def _after_fork_in_child(self) -> None:
        """In a forked child: a new lock, and the store turns read-only (one writer per file).

        The child shares the parent's file lock and file offset, and its index would fall behind
        the parent's appends, so it must not write: appends raise an :class:`EventStoreError` saying
        so, and reads follow the file as a read-only store does.
        """
        self._lock = threading.Lock()
        self.read_only = True

    # -- writing ----------------------------------------------------------------------------------

    def append_batch(self, events: Sequence[StreamEvent]) -> None:
        """Append events with one write: all are stored, or none and the error is raised."""
        events = batch_events(events)
        if not events:
            return
        data, lengths = frame_batch(events)
        id_hashes = [hash(event.id) for event in events]
        with self._lock:
            self._check_open()
            if self.read_only:
                if self._writer_pid is not None:
                    raise EventStoreError(
                        f"event store {self.path} is written by process {self._writer_pid}; this process "
                        "was forked from it and cannot append (one writer per JSONL file): open a store "
                        "in the child, or use the SQLite store, which many processes can share"
                    )
                raise EventStoreError(f"event store {self.path} is open read-only")
            if self._failed is not None:
                raise EventStoreError(f"event store {self.path} is unusable after a failed write; reopen it")
            index = self._index
            check_batch(events, lookup_last=index.last_seq)
            hits = index.id_hashes.members(id_hashes)
            if hits:  # a hash already stored: the file says whether it is the id itself
                for event, id_hash in zip(events, id_hashes, strict=True):
                    if id_hash in hits and holds_id(self._fd, index.end, event.id):
                        raise DuplicateEventError(event.id)
            start = index.end
            try:
                write_all(self._fd, data)
                if self.fsync == "batch":
                    os.fdatasync(self._fd)
            except BaseException as exc:
                self._undo_write(start, exc)
                if isinstance(exc, OSError):
                    raise EventStoreError(f"append to {self.path} failed: {exc}") from exc
                raise
            index.add_batch(events, data, lengths, id_hashes)

    def _undo_write(self, start: int, exc: BaseException) -> None:
        try:
            os.ftruncate(self._fd, start)
        except OSError as undo_exc:
            self._failed = exc
            logger.error("could not cut a failed write from %s: %s; appends are refused", self.path, undo_exc)

    @contextmanager
    def _current(self) -> Iterator[None]:
        """The index of the open store, under the lock; read-only, first caught up with the file."""
        with self._lock:
            self._check_open()
            if self.read_only and os.fstat(self._fd).st_size > self._index.end:
                scan(self._fd, self.path, self._index, read_only=True)
            yield

    # -- reading ----------------------------------------------------------------------------------

    def _pages(self, run_id: str, after_seq: int) -> Iterator[list[StreamEvent]]:
        seq = max(int(after_seq), 0) + 1
        while True:
            with self._current():
                index = self._index.runs.get(run_id)
                if index is None or seq > len(index.offsets):
                    return
                first = seq - 1
                stop, size = first, 0
                while stop < len(index.offsets) and stop - first < _PAGE_EVENTS and size < _PAGE_BYTES:
                    size += index.lengths[stop]
                    stop += 1
                offsets = index.offsets[first:stop]
                lines = read_lines(self._fd, offsets, index.lengths[first:stop], self.path)
            events = self._parse_lines(lines, offsets, run_id, seq)
            yield events
            seq += len(events)

    def _parse_lines(
        self, lines: Sequence[bytes], offsets: Sequence[int], run_id: str, seq: int
    ) -> list[StreamEvent]:
        """Parse lines that must hold ``run_id``'s events from ``seq`` on: the per-event cost of a load.

        The CRC check and the run/seq check are inlined; the first line failing either goes through
        :meth:`_parse` and the checks again, which raise naming its offset and the problem.
        """
        parse = StreamEvent.from_stored_json
        crc32 = zlib.crc32
        events: list[StreamEvent] = []
        try:
            for line in lines:
                split = line.find(EVENT_KEY)
                if split < 0 or line[-SUFFIX:] != b',"crc":"%08x"}\n' % crc32(line[:-SUFFIX]):
                    break
                event = parse(line[split + len(EVENT_KEY) : -SUFFIX])
                if event.seq != seq or event.run_id != run_id:
                    break
                events.append(event)
                seq += 1
            else:
                return events
        except ValueError:
            pass
        offset = offsets[len(events)]
        event = self._parse(lines[len(events)], offset)
        found = f"run {event.run_id!r} seq {event.seq}"
        refuse(self.path, offset, f"expected run {run_id!r} seq {seq}, found {found}")

    def _parse(self, line: bytes, offset: int) -> StreamEvent:
        start = event_start(line)
        if start < 0:
            refuse(self.path, offset, "record fails its CRC or framing")
        try:
            return StreamEvent.from_stored_json(line[start:-SUFFIX])
        except ValueError as exc:
            raise StoreCorruptionError(
                f"{self.path} at byte {offset}: stored event does not parse: {one_line(exc)}",
                f"{self.path}:{offset}",
            ) from exc

    def read_json(self, run_id: str, after_seq: int = 0, limit: int | None = None) -> list[bytes]:
        """The stored JSON of ``run_id``'s events after ``after_seq`` (up to ``limit``), in seq order.

        Each is the event's ``to_json_bytes()`` as written, CRC-checked but not parsed: for readers
        that hand the JSON on (the analytics projection lets DuckDB parse it).

        Raises:
            StoreCorruptionError: a line fails its CRC (naming the file and byte offset).
        """
        validate_run_id(run_id)
        first = max(int(after_seq), 0)
        out: list[bytes] = []
        while limit is None or len(out) < limit:
            with self._current():
                index = self._index.runs.get(run_id)
                seq = first + len(out)
                if index is None or seq >= len(index.offsets):
                    break
                stop = len(index.offsets) if limit is None else min(len(index.offsets), first + limit)
                stop = min(stop, seq + _PAGE_EVENTS * 10)
                offsets = index.offsets[seq:stop]
                lines = read_lines(self._fd, offsets, index.lengths[seq:stop], self.path)
            out += self._event_json(lines, offsets)
        return out

    def iter_json(self, chunk: int = 10_000) -> Iterator[list[bytes]]:
        """The stored JSON of every event in file order, in lists of about ``chunk``, up to the end of
        what was indexed when called (a consistent prefix: every run up to some seq).

        Raises:
            StoreCorruptionError: a line fails its CRC (naming the file and byte offset).
        """
        with self._current():
            end = self._index.end
        offsets: list[int] = []
        lines: list[bytes] = []
        for offset, line in file_lines(self._fd, 0, end):
            offsets.append(offset)
            lines.append(line)
            if len(lines) >= chunk:
                yield self._event_json(lines, offsets)
                offsets, lines = [], []
        if lines:
            yield self._event_json(lines, offsets)

    def _event_json(self, lines: Sequence[bytes], offsets: Sequence[int]) -> list[bytes]:
        crc32 = zlib.crc32
        out = []
        for line, offset in zip(lines, offsets, strict=True):
            split = line.find(EVENT_KEY)
            if split < 0 or line[-SUFFIX:] != b',"crc":"%08x"}\n' % crc32(line[:-SUFFIX]):
                refuse(self.path, offset, "record fails its CRC or framing")
            out.append(line[split + len(EVENT_KEY) : -SUFFIX])
        return out

    def last_sequence(self, run_id: str) -> int:
        """The last seq of a run, 0 for an unknown run (from the index: no file access).

        The writing store answers without its lock, so this never waits for an append's write and
        fsync in progress: the index of a run only grows, after its batch is written.
        """
        validate_run_id(run_id)
        if not self.read_only:
            self._check_open()
            return self._index.last_seq(run_id)
        with self._current():
            return self._index.last_seq(run_id)

    def _query(self, run_id: str | None, wanted: QueryFilter) -> list[StreamEvent]:
        """Parses every event of the selected runs; fine for dashboards, use SQLite for frequent queries."""
        runs = [run_id] if run_id is not None else self._run_ids()
        return wanted.newest_first(event for run in runs for event in self.iter_events(run))

    def runs(self) -> list[RunInfo]:
        """Every run with its event count and first/last timestamps, oldest first."""
        infos = []
        for run_id in self._run_ids():
            with self._lock:
                self._check_open()
                index = self._index.runs[run_id]
                count = len(index.offsets)
                offsets = [index.offsets[0], index.offsets[-1]]
                lines = read_lines(self._fd, offsets, [index.lengths[0], index.lengths[-1]], self.path)
            first = self._parse(lines[0], offsets[0])
            last = self._parse(lines[1], offsets[1])
            infos.append(RunInfo(run_id, count, first.timestamp, last.timestamp, last.type_name))
        return oldest_first(infos)

    def _run_ids(self) -> list[str]:
        with self._current():
            return list(self._index.runs)

    def stats(self) -> StoreStats:
        """Runs, events, the file path and its size in bytes."""
        with self._current():
            events = sum(len(index.offsets) for index in self._index.runs.values())
            size = os.fstat(self._fd).st_size
        return StoreStats(self.backend, len(self._index.runs), events, str(self.path), size)

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file and release the writer lock; idempotent.

        The writer first saves its index to the sidecar (:mod:`.jsonl_sidecar`) if it appended or
        there is none, so that the next read-only open scans only what is appended later.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                try:
                    self._save_index()
                finally:
                    os.close(self._fd)
                    self._index = FileIndex()

    def _save_index(self) -> None:
        """As the writer closing: save the index if it grew this session or has no sidecar yet."""
        if self.read_only or self._failed is not None:
            return
        if self._index.end != self._opened_end or not sidecar_path(self.path).exists():
            save_index(self.path, self._index)

    def __repr__(self) -> str:
        return f"JSONLEventStore({str(self.path)!r}, fsync={self.fsync!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"the JSONL event store {self.path} is closed")
