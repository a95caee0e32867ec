"""Fuzz target for the JSONL reader: any file content opens, reads and repairs without a stray error.

:func:`fuzz_one_input` takes a whole ``events.jsonl`` as bytes and checks that opening it (as the
writer, which may repair a torn tail, and read-only), listing runs and loading every run either
works or raises :class:`StoreCorruptionError`/:class:`EventStoreError`, never anything else; that
what a writer's repair keeps opens the same way again; and that every event read back serializes
to exactly the bytes it was stored as.

Run it longer than ``make test`` does (``test_fuzz_jsonl.py`` tries a few hundred inputs)::

    .venv/bin/python -m tests.property.fuzz_jsonl --seconds 600          # built-in mutator
    .venv/bin/python -m tests.property.fuzz_jsonl --atheris -- -max_total_time=600   # if atheris is installed

The built-in mutator starts from a valid file with hostile values and applies byte flips, inserts,
deletions, truncations, duplicated or swapped lines, lost newlines, NUL blocks and header edits
whose CRC is recomputed, so that inputs get past the CRC into the header and event parsers.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
import zlib
from pathlib import Path

from swarm_observability.events import make_event
from swarm_observability.exceptions import EventStoreError, StoreCorruptionError
from swarm_observability.stores import JSONLEventStore

_FOLDER = Path(tempfile.mkdtemp(prefix="swarm-obs-fuzz-"))
_FILE = _FOLDER / "events.jsonl"


def seed_file() -> bytes:
    """A valid file: three runs, batches of several sizes, hostile and unicode values."""
    folder = Path(tempfile.mkdtemp(prefix="swarm-obs-seed-"))
    with JSONLEventStore(folder) as store:
        last: dict[str, int] = {}
        values = ["plain", "ü🚀", "\udcff", 10**700, {"k": [1, None, 2.5]}, float("nan"), '"\\\n']
        for batch_size in (1, 3, 2, 4, 1):
            batch = []
            for n in range(batch_size):
                run = ("a", "run-ü", "b/c")[n % 3]
                last[run] = last.get(run, 0) + 1
                value = values[(last[run] + n) % len(values)]
                batch.append(make_event("log", run, seq=last[run], message=str(n), data={"v": value}))
            store.append_batch(batch)
        return store.path.read_bytes()


def fuzz_one_input(data: bytes) -> None:
    """Check the reader's contract on one file content (raises AssertionError or a stray exception)."""
    _FILE.write_bytes(data)
    read_only = _read_all(read_only=True)
    as_writer = _read_all(read_only=False)
    if as_writer is not None:
        assert _read_all(read_only=False) == as_writer, "a repaired file must reopen the same"
        assert _read_all(read_only=True) == as_writer
    if read_only is not None and as_writer is not None:
        assert set(read_only) <= set(as_writer), "a reader never sees what the writer would not keep"


