"""The one conformance suite every event-store backend passes (memory, SQLite, JSONL, PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from swarm_observability.events import EventType, StreamEvent
from swarm_observability.exceptions import (
    DuplicateEventError,
    InvalidRunIdError,
    SequenceConflictError,
    StoreClosedError,
)
from swarm_observability.stores import EventStore
from tests._threads import run_in_threads

from .conftest import T0, StoreHarness, as_bytes, ev, run_events


def test_every_backend_satisfies_the_protocol(store: EventStore) -> None:
    """Each backend is an ``EventStore`` as far as ``isinstance`` can tell."""
    assert isinstance(store, EventStore)


def test_empty_store_and_unknown_run(store: EventStore) -> None:
    """An unknown run reads as empty with last seq 0, and an empty store has no runs or events."""
    assert store.load("nope") == []
    assert store.load_since("nope", 0) == []
    assert list(store.iter_events("nope")) == []
    assert store.last_sequence("nope") == 0
    assert store.runs() == []
    assert store.query() == []
    stats = store.stats()
    assert (stats.runs, stats.events) == (0, 0)
    store.append_batch([])
    assert store.stats().events == 0


def test_append_then_read_every_way(store: EventStore) -> None:
    """Appended events come back byte-identical through load, load_since and iter_events."""
    events = run_events("r1", 5)
    for event in events:
        store.append(event)
    assert store.last_sequence("r1") == 5
    assert as_bytes(store.load("r1")) == as_bytes(events)
    for after in (-1, 0, 2, 4, 5, 99):
        expected = as_bytes(events[max(after, 0) :])
        assert as_bytes(store.load_since("r1", after)) == expected, after
        assert as_bytes(list(store.iter_events("r1", after))) == expected, after


def test_iter_events_crosses_read_pages(store: EventStore) -> None:
    """Streaming a run longer than one read page keeps every seq, in order, from any start."""
    events = run_events("long", 2500)
    store.append_batch(events)
    assert [e.seq for e in store.iter_events("long")] == list(range(1, 2501))
    assert [e.seq for e in store.iter_events("long", 999)] == list(range(1000, 2501))
    assert as_bytes(store.load_since("long", 2400)) == as_bytes(events[2400:])


@pytest.mark.parametrize(
    ("case", "seq", "expected"),
    [
        ("gap", 4, 3),
        ("duplicate seq", 2, 3),
        ("seq None", None, 3),
        ("restart at 1", 1, 3),
    ],
)
def test_sequence_conflicts_change_nothing(
    store: EventStore, case: str, seq: int | None, expected: int
) -> None:
    """An event whose seq is not last + 1 raises SequenceConflictError with context and stores nothing."""
    store.append_batch(run_events("r", 2))
    before = as_bytes(store.load("r"))
    with pytest.raises(SequenceConflictError) as info:
        store.append(ev("r", seq))
    assert (info.value.run_id, info.value.expected, info.value.actual) == ("r", expected, seq), case
    assert as_bytes(store.load("r")) == before
    assert store.last_sequence("r") == 2
    store.append(ev("r", 3))
    assert store.last_sequence("r") == 3


def test_first_event_of_a_run_must_be_seq_1(store: EventStore) -> None:
    """A new run starts at seq 1: seq 2 on an empty run is a conflict."""
    with pytest.raises(SequenceConflictError) as info:
        store.append(ev("fresh", 2))
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert store.runs() == []


def test_duplicate_event_id_is_refused(store: EventStore) -> None:
    """An id already stored (even in another run) raises DuplicateEventError and stores nothing."""
    first = ev("a", 1)
    store.append(first)
    with pytest.raises(DuplicateEventError) as info:
        store.append(ev("b", 1, id=first.id))
    assert info.value.event_id == first.id
    assert store.last_sequence("b") == 0
    assert [r.run_id for r in store.runs()] == ["a"]


def test_duplicate_id_inside_one_batch_is_refused(store: EventStore) -> None:
    """Two events of one batch with the same id fail the whole batch."""
    one = ev("a", 1)
    with pytest.raises(DuplicateEventError):
        store.append_batch([one, ev("a", 2, id=one.id)])
    assert store.last_sequence("a") == 0


@pytest.mark.parametrize("poison", ["seq conflict", "stored id", "other run's seq", "not an event"])
def test_failed_batch_stores_nothing(store: EventStore, poison: str) -> None:
    """A batch whose 3rd event is bad leaves every run of the batch exactly as it was."""
    stored = ev("x", 1)
    store.append(stored)
    bad = {
        "seq conflict": ev("a", 7),
        "stored id": ev("a", 3, id=stored.id),
        "other run's seq": ev("x", 1),
        "not an event": {"type": "log", "run_id": "a", "seq": 3},
    }[poison]
    batch = [ev("a", 1), ev("a", 2), bad, ev("a", 4)]
    with pytest.raises((SequenceConflictError, DuplicateEventError, TypeError)):
        store.append_batch(batch)  # type: ignore[list-item]
    assert store.last_sequence("a") == 0
    assert store.last_sequence("x") == 1
    assert store.stats().events == 1
    store.append_batch([ev("a", 1), ev("x", 2)])
    assert (store.last_sequence("a"), store.last_sequence("x")) == (1, 2)


def test_batch_may_span_runs(store: EventStore) -> None:
    """One batch can interleave several runs; each run gets its events in seq order."""
    batch = [ev("a", 1), ev("b", 1), ev("a", 2), ev("c", 1), ev("b", 2), ev("a", 3)]
    store.append_batch(batch)
    for run, count in (("a", 3), ("b", 2), ("c", 1)):
        assert as_bytes(store.load(run)) == as_bytes([e for e in batch if e.run_id == run])
        assert store.last_sequence(run) == count
    assert store.stats().events == 6


def test_load_is_in_seq_order_across_batches_and_runs(store: EventStore) -> None:
    """Events of a run appended over many batches, mixed with another run, load in seq order."""
    expected = []
    for start in (1, 3, 4, 8):
        count = {1: 2, 3: 1, 4: 4, 8: 3}[start]
        chunk = run_events("r", count, start)
        expected += chunk
        store.append_batch([*chunk, ev("other", start)] if start == 1 else chunk)
        if start > 1:
            store.append(ev("other", store.last_sequence("other") + 1))
    assert [e.seq for e in store.load("r")] == list(range(1, 11))
    assert as_bytes(store.load("r")) == as_bytes(expected)


def _query_fixture(store: EventStore) -> dict[tuple[str, int], StreamEvent]:
    events = [
        ev("a", 1, EventType.SCAN_STARTED, at=0),
        ev("a", 2, EventType.NODE_ENTER, at=10),
        ev("b", 1, EventType.SCAN_STARTED, at=5),
        ev("a", 3, EventType.NODE_EXIT, at=20),
        ev("b", 2, EventType.NODE_ENTER, at=20),
        ev("b", 3, "custom_future_type", at=30),
        ev("a", 4, EventType.SCAN_COMPLETE, at=30),
    ]
    store.append_batch(events)
    return {(e.run_id, e.seq or 0): e for e in events}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, [("a", 4), ("b", 3), ("a", 3), ("b", 2), ("a", 2), ("b", 1), ("a", 1)]),
        ({"run_id": "a"}, [("a", 4), ("a", 3), ("a", 2), ("a", 1)]),
        ({"run_id": "missing"}, []),
        ({"types": [EventType.SCAN_STARTED]}, [("b", 1), ("a", 1)]),
        ({"types": "node_enter"}, [("b", 2), ("a", 2)]),
        ({"types": ["custom_future_type", EventType.NODE_EXIT]}, [("b", 3), ("a", 3)]),
        ({"types": []}, []),
        ({"since": T0 + timedelta(seconds=20)}, [("a", 4), ("b", 3), ("a", 3), ("b", 2)]),
        (
            {"since": T0 + timedelta(seconds=19, microseconds=999_500)},
            [("a", 4), ("b", 3), ("a", 3), ("b", 2)],
        ),
        ({"since": T0 + timedelta(seconds=20, microseconds=500)}, [("a", 4), ("b", 3)]),
        ({"limit": 3}, [("a", 4), ("b", 3), ("a", 3)]),
        ({"limit": 0}, []),
        ({"run_id": "b", "types": ["node_enter", "scan_started"], "limit": 1}, [("b", 2)]),
    ],
)
def test_query_filters_and_orders_newest_first(store: EventStore, kwargs: dict, expected: list) -> None:
    """query filters by run, types and since, orders newest first (timestamp, seq, run id) and limits."""
    by_key = _query_fixture(store)
    found = store.query(**kwargs)
    assert [(e.run_id, e.seq) for e in found] == expected
    assert as_bytes(found) == as_bytes([by_key[key] for key in expected])


def test_query_refuses_naive_since(store: EventStore) -> None:
    """A naive ``since`` is a clear ValueError rather than a silent local-time comparison."""
    with pytest.raises(ValueError, match="timezone-aware"):
        store.query(since=datetime(2026, 1, 1))


def test_runs_and_stats_summarize_the_store(harness: StoreHarness) -> None:
    """runs() lists each run oldest first with count, first/last timestamps and last type; stats() counts."""
    store = harness.store
    _query_fixture(store)
    store.append(ev("c", 1, EventType.LOG, at=-5))
    infos = store.runs()
    assert [(i.run_id, i.event_count, i.last_type) for i in infos] == [
        ("c", 1, "log"),
        ("a", 4, "scan_complete"),
        ("b", 3, "custom_future_type"),
    ]
    assert [(i.first_timestamp, i.last_timestamp) for i in infos] == [
        (T0 - timedelta(seconds=5), T0 - timedelta(seconds=5)),
        (T0, T0 + timedelta(seconds=30)),
        (T0 + timedelta(seconds=5), T0 + timedelta(seconds=30)),
    ]
    stats = store.stats()
    assert (stats.backend, stats.runs, stats.events) == (harness.kind, 3, 8)
    if harness.kind != "memory":
        assert stats.location is not None and stats.location.startswith(harness.location)
        assert stats.size_bytes is not None and stats.size_bytes > 0


def test_unicode_and_large_payloads_round_trip(harness: StoreHarness) -> None:
    """Non-ASCII text (run id, message, keys) and a ~1 MB payload survive a reopen byte for byte."""
    run = "scan-ü-🚀-扫描"
    events = [
        ev(
            run,
            1,
            message='quotes " and \\ backslash, newline\n, tab\t, NUL-free ✓',
            data={"ключ": "значение 🌍"},
        ),
        ev(run, 2, data={"blob": "x" * 1_000_000, "nested": {"list": list(range(100))}}),
        ev(run, 3, node="узел", message="\u2028\u2029 separators"),
    ]
    harness.store.append_batch(events)
    store = harness.reopen()
    assert as_bytes(store.load(run)) == as_bytes(events)
    assert [r.run_id for r in store.runs()] == [run]


def test_unknown_types_and_extra_fields_round_trip(harness: StoreHarness) -> None:
    """An event from a newer writer (unknown type, extra fields) is stored and re-read byte-identically."""
    future = StreamEvent.from_json(
        b'{"type":"quantum_probe","run_id":"f","id":"evt-1","seq":1,"timestamp":"2026-01-02T03:04:05.678Z",'
        b'"version":7,"data":{"k":[1,2.5,null]},"novel_field":{"deep":["x",1]},"another":"y"}'
    )
    assert future.extra_fields
    harness.store.append(future)
    store = harness.reopen()
    (back,) = store.load("f")
    assert back.to_json_bytes() == future.to_json_bytes()
    assert (back.type_name, back.extra_fields) == ("quantum_probe", future.extra_fields)
    assert [e.id for e in store.query(types=["quantum_probe"])] == ["evt-1"]


@pytest.mark.parametrize(
    "fields",
    [
        {"message": "name-\udcff\udcfe"},
        {"data": {"path": "\ud800", "k-\udc80": [1, {"deep": "\udfff"}]}},
        {"data": {"n": 10**4400, "m": [-(10**641)], "fits": 10**640 - 1}},
        {"node": "n-\udcff", "namespace": ("a:1", "b-\udcff:2"), "score": float("nan")},
    ],
    ids=["surrogate message", "surrogate data", "huge ints", "fields and extras"],
)
def test_hostile_values_are_stored_in_their_marked_form(harness: StoreHarness, fields: dict) -> None:
    """An event built from hostile values is accepted, marked, and reads back equal after a reopen."""
    events = [ev("h", 1, message="before"), ev("h", 2, **fields), ev("h", 3, message="after")]
    assert events[1].sanitized or "score" in fields
    harness.store.append_batch(events)
    store = harness.reopen()
    assert as_bytes(store.load("h")) == as_bytes(events)
    assert store.load("h")[1] == events[1]
    assert [info.event_count for info in store.runs()] == [3]


def test_nan_in_unknown_fields_round_trips(harness: StoreHarness) -> None:
    """NaN and infinities in fields of a newer writer are written back as they were, not as null."""
    future = StreamEvent.from_json(
        b'{"type":"future","run_id":"nan","id":"evt-n","seq":1,"timestamp":"2026-01-02T03:04:05.678Z",'
        b'"version":3,"score":NaN,"range":[Infinity,-Infinity]}'
    )
    harness.store.append(future)
    store = harness.reopen()
    assert store.load("nan")[0].to_json_bytes() == future.to_json_bytes()
    assert b'"score":NaN,"range":[Infinity,-Infinity]' in future.to_json_bytes()


def test_reopen_after_close_keeps_everything(harness: StoreHarness) -> None:
    """Closing and reopening keeps every event, run and seq, and appends continue from the last seq."""
    a, b = run_events("a", 3), run_events("b", 2)
    harness.store.append_batch(a)
    harness.store.append_batch(b)
    store = harness.reopen()
    assert as_bytes(store.load("a")) == as_bytes(a)
    assert as_bytes(store.load("b")) == as_bytes(b)
    assert (store.last_sequence("a"), store.stats().events) == (3, 5)
    store.append(ev("a", 4))
    with pytest.raises(DuplicateEventError):
        store.append(ev("b", 3, id=a[0].id))
    store = harness.reopen()
    assert [e.seq for e in store.load("a")] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.append(ev("r", 2)),
        lambda s: s.append_batch([ev("r", 2)]),
        lambda s: s.load("r"),
        lambda s: s.load_since("r", 0),
        lambda s: list(s.iter_events("r")),
        lambda s: s.last_sequence("r"),
        lambda s: s.query(),
        lambda s: s.query(types=[]),
        lambda s: s.runs(),
        lambda s: s.stats(),
    ],
    ids=[
        "append",
        "append_batch",
        "load",
        "load_since",
        "iter_events",
        "last_sequence",
        "query",
        "query_no_types",
        "runs",
        "stats",
    ],
)
def test_use_after_close_raises(store: EventStore, call) -> None:
    """Every operation on a closed store raises StoreClosedError; close itself is idempotent."""
    store.append(ev("r", 1))
    with store:
        pass
    store.close()
    with pytest.raises(StoreClosedError):
        call(store)


def test_invalid_run_id_is_refused_on_append(store: EventStore) -> None:
    """A run id that bypassed validation (model_construct) is still refused by the store."""
    sneaky = StreamEvent.model_construct(type="log", run_id="../../etc\x00passwd", seq=1, id="sneaky")
    with pytest.raises(InvalidRunIdError):
        store.append(sneaky)
    assert store.stats().events == 0


@pytest.mark.parametrize("bad", ["", 5, None, "x" * 257, "a\x00b"])
def test_reads_refuse_a_run_id_no_store_could_hold(store: EventStore, bad: object) -> None:
    """Every read given a bad run id raises InvalidRunIdError (iter_events at the call), not ``[]``/0;
    ``query(run_id=None)`` keeps meaning every run."""
    store.append_batch(run_events("r", 2))
    reads = [
        lambda: store.load(bad),  # type: ignore[arg-type]
        lambda: store.load_since(bad, 0),  # type: ignore[arg-type]
        lambda: store.iter_events(bad),  # type: ignore[arg-type]
        lambda: store.last_sequence(bad),  # type: ignore[arg-type]
    ]
    if bad is not None:
        reads.append(lambda: store.query(run_id=bad))  # type: ignore[arg-type]
    for read in reads:
        with pytest.raises(InvalidRunIdError):
            read()
    assert [e.seq for e in store.load("r")] == [1, 2]


@pytest.mark.timeout(60)
def test_concurrent_appends_to_different_runs(store: EventStore) -> None:
    """8 threads appending batches to their own runs all succeed, every run gapless."""

    def worker(n: int) -> None:
        for start in range(1, 61, 3):
            store.append_batch(run_events(f"run-{n}", 3, start))

    run_in_threads(worker, 8)
    for n in range(8):
        assert [e.seq for e in store.load(f"run-{n}")] == list(range(1, 61))
    assert store.stats().events == 480


@pytest.mark.timeout(60)
def test_concurrent_appends_to_one_run_are_serialized(store: EventStore) -> None:
    """8 threads racing on one run, retrying on conflict, leave one gapless run with every event once."""
    mine: dict[int, list[str]] = {n: [] for n in range(8)}

    def worker(n: int) -> None:
        for _ in range(25):
            while True:
                event = ev("shared", store.last_sequence("shared") + 1, agent=f"t{n}")
                try:
                    store.append(event)
                except SequenceConflictError:
                    continue
                mine[n].append(event.id)
                break

    run_in_threads(worker, 8)
    loaded = store.load("shared")
    assert [e.seq for e in loaded] == list(range(1, 201))
    assert sorted(e.id for e in loaded) == sorted(i for ids in mine.values() for i in ids)
    for n, ids in mine.items():
        assert [e.id for e in loaded if e.agent == f"t{n}"] == ids
