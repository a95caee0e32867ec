"""The open scan of a JSONL store: index the complete batches, cut a torn tail, refuse real damage.

Recovery on open: a SIGKILL can tear a write anywhere, even inside a short line, so the file is scanned
and the longest prefix of complete, valid batches is kept. A torn final line or a partial final batch is
cut off (truncate + fsync; logged as a warning): those events were never acknowledged. Damage that is
followed by valid records cannot come from a crash; the store refuses to open with
:class:`StoreCorruptionError` naming the file and byte offset, and cuts nothing.

A read-only store runs the same scan from where its index ends before each read, to pick up the
batches completed since; it never cuts or repairs (the writer does that).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from zlib import crc32

from ..events import validate_run_id
from .jsonl_format import (
    NUL_RUN,
    RECORD_START,
    crc_ok,
    file_lines,
    frame,
    header,
    holds_id,
    json_text,
    refuse,
    write_all,
)
from .jsonl_index import FileIndex

logger = logging.getLogger("swarm_observability")


def scan(fd: int, path: Path, index: FileIndex, *, read_only: bool) -> None:
    """Index the complete batches after ``index.end``; repair a torn tail (unless ``read_only``) or
    refuse damage with :class:`StoreCorruptionError`.

    A writer (``read_only=False``) also records the id hashes and refuses an id stored twice.
    ``index.crc`` follows ``index.end`` (the CRC-32 of the lines of each complete batch is added).
    """
    batch_start = index.end
    crc = index.crc
    pending: list[tuple[str, str, int, int]] = []
    pending_last: dict[str, int] = {}
    pending_hashes: set[int] = set()
    run_names: dict[bytes, str] = {}
    count = 0
    lines = file_lines(fd, batch_start)
    damage: tuple[int, bytes] | None = None
    newline_at: int | None = None
    for offset, line in lines:
        fields = _header(line, offset, path)
        if fields is None and not read_only and line[-1:] != b"\n":
            fields = _header(line + b"\n", offset, path)  # a whole last record without its newline
            if fields is not None:
                newline_at, line = offset + len(line), line + b"\n"
        if fields is None:
            damage = (offset, line)
            break
        seq, run_text, event_id, position, batch_count = fields
        run_id = run_names.get(run_text)
        if run_id is None:
            run_id = run_names[run_text] = _run_name(run_text, offset, path)
        if position == 0:
            count = batch_count
        if position != len(pending) or position >= count or batch_count != count:
            refuse(path, offset, f"batch framing broken: line {position} of {batch_count} found")
        last = pending_last.get(run_id)
        if last is None:
            last = index.last_seq(run_id)
        if seq != last + 1:
            refuse(path, offset, f"run {run_id!r} expects seq {last + 1}, found seq {seq}")
        id_hash = hash(event_id)
        if (id_hash in pending_hashes and any(event_id == p[1] for p in pending)) or (
            not read_only and id_hash in index.id_hashes and holds_id(fd, index.end, event_id)
        ):
            refuse(path, offset, f"event id {event_id!r} is stored twice")
        pending.append((run_id, event_id, offset, len(line)))
        crc = crc32(line, crc)
        pending_last[run_id] = last + 1
        pending_hashes.add(id_hash)
        if position == count - 1:
            for run, eid, off, length in pending:
                index.add(run, off, length)
                if not read_only:
                    index.id_hashes.add(hash(eid))
            batch_start = index.end = offset + len(line)
            index.crc = crc
            pending.clear()
            pending_last.clear()
            pending_hashes.clear()
    if damage is not None:
        _check_torn_tail(*damage, lines, path)
    index.end = batch_start
    if newline_at is not None and batch_start > newline_at:
        logger.warning("%s: restoring the newline missing after the last record (byte %d)", path, newline_at)
        write_all(fd, b"\n")
        os.fsync(fd)
    size = os.fstat(fd).st_size
    if size > batch_start and not read_only:
        logger.warning(
            "%s: cutting %d byte(s) after byte %d: an incomplete batch left by a crashed writer",
            path,
            size - batch_start,
            batch_start,
        )
        os.ftruncate(fd, batch_start)
        os.fsync(fd)


def _header(line: bytes, offset: int, path: Path) -> tuple[int, bytes, str, int, int] | None:
    """``(seq, run id JSON, event id, index, count)`` of a CRC-valid line; ``None`` if it fails its CRC.

    A line whose CRC holds was written whole, so a header that is malformed anyway (not our
    framing, undecodable text, absurd numbers) is damage, never a torn write: it is refused.
    """
    if not crc_ok(line):
        return None
    match = header(line)
    if match is None:
        refuse(path, offset, "record passes its CRC but its header is not swarm-observability framing")
    seq_text, run_text, id_text, index_text, count_text = match.groups()
    try:
        event_id = json_text(id_text)
        numbers = [int(text) for text in (seq_text, index_text, count_text)]
    except ValueError as exc:  # undecodable UTF-8 or JSON escapes, over-long numbers
        refuse(path, offset, f"record passes its CRC but its header does not decode: {exc}")
    return numbers[0], run_text, event_id, numbers[1], numbers[2]


def _run_name(run_text: bytes, offset: int, path: Path) -> str:
    try:
        return validate_run_id(json_text(run_text))
    except ValueError as exc:
        refuse(path, offset, f"record passes its CRC but its run id is unusable: {exc}")


def _check_torn_tail(offset: int, line: bytes, rest: Iterator[tuple[int, bytes]], path: Path) -> None:
    """Accept the bytes from ``offset`` on as a torn write to cut, or raise :class:`StoreCorruptionError`.

    A crashed writer leaves a prefix of what it wrote (a last line cut short), or after a power
    loss blocks of NUL bytes (whole disk sectors, so runs of NULs, never a lone one); either way
    no complete record follows the first bad byte. Any
    complete record after it (on a later line, or glued to the damage by a lost newline), or a
    complete, NUL-free last line failing its CRC, is damage to acknowledged data: refused.
    """
    tail = [(offset, line), *rest]
    for later, text in tail[1:]:
        if frame(text) is not None:
            refuse(
                path,
                offset,
                f"damaged record followed by a valid record at byte {later}; refusing to open "
                "rather than drop acknowledged events",
            )
    for start, text in tail:
        at = text.find(RECORD_START, 1)
        while at > 0:
            if frame(text[at:]) is not None or frame(text[:at] + b"\n") is not None:
                refuse(
                    path,
                    offset,
                    f"a complete record at byte {start + at if frame(text[at:]) else start} is glued "
                    "to damaged bytes (a lost newline?); refusing to cut acknowledged events",
                )
            at = text.find(RECORD_START, at + 1)
    if line[-1:] != b"\n" and frame(line[:-1] + b"\n") is not None:
        refuse(path, offset, "the last record is complete but its newline was overwritten")
    if line[-1:] == b"\n" and not any(NUL_RUN in text for _, text in tail):
        refuse(
            path,
            offset,
            "the last record is complete but fails its CRC or framing: damaged after it was written "
            "(a crash only ever cuts a record short)",
        )
