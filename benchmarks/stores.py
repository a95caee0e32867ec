"""Event-store throughput, read paths and streaming memory, for every backend.

* Append rate, one event per call and in batches of 100: the ``StreamEvent`` objects are built first,
  then only the appends are timed, so the rate includes each backend's serialization and commit but
  not event construction.
* Reads on a store holding a 100k-event run (plus a 20k-event second run, so an index has something
  to skip): ``load``, ``load_since`` of the last 100, ``last_sequence``, and the time to re-open it.
* Streaming a 1M-event run with ``iter_events``: written by one subprocess, read by a fresh one that
  reports its RSS before opening the store and its peak RSS (``VmHWM``) after the scan, so the
  writer's memory and this process's heap never pollute the figure.

Each rate is the median of a few repeats, each on a fresh store, with min-max reported.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._stats import repeat, summarize

BACKENDS = ("memory", "sqlite", "sqlite-normal", "jsonl")
PERSISTENT = ("sqlite", "jsonl")


def open_backend(kind: str, folder: Path, *, read_only: bool = False) -> Any:
    """A store of ``kind`` in ``folder`` (``sqlite`` = default durability, ``sqlite-normal``).

    ``read_only`` opens an existing persistent store the way a reader process (the CLI) does.
    """
    ro: dict[str, Any] = {"read_only": True} if read_only else {}
    if kind == "memory":
        from swarm_observability.stores.memory import InMemoryEventStore

        return InMemoryEventStore()
    if kind == "sqlite":
        from swarm_observability.stores.sqlite import SQLiteEventStore

        return SQLiteEventStore(folder / "events.db", **ro)
    if kind == "sqlite-normal":
        from swarm_observability.stores.sqlite import SQLiteEventStore

        return SQLiteEventStore(folder / "events.db", durability="normal")
    if kind == "jsonl":
        from swarm_observability.stores.jsonl import JSONLEventStore

        return JSONLEventStore(folder / "jsonl", **ro)
    raise ValueError(f"unknown backend {kind!r}")


def _template(run_id: str) -> Any:
    from swarm_observability.events import EventType, make_event

    return make_event(
        EventType.NODE_PROGRESS,
        run_id,
        thread_id=run_id,
        node="probe_agent",
        message="scanned 12 of 40 targets",
        progress=0.3,
        step=7,
        task_id=uuid.uuid4().hex,
        namespace=("probe_agent:" + uuid.uuid4().hex,),
        checkpoint_id="1f0c" + uuid.uuid4().hex[:28],
        invocation_id=uuid.uuid4().hex,
        scope_id=uuid.uuid4().hex,
        parent_scope_id=uuid.uuid4().hex,
        data={
            "target": "10.0.0.12",
            "port": 443,
            "status": "open",
            "latency_ms": 12.5,
            "tags": ["tls", "http2"],
        },
    )


def make_events(run_id: str, count: int, start_seq: int = 1) -> list[Any]:
    """``count`` distinct, valid events of ``run_id`` with seqs from ``start_seq``."""
    from swarm_observability.events import StreamEvent

    new_id = StreamEvent.model_fields["id"].default_factory  # the ids the emitter gives to real events
    assert new_id is not None
    template = _template(run_id)
    return [
        template.model_copy(update={"id": new_id(), "seq": start_seq + i, "step": i}) for i in range(count)
    ]


def _rate(kind: str, events: Sequence[Any], batch: int, repeats: int) -> dict[str, Any]:
    rates = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="swarm-obs-store-") as tmp:
            store = open_backend(kind, Path(tmp))
            try:
                t0 = time.perf_counter()
                if batch == 1:
                    for event in events:
                        store.append(event)
                else:
                    for i in range(0, len(events), batch):
                        store.append_batch(events[i : i + batch])
                elapsed = time.perf_counter() - t0
                if store.last_sequence(events[0].run_id) != len(events):
                    raise AssertionError(
                        f"{kind}: stored {store.last_sequence(events[0].run_id)} of {len(events)}"
                    )
            finally:
                store.close()
        rates.append(len(events) / elapsed)
    return {"events": len(events), "batch": batch, "events_per_s": summarize(rates, 0)}


def _reads(kind: str, size: int, other_size: int, repeats: int) -> dict[str, Any]:
    """Fill a fresh store with a ``size``-event run and another run, then time the read paths.

    The events are generated here and dropped once stored, so the timed reads run in a process
    whose heap holds only what the store itself keeps (a large live heap would make every full
    garbage collection during a bulk load slower than in a real reader).
    """
    run_id = "target"
    with tempfile.TemporaryDirectory(prefix="swarm-obs-store-") as tmp:
        store = open_backend(kind, Path(tmp))
        try:
            for rid, count in ((run_id, size), ("other", other_size)):
                for start in range(0, count, 1000):
                    store.append_batch(make_events(rid, min(1000, count - start), start + 1))
            gc.collect()
            load = repeat(lambda: store.load(run_id), repeats)
            tail = store.load_since(run_id, size - 100)
            if len(tail) != min(100, size) or tail[-1].seq != size:
                raise AssertionError(f"{kind}: load_since returned {len(tail)} events")
            since = repeat(lambda: store.load_since(run_id, size - 100), 50)
            last = repeat(lambda: store.last_sequence(run_id), 1000)
            if kind == "memory":
                reopen: list[float] = []
            else:
                store.close()
                t0 = time.perf_counter()
                store = open_backend(kind, Path(tmp))
                first_last = store.last_sequence(run_id)
                reopen = [time.perf_counter() - t0]
                if first_last != size:
                    raise AssertionError(f"{kind}: re-opened store has last seq {first_last}, not {size}")
        finally:
            store.close()
    out = {
        "run_events": size,
        "other_run_events": other_size,
        "load_s": summarize(load, 6),
        "load_since_last100_ms": summarize([s * 1e3 for s in since], 4),
        "last_sequence_us": summarize([s * 1e6 for s in last], 2),
    }
    if reopen:
        out["reopen_and_last_sequence_s"] = round(reopen[0], 4)
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    """Peak RSS of this process image (``VmHWM``).

    Not ``ru_maxrss``: Linux carries that across ``fork``+``exec``, so a child of a big parent would
    report the parent's peak.
    """
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(argv: list[str]) -> None:
    """Subprocess entry: ``write KIND DIR N`` fills a store; ``read KIND DIR ro|rw`` streams and reports."""
    action, kind, folder = argv[0], argv[1], Path(argv[2])
    if action == "write":
        total = int(argv[3])
        store = open_backend(kind, folder)
        try:
            for start in range(0, total, 2000):
                store.append_batch(make_events("stream", min(2000, total - start), start + 1))
        finally:
            store.close()
        return
    stream_report(lambda: open_backend(kind, folder, read_only=argv[3] == "ro"))


def stream_report(open_store: Callable[[], Any]) -> None:
    """Stream child: stream run ``stream`` from ``open_store()`` and print the figures as one JSON line.

    The figures: events, last seq, seconds, and this process's memory at start, after importing the
    stores (the baseline), at its peak, and the growth over the baseline.
    """
    rss_start = _rss_mb()
    from swarm_observability import stores  # noqa: F401  (imports counted before the baseline)

    rss_import = _rss_mb()
    t0 = time.perf_counter()
    store = open_store()
    count = 0
    last = 0
    for event in store.iter_events("stream"):
        count += 1
        last = event.seq
    elapsed = time.perf_counter() - t0
    store.close()
    peak = _peak_rss_mb()
    print(
        json.dumps(
            {
                "events": count,
                "last_seq": last,
                "seconds": round(elapsed, 3),
                "rss_at_start_mb": round(rss_start, 1),
                "rss_after_imports_mb": round(rss_import, 1),
                "peak_rss_mb": round(peak, 1),
                "growth_mb": round(peak - rss_import, 1),
            }
        )
    )


def _stream(kind: str, total: int) -> dict[str, dict[str, Any]]:
    """Write ``total`` events in one subprocess, then stream them in fresh ones: read-only (as the
    CLI opens a store) and opened for writing (as the observer's process holds it)."""
    cmd = [sys.executable, "-m", "benchmarks.stores"]
    cwd = Path(__file__).resolve().parent.parent
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="swarm-obs-stream-") as tmp:
        t0 = time.perf_counter()
        subprocess.run([*cmd, "write", kind, tmp, str(total)], cwd=cwd, check=True, timeout=900)
        write_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file())
        for mode, label in (("ro", kind), ("rw", f"{kind} (writer open)")):
            proc = subprocess.run(
                [*cmd, "read", kind, tmp, mode],
                cwd=cwd,
                check=True,
                timeout=900,
                capture_output=True,
                text=True,
            )
            out = json.loads(proc.stdout.strip().splitlines()[-1])
            if out["events"] != total or out["last_seq"] != total:
                raise AssertionError(f"{label}: streamed {out['events']} events of {total}")
            out["events_per_s"] = round(total / out["seconds"]) if out["seconds"] else None
            out["write_s_batches_of_2000"] = round(write_s, 2)
            out["bytes_on_disk"] = size
            results[label] = out
    return results


