"""The JSONL index sidecar: a read-only open scans only what follows it, and trusts it for nothing else.

Whether the sidecar was used is observed through the one thing it changes, where the open scan
starts (``jsonl.scan`` wrapped); everything a reader returns must be what a full scan gives.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from swarm_observability.exceptions import StoreCorruptionError
from swarm_observability.stores import JSONLEventStore, jsonl
from swarm_observability.stores.jsonl_sidecar import sidecar_path

from .conftest import as_bytes, ev, run_events


@pytest.fixture
def scan_starts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The byte offset each open or refresh scan of a JSONL store starts from, in order."""
    starts: list[int] = []
    real = jsonl.scan

    def spy(fd: int, path: Path, index: Any, *, read_only: bool) -> None:
        starts.append(index.end)
        real(fd, path, index, read_only=read_only)

    monkeypatch.setattr(jsonl, "scan", spy)
    return starts


def _written(folder: Path) -> tuple[Path, list[Any]]:
    events = run_events("a", 7) + run_events("b", 4)
    with JSONLEventStore(folder) as store:
        store.append_batch(events[:3])
        store.append_batch(events[3:9])
        store.append_batch(events[9:])
    return folder / "events.jsonl", events


def _everything(store: JSONLEventStore) -> tuple[object, ...]:
    runs = store.runs()
    loads = [as_bytes(store.load(info.run_id)) for info in runs]
    json = [store.read_json(info.run_id) for info in runs]
    lasts = [store.last_sequence(info.run_id) for info in runs]
    return runs, loads, json, lasts, store.stats(), as_bytes(store.query())


def test_a_read_only_open_after_a_writer_closed_scans_nothing(tmp_path: Path, scan_starts: list[int]) -> None:
    """After a writer closes, a read-only open starts its scan at the end and reads what a full scan does."""
    path, events = _written(tmp_path)
    assert sidecar_path(path).is_file()
    scan_starts.clear()
    with JSONLEventStore(tmp_path, read_only=True) as reader:
        from_sidecar = _everything(reader)
    assert scan_starts == [path.stat().st_size]
    sidecar_path(path).unlink()
    with JSONLEventStore(tmp_path, read_only=True) as reader:
        assert _everything(reader) == from_sidecar
    assert scan_starts[-1] == 0
    assert from_sidecar[1] == [as_bytes(events[:7]), as_bytes(events[7:])]


def test_appends_after_the_sidecar_are_scanned(tmp_path: Path, scan_starts: list[int]) -> None:
    """A writer appending without closing yet: the reader takes the sidecar's prefix and scans the rest."""
    path, events = _written(tmp_path)
    end = path.stat().st_size
    writer = JSONLEventStore(tmp_path)
    writer.append_batch([ev("a", 8), ev("c", 1)])
    scan_starts.clear()
    with JSONLEventStore(tmp_path, read_only=True) as reader:
        assert scan_starts == [end]
        assert [reader.last_sequence(run) for run in ("a", "b", "c")] == [8, 4, 1]
        assert as_bytes(reader.load("a")[:7]) == as_bytes(events[:7])
        writer.append(ev("c", 2))
        assert reader.last_sequence("c") == 2
    writer.close()


def test_a_changed_byte_in_the_prefix_voids_the_sidecar(tmp_path: Path, scan_starts: list[int]) -> None:
    """A byte changed inside the indexed prefix: the reader scans the whole file, refusing as without one."""
    path, _ = _written(tmp_path)
    raw = bytearray(path.read_bytes())
    at = raw.index(b'"seq":2')
    raw[at + 6] = ord("5")
    path.write_bytes(bytes(raw))
    scan_starts.clear()
    with pytest.raises(StoreCorruptionError) as with_sidecar:
        JSONLEventStore(tmp_path, read_only=True)
    sidecar_path(path).unlink()
    with pytest.raises(StoreCorruptionError) as without:
        JSONLEventStore(tmp_path, read_only=True)
    assert scan_starts == [0, 0]
    assert with_sidecar.value.location == without.value.location
    assert str(with_sidecar.value) == str(without.value)


