"""PostgreSQL checkpoints (LangGraph's own savers, set up and closed) and the LISTEN/NOTIFY control."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import StateGraph

from swarm_observability import SwarmObserver
from swarm_observability.checkpointers import aget_checkpointer, get_checkpointer
from swarm_observability.control import (
    ControlAction,
    ControlWatcher,
    PostgresControlChannel,
    get_manager,
    open_channel,
    remove_manager,
)
from swarm_observability.exceptions import CheckpointerError, ControlChannelError
from swarm_observability.stores import PostgresEventStore
from tests._postgres import ReplyLosingProxy, record_connect_timeouts
from tests.instrumentation.helpers import chain

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def _chain() -> StateGraph:
    return chain("first", "second")


def _tables(url: str) -> set[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {name for (name,) in rows}


async def test_get_checkpointer_postgres_serves_sync_and_async_and_closes(pg_database_url: str) -> None:
    """A postgresql:// path gives a set-up PostgresSaver serving invoke and ainvoke; closed, it refuses."""
    saver = get_checkpointer(path=pg_database_url)
    assert {"checkpoints", "checkpoint_writes", "checkpoint_migrations"} <= _tables(pg_database_url)
    with saver:
        graph = _chain().compile(checkpointer=saver)
        assert graph.invoke({"x": []}, {"configurable": {"thread_id": "sync"}}) == {"x": ["first", "second"]}
        result = await graph.ainvoke({"x": []}, {"configurable": {"thread_id": "async"}})
        assert result == {"x": ["first", "second"]}
        assert graph.get_state({"configurable": {"thread_id": "async"}}).next == ()
    assert saver.closed
    with pytest.raises(CheckpointerError, match="closed"):
        saver.get_tuple({"configurable": {"thread_id": "sync"}})
    again = get_checkpointer(path=pg_database_url)  # setup() again on an existing database is a no-op
    try:
        assert again.get_tuple({"configurable": {"thread_id": "sync"}}) is not None
    finally:
        again.close()


async def test_aget_checkpointer_postgres_yields_the_async_saver(pg_database_url: str) -> None:
    """aget_checkpointer gives LangGraph's AsyncPostgresSaver on a pool, set up, closed after the block."""
    async with aget_checkpointer(path=pg_database_url) as saver:
        assert isinstance(saver, AsyncPostgresSaver)
        graph = _chain().compile(checkpointer=saver)
        config = {"configurable": {"thread_id": "t"}}
        chunks = [chunk async for chunk in graph.astream({"x": []}, config)]
        assert [next(iter(c)) for c in chunks] == ["first", "second"]
        assert (await saver.aget_tuple(config)) is not None
        pool = saver.conn
    assert pool.closed


def test_unreachable_checkpointer_is_a_clear_error() -> None:
    """A PostgreSQL checkpointer URL that does not answer raises CheckpointerError without the password."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(CheckpointerError) as info:
        get_checkpointer(path=f"postgresql://u:pw-secret@127.0.0.1:{port}/db?connect_timeout=2")
    assert str(port) in str(info.value) and "pw-secret" not in str(info.value)


def test_a_control_channel_error_masks_a_password_libpq_quotes() -> None:
    """A malformed password, which libpq quotes in its error, is *** in the ControlChannelError."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ControlChannelError) as info:
        PostgresControlChannel(f"postgresql://u:pw%zzsecret@127.0.0.1:{port}/db")
    assert f"127.0.0.1:{port}/db" in str(info.value) and "pw%zzsecret" not in str(info.value)


_PART_ONE = """
import sys
from tests.control.test_postgres_checkpoints_and_control import _chain
from swarm_observability import SwarmObserver, get_checkpointer
from swarm_observability.stores import PostgresEventStore
store = PostgresEventStore(sys.argv[1])
observer = SwarmObserver(store=store)
with get_checkpointer(path=sys.argv[2]) as saver:
    graph = observer.instrument(_chain().compile(checkpointer=saver, interrupt_before=["second"]))
    graph.invoke({"x": []}, {"configurable": {"thread_id": "handover"}})
observer.close()
store.close()
"""