def _read_all(*, read_only: bool) -> list[bytes] | None:
    try:
        with JSONLEventStore(_FOLDER, read_only=read_only) as store:
            out: list[bytes] = []
            for info in store.runs():
                events = store.load(info.run_id)
                assert [e.seq for e in events] == list(range(1, len(events) + 1))
                assert len(events) == info.event_count == store.last_sequence(info.run_id)
                out += (event.to_json_bytes() for event in events)
            store.query(limit=5)
            return out
    except (StoreCorruptionError, EventStoreError):
        return None
    except FileNotFoundError:
        return None


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three random edits of ``data`` (see the module docstring)."""
    for _ in range(rng.randint(1, 3)):
        data = _EDITS[rng.randrange(len(_EDITS))](bytearray(data), rng)
    return data


def _flip(b: bytearray, rng: random.Random) -> bytes:
    if b:
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return bytes(b)


def _insert(b: bytearray, rng: random.Random) -> bytes:
    at = rng.randint(0, len(b))
    return bytes(b[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) + b[at:])


def _delete(b: bytearray, rng: random.Random) -> bytes:
    at = rng.randint(0, len(b))
    return bytes(b[:at] + b[at + rng.randint(1, 16) :])


def _truncate(b: bytearray, rng: random.Random) -> bytes:
    return bytes(b[: rng.randint(0, len(b))])


def _lines(b: bytearray) -> list[bytes]:
    return bytes(b).splitlines(keepends=True)


def _duplicate_line(b: bytearray, rng: random.Random) -> bytes:
    lines = _lines(b)
    if lines:
        at = rng.randrange(len(lines))
        lines.insert(rng.randint(0, len(lines)), lines[at])
    return b"".join(lines)


def _swap_lines(b: bytearray, rng: random.Random) -> bytes:
    lines = _lines(b)
    if len(lines) > 1:
        i, j = rng.sample(range(len(lines)), 2)
        lines[i], lines[j] = lines[j], lines[i]
    return b"".join(lines)


def _lose_newline(b: bytearray, rng: random.Random) -> bytes:
    newlines = [i for i, c in enumerate(b) if c == 0x0A]
    if newlines:
        del b[rng.choice(newlines)]
    return bytes(b)


def _nul_block(b: bytearray, rng: random.Random) -> bytes:
    return bytes(b[: rng.randint(0, len(b))]) + b"\0" * rng.choice([16, 512, 4096]) + rng.choice([b"", b"\n"])


def _edit_with_crc(b: bytearray, rng: random.Random) -> bytes:
    lines = _lines(b)
    if not lines:
        return bytes(b)
    at = rng.randrange(len(lines))
    body = bytearray(lines[at][:-19] if len(lines[at]) > 19 else lines[at])
    choice = rng.randrange(4)
    if choice == 0 and body:
        body[rng.randrange(len(body))] = rng.randrange(256)
    elif choice == 1:
        body = bytearray(bytes(body).replace(b'"seq":', b'"seq":' + str(rng.randint(0, 10**6)).encode(), 1))
    elif choice == 2:
        body = bytearray(
            bytes(body).replace(b'"run_id":"', b'"run_id":"' + rng.choice([b"\xff", b"\\x", b"\\ud800"]), 1)
        )
    else:
        body = bytearray(bytes(body).replace(b'"batch":[', b'"batch":[' + str(rng.randint(0, 9)).encode(), 1))
    lines[at] = bytes(body) + b',"crc":"%08x"}\n' % zlib.crc32(bytes(body))
    return b"".join(lines)


_EDITS = [
    _flip, _insert, _delete, _truncate, _duplicate_line, _swap_lines, _lose_newline, _nul_block,
    _edit_with_crc,
]  # fmt: skip


def run(iterations: int | None = None, seconds: float | None = None, seed: int = 0) -> int:
    """Fuzz with the built-in mutator for ``iterations`` inputs or ``seconds``; returns inputs tried."""
    rng = random.Random(seed)
    logging.getLogger("swarm_observability").setLevel(logging.ERROR)  # every repair logs a warning
    base = seed_file()
    fuzz_one_input(base)
    deadline = None if seconds is None else time.monotonic() + seconds
    done = 0
    while (iterations is None or done < iterations) and (deadline is None or time.monotonic() < deadline):
        data = mutate(base, rng)
        try:
            fuzz_one_input(data)
        except Exception:
            crash = Path(f"fuzz-jsonl-crash-{seed}-{done}.jsonl").absolute()
            crash.write_bytes(data)
            print(f"failing input saved to {crash}", file=sys.stderr)
            raise
        done += 1
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fuzz the JSONL event-store reader")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--atheris", action="store_true", help="drive fuzz_one_input with atheris")
    args, rest = parser.parse_known_args(argv)
    if args.atheris:
        import atheris  # type: ignore[import-not-found]

        atheris.Setup([sys.argv[0], *rest], fuzz_one_input)
        atheris.Fuzz()
        return 0
    count = run(seconds=args.seconds, seed=args.seed)
    print(f"{count} inputs, no failures (seed {args.seed})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