def run(smoke: bool = False) -> dict[str, Any]:
    """Append rates, reads of a 100k-event run and 1M-event streaming for every backend."""
    single_n = {"memory": 20_000, "sqlite": 1_000, "sqlite-normal": 5_000, "jsonl": 20_000}
    batch_n, read_n, other_n, stream_n, repeats = 30_000, 100_000, 20_000, 1_000_000, 3
    if smoke:
        single_n = dict.fromkeys(single_n, 200)
        batch_n, read_n, other_n, stream_n, repeats = 1_000, 1_000, 200, 2_000, 1
    from swarm_observability.events import StreamEvent  # noqa: F401  (fail early if the core is missing)

    pool = make_events("append", max(batch_n, *single_n.values()))
    sample = pool[0].to_json_bytes()
    result: dict[str, Any] = {
        "event_json_bytes": len(sample),
        "append": {},
        "reads": {},
        "stream": {},
        "unavailable": {},
    }
    for kind in BACKENDS:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                open_backend(kind, Path(tmp)).close()
        except ImportError as exc:
            result["unavailable"][kind] = f"{type(exc).__name__}: {exc}"
            continue
        result["append"][kind] = {
            "one_at_a_time": _rate(kind, pool[: single_n[kind]], 1, repeats),
            "batches_of_100": _rate(kind, pool[:batch_n], 100, repeats),
        }
    del pool
    for kind in result["append"]:
        if kind != "sqlite-normal":
            result["reads"][kind] = _reads(kind, read_n, other_n, repeats)
        if kind in PERSISTENT:
            result["stream"].update(_stream(kind, stream_n))
    return result


if __name__ == "__main__":
    _child(sys.argv[1:])
