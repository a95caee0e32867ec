"""Control channel faults: foreign rows never block later requests; unusable files are our own error."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from swarm_observability.control import CancellationManager, ControlChannel, ControlWatcher
from swarm_observability.exceptions import ControlChannelError


def _insert_raw(
    db: Path, scan_id: str, action: object, created_at: object = "2026-01-01T00:00:00.000+00:00"
) -> int:
    with sqlite3.connect(db) as conn:
        cur = conn.execute(
            "INSERT INTO swarm_control (scan_id, action, reason, created_at) VALUES (?, ?, NULL, ?)",
            (scan_id, action, created_at),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid


@pytest.mark.parametrize(
    ("action", "created_at"),
    [("explode", "2026-01-01T00:00:00.000+00:00"), ("cancel", "yesterday"), ("cancel", 12345)],
)
def test_a_bad_row_never_blocks_a_later_cancel(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, action: object, created_at: object
) -> None:
    """An unknown action or garbled timestamp is skipped and logged once; the real cancel applies."""
    db = tmp_path / "control.db"
    channel = ControlChannel(db)
    bad = _insert_raw(db, "scan-1", action, created_at)
    channel.request("scan-1", "cancel", "real one")
    manager = CancellationManager("scan-1")
    with caplog.at_level(logging.WARNING, logger="swarm_observability"):
        assert manager.sync_from(channel) == 1
        assert manager.sync_from(channel) == 0
        channel.request("scan-1", "pause")
        assert manager.sync_from(channel) == 1
    assert manager.is_cancelled and manager.cancel_reason == "real one"
    assert channel.malformed == [bad]
    warnings = [r for r in caplog.records if "not a valid request" in r.getMessage()]
    assert len(warnings) == 1 and str(bad) in warnings[0].getMessage()
    assert [r.id for r in channel.requests("scan-1")] != []
    channel.close()


def test_the_watcher_applies_requests_behind_a_bad_row(tmp_path: Path) -> None:
    """The background watcher does not get stuck on a foreign row ("will retry" forever)."""
    db = tmp_path / "control.db"
    channel = ControlChannel(db)
    _insert_raw(db, "scan-w", "self-destruct")
    manager = CancellationManager("scan-w")
    channel.request("scan-w", "cancel", "behind a bad row")
    watcher = ControlWatcher(channel, [manager], interval=0.01)
    assert watcher.poll_once() == 1
    assert manager.is_cancelled
    channel.close()


def test_a_garbage_file_is_a_control_channel_error(tmp_path: Path) -> None:
    """Opening a file that is not SQLite raises ControlChannelError naming it, and leaves it alone."""
    path = tmp_path / "control.db"
    path.write_bytes(b"not a database at all" * 200)
    with pytest.raises(ControlChannelError, match="not a usable control database") as info:
        ControlChannel(path)
    assert info.value.location == str(path)
    assert path.read_bytes() == b"not a database at all" * 200


def test_a_folder_in_place_of_the_file_is_a_control_channel_error(tmp_path: Path) -> None:
    """A path that cannot be a database file (a folder) is our error, not sqlite3's."""
    (tmp_path / "control.db").mkdir()
    with pytest.raises(ControlChannelError, match=r"control\.db"):
        ControlChannel(tmp_path / "control.db")
