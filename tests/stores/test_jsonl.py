"""JSONL backend: file format, recovery of a crashed writer's tail, refusal of mid-file damage, one writer."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from swarm_observability.exceptions import DuplicateEventError, EventStoreError, StoreCorruptionError
from swarm_observability.stores import JSONLEventStore, jsonl, jsonl_index, jsonl_recovery
from swarm_observability.stores.jsonl_index import IdHashes

from .conftest import as_bytes, ev, run_events


def _write_store(folder: Path, *batches: list) -> Path:
    return _write_batches(folder, *batches)[0]


def _write_batches(folder: Path, *batches: list) -> tuple[Path, list[int]]:
    """Append each batch; return the file and its size after each batch (the batch boundaries)."""
    sizes = []
    with JSONLEventStore(folder) as store:
        for batch in batches:
            store.append_batch(batch)
            sizes.append(store.path.stat().st_size)
        return store.path, sizes


def test_lines_are_self_describing_json(tmp_path: Path) -> None:
    """Each line is a JSON object holding the event's exact JSON plus seq, run, id, batch and a valid CRC."""
    batch = [ev("a", 1), ev("b", 1), ev("a", 2)]
    path = _write_store(tmp_path, batch)
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 3
    for index, (line, event) in enumerate(zip(lines, batch, strict=True)):
        record = json.loads(line)
        assert list(record) == ["seq", "run_id", "id", "batch", "event", "crc"]
        assert (record["seq"], record["run_id"], record["id"]) == (event.seq, event.run_id, event.id)
        assert record["batch"] == [index, 3]
        assert event.to_json_bytes() in line
        body = line[: line.rindex(b',"crc":')]
        assert record["crc"] == f"{zlib.crc32(body):08x}"


def test_file_path_forms(tmp_path: Path) -> None:
    """A folder gets events.jsonl inside (created); a path ending in .jsonl is used as the file."""
    with JSONLEventStore(tmp_path / "deep" / "folder") as store:
        assert store.path == tmp_path / "deep" / "folder" / "events.jsonl"
    with JSONLEventStore(tmp_path / "custom.jsonl") as store:
        assert store.path == tmp_path / "custom.jsonl"
        assert store.path.exists()


def test_torn_final_line_is_cut_on_reopen(tmp_path: Path) -> None:
    """A write torn inside its line (as SIGKILL leaves it) is cut back; earlier batches stay intact."""
    first, second = run_events("r", 2), run_events("r", 3, 3)
    path, sizes = _write_batches(tmp_path, first, second, [ev("r", 6, data={"big": "y" * 500})])
    intact = path.read_bytes()[: sizes[1]]
    path.write_bytes(path.read_bytes()[:-37])
    with JSONLEventStore(tmp_path) as store:
        assert path.read_bytes() == intact
        assert as_bytes(store.load("r")) == as_bytes(first + second)
        store.append(ev("r", 6))
    with JSONLEventStore(tmp_path) as store:
        assert [e.seq for e in store.load("r")] == list(range(1, 7))


def test_partial_final_batch_is_removed_whole(tmp_path: Path) -> None:
    """Complete lines of an unfinished batch at the end are removed together, never half a batch kept."""
    kept = run_events("r", 3)
    path, sizes = _write_batches(tmp_path, kept, [ev("r", 4), ev("other", 1), ev("r", 5), ev("r", 6)])
    intact = path.read_bytes()[: sizes[0]]
    lines = path.read_bytes()[sizes[0] :].splitlines(keepends=True)
    path.write_bytes(intact + b"".join(lines[:3]))
    with JSONLEventStore(tmp_path) as store:
        assert path.read_bytes() == intact
        assert store.last_sequence("other") == 0
        assert as_bytes(store.load("r")) == as_bytes(kept)


def test_damaged_final_record_is_refused(tmp_path: Path) -> None:
    """A complete last line failing its CRC was damaged after it was written (no crash does that): refused."""
    kept = run_events("r", 2)
    path = _write_store(tmp_path, kept, [ev("r", 3)])
    data = bytearray(path.read_bytes())
    data[-40] ^= 0x01
    path.write_bytes(bytes(data))
    last_line = bytes(data).rindex(b"\n", 0, len(data) - 1) + 1
    with pytest.raises(StoreCorruptionError, match=f"byte {last_line}: the last record is complete") as info:
        JSONLEventStore(tmp_path)
    assert info.value.location == f"{path}:{last_line}"
    assert path.read_bytes() == bytes(data)