def test_a_thread_started_by_one_process_is_resumed_by_another(
    pg_store_url: str, pg_database_url: str
) -> None:
    """Process A runs to an interrupt on PostgreSQL; this one resumes the thread; the log goes on."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", _PART_ONE, pg_store_url, pg_database_url],
        env=env,
        capture_output=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    store = PostgresEventStore(pg_store_url)
    observer = SwarmObserver(store=store)
    try:
        with get_checkpointer(path=pg_database_url) as saver:
            graph = observer.instrument(_chain().compile(checkpointer=saver))
            config = {"configurable": {"thread_id": "handover"}}
            assert graph.get_state(config).next == ("second",)
            assert graph.invoke(None, config) == {"x": ["first", "second"]}
        observer.close()
        events = store.load("handover")
        kinds = [e.type_name for e in events]
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert kinds[0] == "scan_started" and "scan_resumed" in kinds and kinds[-1] == "scan_complete"
    finally:
        store.close()


def test_control_requests_are_claimed_once_across_channels(pg_store_url: str) -> None:
    """Two channel objects (two workers) see one request; exactly one claims it; bad input is refused."""
    first, second = PostgresControlChannel(pg_store_url), open_channel(pg_store_url)
    try:
        assert isinstance(second, PostgresControlChannel)
        request = first.request("scan-1", "cancel", "operator")
        assert (request.scan_id, request.action, request.reason) == (
            "scan-1",
            ControlAction.CANCEL,
            "operator",
        )
        assert [r.id for r in second.pending("scan-1")] == [request.id]
        assert second.pending("scan-2") == []
        assert [first.claim(request.id), second.claim(request.id)] == [True, False]
        assert second.pending("scan-1") == []
        (stored,) = second.requests("scan-1")
        assert stored.consumed_at is not None and stored.consumed_at >= stored.created_at
        with pytest.raises(ValueError, match="unknown control action"):
            first.request("scan-1", "explode")
    finally:
        first.close()
        second.close()
    with pytest.raises(ControlChannelError, match="closed"):
        first.request("scan-1", "cancel")


def test_a_lost_reply_neither_doubles_a_request_nor_loses_its_claim(pg_store_url: str) -> None:
    """The connection dies after the server committed: the retried request is stored once, the retried
    claim still says this caller claimed it (else nobody would apply the request)."""
    proxy = ReplyLosingProxy(pg_store_url)
    with PostgresControlChannel(proxy.url) as channel:
        proxy.pattern = b"COMMIT"
        made = channel.request("lost-reply", "cancel", "once")
        proxy.pattern = b"UPDATE"
        assert channel.claim(made.id)
        assert proxy.lost == 2
        [stored] = channel.requests("lost-reply")
        assert (stored.id, stored.reason, stored.consumed_at is not None) == (made.id, "once", True)


def test_a_control_table_of_an_older_release_gets_the_key_columns(pg_store_url: str) -> None:
    """A swarm_control table without request_key/claim_key (made before them) is upgraded when opened."""
    import psycopg

    from swarm_observability.stores.postgres_schema import split_url

    conninfo, ours = split_url(pg_store_url)
    old = (
        "CREATE TABLE {s}.swarm_control (id bigserial PRIMARY KEY, scan_id text NOT NULL, action text"
        " NOT NULL, reason text, created_at timestamptz NOT NULL DEFAULT now(), consumed_at timestamptz)"
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{ours["schema"]}"')
        conn.execute(old.format(s=f'"{ours["schema"]}"'))
        conn.execute(
            f"INSERT INTO \"{ours['schema']}\".swarm_control (scan_id, action) VALUES ('old', 'pause')"
        )
    with PostgresControlChannel(pg_store_url) as channel:
        made = channel.request("new", "cancel")
        assert [r.scan_id for r in channel.requests()] == ["old", "new"]
        assert channel.claim(made.id) and not channel.claim(made.id)


def test_the_listener_reconnect_waits_for_the_server_no_longer_than_the_wait(
    pg_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """wait_for_request(0.1) opening its LISTEN connection gives libpq 2 s (its floor), not the channel's."""
    with PostgresControlChannel(pg_store_url, timeout=10) as channel:
        timeouts = record_connect_timeouts(monkeypatch)
        assert channel.wait_for_request(0.1)
        assert timeouts == [2]


def test_watcher_is_woken_by_notify_instead_of_polling(pg_store_url: str) -> None:
    """A watcher on the PostgreSQL channel reads the table only when notified: idle it does not poll,
    and a cancel written by another channel reaches the scan's manager at once."""
    remove_manager("notified")
    manager = get_manager("notified")
    channel, writer = PostgresControlChannel(pg_store_url), PostgresControlChannel(pg_store_url)
    polls: list[float] = []
    watcher = ControlWatcher(channel, [manager], interval=0.2)
    original = watcher.poll_once

    def counting_poll() -> int:
        polls.append(time.monotonic())
        return original()

    watcher.poll_once = counting_poll  # type: ignore[method-assign]
    try:
        with watcher:
            time.sleep(1.5)
            idle_polls = len(polls)
            sent = time.monotonic()
            writer.request("notified", "cancel", "from another host")
            deadline = sent + 10
            while not manager.is_cancelled and time.monotonic() < deadline:
                time.sleep(0.005)
            assert manager.is_cancelled
        assert idle_polls <= 2, polls  # the first read, and one when LISTEN starts; a poller makes ~7
    finally:
        channel.close()
        writer.close()
        remove_manager("notified")


def test_tail_follow_shows_events_from_another_process_via_notify(pg_store_url: str) -> None:
    """`tail --follow` on a PostgreSQL store prints another process's appends and stops at the end."""
    from swarm_observability.events import EventType, make_event

    store = PostgresEventStore(pg_store_url)
    store.append(make_event(EventType.SCAN_STARTED, "followed", seq=1, data={"graph": "g"}))
    tail = subprocess.Popen(
        [sys.executable, "-m", "swarm_observability", "tail", "followed", "--follow", "--timeout", "60"],
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "SWARM_OBS_STORE": pg_store_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        time.sleep(1.0)

        def finish() -> None:
            store.append(make_event(EventType.LOG, "followed", seq=2, message="from elsewhere"))
            store.append(make_event(EventType.SCAN_COMPLETE, "followed", seq=3))

        threading.Timer(0.5, finish).start()
        out, err = tail.communicate(timeout=60)
    finally:
        if tail.poll() is None:
            tail.kill()
        store.close()
    assert tail.returncode == 0, err.decode()
    text = out.decode()
    assert "from elsewhere" in text and "scan_complete" in text, text
