"""The index sidecar of a JSONL store: ``events.jsonl.idx``, so that a read-only open need not scan.

Opening a JSONL store scans the whole file (:mod:`.jsonl_recovery`): ~8 s for a million events. A
writer closing the store saves its index next to the file; a read-only open loads it and scans only
the bytes after it. The sidecar is trusted only for the exact bytes it describes: it records the
length ``end`` of the file prefix it indexes and the CRC-32 of those bytes, which the writer keeps
as it scans and writes them (so closing reads nothing back), and the reader checks that CRC over
the file (one C pass, ~0.6 s per million events) before using it. Any difference (a byte changed,
the file cut or replaced, a damaged or foreign sidecar) and the reader falls back to the full scan,
which reports damage exactly as without a sidecar. What follows ``end`` (appends of a later
session, a torn tail) is scanned as always, so the recovery of a torn tail is unchanged.

Format: a magic line, a JSON line (``end``, ``crc``, the runs with their event counts), each run's
offsets and lengths arrays as machine bytes, then the CRC-32 of all that as 4 little-endian bytes.
Writers (never a read-only or forked store) replace it atomically; failing to is logged, not raised.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import zlib
from array import array
from contextlib import suppress
from pathlib import Path

from .jsonl_index import FileIndex, RunIndex

logger = logging.getLogger("swarm_observability")

SUFFIX = ".idx"
"""The sidecar's name is the JSONL file's name plus this."""
_MAGIC = b"swarm-observability jsonl index 1\n"
_CHUNK = 4 << 20
_ITEMSIZES = [array("q").itemsize, array("I").itemsize]


def sidecar_path(path: Path) -> Path:
    """Where the sidecar of the JSONL file ``path`` lives."""
    return path.with_name(path.name + SUFFIX)


def prefix_crc(fd: int, end: int) -> int | None:
    """The CRC-32 of the file's first ``end`` bytes; ``None`` if it is shorter."""
    crc, offset = 0, 0
    while offset < end:
        block = os.pread(fd, min(_CHUNK, end - offset), offset)
        if not block:
            return None
        crc = zlib.crc32(block, crc)
        offset += len(block)
    return crc


def save_index(path: Path, index: FileIndex) -> None:
    """Write the sidecar of ``index`` (the writer's, at close); a failure is logged and ignored.

    The CRC recorded is ``index.crc``, kept over the bytes as they were scanned and written, not
    read back: a prefix changed behind the writer's back no longer matches it, so readers scan.
    """
    target = sidecar_path(path)
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        if index.end > 0:
            temporary.write_bytes(_encode(index))
            os.replace(temporary, target)
    except (OSError, ValueError) as exc:
        logger.debug("could not save the index of %s to %s: %s", path, target, exc)
        with suppress(OSError):
            temporary.unlink(missing_ok=True)


def _encode(index: FileIndex) -> bytes:
    runs = list(index.runs.items())
    header = {
        "end": index.end,
        "crc": index.crc,
        "byteorder": sys.byteorder,
        "itemsizes": _ITEMSIZES,
        "runs": [[run_id, len(run.offsets)] for run_id, run in runs],
    }
    parts = [_MAGIC, json.dumps(header).encode() + b"\n"]
    for _run_id, run in runs:
        parts += (run.offsets.tobytes(), run.lengths.tobytes())
    body = b"".join(parts)
    return body + zlib.crc32(body).to_bytes(4, "little")


def load_index(path: Path, fd: int) -> FileIndex | None:
    """The index the sidecar holds, if it describes the file's current first bytes; else ``None``.

    The id hashes are not saved (only a writer needs them, and a writer always scans), so the
    index returned is for a read-only store.
    """
    try:
        parsed = _parse(sidecar_path(path).read_bytes())
        crc = None if parsed is None else prefix_crc(fd, parsed.end)
    except (OSError, ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        logger.debug("ignoring the index sidecar of %s: %s", path, exc)
        return None
    if parsed is None or crc != parsed.crc:
        logger.debug("the index sidecar of %s does not describe the file (changed since?): scanning", path)
        return None
    return parsed


def _parse(data: bytes) -> FileIndex | None:
    """The index a sidecar records (with its prefix CRC), ``None`` if it is not a whole one of ours."""
    body, trailer = data[:-4], data[-4:]
    if not data.startswith(_MAGIC) or zlib.crc32(body).to_bytes(4, "little") != trailer:
        return None
    newline = body.index(b"\n", len(_MAGIC))
    header = json.loads(body[len(_MAGIC) : newline])
    if header["byteorder"] != sys.byteorder or header["itemsizes"] != _ITEMSIZES:
        return None
    index, at, last = FileIndex(), newline + 1, 0
    for run_id, count in header["runs"]:
        run = index.runs[str(run_id)] = RunIndex()
        run.offsets.frombytes(body[at : at + _ITEMSIZES[0] * count])
        at += _ITEMSIZES[0] * count
        run.lengths.frombytes(body[at : at + _ITEMSIZES[1] * count])
        at += _ITEMSIZES[1] * count
        if count < 1 or len(run.offsets) != count or len(run.lengths) != count:
            return None
        last = max(last, run.offsets[-1] + run.lengths[-1])
    index.end, index.crc = int(header["end"]), int(header["crc"])
    if at != len(body) or last != index.end:
        return None
    return index
