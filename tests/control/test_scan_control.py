"""Control of instrumented scans end to end: SwarmObserver + CancellationManager + SQLite store/saver."""

from __future__ import annotations

import asyncio
import operator
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from swarm_observability import probe
from swarm_observability.checkpointers import get_checkpointer
from swarm_observability.control import ControlChannel, get_manager, remove_manager
from swarm_observability.events import StreamEvent
from swarm_observability.exceptions import ScanCancelled
from swarm_observability.instrumentation.observer import SwarmObserver
from swarm_observability.state import RunStatus, rebuild_run_state
from swarm_observability.stores.sqlite import SQLiteEventStore

REPO = Path(__file__).resolve().parents[2]
TARGETS = ("10.0.0.1", "10.0.0.2", "10.0.0.3")
WAIT = 20.0


class Gate:
    """Holds every probe branch inside its first probe until the test releases it; counts branches."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self._lock = threading.Lock()
        self.entered = 0
        self.left = 0

    def arrive(self) -> None:
        with self._lock:
            self.entered += 1

    def leave(self) -> None:
        with self._lock:
            self.left += 1


class FanState(TypedDict, total=False):
    targets: list[str]
    findings: Annotated[list[str], operator.add]
    summary: str


def _build(mode: str, gate: Gate) -> StateGraph:
    """dispatch --3x Send--> probe_node (stage1 held by the gate, then stage2) -> aggregate."""
    if mode == "async":

        async def probe_node(state: dict[str, str]) -> dict[str, Any]:
            try:
                async with probe("stage1", target=state["target"]):
                    gate.arrive()
                    await asyncio.to_thread(gate.release.wait, WAIT)
                async with probe("stage2", target=state["target"]) as p:
                    p.result(target=state["target"])
                return {"findings": [state["target"]]}
            finally:
                gate.leave()

    else:

        def probe_node(state: dict[str, str]) -> dict[str, Any]:  # type: ignore[misc]
            try:
                with probe("stage1", target=state["target"]):
                    gate.arrive()
                    gate.release.wait(WAIT)
                with probe("stage2", target=state["target"]) as p:
                    p.result(target=state["target"])
                return {"findings": [state["target"]]}
            finally:
                gate.leave()

    def dispatch(state: FanState) -> dict[str, Any]:
        return {}

    def aggregate(state: FanState) -> dict[str, Any]:
        return {"summary": ",".join(sorted(state["findings"]))}

    builder = StateGraph(FanState)
    builder.add_node("dispatch", dispatch)
    builder.add_node("probe_node", probe_node)
    builder.add_node("aggregate", aggregate)
    builder.add_edge(START, "dispatch")
    builder.add_conditional_edges(
        "dispatch", lambda s: [Send("probe_node", {"target": t}) for t in s["targets"]], ["probe_node"]
    )
    builder.add_edge("probe_node", "aggregate")
    builder.add_edge("aggregate", END)
    return builder


class Scan:
    """One instrumented fan-out graph on a SQLite event store and a SQLite checkpointer."""

    def __init__(self, tmp_path: Path, mode: str) -> None:
        self.run_id = f"scan-{mode}-{uuid.uuid4().hex[:8]}"
        self.config = {"configurable": {"thread_id": self.run_id}}
        self.gate = Gate()
        self.events_path = tmp_path / "events.db"
        store = SQLiteEventStore(self.events_path, durability="normal")
        self.observer = SwarmObserver(store, heartbeat_interval=None)
        self.saver = get_checkpointer(path=tmp_path / "checkpoints.db")
        self.graph = self.observer.instrument(_build(mode, self.gate).compile(checkpointer=self.saver))
        self.manager = get_manager(self.run_id)

    def start(self, payload: Any = None) -> asyncio.Task[Any]:
        inp = {"targets": list(TARGETS)} if payload is None else payload
        return asyncio.create_task(self.graph.ainvoke(inp, self.config))

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        await asyncio.to_thread(_wait_until, predicate)

    def events(self) -> list[StreamEvent]:
        self.observer.emitter.flush()
        return self.observer.store.load(self.run_id)

    def close(self) -> None:
        self.gate.release.set()
        self.observer.close()
        self.saver.close()
        remove_manager(self.run_id)


def _wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    pause = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return
        pause.wait(0.005)
    raise AssertionError("condition not reached in time")


@pytest.fixture(params=["async", "sync"])
def scan(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Scan]:
    created = Scan(tmp_path, request.param)
    yield created
    created.close()


def _of(events: list[StreamEvent], type_name: str, **match: Any) -> list[StreamEvent]:
    return [
        e for e in events if e.type_name == type_name and all(getattr(e, k) == v for k, v in match.items())
    ]


def _other_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def _settle_background_tasks() -> None:
    """Assert nothing keeps running: every other task ends by itself (none needs cancelling).

    LangGraph schedules the ``__error__`` writes of cancelled sibling tasks just as the call raises (with
    any async saver), so those may still be finishing; a branch that kept running would not finish.
    """
    leftovers = _other_tasks()
    if leftovers:
        await asyncio.wait(leftovers, timeout=WAIT)
    assert _other_tasks() == set()


@pytest.mark.timeout(60)
async def test_cancel_during_fan_out_stops_every_branch_and_resume_completes(scan: Scan) -> None:
    """Cancel while 3 probes run: each stops at its next safe point; a resume finishes the same log."""
    first = scan.start()
    await scan.wait_for(lambda: scan.gate.entered == 3)
    scan.manager.cancel("operator stop")
    scan.gate.release.set()
    with pytest.raises(ScanCancelled, match="operator stop"):
        await asyncio.wait_for(first, WAIT)
    await scan.wait_for(lambda: scan.gate.left == 3)
    await _settle_background_tasks()

    events = scan.events()
    cancelled = _of(events, "scan_cancelled")
    assert [(e.data["reason"], e.data["outcome"]) for e in cancelled] == [("operator stop", "cancelled")]
    assert {e.data["outcome"] for e in _of(events, "probe_complete", probe="stage1")} == {"cancelled"}
    assert len(_of(events, "probe_complete", probe="stage1")) == 3
    assert _of(events, "probe_start", probe="stage2") == []
    assert [e.data["outcome"] for e in _of(events, "node_exit", node="probe_node")] == ["cancelled"] * 3
    assert _of(events, "node_enter", node="aggregate") == []
    assert rebuild_run_state(events, scan.run_id).status is RunStatus.CANCELLED

    # The observer reset the manager as the invocation ended, so the resume runs.
    assert not scan.manager.is_cancelled
    result = await asyncio.wait_for(asyncio.create_task(scan.graph.ainvoke(None, scan.config)), WAIT)
    assert result["summary"] == ",".join(TARGETS)

    scan.observer.emitter.flush()
    with SQLiteEventStore(scan.events_path, read_only=True) as persisted:
        log = persisted.load(scan.run_id)
        state = rebuild_run_state(persisted, scan.run_id)
    assert [e.seq for e in log] == list(range(1, len(log) + 1))
    assert (state.status, state.invocations) == (RunStatus.COMPLETED, 2)
    assert state.probes["stage2"].outcomes == {"ok": 3}
    resumed = _of(log, "scan_resumed")
    assert [e.data["previous_invocation_id"] for e in resumed] == [cancelled[0].invocation_id]
    assert [e.type_name for e in log if e.scope_id == e.invocation_id and e.type_name != "scan_resumed"] == [
        "scan_started",
        "scan_cancelled",
        "scan_complete",
    ]


@pytest.mark.timeout(60)
async def test_pause_holds_all_branches_and_resume_releases_them(scan: Scan) -> None:
    """A pause during the fan-out holds 3 branches with one scan_paused; resume emits one scan_resumed."""
    task = scan.start()
    await scan.wait_for(lambda: scan.gate.entered == 3)
    scan.manager.pause()
    scan.gate.release.set()
    await scan.wait_for(lambda: scan.manager.waiting == 3)
    await asyncio.sleep(0.05)
    assert not task.done()
    while_paused = scan.events()
    assert _of(while_paused, "probe_start", probe="stage2") == []
    assert [e.data["reason"] for e in _of(while_paused, "scan_paused")] == ["pause"]
    assert rebuild_run_state(while_paused, scan.run_id).status is RunStatus.PAUSED

    scan.manager.resume()
    result = await asyncio.wait_for(task, WAIT)
    assert result["summary"] == ",".join(TARGETS)
    events = scan.events()
    assert [e.data["reason"] for e in _of(events, "scan_paused")] == ["pause"]
    assert [e.data["reason"] for e in _of(events, "scan_resumed")] == ["pause"]
    assert len(_of(events, "probe_complete", probe="stage2")) == 3
    state = rebuild_run_state(events, scan.run_id)
    assert (state.status, state.invocations) == (RunStatus.COMPLETED, 1)


@pytest.mark.timeout(90)
async def test_cancel_from_another_process_through_the_channel(scan: Scan, tmp_path: Path) -> None:
    """A cancel written by another process reaches the scan via the watcher and ends it as cancelled."""
    control_db = tmp_path / "checkpoints.db"
    with ControlChannel(control_db) as channel, scan.manager.watch(channel, interval=0.05):
        task = scan.start()
        await scan.wait_for(lambda: scan.gate.entered == 3)
        code = textwrap.dedent(
            f"""
            from swarm_observability.control import ControlChannel
            with ControlChannel({str(control_db)!r}) as channel:
                channel.request({scan.run_id!r}, "cancel", "cancelled from the CLI")
            """
        )
        command = [sys.executable, "-c", code]
        await asyncio.to_thread(subprocess.run, command, check=True, cwd=REPO, timeout=60)
        await scan.wait_for(lambda: scan.manager.is_cancelled)
        scan.gate.release.set()
        with pytest.raises(ScanCancelled, match="cancelled from the CLI"):
            await asyncio.wait_for(task, WAIT)
    events = scan.events()
    assert [e.data["reason"] for e in _of(events, "scan_cancelled")] == ["cancelled from the CLI"]
    assert _of(events, "probe_start", probe="stage2") == []
