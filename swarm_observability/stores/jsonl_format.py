"""The ``events.jsonl`` record format: framing a batch, checking a line, reading lines back.

File format: UTF-8, one JSON object per line, one line per event::

    {"seq":3,"run_id":"scan-1","id":"6f1c...","batch":[0,2],"event":{...},"crc":"9a3b0c1d"}

* ``event`` is the event's own JSON (:meth:`StreamEvent.to_json_bytes`), byte for byte.
* ``seq``, ``run_id`` and ``id`` repeat the event's fields so that opening the file indexes it without
  parsing events.
* ``batch`` is ``[index, count]``: line ``index`` of the ``count`` lines written by one ``append_batch``.
* ``crc`` is the CRC-32 (zlib) of the line's bytes before ``,"crc":``, as 8 lowercase hex digits.

This module knows the bytes and nothing of a store's state: :mod:`.jsonl_index` keeps where lines are,
:mod:`.jsonl_recovery` scans a file into that index, :mod:`.jsonl` is the store.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from ..events import StreamEvent
from ..exceptions import EventStoreError, StoreCorruptionError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

FILE_NAME = "events.jsonl"
EVENT_KEY = b',"event":'
"""What precedes the event's JSON in a line."""
SUFFIX = 19  # len(b',"crc":"01234567"}\n')
"""The bytes after the event's JSON in a line."""
RECORD_START = b'{"seq":'
NUL_RUN = b"\0" * 16
"""A run of NUL bytes: what a power loss leaves in a file (whole zeroed sectors), never a lone NUL."""

_STRING = rb'("(?:[^"\\]|\\.)*")'
_HEADER = re.compile(
    rb'\{"seq":(\d+),"run_id":' + _STRING + rb',"id":' + _STRING + rb',"batch":\[(\d+),(\d+)\],"event":'
)
_CRC_KEY = b',"crc":"'
_PLAIN_TEXT = re.compile(r"[ !#-\[\]-~]*")
_SCAN_CHUNK = 4 << 20
_READ_CHUNK = 1 << 20
_READ_GAP = 64 << 10


def frame_batch(events: Sequence[StreamEvent]) -> tuple[bytes, list[int]]:
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
        lengths.append(len(head) + len(body) + SUFFIX)
    return b"".join(parts), lengths


def _json_str(value: str) -> bytes:
    if _PLAIN_TEXT.fullmatch(value):  # printable ASCII without quote or backslash: as it is
        return b'"%b"' % value.encode()
    return json.dumps(value, ensure_ascii=False).encode()


def crc_ok(line: bytes) -> bool:
    """Whether ``line`` is complete (ends in ``"}\\n``) and its CRC field matches the bytes before it."""
    return (
        line[-3:] == b'"}\n'
        and line[-SUFFIX : -SUFFIX + 8] == _CRC_KEY
        and b"%08x" % zlib.crc32(line[:-SUFFIX]) == line[-11:-3]
    )


def event_start(line: bytes) -> int:
    """Where the event JSON starts in a complete, CRC-valid line; -1 for anything else."""
    if not crc_ok(line):
        return -1
    split = line.find(EVENT_KEY)
    return -1 if split < 0 else split + len(EVENT_KEY)


def header(line: bytes) -> re.Match[bytes] | None:
    """The header match (seq, run_id, id, index, count as JSON text) of ``line``, whatever its CRC."""
    return _HEADER.match(line)


def frame(line: bytes) -> re.Match[bytes] | None:
    """The header match (seq, run_id, id, index, count as JSON text) of a CRC-valid line, else ``None``."""
    return _HEADER.match(line) if crc_ok(line) else None


def json_text(quoted: bytes) -> str:
    """The string a JSON string literal of a header (quotes included) stands for."""
    return quoted[1:-1].decode() if b"\\" not in quoted else json.loads(quoted)


def holds_id(fd: int, end: int, event_id: str) -> bool:
    """Whether the lines before byte ``end`` hold ``event_id`` (the slow check behind a hash hit)."""
    for _offset, line in file_lines(fd, 0, end):
        match = frame(line)
        if match is not None and json_text(match.group(3)) == event_id:
            return True
    return False


def refuse(path: Path, offset: int, problem: str) -> NoReturn:
    """Raise :class:`StoreCorruptionError` for damage at byte ``offset`` of ``path``, saying how to keep
    the records before it."""
    raise StoreCorruptionError(
        f"{path} at byte {offset}: {problem} (to keep the records before it, copy the file "
        f"and cut the copy at byte {offset})",
        f"{path}:{offset}",
    )


def file_lines(fd: int, start: int, end: int | None = None) -> Iterator[tuple[int, bytes]]:
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


def read_lines(fd: int, offsets: Sequence[int], lengths: Sequence[int], path: Path) -> list[bytes]:
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


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (a write may be short)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def open_log(path: Path, *, read_only: bool, fsync: str) -> int:
    """A descriptor on ``path``: read-only, or for appending under the one-writer ``flock``.

    Raises:
        EventStoreError: the file is missing (read-only), cannot be opened, or has a writer already.
    """
    if fcntl is None:  # pragma: no cover
        raise EventStoreError("the JSONL event store needs fcntl.flock (POSIX); use the SQLite store")
    if read_only:
        try:
            return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise EventStoreError(f"no event store at {path} (opened read-only)") from None
        except OSError as exc:
            raise EventStoreError(f"cannot open event store {path}: {exc}") from exc
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise EventStoreError(f"cannot open event store {path}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise EventStoreError(
            f"{path} is already open for writing (by another process or store object); "
            "open it with read_only=True to read it meanwhile"
        ) from None
    if created and fsync == "batch":
        _fsync_dir(path.parent)
    return fd


def _fsync_dir(directory: Path) -> None:
    """Make a new file's directory entry durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
