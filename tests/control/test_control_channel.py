"""ControlChannel and ControlWatcher: control requests across processes through SQLite."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from swarm_observability.control import (
    CancellationManager,
    ControlAction,
    ControlChannel,
    ControlWatcher,
)
from swarm_observability.exceptions import InvalidRunIdError, ScanCancelled

REPO = Path(__file__).resolve().parents[2]


def _request_from_other_process(db: Path, scan_id: str, action: str, reason: str | None) -> None:
    code = textwrap.dedent(
        f"""
        from swarm_observability.control import ControlChannel
        with ControlChannel({str(db)!r}) as channel:
            channel.request({scan_id!r}, {action!r}, {reason!r})
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)


@pytest.fixture
def channel(tmp_path: Path):
    with ControlChannel(tmp_path / "control.db") as ch:
        yield ch


def test_request_is_stored_pending_and_claimed_once(channel: ControlChannel) -> None:
    """A request is pending until claimed, and only the first claim succeeds."""
    made = channel.request("scan-a", "cancel", "because")
    channel.request("scan-b", ControlAction.PAUSE)
    pending = channel.pending("scan-a")
    assert [(r.id, r.action, r.reason) for r in pending] == [(made.id, ControlAction.CANCEL, "because")]
    assert channel.claim(made.id) is True
    assert channel.claim(made.id) is False
    assert channel.pending("scan-a") == []
    assert channel.requests("scan-a")[0].consumed_at is not None
    assert [r.scan_id for r in channel.pending("scan-b")] == ["scan-b"]


def test_pending_respects_after_id(channel: ControlChannel) -> None:
    """pending(after_id) returns only newer requests, oldest first."""
    first = channel.request("s", "pause")
    second = channel.request("s", "resume")
    assert [r.id for r in channel.pending("s", after_id=first.id)] == [second.id]
    assert [r.action for r in channel.pending("s")] == [ControlAction.PAUSE, ControlAction.RESUME]


def test_bad_action_is_a_clear_error_and_stores_nothing(channel: ControlChannel) -> None:
    """An unknown action raises ValueError naming it, and no row is written."""
    with pytest.raises(ValueError, match=r"'terminate'.*cancel, pause, resume, drain"):
        channel.request("scan-a", "terminate")
    with pytest.raises(InvalidRunIdError):
        channel.request("", "cancel")
    assert channel.requests() == []


def test_closed_channel_refuses_use(tmp_path: Path) -> None:
    """After close() every call raises a clear error; close() is idempotent."""
    channel = ControlChannel(tmp_path / "c.db")
    channel.close()
    channel.close()
    with pytest.raises(RuntimeError, match="closed"):
        channel.request("s", "cancel")


def test_sync_from_applies_in_order_and_rate_limits(channel: ControlChannel) -> None:
    """sync_from() applies pending requests in id order once; min_interval skips the database."""
    manager = CancellationManager("scan-sync")
    channel.request("scan-sync", "pause")
    channel.request("scan-sync", "resume")
    channel.request("scan-sync", "pause")
    assert manager.sync_from(channel) == 3
    assert manager.is_paused
    assert manager.sync_from(channel) == 0
    channel.request("scan-sync", "resume")
    assert manager.sync_from(channel, min_interval=3600) == 0
    assert manager.is_paused
    assert channel.pending("scan-sync") != []


def test_request_written_before_the_scan_is_honoured(channel: ControlChannel) -> None:
    """A cancel written before the manager exists applies when it first syncs (cancel before start)."""
    channel.request("scan-late", "cancel", "not today")
    manager = CancellationManager("scan-late")
    manager.sync_from(channel)
    with pytest.raises(ScanCancelled, match="not today"):
        manager.checkpoint_sync("first")


@pytest.mark.timeout(60)
def test_cancel_from_another_process_releases_a_paused_scan(tmp_path: Path) -> None:
    """A cancel written by a subprocess reaches a watcher and wakes the waiting safe point."""
    db = tmp_path / "shared.db"
    manager = CancellationManager("scan-xproc")
    manager.pause()
    with ControlChannel(db) as channel, manager.watch(channel, interval=0.05) as watcher:
        assert watcher.running
        outcome: list[BaseException] = []

        def scan_branch() -> None:
            try:
                manager.checkpoint_sync("probe")
            except ScanCancelled as exc:
                outcome.append(exc)

        branch = threading.Thread(target=scan_branch)
        branch.start()
        _request_from_other_process(db, "scan-xproc", "cancel", "operator in other shell")
        branch.join(30)
        assert not branch.is_alive()
    assert not watcher.running
    assert [type(e) for e in outcome] == [ScanCancelled]
    assert outcome[0].reason == "operator in other shell"
    with ControlChannel(db) as channel:
        assert channel.pending("scan-xproc") == []


@pytest.mark.timeout(60)
def test_one_watcher_serves_several_managers(tmp_path: Path) -> None:
    """A single watcher thread applies each scan's requests to its own manager only."""
    with ControlChannel(tmp_path / "c.db") as channel:
        a, b = CancellationManager("scan-a"), CancellationManager("scan-b")
        watcher = ControlWatcher(channel, [a], interval=0.05)
        watcher.add(b)
        channel.request("scan-b", "pause")
        channel.request("scan-a", "cancel", "a only")
        assert watcher.poll_once() == 2
        assert (a.is_cancelled, a.is_paused, b.is_cancelled, b.is_paused) == (True, False, False, True)
        watcher.discard("scan-b")
        channel.request("scan-b", "resume")
        assert watcher.poll_once() == 0
        assert b.is_paused


def test_watcher_interval_must_be_positive(channel: ControlChannel) -> None:
    """A non-positive polling interval is refused."""
    with pytest.raises(ValueError, match="interval"):
        ControlWatcher(channel, interval=0)