def test_nul_blocks_after_a_power_loss_are_cut(tmp_path: Path) -> None:
    """A tail of NUL bytes (blocks never written before a power loss), even with newlines, is a torn write."""
    kept = run_events("r", 2)
    path, sizes = _write_batches(tmp_path, kept, [ev("r", 3, data={"x": "y" * 300})])
    data = bytearray(path.read_bytes())
    data[sizes[0] + 20 : sizes[0] + 200] = b"\0" * 180
    path.write_bytes(bytes(data) + b"\0" * 50 + b"\n")
    with JSONLEventStore(tmp_path) as store:
        assert as_bytes(store.load("r")) == as_bytes(kept)
    assert path.stat().st_size == sizes[0]


def test_lost_newline_before_the_last_record_is_refused(tmp_path: Path) -> None:
    """Item 3: removing the newline before the last record glues two intact records: refused, nothing cut."""
    path = _write_store(tmp_path, run_events("r", 2), [ev("r", 3)])
    lines = path.read_bytes().splitlines(keepends=True)
    damaged = lines[0] + lines[1][:-1] + lines[2]
    path.write_bytes(damaged)
    with pytest.raises(StoreCorruptionError, match="glued to damaged bytes") as info:
        JSONLEventStore(tmp_path)
    assert info.value.location == f"{path}:{len(lines[0])}"
    assert path.read_bytes() == damaged


def test_last_record_missing_only_its_newline_is_kept(tmp_path: Path) -> None:
    """A whole last record without its newline (killed before the last byte, or the byte lost) is kept."""
    events = [*run_events("r", 2), ev("r", 3)]
    path = _write_store(tmp_path, events[:2], events[2:])
    whole = path.read_bytes()
    path.write_bytes(whole[:-1])
    with JSONLEventStore(tmp_path) as store:
        assert as_bytes(store.load("r")) == as_bytes(events)
        store.append(ev("r", 4))
    assert path.read_bytes().startswith(whole)
    with JSONLEventStore(tmp_path, read_only=True) as reader:
        assert reader.last_sequence("r") == 4


def test_last_record_with_its_newline_replaced_is_refused(tmp_path: Path) -> None:
    """A whole record whose newline became another byte is damage, not a torn write."""
    path = _write_store(tmp_path, run_events("r", 2), [ev("r", 3)])
    data = path.read_bytes()[:-1] + b"x"
    path.write_bytes(data)
    with pytest.raises(StoreCorruptionError):
        JSONLEventStore(tmp_path)
    assert path.read_bytes() == data


def _crc_line(prefix: bytes) -> bytes:
    return prefix + b',"crc":"%08x"}\n' % zlib.crc32(prefix)


_EVENT = b'{"type":"log","run_id":"r","id":"x","seq":3,"timestamp":"2026-01-01T00:00:00.000Z","version":1}'


@pytest.mark.parametrize(
    "header",
    [
        b'{"seq":3,"run_id":"\xff\xfe","id":"x","batch":[0,1],"event":',
        b'{"seq":3,"run_id":"r","id":"\\x","batch":[0,1],"event":',
        b'{"seq":3,"run_id":"\\ud800","id":"x","batch":[0,1],"event":',
        b'{"seq":' + b"9" * 5000 + b',"run_id":"r","id":"x","batch":[0,1],"event":',
        b'{"seq":3,"run_id":"r","id":"x","batch":[0,' + b"1" * 5000 + b'],"event":',
        b'{"seq":3,"run_id":"","id":"x","batch":[0,1],"event":',
        b'{"not":"ours","event":',
    ],
    ids=["bad utf-8", "bad escape", "lone surrogate", "huge seq", "huge count", "empty run", "foreign"],
)
@pytest.mark.parametrize("where", ["last", "middle"])
def test_crc_valid_record_with_a_malformed_header_is_refused(
    tmp_path: Path, header: bytes, where: str
) -> None:
    """Item 4: a record whose CRC holds but whose header does not decode raises StoreCorruptionError."""
    path = _write_store(tmp_path, run_events("r", 2))
    good = path.read_bytes()
    bad = _crc_line(header + _EVENT)
    damaged = good + bad if where == "last" else good + bad + good.splitlines(keepends=True)[0]
    path.write_bytes(damaged)
    with pytest.raises(StoreCorruptionError) as info:
        JSONLEventStore(tmp_path)
    assert info.value.location == f"{path}:{len(good)}"
    assert "\n" not in str(info.value)
    with pytest.raises(StoreCorruptionError):
        JSONLEventStore(tmp_path, read_only=True)
    assert path.read_bytes() == damaged


