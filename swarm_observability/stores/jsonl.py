"""``JSONLEventStore``: an append-only ``events.jsonl`` that people can read and a crash cannot corrupt.

File format: UTF-8, one JSON object per line, one line per event::

    {"seq":3,"run_id":"scan-1","id":"6f1c...","batch":[0,2],"event":{...},"crc":"9a3b0c1d"}

* ``event`` is the event's own JSON (:meth:`StreamEvent.to_json_bytes`), byte for byte.
* ``seq``, ``run_id`` and ``id`` repeat the event's fields so that opening the file indexes it without
  parsing events.
* ``batch`` is ``[index, count]``: line ``index`` of the ``count`` lines written by one ``append_batch``.
* ``crc`` is the CRC-32 (zlib) of the line's bytes before ``,"crc":``, as 8 lowercase hex digits.

Writing: a whole batch is one ``os.write`` on an ``O_APPEND`` descriptor, and one writer per file is
enforced with ``fcntl.flock`` (a second writer, in this or another process, gets
:class:`EventStoreError`). ``fsync="none"`` (default) survives a process crash or SIGKILL: data in the
page cache reaches the disk without us. ``fsync="batch"`` also ``fdatasync``\\ s every batch before
``append_batch`` returns, so acknowledged events survive a power loss too.

Recovery on open: a SIGKILL can tear a write anywhere, even inside a short line, so the file is scanned
and the longest prefix of complete, valid batches is kept. A torn final line or a partial final batch is
cut off (truncate + fsync; logged as a warning): those events were never acknowledged. Damage that is
followed by valid records cannot come from a crash; the store refuses to open with
:class:`StoreCorruptionError` naming the file and byte offset, and cuts nothing.

The scan leaves an in-memory index, per run the byte offset and length of each seq's line (12 bytes per
event), plus for a writer the 64-bit event-id hashes for the duplicate check (:class:`_IdHashes`: about
8 bytes per event more, so a million-event file costs a writer ~20 MB).
Reads ``pread`` the lines they need, so ``load_since`` and ``last_sequence`` near the end of a long run
cost the same as at its start; ``query`` and ``runs`` parse events and are a scan.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from itertools import accumulate
from pathlib import Path
from typing import Literal, NoReturn

from .._fork import reinit_after_fork
from ..events import EventType, StreamEvent, validate_run_id
from ..exceptions import DuplicateEventError, EventStoreError, StoreClosedError, StoreCorruptionError
from .base import PagedReads, RunInfo, StoreStats, batch_events, check_batch, one_line, query_filter

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("swarm_observability")

FILE_NAME = "events.jsonl"
_EVENT_KEY = b',"event":'
_STRING = rb'("(?:[^"\\]|\\.)*")'
_HEADER = re.compile(
    rb'\{"seq":(\d+),"run_id":' + _STRING + rb',"id":' + _STRING + rb',"batch":\[(\d+),(\d+)\],"event":'
)
_CRC_KEY = b',"crc":"'
_PLAIN_TEXT = re.compile(r"[ !#-\[\]-~]*")
_RECORD_START = b'{"seq":'
_NUL_RUN = b"\0" * 16
_SUFFIX = 19  # len(b',"crc":"01234567"}\n')
_SCAN_CHUNK = 4 << 20
_READ_CHUNK = 1 << 20
_READ_GAP = 64 << 10
_PAGE_EVENTS = 1000
_PAGE_BYTES = 8 << 20
_MERGE_AT = 1 << 16


class _RunIndex:
    """Where each seq of one run lives in the file: ``offsets[seq - 1]``, ``lengths[seq - 1]``."""

    __slots__ = ("lengths", "offsets")

    def __init__(self) -> None:
        self.offsets = array("q")
        self.lengths = array("I")


class _IdHashes:
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


class JSONLEventStore(PagedReads):
    """Event log in one append-only JSONL file (format and recovery in the module docstring).

    Args:
        location: a directory (the file is ``<directory>/events.jsonl``; folders are created) or a path
            ending in ``.jsonl``.
        fsync: ``"none"`` (default): acknowledged events survive a process crash, not a power loss.
            ``"batch"``: every ``append_batch`` is fdatasynced before it returns.
        read_only: read a file that another process may be writing: no lock, no repair; each read
            first indexes the batches completed since. Appends raise :class:`EventStoreError`.

    Raises:
        StoreCorruptionError: the file is damaged before its end (see module docstring).
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
        if fcntl is None:  # pragma: no cover
            raise EventStoreError("the JSONL event store needs fcntl.flock (POSIX); use the SQLite store")
        location = Path(location).expanduser().absolute()
        self.path = location if location.suffix == ".jsonl" else location / FILE_NAME
        """The ``events.jsonl`` file."""
        self.fsync = fsync
        self.read_only = read_only
        self._lock = threading.Lock()
        self._runs: dict[str, _RunIndex] = {}
        self._id_hashes = _IdHashes()
        self._indexed = 0
        self._failed: BaseException | None = None
        self._closed = False
        self._fd = self._open_file()
        try:
            self._scan()
        except BaseException:
            os.close(self._fd)
            raise
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

    def _open_file(self) -> int:
        if self.read_only:
            try:
                return os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise EventStoreError(f"no event store at {self.path} (opened read-only)") from None
            except OSError as exc:
                raise EventStoreError(f"cannot open event store {self.path}: {exc}") from exc
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise EventStoreError(f"cannot open event store {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EventStoreError(
                f"{self.path} is already open for writing (by another process or store object); "
                "open it with read_only=True to read it meanwhile"
            ) from None
        if created and self.fsync == "batch":
            _fsync_dir(self.path.parent)
        return fd

    # -- writing ----------------------------------------------------------------------------------

    def append(self, event: StreamEvent) -> None:
        """Append one event; its ``seq`` must be ``last_sequence(run_id) + 1``."""
        self.append_batch((event,))

    def append_batch(self, events: Sequence[StreamEvent]) -> None:
        """Append events with one write: all are stored, or none and the error is raised."""
        events = batch_events(events)
        if not events:
            return
        data, lengths = _frame_batch(events)
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
            check_batch(events, lookup_last=self._last_seq)
            stored_hashes = self._id_hashes
            hits = stored_hashes.members(id_hashes)
            if hits:  # a hash already stored: the file says whether it is the id itself
                for event, id_hash in zip(events, id_hashes, strict=True):
                    if id_hash in hits and self._stored_id(event.id):
                        raise DuplicateEventError(event.id)
            start = self._indexed
            try:
                _write_all(self._fd, data)
                if self.fsync == "batch":
                    os.fdatasync(self._fd)
            except BaseException as exc:
                self._undo_write(start, exc)
                if isinstance(exc, OSError):
                    raise EventStoreError(f"append to {self.path} failed: {exc}") from exc
                raise
            offsets = list(accumulate(lengths, initial=start))
            self._index(events, offsets, lengths)
            stored_hashes.update(id_hashes)
            self._indexed = offsets[-1]

    def _index(self, events: Sequence[StreamEvent], offsets: list[int], lengths: list[int]) -> None:
        """Record where each event of a written batch is, one stretch of one run's events at a time."""
        runs = {event.run_id for event in events}
        stretches = [(0, len(events))]
        if len(runs) > 1:
            cuts = [at for at in range(1, len(events)) if events[at].run_id != events[at - 1].run_id]
            stretches = list(zip([0, *cuts], [*cuts, len(events)], strict=True))
        for first, last in stretches:
            run_id = events[first].run_id
            index = self._runs.get(run_id) or self._runs.setdefault(run_id, _RunIndex())
            index.offsets.extend(offsets[first:last])
            index.lengths.extend(lengths[first:last])

    def _undo_write(self, start: int, exc: BaseException) -> None:
        try:
            os.ftruncate(self._fd, start)
        except OSError as undo_exc:
            self._failed = exc
            logger.error("could not cut a failed write from %s: %s; appends are refused", self.path, undo_exc)

    def _add(self, run_id: str, event_id: str, offset: int, length: int) -> None:
        index = self._runs.get(run_id)
        if index is None:
            index = self._runs[run_id] = _RunIndex()
        index.offsets.append(offset)
        index.lengths.append(length)
        if not self.read_only:
            self._id_hashes.add(hash(event_id))

    def _last_seq(self, run_id: str) -> int:
        index = self._runs.get(run_id)
        return 0 if index is None else len(index.offsets)

    # -- the open scan ----------------------------------------------------------------------------

    def _scan(self) -> None:
        """Index the complete batches after ``self._indexed``; repair a torn tail or refuse damage."""
        batch_start = self._indexed
        pending: list[tuple[str, str, int, int]] = []
        pending_last: dict[str, int] = {}
        pending_hashes: set[int] = set()
        run_names: dict[bytes, str] = {}
        count = 0
        lines = _file_lines(self._fd, batch_start)
        damage: tuple[int, bytes] | None = None
        newline_at: int | None = None
        for offset, line in lines:
            frame = self._header(line, offset)
            if frame is None and not self.read_only and line[-1:] != b"\n":
                frame = self._header(line + b"\n", offset)  # a whole last record without its newline
                if frame is not None:
                    newline_at, line = offset + len(line), line + b"\n"
            if frame is None:
                damage = (offset, line)
                break
            seq, run_text, event_id, index, batch_count = frame
            run_id = run_names.get(run_text)
            if run_id is None:
                run_id = run_names[run_text] = self._run_name(run_text, offset)
            if index == 0:
                count = batch_count
            if index != len(pending) or index >= count or batch_count != count:
                self._refuse(offset, f"batch framing broken: line {index} of {batch_count} found")
            last = pending_last.get(run_id)
            if last is None:
                last = self._last_seq(run_id)
            if seq != last + 1:
                self._refuse(offset, f"run {run_id!r} expects seq {last + 1}, found seq {seq}")
            id_hash = hash(event_id)
            if (id_hash in pending_hashes and any(event_id == p[1] for p in pending)) or (
                not self.read_only and id_hash in self._id_hashes and self._stored_id(event_id)
            ):
                self._refuse(offset, f"event id {event_id!r} is stored twice")
            pending.append((run_id, event_id, offset, len(line)))
            pending_last[run_id] = last + 1
            pending_hashes.add(id_hash)
            if index == count - 1:
                for run, eid, off, length in pending:
                    self._add(run, eid, off, length)
                batch_start = self._indexed = offset + len(line)
                pending.clear()
                pending_last.clear()
                pending_hashes.clear()
        if damage is not None:
            self._check_torn_tail(*damage, lines)
        self._indexed = batch_start
        if newline_at is not None and batch_start > newline_at:
            logger.warning(
                "%s: restoring the newline missing after the last record (byte %d)", self.path, newline_at
            )
            _write_all(self._fd, b"\n")
            os.fsync(self._fd)
        size = os.fstat(self._fd).st_size
        if size > batch_start and not self.read_only:
            logger.warning(
                "%s: cutting %d byte(s) after byte %d: an incomplete batch left by a crashed writer",
                self.path,
                size - batch_start,
                batch_start,
            )
            os.ftruncate(self._fd, batch_start)
            os.fsync(self._fd)

    def _header(self, line: bytes, offset: int) -> tuple[int, bytes, str, int, int] | None:
        """``(seq, run id JSON, event id, index, count)`` of a CRC-valid line; ``None`` if it fails its CRC.

        A line whose CRC holds was written whole, so a header that is malformed anyway (not our
        framing, undecodable text, absurd numbers) is damage, never a torn write: it is refused.
        """
        if not _crc_ok(line):
            return None
        match = _HEADER.match(line)
        if match is None:
            self._refuse(offset, "record passes its CRC but its header is not swarm-observability framing")
        seq_text, run_text, id_text, index_text, count_text = match.groups()
        try:
            event_id = _json_text(id_text)
            numbers = [int(text) for text in (seq_text, index_text, count_text)]
        except ValueError as exc:  # undecodable UTF-8 or JSON escapes, over-long numbers
            self._refuse(offset, f"record passes its CRC but its header does not decode: {exc}")
        return numbers[0], run_text, event_id, numbers[1], numbers[2]

    def _run_name(self, run_text: bytes, offset: int) -> str:
        try:
            return validate_run_id(_json_text(run_text))
        except ValueError as exc:
            self._refuse(offset, f"record passes its CRC but its run id is unusable: {exc}")

    def _check_torn_tail(self, offset: int, line: bytes, rest: Iterator[tuple[int, bytes]]) -> None:
        """Accept the bytes from ``offset`` on as a torn write to cut, or raise :class:`StoreCorruptionError`.

        A crashed writer leaves a prefix of what it wrote (a last line cut short), or after a power
        loss blocks of NUL bytes (whole disk sectors, so runs of NULs, never a lone one); either way
        no complete record follows the first bad byte. Any
        complete record after it (on a later line, or glued to the damage by a lost newline), or a
        complete, NUL-free last line failing its CRC, is damage to acknowledged data: refused.
        """
        tail = [(offset, line), *rest]
        for later, text in tail[1:]:
            if _frame(text) is not None:
                self._refuse(
                    offset,
                    f"damaged record followed by a valid record at byte {later}; refusing to open "
                    "rather than drop acknowledged events",
                )
        for start, text in tail:
            at = text.find(_RECORD_START, 1)
            while at > 0:
                if _frame(text[at:]) is not None or _frame(text[:at] + b"\n") is not None:
                    self._refuse(
                        offset,
                        f"a complete record at byte {start + at if _frame(text[at:]) else start} is glued "
                        "to damaged bytes (a lost newline?); refusing to cut acknowledged events",
                    )
                at = text.find(_RECORD_START, at + 1)
        if line[-1:] != b"\n" and _frame(line[:-1] + b"\n") is not None:
            self._refuse(offset, "the last record is complete but its newline was overwritten")
        if line[-1:] == b"\n" and not any(_NUL_RUN in text for _, text in tail):
            self._refuse(
                offset,
                "the last record is complete but fails its CRC or framing: damaged after it was written "
                "(a crash only ever cuts a record short)",
            )

    def _refuse(self, offset: int, problem: str) -> NoReturn:
        raise StoreCorruptionError(
            f"{self.path} at byte {offset}: {problem} (to keep the records before it, copy the file "
            f"and cut the copy at byte {offset})",
            f"{self.path}:{offset}",
        )

    def _stored_id(self, event_id: str) -> bool:
        """Whether ``event_id`` is in the indexed part of the file (the slow check behind a hash hit)."""
        for _offset, line in _file_lines(self._fd, 0, self._indexed):
            frame = _frame(line)
            if frame is not None and _json_text(frame.group(3)) == event_id:
                return True
        return False

    def _refresh(self) -> None:
        if self.read_only and os.fstat(self._fd).st_size > self._indexed:
            self._scan()

    # -- reading ----------------------------------------------------------------------------------

    def _pages(self, run_id: str, after_seq: int) -> Iterator[list[StreamEvent]]:
        seq = max(int(after_seq), 0) + 1
        while True:
            with self._lock:
                self._check_open()
                self._refresh()
                index = self._runs.get(run_id)
                if index is None or seq > len(index.offsets):
                    return
                first = seq - 1
                stop, size = first, 0
                while stop < len(index.offsets) and stop - first < _PAGE_EVENTS and size < _PAGE_BYTES:
                    size += index.lengths[stop]
                    stop += 1
                offsets = index.offsets[first:stop]
                lines = _read_lines(self._fd, offsets, index.lengths[first:stop], self.path)
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
                split = line.find(_EVENT_KEY)
                if split < 0 or line[-_SUFFIX:] != b',"crc":"%08x"}\n' % crc32(line[:-_SUFFIX]):
                    break
                event = parse(line[split + len(_EVENT_KEY) : -_SUFFIX])
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
        self._refuse(offset, f"expected run {run_id!r} seq {seq}, found {found}")

    def _parse(self, line: bytes, offset: int) -> StreamEvent:
        start = _event_start(line)
        if start < 0:
            self._refuse(offset, "record fails its CRC or framing")
        try:
            return StreamEvent.from_stored_json(line[start:-_SUFFIX])
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
        first = max(int(after_seq), 0)
        out: list[bytes] = []
        while limit is None or len(out) < limit:
            with self._lock:
                self._check_open()
                self._refresh()
                index = self._runs.get(run_id)
                seq = first + len(out)
                if index is None or seq >= len(index.offsets):
                    break
                stop = len(index.offsets) if limit is None else min(len(index.offsets), first + limit)
                stop = min(stop, seq + _PAGE_EVENTS * 10)
                offsets = index.offsets[seq:stop]
                lines = _read_lines(self._fd, offsets, index.lengths[seq:stop], self.path)
            out += self._event_json(lines, offsets)
        return out

    def iter_json(self, chunk: int = 10_000) -> Iterator[list[bytes]]:
        """The stored JSON of every event in file order, in lists of about ``chunk``, up to the end of
        what was indexed when called (a consistent prefix: every run up to some seq).

        Raises:
            StoreCorruptionError: a line fails its CRC (naming the file and byte offset).
        """
        with self._lock:
            self._check_open()
            self._refresh()
            end = self._indexed
        offsets: list[int] = []
        lines: list[bytes] = []
        for offset, line in _file_lines(self._fd, 0, end):
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
            split = line.find(_EVENT_KEY)
            if split < 0 or line[-_SUFFIX:] != b',"crc":"%08x"}\n' % crc32(line[:-_SUFFIX]):
                self._refuse(offset, "record fails its CRC or framing")
            out.append(line[split + len(_EVENT_KEY) : -_SUFFIX])
        return out

    def last_sequence(self, run_id: str) -> int:
        """The last seq of a run, 0 for an unknown run (from the index: no file access).

        The writing store answers without its lock, so this never waits for an append's write and
        fsync in progress: the index of a run only grows, after its batch is written.
        """
        if not self.read_only:
            self._check_open()
            return self._last_seq(run_id)
        with self._lock:
            self._check_open()
            self._refresh()
            return self._last_seq(run_id)

    def query(
        self,
        run_id: str | None = None,
        types: Iterable[EventType | str] | None = None,
        since: datetime | None = None,
        limit: int | None = None,
    ) -> list[StreamEvent]:
        """Newest-first (timestamp, seq, run id) events filtered by run, types and ``timestamp >= since``.

        Parses every event of the selected runs; fine for dashboards, use SQLite for frequent queries.
        """
        wanted = query_filter(types, since, limit)
        runs = [run_id] if run_id is not None else self._run_ids()
        return wanted.newest_first(event for run in runs for event in self.iter_events(run))

    def runs(self) -> list[RunInfo]:
        """Every run with its event count and first/last timestamps, oldest first."""
        infos = []
        for run_id in self._run_ids():
            with self._lock:
                self._check_open()
                index = self._runs[run_id]
                count = len(index.offsets)
                offsets = [index.offsets[0], index.offsets[-1]]
                lines = _read_lines(self._fd, offsets, [index.lengths[0], index.lengths[-1]], self.path)
            first = self._parse(lines[0], offsets[0])
            last = self._parse(lines[1], offsets[1])
            infos.append(RunInfo(run_id, count, first.timestamp, last.timestamp, last.type_name))
        return sorted(infos, key=lambda info: (info.first_timestamp, info.run_id))

    def _run_ids(self) -> list[str]:
        with self._lock:
            self._check_open()
            self._refresh()
            return list(self._runs)

    def stats(self) -> StoreStats:
        """Runs, events, the file path and its size in bytes."""
        with self._lock:
            self._check_open()
            self._refresh()
            events = sum(len(index.offsets) for index in self._runs.values())
            size = os.fstat(self._fd).st_size
        return StoreStats(self.backend, len(self._runs), events, str(self.path), size)

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file and release the writer lock; idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)
                self._runs = {}
                self._id_hashes = _IdHashes()

    def __enter__(self) -> JSONLEventStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"JSONLEventStore({str(self.path)!r}, fsync={self.fsync!r})"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"the JSONL event store {self.path} is closed")


