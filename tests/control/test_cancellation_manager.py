"""CancellationManager: cancel, pause/resume, hard cancel and drain at safe points."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import uuid
from collections.abc import Callable
from typing import TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from swarm_observability import SwarmObserver
from swarm_observability.control import CancellationManager, get_manager, managers, registry, remove_manager
from swarm_observability.exceptions import InstrumentationError, InvalidRunIdError, ScanCancelled

WAIT = 10.0


def _wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    done = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if predicate():
            return
        done.wait(0.005)
    raise AssertionError("condition not reached in time")


class Calls:
    """Counts calls of on_pause / on_resume callbacks, thread-safely."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[str] = []

    def pause(self) -> None:
        with self.lock:
            self.log.append("pause")

    def resume(self) -> None:
        with self.lock:
            self.log.append("resume")


async def _checkpoint(manager: CancellationManager, mode: str, node: str, calls: Calls | None = None) -> None:
    hooks = {"on_pause": calls.pause, "on_resume": calls.resume} if calls else {}
    if mode == "async":
        await manager.checkpoint(node, **hooks)
    else:
        await asyncio.to_thread(manager.checkpoint_sync, node, **hooks)


def test_cancel_is_idempotent_and_keeps_first_reason() -> None:
    """Repeated cancel() calls keep the first reason and the cancelled state."""
    manager = CancellationManager("scan-1")
    manager.cancel("first")
    manager.cancel("second")
    manager.cancel()
    assert manager.is_cancelled
    assert manager.cancel_reason == "first"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.timeout(20)
async def test_cancel_before_start_raises_at_first_safe_point(mode: str) -> None:
    """A cancel issued before any safe point makes the first one raise ScanCancelled with context."""
    manager = CancellationManager("scan-early")
    manager.cancel("operator")
    with pytest.raises(ScanCancelled) as info:
        await _checkpoint(manager, mode, "n1")
    assert (info.value.run_id, info.value.reason, info.value.node) == ("scan-early", "operator", "n1")


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.timeout(20)
async def test_safe_point_passes_when_nothing_requested(mode: str) -> None:
    """Without requests a safe point returns and calls no callback."""
    manager = CancellationManager("scan-free")
    calls = Calls()
    await _checkpoint(manager, mode, "n1", calls)
    assert calls.log == []


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.timeout(20)
async def test_pause_blocks_and_resume_releases(mode: str) -> None:
    """A paused safe point does not return until resume(), then proceeds normally."""
    manager = CancellationManager("scan-pause")
    manager.pause()
    calls = Calls()
    waiter = asyncio.ensure_future(_checkpoint(manager, mode, "n1", calls))
    await asyncio.to_thread(_wait_until, lambda: manager.waiting == 1)
    await asyncio.sleep(0.05)
    assert not waiter.done()
    manager.resume()
    await asyncio.wait_for(waiter, WAIT)
    assert calls.log == ["pause", "resume"]
    assert not manager.is_paused


@pytest.mark.parametrize("mode", ["sync", "async", "mixed"])
@pytest.mark.timeout(20)
async def test_three_parallel_waiters_announce_pause_and_resume_once(mode: str) -> None:
    """Three branches waiting in one pause episode trigger on_pause once and on_resume once."""
    manager = CancellationManager("scan-fanout")
    manager.pause()
    calls = Calls()
    modes = ["sync", "async", "sync"] if mode == "mixed" else [mode] * 3
    waiters = [asyncio.ensure_future(_checkpoint(manager, m, f"p{i}", calls)) for i, m in enumerate(modes)]
    await asyncio.to_thread(_wait_until, lambda: manager.waiting == 3)
    assert not any(w.done() for w in waiters)
    manager.resume()
    await asyncio.wait_for(asyncio.gather(*waiters), WAIT)
    assert calls.log == ["pause", "resume"]


@pytest.mark.timeout(20)
async def test_each_pause_episode_is_announced() -> None:
    """Two separate pauses produce two on_pause/on_resume pairs, in order."""
    manager = CancellationManager("scan-episodes")
    calls = Calls()
    for _ in range(2):
        manager.pause()
        waiter = asyncio.ensure_future(_checkpoint(manager, "async", "n", calls))
        await asyncio.to_thread(_wait_until, lambda: manager.waiting == 1)
        manager.resume()
        await asyncio.wait_for(waiter, WAIT)
    assert calls.log == ["pause", "resume", "pause", "resume"]


@pytest.mark.timeout(20)
def test_resume_is_announced_before_a_branch_that_never_waited_continues() -> None:
    """After resume, the next safe point of any branch emits on_resume first, even one that did not wait."""
    manager = CancellationManager("scan-order")
    calls = Calls()
    manager.pause()
    waiter = threading.Thread(target=manager.checkpoint_sync, args=("a",), kwargs={"on_pause": calls.pause})
    waiter.start()
    _wait_until(lambda: calls.log == ["pause"])
    manager.resume()
    manager.checkpoint_sync("b", on_resume=calls.resume)
    waiter.join(WAIT)
    assert calls.log == ["pause", "resume"]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.timeout(20)