def test_flipped_byte_mid_file_is_refused(tmp_path: Path) -> None:
    """One flipped byte before valid records makes open fail, naming file and offset, and changes nothing."""
    path = _write_store(tmp_path, run_events("r", 3), run_events("r", 3, 4))
    data = bytearray(path.read_bytes())
    second_line = data.index(b"\n") + 1
    data[second_line + 60] ^= 0x20
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorruptionError) as info:
        JSONLEventStore(tmp_path)
    assert str(path) in str(info.value)
    assert f"byte {second_line}" in str(info.value)
    assert info.value.location == f"{path}:{second_line}"
    assert path.read_bytes() == bytes(data)


@pytest.mark.parametrize("damage", ["replayed batch", "lost newline"])
def test_structural_damage_is_refused(tmp_path: Path, damage: str) -> None:
    """A batch written twice (CRC-valid, seq repeats) or two lines glued together is refused, not cut."""
    path = _write_store(tmp_path, run_events("r", 2), run_events("r", 2, 3))
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    if damage == "replayed batch":
        damaged = data + b"".join(lines[2:])
    else:
        damaged = lines[0] + lines[1][:-1] + b"".join(lines[2:])
    path.write_bytes(damaged)
    with pytest.raises(StoreCorruptionError, match=str(path)):
        JSONLEventStore(tmp_path)
    assert path.read_bytes() == damaged


def test_second_writer_in_process_is_refused(tmp_path: Path) -> None:
    """A second store object on the same file cannot write while the first is open, and can after close."""
    first = JSONLEventStore(tmp_path)
    with pytest.raises(EventStoreError, match="already open for writing"):
        JSONLEventStore(tmp_path)
    first.close()
    JSONLEventStore(tmp_path).close()


@pytest.mark.timeout(60)
def test_second_writer_process_is_refused(tmp_path: Path) -> None:
    """Another process opening the file for writing gets a clear error while this process holds it."""
    code = (
        "import sys\n"
        "from swarm_observability.stores import JSONLEventStore\n"
        "from swarm_observability.exceptions import EventStoreError\n"
        "try:\n"
        "    JSONLEventStore(sys.argv[1])\n"
        "except EventStoreError as exc:\n"
        "    print('refused:', exc)\n"
        "    sys.exit(3)\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    with JSONLEventStore(tmp_path) as store:
        store.append(ev("r", 1))
        result = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=50,
            env={"PYTHONPATH": root, "PATH": "/usr/bin:/bin"},
        )
    assert result.returncode == 3, result.stderr
    assert "already open for writing" in result.stdout


def test_read_only_follows_a_live_writer_without_repairing(tmp_path: Path) -> None:
    """A read-only store sees batches appended after it opened, leaves a torn tail alone, refuses appends."""
    writer = JSONLEventStore(tmp_path)
    writer.append_batch(run_events("r", 2))
    reader = JSONLEventStore(tmp_path, read_only=True)
    assert reader.last_sequence("r") == 2
    writer.append_batch(run_events("r", 2, 3))
    assert [e.seq for e in reader.load("r")] == [1, 2, 3, 4]
    writer.close()
    torn = writer.path.read_bytes().splitlines(keepends=True)[-1][:50]
    with writer.path.open("ab") as handle:
        handle.write(torn)
    assert reader.last_sequence("r") == 4
    assert writer.path.read_bytes().endswith(torn)
    with pytest.raises(EventStoreError, match="read-only"):
        reader.append(ev("r", 5))
    reader.close()


def test_read_only_needs_an_existing_file(tmp_path: Path) -> None:
    """Opening a missing file read-only is a clear error, and creates nothing."""
    with pytest.raises(EventStoreError, match="no event store"):
        JSONLEventStore(tmp_path / "missing", read_only=True)
    assert not (tmp_path / "missing").exists()