def test_a_cut_or_replaced_file_voids_the_sidecar(tmp_path: Path, scan_starts: list[int]) -> None:
    """A file shorter than the sidecar's prefix, or another file under the name, is scanned from byte 0."""
    path, _ = _written(tmp_path)
    stale = sidecar_path(path).read_bytes()
    first_batch = len(b"".join(path.read_bytes().splitlines(keepends=True)[:3]))
    path.write_bytes(path.read_bytes()[:first_batch])
    scan_starts.clear()
    with JSONLEventStore(tmp_path, read_only=True) as reader:
        assert scan_starts == [0]
        assert [info.event_count for info in reader.runs()] == [3]
    other = tmp_path / "other"
    with JSONLEventStore(other) as store:
        store.append_batch(run_events("z", 20))
    path.write_bytes((other / "events.jsonl").read_bytes())
    sidecar_path(path).write_bytes(stale)
    with JSONLEventStore(tmp_path, read_only=True) as reader:
        assert [(info.run_id, info.event_count) for info in reader.runs()] == [("z", 20)]
    assert scan_starts[-1] == 0


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "empty"])
def test_a_damaged_sidecar_is_ignored(tmp_path: Path, scan_starts: list[int], damage: str) -> None:
    """A sidecar that is not whole (cut, a byte flipped, garbage, empty) is ignored: the reader scans."""
    path, events = _written(tmp_path)
    sidecar = sidecar_path(path)
    raw = bytearray(sidecar.read_bytes())
    if damage == "garbage":
        raw = bytearray(b"not an index\n" * 10)
    elif damage == "truncated":
        raw = raw[: len(raw) // 2]
    elif damage == "flipped":
        raw[len(raw) // 2] ^= 0x40
    else:
        raw = bytearray()
    sidecar.write_bytes(bytes(raw))
    scan_starts.clear()
    with JSONLEventStore(tmp_path, read_only=True) as reader:
        assert as_bytes(reader.load("a") + reader.load("b")) == as_bytes(events)
    assert scan_starts == [0]


def test_a_torn_tail_after_the_sidecar_is_recovered_as_without_one(tmp_path: Path) -> None:
    """A batch torn after the sidecar's prefix: readers see the whole batches, the writer cuts the rest."""
    path, events = _written(tmp_path)
    whole, sidecar = path.read_bytes(), sidecar_path(path).read_bytes()
    with JSONLEventStore(tmp_path) as writer:
        writer.append_batch([ev("a", 8), ev("a", 9)])
    torn = path.read_bytes()[: len(whole) + 40]
    path.write_bytes(torn)
    sidecar_path(path).write_bytes(sidecar)  # as if the writer was killed mid-batch
    with JSONLEventStore(tmp_path, read_only=True) as reader:
        assert reader.last_sequence("a") == 7
        assert as_bytes(reader.load("a")) == as_bytes(events[:7])
    assert path.read_bytes() == torn
    with JSONLEventStore(tmp_path) as writer:
        assert writer.last_sequence("a") == 7
    assert path.read_bytes() == whole


def test_only_a_writer_saves_the_sidecar_and_a_failure_to_is_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readers never write the sidecar; a writer that cannot (here: rename fails) closes normally."""
    path, _ = _written(tmp_path)
    sidecar_path(path).unlink()
    with JSONLEventStore(tmp_path, read_only=True):
        pass
    assert not sidecar_path(path).exists()

    def refuse(*_args: object) -> None:
        raise PermissionError("read-only folder")

    monkeypatch.setattr("swarm_observability.stores.jsonl_sidecar.os.replace", refuse)
    store = JSONLEventStore(tmp_path)
    store.append(ev("a", 8))
    store.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]
    with JSONLEventStore(tmp_path, read_only=True) as reader:
        assert reader.last_sequence("a") == 8


def test_the_writer_keeps_the_sidecar_crc_and_close_reads_nothing_back(
    tmp_path: Path, scan_starts: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CRC kept over scanned and written bytes is the file's: a new file, a reopened one, a reopen
    without appends and one whose lost last newline the open restored all get a sidecar the reader
    takes, and closing reads no byte of the file."""
    path, _ = _written(tmp_path)
    read: list[int] = []
    real_pread = os.pread

    def counting_pread(fd: int, size: int, offset: int) -> bytes:
        read.append(size)
        return real_pread(fd, size, offset)

    def reopen(*appends: list[Any]) -> None:
        writer = JSONLEventStore(tmp_path)
        for batch in appends:
            writer.append_batch(batch)
        monkeypatch.setattr(os, "pread", counting_pread)
        writer.close()
        monkeypatch.setattr(os, "pread", real_pread)
        scan_starts.clear()
        with JSONLEventStore(tmp_path, read_only=True) as reader:
            from_sidecar = _everything(reader)
        assert scan_starts == [path.stat().st_size]
        sidecar = sidecar_path(path).read_bytes()
        sidecar_path(path).unlink()
        with JSONLEventStore(tmp_path, read_only=True) as reader:
            assert _everything(reader) == from_sidecar
        sidecar_path(path).write_bytes(sidecar)

    reopen([ev("a", 8), ev("c", 1)], [ev("c", 2)])
    sidecar_path(path).unlink()
    reopen()
    path.write_bytes(path.read_bytes()[:-1])  # the last record's newline lost
    sidecar_path(path).unlink()
    reopen()
    assert path.read_bytes().endswith(b"\n")
    assert read == []


def test_a_prefix_changed_behind_the_writers_back_voids_its_sidecar(
    tmp_path: Path, scan_starts: list[int]
) -> None:
    """A byte of the prefix changed while the writer is open: its sidecar records what it wrote, so
    the reader scans from byte 0 and refuses the file exactly as without a sidecar."""
    path, _ = _written(tmp_path)
    writer = JSONLEventStore(tmp_path)
    writer.append(ev("a", 8))
    raw = bytearray(path.read_bytes())
    at = raw.index(b'"seq":2')
    with path.open("r+b") as behind:
        behind.seek(at + 6)
        behind.write(b"5")
    writer.append(ev("a", 9))
    writer.close()
    assert sidecar_path(path).is_file()
    scan_starts.clear()
    with pytest.raises(StoreCorruptionError) as with_sidecar:
        JSONLEventStore(tmp_path, read_only=True)
    sidecar_path(path).unlink()
    with pytest.raises(StoreCorruptionError) as without:
        JSONLEventStore(tmp_path, read_only=True)
    assert scan_starts == [0, 0]
    assert str(with_sidecar.value) == str(without.value)