def _json_str(value: str) -> bytes:
    if _PLAIN_TEXT.fullmatch(value):  # printable ASCII without quote or backslash: as it is
        return b'"%b"' % value.encode()
    return json.dumps(value, ensure_ascii=False).encode()


def _frame_batch(events: Sequence[StreamEvent]) -> tuple[bytes, list[int]]:
    """The lines of one batch as one bytes object, and each line's length.

    One pass: the header is formatted from values that are safe as they are (ints) or JSON-escaped
    (run ids once per batch, ids), the CRC continues from the header over the event's JSON, and the
    pieces are joined once, so no line is copied before the write.
    """
    count = len(events)
    run_keys: dict[str, bytes] = {}
    parts: list[bytes] = []
    lengths: list[int] = []
    crc32 = zlib.crc32
    for index, event in enumerate(events):
        run_key = run_keys.get(event.run_id)
        if run_key is None:
            run_key = run_keys[event.run_id] = _json_str(event.run_id)
        head = b'{"seq":%d,"run_id":%b,"id":%b,"batch":[%d,%d],"event":' % (
            event.seq or 0,
            run_key,
            _json_str(event.id),
            index,
            count,
        )
        body = event.to_json_bytes()
        parts += (head, body, b'%b%08x"}\n' % (_CRC_KEY, crc32(body, crc32(head))))
        lengths.append(len(head) + len(body) + _SUFFIX)
    return b"".join(parts), lengths