def test_fsync_batch_mode_appends(tmp_path: Path) -> None:
    """fsync="batch" stores and reloads like the default; an unknown fsync value is a ValueError."""
    with JSONLEventStore(tmp_path, fsync="batch") as store:
        store.append_batch(run_events("r", 3))
    with JSONLEventStore(tmp_path) as store:
        assert store.last_sequence("r") == 3
    with pytest.raises(ValueError, match="fsync"):
        JSONLEventStore(tmp_path, fsync="always")  # type: ignore[arg-type]


def test_file_cut_behind_the_index_is_reported(tmp_path: Path) -> None:
    """A file cut under an open reader makes reads raise StoreCorruptionError, not return fewer events."""
    path = _write_store(tmp_path, run_events("r", 4))
    reader = JSONLEventStore(tmp_path, read_only=True)
    path.write_bytes(path.read_bytes().splitlines(keepends=True)[0])
    with pytest.raises(StoreCorruptionError):
        reader.load("r")
    reader.close()


def test_unusable_location_is_a_store_error(tmp_path: Path) -> None:
    """A folder path that is really a file gives EventStoreError naming it, not a bare OSError."""
    (tmp_path / "plain-file").write_text("x")
    with pytest.raises(EventStoreError, match="plain-file"):
        JSONLEventStore(tmp_path / "plain-file" / "sub")


@pytest.mark.parametrize("damage", ["flipped byte", "bad event, valid crc"])
def test_line_damaged_after_open_is_reported_on_read(tmp_path: Path, damage: str) -> None:
    """A line changed under an open store makes load raise StoreCorruptionError at that line's offset."""
    with JSONLEventStore(tmp_path) as store:
        store.append_batch(run_events("r", 5))
        data = store.path.read_bytes()
        start = sum(len(line) for line in data.splitlines(keepends=True)[:3])
        line = data.splitlines(keepends=True)[3]
        if damage == "flipped byte":
            bad = line[:40] + bytes([line[40] ^ 0x01]) + line[41:]
        else:
            body = line[: line.rindex(b',"crc":')].replace(b'"timestamp":"2026', b'"timestamp":"9x26')
            bad = b'%b,"crc":"%08x"}\n' % (body, zlib.crc32(body))
        assert len(bad) == len(line) and bad != line
        with store.path.open("r+b") as f:
            f.seek(start)
            f.write(bad)
        reason = "CRC" if damage == "flipped byte" else "does not parse"
        with pytest.raises(StoreCorruptionError, match=reason) as info:
            store.load("r")
        assert info.value.location == f"{store.path}:{start}"
        assert [e.seq for e in store.load_since("r", 4)] == [5]


def test_lines_swapped_after_open_are_reported_on_read(tmp_path: Path) -> None:
    """Two valid lines swapped under an open store make load raise naming the expected and found seq."""
    with JSONLEventStore(tmp_path) as store:
        store.append_batch(run_events("r", 4))
        lines = store.path.read_bytes().splitlines(keepends=True)
        assert len(lines[1]) == len(lines[2])
        store.path.write_bytes(lines[0] + lines[2] + lines[1] + lines[3])
        with pytest.raises(StoreCorruptionError, match="expected run 'r' seq 2, found run 'r' seq 3") as info:
            store.load("r")
        assert info.value.location == f"{store.path}:{len(lines[0])}"
        assert [e.seq for e in store.load_since("r", 3)] == [4]


def test_id_hashes_match_a_set_across_merges() -> None:
    """The compact id-hash index answers membership exactly like a set, before and after merges."""
    rng = random.Random(7)
    hashes, reference = IdHashes(merge_at=50), set()
    for _ in range(20):
        batch = [rng.randrange(-(2**63), 2**63) for _ in range(rng.randrange(1, 40))]
        batch += rng.sample(sorted(reference), min(3, len(reference)))
        hashes.update(batch)
        reference.update(batch)
    ordered = list(hashes.sorted)
    assert len(ordered) > 300 and ordered == sorted(set(ordered))
    probes = list(reference) + [rng.randrange(-(2**63), 2**63) for _ in range(500)]
    assert all((value in hashes) == (value in reference) for value in probes)


