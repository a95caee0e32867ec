"""Properties of both file formats: hostile events round-trip; every kind of damage is refused or harmless."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_observability.events import make_event
from swarm_observability.exceptions import EventStoreError, StoreCorruptionError
from swarm_observability.stores import JSONLEventStore, SQLiteEventStore

from ._budget import examples
from .strategies import event_fields, run_ids


def _batches(draw: st.DrawFn) -> list[list[Any]]:
    last: dict[str, int] = {}
    batches = []
    for _ in range(draw(st.integers(1, 4))):
        batch = []
        for _ in range(draw(st.integers(1, 3))):
            run = draw(run_ids)
            last[run] = last.get(run, 0) + 1
            event_id = (
                f"e-{sum(last.values())}"  # not make_event's random ids: strategies must not use random
            )
            batch.append(make_event("log", run, seq=last[run], id=event_id, **draw(event_fields())))
        batches.append(batch)
    return batches


batches = st.composite(_batches)()


def _open(kind: str, folder: Path, read_only: bool = False) -> Any:
    if kind == "sqlite":
        return SQLiteEventStore(folder / "events.db", durability="normal", read_only=read_only)
    return JSONLEventStore(folder, read_only=read_only)


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
@settings(max_examples=examples(20))
@given(written=batches)
def test_hostile_batches_round_trip_through_a_reopen(kind: str, written: list) -> None:
    """Whatever the values, every appended batch reads back byte for byte after a reopen."""
    with tempfile.TemporaryDirectory() as tmp:
        store = _open(kind, Path(tmp))
        for batch in written:
            store.append_batch(batch)
        store.close()
        store = _open(kind, Path(tmp), read_only=True)
        events = [event for batch in written for event in batch]
        for run in {event.run_id for event in events}:
            expected = [event.to_json_bytes() for event in events if event.run_id == run]
            assert [event.to_json_bytes() for event in store.load(run)] == expected
        store.close()


def _jsonl_file(folder: Path, written: list) -> tuple[bytes, list[int]]:
    """The file of ``written`` and the byte offset where each batch ends."""
    ends = []
    with JSONLEventStore(folder) as store:
        for batch in written:
            store.append_batch(batch)
            ends.append(store.path.stat().st_size)
        return store.path.read_bytes(), ends


def _loaded(folder: Path, read_only: bool = False) -> list[bytes]:
    with JSONLEventStore(folder, read_only=read_only) as store:
        return sorted(event.to_json_bytes() for info in store.runs() for event in store.load(info.run_id))


@settings(max_examples=examples(40))
@given(written=batches, data=st.data())
def test_jsonl_truncated_anywhere_keeps_exactly_the_whole_batches(written: list, data: st.DataObject) -> None:
    """A file cut at any byte (a crash) opens with every batch that was whole, and nothing else."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raw, ends = _jsonl_file(folder, written)
        cut = data.draw(st.integers(0, len(raw)))
        (folder / "events.jsonl").write_bytes(raw[:cut])
        kept = [batch for batch, end in zip(written, ends, strict=True) if end <= cut + 1]
        expected = sorted(event.to_json_bytes() for batch in kept for event in batch)
        assert _loaded(folder, read_only=True) == sorted(
            e.to_json_bytes() for batch, end in zip(written, ends, strict=True) if end <= cut for e in batch
        )
        assert _loaded(folder) == expected
        assert (folder / "events.jsonl").read_bytes() == raw[: ends[len(kept) - 1] if kept else 0]


@settings(max_examples=examples(60))
@given(written=batches, data=st.data())
def test_jsonl_any_changed_byte_is_refused(written: list, data: st.DataObject) -> None:
    """Changing any one byte of a clean file (bit rot, a stray edit) is refused, naming file and offset."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raw, _ends = _jsonl_file(folder, written)
        at = data.draw(st.integers(0, len(raw) - 1))
        new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[at]))
        damaged = raw[:at] + bytes([new]) + raw[at + 1 :]
        (folder / "events.jsonl").write_bytes(damaged)
        for read_only in (True, False):
            with pytest.raises(StoreCorruptionError) as info:
                JSONLEventStore(folder, read_only=read_only)
            assert str(folder / "events.jsonl") in str(info.value)
        assert (folder / "events.jsonl").read_bytes() == damaged


@settings(max_examples=examples(40))
@given(written=batches, data=st.data())
def test_jsonl_spliced_garbage_never_escapes_as_another_error(written: list, data: st.DataObject) -> None:
    """Random bytes spliced in anywhere: open and reads raise our errors or return original events only."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raw, _ends = _jsonl_file(folder, written)
        originals = {event.to_json_bytes() for batch in written for event in batch}
        start = data.draw(st.integers(0, len(raw)))
        end = data.draw(st.integers(start, min(len(raw), start + 64)))
        junk = data.draw(st.binary(max_size=64) | st.sampled_from([b"\n", b"\x00" * 40, raw[start:end] * 2]))
        (folder / "events.jsonl").write_bytes(raw[:start] + junk + raw[end:])
        for read_only in (True, False):
            try:
                loaded = _loaded(folder, read_only=read_only)
            except (StoreCorruptionError, EventStoreError):
                continue
            assert set(loaded) <= originals


@settings(max_examples=examples(15))
@given(data=st.data())
def test_sqlite_overwritten_pages_only_raise_store_errors(data: st.DataObject) -> None:
    """Random bytes over any part of a SQLite file: every read raises our errors or reads originals."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.db"
        events = {
            run: [make_event("log", run, seq=n, data={"pad": "p" * 200, "n": n}) for n in range(1, 151)]
            for run in ("a", "b")
        }
        with SQLiteEventStore(path) as store:
            for run_events in events.values():
                store.append_batch(run_events)
        raw = bytearray(path.read_bytes())
        start = data.draw(st.integers(0, len(raw) - 1))
        size = data.draw(st.integers(1, 8192))
        raw[start : start + size] = data.draw(st.binary(min_size=size, max_size=size))
        path.write_bytes(bytes(raw))
        originals = {e.to_json_bytes() for run_events in events.values() for e in run_events}
        try:
            store = SQLiteEventStore(path, read_only=True)
        except (StoreCorruptionError, EventStoreError):
            return
        try:
            calls = [store.runs, store.stats, store.query, store.check_integrity]
            calls += [lambda r=r: store.load(r) for r in events] + [
                lambda r=r: store.last_sequence(r) for r in events
            ]
            for call in calls:
                try:
                    result = call()
                except (StoreCorruptionError, EventStoreError):
                    continue
                if isinstance(result, list) and result and hasattr(result[0], "to_json_bytes"):
                    assert {e.to_json_bytes() for e in result} <= originals
        finally:
            store.close()
        with sqlite3.connect(path) as _conn:
            pass