async def test_cancel_while_paused_releases_waiters_with_scan_cancelled(mode: str) -> None:
    """cancel() during a pause wakes every waiter, which raise ScanCancelled and announce no resume."""
    manager = CancellationManager("scan-pc")
    manager.pause()
    calls = Calls()
    waiters = [asyncio.ensure_future(_checkpoint(manager, mode, f"b{i}", calls)) for i in range(3)]
    await asyncio.to_thread(_wait_until, lambda: manager.waiting == 3)
    manager.cancel("stop now")
    results = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), WAIT)
    assert all(isinstance(r, ScanCancelled) and r.reason == "stop now" for r in results)
    assert calls.log == ["pause"]


@pytest.mark.timeout(20)
def test_cancel_from_timer_thread_releases_a_paused_sync_safe_point() -> None:
    """cancel() from another thread (threading.Timer) wakes a sync waiter, which raises ScanCancelled."""
    manager = CancellationManager("scan-timer")
    manager.pause()
    timer = threading.Timer(0.1, manager.cancel, args=("timer",))
    timer.start()
    try:
        with pytest.raises(ScanCancelled, match="timer"):
            manager.checkpoint_sync("n1")
    finally:
        timer.cancel()


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs POSIX signals")
@pytest.mark.timeout(20)
def test_cancel_from_a_signal_handler_interrupting_the_waiting_thread() -> None:
    """A signal handler that calls cancel() on the thread blocked in the safe point does not deadlock."""
    manager = CancellationManager("scan-signal")
    manager.pause()
    previous = signal.signal(signal.SIGUSR1, lambda *_: manager.cancel("SIGUSR1"))
    timer = threading.Timer(0.1, os.kill, args=(os.getpid(), signal.SIGUSR1))
    timer.start()
    try:
        with pytest.raises(ScanCancelled, match="SIGUSR1"):
            manager.checkpoint_sync("n1")
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.timeout(20)
async def test_sync_safe_point_refuses_to_block_an_event_loop() -> None:
    """checkpoint_sync() on a loop thread while paused raises instead of freezing the loop."""
    manager = CancellationManager("scan-loop")
    manager.pause()
    with pytest.raises(InstrumentationError, match=r"await manager\.checkpoint"):
        manager.checkpoint_sync("n1")


@pytest.mark.timeout(20)
async def test_hard_cancel_stops_an_async_body_and_reports_scan_cancelled() -> None:
    """cancel(hard=True) interrupts an awaiting body inside cancel_scope and surfaces ScanCancelled."""
    manager = CancellationManager("scan-hard")
    entered = asyncio.Event()
    reached_end: list[bool] = []

    async def body() -> None:
        with manager.cancel_scope("slow_probe"):
            entered.set()
            await asyncio.sleep(30)
            reached_end.append(True)

    task = asyncio.create_task(body())
    await entered.wait()
    await asyncio.to_thread(manager.cancel, "hard stop", hard=True)
    with pytest.raises(ScanCancelled) as info:
        await asyncio.wait_for(task, WAIT)
    assert (info.value.reason, info.value.node) == ("hard stop", "slow_probe")
    assert reached_end == []
    assert not task.cancelled()
    assert task.cancelling() == 0


@pytest.mark.timeout(20)
async def test_soft_cancel_does_not_interrupt_the_body() -> None:
    """A plain cancel() lets the body finish; the scope exit does not raise, the next safe point does."""
    manager = CancellationManager("scan-soft")
    entered, release = asyncio.Event(), asyncio.Event()

    async def body() -> str:
        with manager.cancel_scope("n"):
            entered.set()
            await release.wait()
            return "finished"

    task = asyncio.create_task(body())
    await entered.wait()
    manager.cancel("soft")
    release.set()
    assert await asyncio.wait_for(task, WAIT) == "finished"
    with pytest.raises(ScanCancelled):
        await manager.checkpoint("next")


@pytest.mark.timeout(20)
async def test_foreign_cancellation_passes_through_the_scope() -> None:
    """A CancelledError not caused by the manager is re-raised unchanged by cancel_scope."""
    manager = CancellationManager("scan-foreign")
    entered = asyncio.Event()

    async def body() -> None:
        with manager.cancel_scope("n"):
            entered.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(body())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.timeout(20)
async def test_attach_task_receives_hard_cancel_and_detach_stops_it() -> None:
    """attach_task() tasks get task.cancel() on a hard cancel; detached ones do not."""
    manager = CancellationManager("scan-attach")
    attached = asyncio.create_task(asyncio.sleep(30))
    detached = asyncio.create_task(asyncio.sleep(30))
    manager.attach_task(attached)
    manager.attach_task(detached)()
    manager.cancel("hard", hard=True)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(attached, WAIT)
    await asyncio.sleep(0.05)
    assert not detached.done()
    detached.cancel()


