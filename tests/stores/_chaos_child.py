"""Child side of the SIGKILL chaos test (``test_chaos.py``): a fork server whose workers append batches.

Run as ``python _chaos_child.py <backend>`` (for ``postgres`` a location is a schema on
``$CHAOS_PG_URL``). The process imports the stores once, then reads commands
from stdin, one per line: ``life <n> <location>``. For each it forks a worker and prints
``pid <pid>``; the worker opens the store at ``<location>`` (running recovery), appends random batches
(in a third of the lives 1-4 events of 0.1-1 MB each, so that many kills land inside a write) and,
after each ``append_batch`` returns, prints one acknowledgement line (JSON, under PIPE_BUF so the pipe
write is atomic)::

    {"b": "<life>-<k>", "n": <events>, "e": [[run_id, seq, event_id, blake2b(to_json_bytes)], ...]}

The parent SIGKILLs the worker whenever it likes; this process then prints ``dead <pid> <status>``,
after every acknowledgement of that worker, so the parent knows it has them all. Forking from a warm
process keeps each restart in milliseconds instead of a fresh interpreter's import time.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
import traceback

from swarm_observability.events import EventType, make_event
from swarm_observability.stores import JSONLEventStore, PostgresEventStore, SQLiteEventStore

RUNS = ("run-a", "run-b", "run-c", "run-ü")
PIPE_BUF = 4096
WORKER_SECONDS = 20.0


def digest(data: bytes) -> str:
    """Short content hash of an event's stored JSON, as acknowledged to the parent."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def _say(line: str) -> None:
    data = line.encode() + b"\n"
    os.write(1, data)


def _open(
    backend: str, location: str, rng: random.Random
) -> SQLiteEventStore | JSONLEventStore | PostgresEventStore:
    if backend == "postgres":  # location: the schema; the server: CHAOS_PG_URL (set by the parent)
        return PostgresEventStore(os.environ["CHAOS_PG_URL"], schema=location, pool_size=1)
    if backend == "sqlite":
        return SQLiteEventStore(location, durability=rng.choice(("full", "normal")))
    return JSONLEventStore(location, fsync="batch" if rng.random() < 0.2 else "none")


_POOL = os.urandom(600_000).hex()


def _payload(rng: random.Random, big: bool) -> str:
    size = rng.randint(100_000, 1_000_000) if big or rng.random() < 0.002 else rng.randint(0, 1000)
    start = rng.randrange(len(_POOL) - size + 1)
    return _POOL[start : start + size]


def _work(backend: str, life: int, location: str) -> None:
    rng = random.Random(f"{life}-{os.getpid()}")
    big = rng.random() < 0.3
    store = _open(backend, location, rng)
    last = {run: store.last_sequence(run) for run in RUNS}
    deadline = time.monotonic() + WORKER_SECONDS
    k = 0
    while time.monotonic() < deadline:
        count = rng.randint(1, 4 if big else 20)
        batch_id = f"{life}-{k}"
        seqs = dict(last)
        events = []
        for index in range(count):
            run = rng.choice(RUNS)
            seqs[run] += 1
            data = {"batch": batch_id, "count": count, "index": index, "payload": _payload(rng, big)}
            events.append(make_event(EventType.PROBE_RESULT, run, seq=seqs[run], probe="chaos", data=data))
        store.append_batch(events)
        last = seqs
        ack = {
            "b": batch_id,
            "n": count,
            "e": [[e.run_id, e.seq, e.id, digest(e.to_json_bytes())] for e in events],
        }
        line = json.dumps(ack, separators=(",", ":"))
        if len(line.encode()) >= PIPE_BUF:
            raise RuntimeError(f"acknowledgement of {len(line)} bytes would not be written atomically")
        _say(line)
        k += 1


def main() -> None:
    backend = sys.argv[1]
    for command in sys.stdin:
        _, life, location = command.split(maxsplit=2)
        pid = os.fork()
        if pid == 0:
            try:
                _work(backend, int(life), location.strip())
                os._exit(0)
            except BaseException:
                _say("error " + json.dumps(traceback.format_exc()))
                os._exit(1)
        _say(f"pid {pid}")
        _, status = os.waitpid(pid, 0)
        _say(f"dead {pid} {status}")


if __name__ == "__main__":
    main()