def _crc_ok(line: bytes) -> bool:
    """Whether ``line`` is complete (ends in ``"}\\n``) and its CRC field matches the bytes before it."""
    return (
        line[-3:] == b'"}\n'
        and line[-_SUFFIX : -_SUFFIX + 8] == _CRC_KEY
        and b"%08x" % zlib.crc32(line[:-_SUFFIX]) == line[-11:-3]
    )


def _event_start(line: bytes) -> int:
    """Where the event JSON starts in a complete, CRC-valid line; -1 for anything else."""
    if not _crc_ok(line):
        return -1
    split = line.find(_EVENT_KEY)
    return -1 if split < 0 else split + len(_EVENT_KEY)


def _frame(line: bytes) -> re.Match[bytes] | None:
    """The header match (seq, run_id, id, index, count as JSON text) of a CRC-valid line, else ``None``."""
    return _HEADER.match(line) if _crc_ok(line) else None


def _json_text(quoted: bytes) -> str:
    return quoted[1:-1].decode() if b"\\" not in quoted else json.loads(quoted)


def _file_lines(fd: int, start: int, end: int | None = None) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` for each line from ``start``; the last one lacks ``\\n`` if the file does."""
    base, buf = start, b""
    while end is None or base + len(buf) < end:
        want = _SCAN_CHUNK if end is None else min(_SCAN_CHUNK, end - base - len(buf))
        block = os.pread(fd, want, base + len(buf))
        if not block:
            break
        buf += block
        pos = 0
        while (newline := buf.find(b"\n", pos)) >= 0:
            yield base + pos, buf[pos : newline + 1]
            pos = newline + 1
        base, buf = base + pos, buf[pos:]
    if buf:
        yield base, buf


def _read_lines(fd: int, offsets: Sequence[int], lengths: Sequence[int], path: Path) -> list[bytes]:
    """Read the given lines, merging neighbours into reads of up to ~1 MB."""
    out: list[bytes] = []
    i, n = 0, len(offsets)
    while i < n:
        start = offsets[i]
        end = start + lengths[i]
        j = i + 1
        while j < n and 0 <= offsets[j] - end <= _READ_GAP and offsets[j] + lengths[j] - start <= _READ_CHUNK:
            end = offsets[j] + lengths[j]
            j += 1
        block = os.pread(fd, end - start, start)
        if len(block) != end - start:
            raise StoreCorruptionError(f"{path} is shorter than its index (cut by hand?)", f"{path}:{start}")
        out.extend(block[offsets[k] - start : offsets[k] - start + lengths[k]] for k in range(i, j))
        i = j
    return out


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