def test_reset_clears_requests_for_the_next_invocation() -> None:
    """After reset() a cancelled, drained manager lets safe points pass and gives undrained controls."""
    manager = CancellationManager("scan-reset")
    manager.cancel("x")
    manager.drain("y")
    manager.reset()
    manager.checkpoint_sync("n")
    assert not manager.is_cancelled and not manager.is_drain_requested
    assert not manager.run_control().drain_requested


def test_drain_applies_to_current_and_pending_run_controls() -> None:
    """drain() drains the control of the running invocation, or the next one created."""
    manager = CancellationManager("scan-drain")
    current = manager.run_control()
    manager.drain("shutdown")
    assert current.drain_reason == "shutdown"
    fresh = CancellationManager("scan-drain-2")
    fresh.drain("early")
    assert fresh.run_control().drain_reason == "early"


@pytest.mark.timeout(20)
def test_drain_lifts_a_pause_so_the_superstep_can_finish() -> None:
    """A drain while paused releases the waiting safe point instead of leaving it blocked."""
    manager = CancellationManager("scan-drain-pause")
    manager.pause()
    timer = threading.Timer(0.1, manager.drain, args=("exit",))
    timer.start()
    manager.checkpoint_sync("n")
    timer.join()
    assert manager.drain_reason == "exit" and not manager.is_paused


def test_apply_maps_actions_and_rejects_unknown_ones() -> None:
    """apply() dispatches the four action names and names a bad one in ValueError."""
    manager = CancellationManager("scan-apply")
    manager.apply("pause")
    assert manager.is_paused
    manager.apply("resume")
    assert not manager.is_paused
    manager.apply("cancel", "why")
    assert manager.cancel_reason == "why"
    with pytest.raises(ValueError, match="'explode'"):
        manager.apply("explode")


def test_snapshot_round_trip() -> None:
    """save_snapshot() keeps the latest value for get_snapshot()."""
    manager = CancellationManager("scan-snap")
    assert manager.get_snapshot() is None
    manager.save_snapshot({"step": 1})
    manager.save_snapshot({"step": 2})
    assert manager.get_snapshot() == {"step": 2}


def test_registry_creates_on_demand_and_removes() -> None:
    """get_manager() returns one manager per scan id until remove_manager() drops it."""
    scan_id = f"reg-{uuid.uuid4().hex}"
    first = get_manager(scan_id)
    assert get_manager(scan_id) is first
    assert managers()[scan_id] is first
    assert remove_manager(scan_id) is first
    assert scan_id not in managers()
    assert get_manager(scan_id) is not first
    remove_manager(scan_id)


def test_invalid_scan_id_is_refused() -> None:
    """A run id that cannot be stored is refused when the manager is created."""
    with pytest.raises(InvalidRunIdError):
        CancellationManager("")


@pytest.mark.timeout(20)
def test_failing_callbacks_are_isolated(caplog: pytest.LogCaptureFixture) -> None:
    """on_pause/on_resume callbacks that raise are logged; the safe point still waits and proceeds."""
    manager = CancellationManager("scan-cb")
    called: list[str] = []

    def failing(name: str) -> Callable[[], None]:
        def callback() -> None:
            called.append(name)
            raise RuntimeError(f"{name} subscriber down")

        return callback

    manager.pause()
    waiter = threading.Thread(
        target=manager.checkpoint_sync,
        args=("n",),
        kwargs={"on_pause": failing("pause"), "on_resume": failing("resume")},
    )
    waiter.start()
    _wait_until(lambda: manager.waiting == 1)
    manager.resume()
    waiter.join(WAIT)
    assert not waiter.is_alive()
    assert called == ["pause", "resume"]
    assert "subscriber down" in caplog.text


class _Counter(TypedDict):
    x: int


def test_stream_finalized_inside_the_registry_does_not_deadlock() -> None:
    """A stream closed (as the GC may, at any allocation) while its thread is inside the registry ends."""
    builder = StateGraph(_Counter)
    builder.add_node("a", lambda s: {"x": s["x"] + 1})
    builder.add_node("b", lambda s: {"x": s["x"] + 1})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", END)
    observer = SwarmObserver(heartbeat_interval=None)
    graph = observer.instrument(builder.compile())
    thread = f"gc-{uuid.uuid4().hex}"
    stream = graph.stream({"x": 0}, {"configurable": {"thread_id": thread}})
    next(stream)
    done = threading.Event()

    def close_inside_the_registry() -> None:
        with registry._lock:
            stream.close()
        done.set()

    threading.Thread(target=close_inside_the_registry, daemon=True).start()
    assert done.wait(10), "closing the stream inside the registry deadlocked"
    kinds = [e.type_name for e in observer.store.load(thread)]
    assert kinds[0] == "scan_started" and kinds[-1].startswith("scan_")
