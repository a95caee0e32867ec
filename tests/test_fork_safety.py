"""Fork safety: an observer made before os.fork keeps working in the child, and nothing is written twice."""

from __future__ import annotations

import faulthandler
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from swarm_observability import EventEmitter, EventStoreError, SwarmObserver
from swarm_observability.control import ControlChannel
from swarm_observability.stores.jsonl import JSONLEventStore
from swarm_observability.stores.sqlite import SQLiteEventStore

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")


class _State(TypedDict):
    steps: list[str]


def _slow(state: _State) -> dict[str, Any]:
    time.sleep(0.3)  # long enough for several 0.05 s heartbeats
    return {"steps": [*state["steps"], "slow"]}


def _graph() -> Any:
    builder = StateGraph(_State)
    builder.add_node("slow", _slow)
    builder.add_edge(START, "slow")
    builder.add_edge("slow", END)
    return builder.compile()


def _in_child(body: Callable[[], None], meanwhile: Callable[[], None] = lambda: None) -> int:
    """Fork; run ``body`` in the child and exit it with 0 (or 1 and a traceback) while the parent runs
    ``meanwhile``; return the child's code."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        faulthandler.dump_traceback_later(30, exit=True)  # a hung child prints its stacks and ends
        try:
            body()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    meanwhile()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.timeout(120)
def test_an_observer_made_before_fork_works_in_the_child(tmp_path: Path) -> None:
    """Writer thread, SQLite connections and heartbeat are re-created in the child; events queued in
    the parent at fork time are stored once (by the parent), the child's own run is complete."""
    db = tmp_path / "events.db"
    store = SQLiteEventStore(db)
    emitter = EventEmitter(store, linger=0.5)  # what is emitted just before the fork is still queued
    observer = SwarmObserver(emitter=emitter, heartbeat_interval=0.05)
    graph = observer.instrument(_graph())
    graph.invoke({"steps": []}, {"configurable": {"thread_id": "parent-1"}})  # writer + heartbeat threads run
    channel = ControlChannel(db)
    channel.request("parent-1", "pause")
    for i in range(50):
        emitter.emit("log", "queued-at-fork", message=f"m{i}")
    assert emitter.wait_stored() is not None, "the burst should still be queued when we fork"

    def child() -> None:
        result = graph.invoke({"steps": []}, {"configurable": {"thread_id": "child-1"}})
        assert result == {"steps": ["slow"]}
        emitter.emit("log", "queued-at-fork", message="from the child")
        channel.request("child-1", "cancel", "from the child")
        observer.close()

    assert _in_child(child) == 0
    observer.close()
    channel.close()
    store.close()
    with SQLiteEventStore(db, read_only=True) as check:
        queued = check.load("queued-at-fork")
        assert [e.message for e in queued][:50] == [f"m{i}" for i in range(50)]
        assert [e.message for e in queued][50:] == ["from the child"]
        assert [e.seq for e in queued] == list(range(1, 52))
        child_run = check.load("child-1")
        assert [e.seq for e in child_run] == list(range(1, len(child_run) + 1))
        kinds = Counter(e.type_name for e in child_run)
        assert kinds["scan_complete"] == 1 and kinds["heartbeat"] >= 1, kinds
        assert all(e.run_id == "child-1" for e in child_run)
        parent_run = check.load("parent-1")
        assert parent_run[-1].type_name == "scan_complete"
        ids = [e.id for run in check.runs() for e in check.load(run.run_id)]
        assert len(ids) == len(set(ids)), "an event was written twice"
    with ControlChannel(db) as reader:
        assert [(r.scan_id, r.action.value) for r in reader.requests()] == [
            ("parent-1", "pause"),
            ("child-1", "cancel"),
        ]


@pytest.mark.timeout(60)
def test_a_jsonl_store_refuses_appends_in_a_forked_child(tmp_path: Path) -> None:
    """One writer per JSONL file: the child's append is a clear EventStoreError; the parent goes on."""
    store = JSONLEventStore(tmp_path / "log")
    emitter = EventEmitter(store, write="sync")
    emitter.emit("log", "r", message="before fork")

    def child() -> None:
        with pytest.raises(EventStoreError, match="forked from it"):
            emitter.emit("log", "r", message="from the child")
        assert [e.message for e in store.load("r")] == ["before fork"]

    assert _in_child(child) == 0
    emitter.emit("log", "r", message="after fork")
    assert [(e.seq, e.message) for e in store.load("r")] == [(1, "before fork"), (2, "after fork")]
    emitter.close()
    store.close()


def test_a_forked_child_makes_ids_of_its_own() -> None:
    """The child's event ids share no random part with the parent's (pre-made parts are dropped at fork)."""
    from swarm_observability.events import EventType, make_event

    make_event(EventType.LOG, "r")  # the parent now holds pre-made random parts
    read, write = os.pipe()

    def child() -> None:
        os.write(write, " ".join(make_event(EventType.LOG, "r").id[14:] for _ in range(20)).encode())

    assert _in_child(child) == 0
    os.close(write)
    theirs = set(os.read(read, 65536).decode().split())
    os.close(read)
    ours = {make_event(EventType.LOG, "r").id[14:] for _ in range(20)}
    assert len(theirs) == 20 and not theirs & ours


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_a_postgres_store_and_control_channel_made_before_fork_serve_both_processes(
    pg_store_url: str,
) -> None:
    """The child opens sessions of its own and closes them; the parent's sessions stay alive and in use."""
    import psycopg

    from swarm_observability.control.postgres import PostgresControlChannel
    from swarm_observability.events import EventType, make_event
    from swarm_observability.stores.postgres import PostgresEventStore, split_url

    app = f"swarm_obs_fork_{os.getpid()}"
    url = f"{pg_store_url}&application_name={app}"

    def sessions() -> set[int]:
        sql = "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
        with psycopg.connect(split_url(pg_store_url)[0], autocommit=True) as conn:
            return {row[0] for row in conn.execute(sql, (app,))}

    def append(run: str, seqs: range) -> None:
        store.append_batch([make_event(EventType.LOG, run, seq=seq) for seq in seqs])

    store, channel = PostgresEventStore(url), PostgresControlChannel(url)
    append("parent", range(1, 2))
    channel.request("parent", "pause")
    assert store.wait_for_append(0) and channel.wait_for_request(0)  # both listeners are open
    before = sessions()
    assert len(before) >= 4, before

    def child() -> None:
        append("child", range(1, 4))
        assert [e.seq for e in store.load("child")] == [1, 2, 3]
        assert channel.claim(channel.request("child", "cancel").id)
        assert store.wait_for_append(0) and channel.wait_for_request(0)
        assert sessions() - before, "the child should have sessions of its own"
        channel.close()
        store.close()

    def meanwhile() -> None:
        for seq in range(2, 12):
            append("parent", range(seq, seq + 1))
        assert [r.action.value for r in channel.pending("parent")] == ["pause"]

    assert _in_child(child, meanwhile) == 0
    append("parent", range(12, 13))
    assert [e.seq for e in store.load("parent")] == list(range(1, 13))
    assert [e.seq for e in store.load("child")] == [1, 2, 3]
    assert channel.wait_for_request(5) and store.wait_for_append(5)  # the child's NOTIFYs reached us
    assert channel.claim(channel.pending("parent")[0].id)
    assert before <= sessions(), "the child ended sessions of the parent"
    channel.close()
    store.close()