def test_duplicate_ids_found_in_merged_hashes_and_across_reopen(tmp_path: Path, monkeypatch) -> None:
    """With tiny merges, a stored id is still a duplicate, in the same session and after reopening."""
    monkeypatch.setattr(jsonl_index, "_MERGE_AT", 8)
    events = run_events("a", 30)
    with JSONLEventStore(tmp_path) as store:
        for start in range(0, 30, 5):
            store.append_batch(events[start : start + 5])
        assert len(store._index.id_hashes.sorted) >= 24
        with pytest.raises(DuplicateEventError):
            store.append(ev("b", 1, id=events[3].id))
    with JSONLEventStore(tmp_path) as store:
        for event in (events[0], events[17], events[29]):
            with pytest.raises(DuplicateEventError):
                store.append(ev("b", 1, id=event.id))
        store.append(ev("b", 1))
        assert store.last_sequence("b") == 1


def test_hash_collisions_are_not_false_duplicates(tmp_path: Path, monkeypatch) -> None:
    """When every id hashes alike, distinct ids are stored (confirmed from the file) and real repeats fail."""
    for module in (jsonl, jsonl_recovery):  # the append's and the open scan's hashes
        monkeypatch.setattr(module, "hash", lambda value: 42, raising=False)
    events = run_events("a", 6)
    with JSONLEventStore(tmp_path) as store:
        store.append_batch(events[:3])
        store.append_batch(events[3:])
    with JSONLEventStore(tmp_path) as store:
        assert as_bytes(store.load("a")) == as_bytes(events)
        with pytest.raises(DuplicateEventError):
            store.append(ev("a", 7, id=events[4].id))
        store.append(ev("a", 7))
        assert store.last_sequence("a") == 7


def test_read_json_hands_out_the_stored_event_json(tmp_path: Path) -> None:
    """read_json/iter_json give each event's exact stored JSON (per run from a seq, or all in file order)."""
    a, b = run_events("a", 5), run_events("b", 3)
    with JSONLEventStore(tmp_path) as store:
        store.append_batch(a[:2] + b[:1])
        store.append_batch(a[2:] + b[1:])
        assert store.read_json("a") == as_bytes(a)
        assert store.read_json("a", 2, limit=2) == as_bytes(a[2:4])
        assert store.read_json("b", 3) == [] and store.read_json("nope") == []
        chunks = list(store.iter_json(chunk=3))
        assert [len(chunk) for chunk in chunks] == [3, 3, 2]
        assert [line for chunk in chunks for line in chunk] == as_bytes(a[:2] + b[:1] + a[2:] + b[1:])


def test_read_json_refuses_a_line_damaged_after_open(tmp_path: Path) -> None:
    """A flipped byte under an open store makes read_json and iter_json raise at that line's offset."""
    with JSONLEventStore(tmp_path) as store:
        store.append_batch(run_events("r", 4))
        lines = store.path.read_bytes().splitlines(keepends=True)
        with store.path.open("r+b") as f:
            f.seek(len(lines[0]) + 40)
            f.write(bytes([lines[1][40] ^ 0x01]))
        for read in (lambda: store.read_json("r"), lambda: list(store.iter_json())):
            with pytest.raises(StoreCorruptionError, match="CRC") as info:
                read()
            assert info.value.location == f"{store.path}:{len(lines[0])}"


def test_a_batch_interleaving_runs_is_indexed_per_run_and_refuses_a_stored_id(tmp_path: Path) -> None:
    """Events of runs alternating within one batch read back per run (before and after a reopen); a
    later batch repeating one of their ids is refused whole."""
    path = tmp_path / "events.jsonl"
    a, b = run_events("a", 3), run_events("b", 2)
    batch = [a[0], b[0], a[1], b[1], a[2]]
    with JSONLEventStore(path) as store:
        store.append_batch(batch)
        assert (as_bytes(store.load("a")), as_bytes(store.load("b"))) == (as_bytes(a), as_bytes(b))
        with pytest.raises(DuplicateEventError):
            store.append_batch([ev("c", 1), ev("c", 2, id=b[1].id)])
        assert store.last_sequence("c") == 0
    with JSONLEventStore(path) as store:
        assert (as_bytes(store.load("a")), as_bytes(store.load("b"))) == (as_bytes(a), as_bytes(b))
