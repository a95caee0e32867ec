"""What an invocation leaves behind: live pause events, control state, drain wiring, durability, registry."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphDrained
from langgraph.types import Command, interrupt

from swarm_observability import stream_events
from swarm_observability.control.registry import get_manager, managers, remove_manager
from swarm_observability.events import StreamEvent
from swarm_observability.exceptions import ScanCancelled
from swarm_observability.instrumentation.observer import SwarmObserver
from swarm_observability.stores.memory import InMemoryEventStore
from swarm_observability.stores.sqlite import SQLiteEventStore

from .helpers import ChainState as S
from .helpers import chain, run_api, types
from .swarm_graph import compile_swarm, swarm_input, thread_config

TERMINALS = ("scan_complete", "scan_error", "scan_cancelled", "scan_paused")


def _chain(*nodes: tuple[str, Any], checkpointer: Any = None) -> Any:
    return chain(*nodes).compile(checkpointer=checkpointer or InMemorySaver())


def _scan_level(events: list[StreamEvent]) -> list[tuple[str, Any]]:
    """(type, reason) of the events on invocation scopes: lifecycle, pauses, terminals."""
    return [(e.type_name, e.data.get("reason")) for e in events if e.scope_id == e.invocation_id]


@pytest.fixture
def run_id(request: pytest.FixtureRequest) -> Iterator[str]:
    """A run id unique to the test; its control manager is dropped afterwards."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:60]
    yield name
    remove_manager(name)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("api", "node_kind"), [("stream", "sync"), ("astream", "sync"), ("astream", "async")]
)
def test_pause_seen_at_node_entry_reaches_the_stream(
    observer: SwarmObserver, run_id: str, api: str, node_kind: str
) -> None:
    """A pause first seen at a node-entry safe point streams scan_paused/scan_resumed like the store."""

    def first(state: S) -> dict:
        return {"x": ["first"]}

    async def second(state: S) -> dict:
        return {"x": ["second"]}

    def pause_after_first(event: StreamEvent) -> None:
        if event.type_name == "node_exit" and event.node == "first":  # past first's last safe point
            manager = get_manager(run_id)
            manager.pause()
            threading.Timer(0.05, manager.resume).start()

    observer.emitter.subscribe(pause_after_first)
    graph = observer.instrument(
        _chain(("first", first), ("second", second if node_kind == "async" else lambda s: {"x": ["second"]}))
    )
    seen, exc = run_api(graph, api, {"x": []}, thread_config(run_id))
    assert exc is None
    events = observer.store.load(run_id)
    assert [(e.type_name, e.node) for e in events][2:6] == [
        ("node_exit", "first"),
        ("scan_paused", "second"),
        ("scan_resumed", "second"),
        ("node_enter", "second"),
    ]
    assert [e.id for _, e in seen] == [e.id for e in events]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("api", ["invoke", "ainvoke"])
def test_cancelled_scan_resumes_in_the_same_process(observer: SwarmObserver, run_id: str, api: str) -> None:
    """After a cancelled invocation the same manager lets invoke(None) resume and complete the scan."""
    calls: list[str] = []

    def first(state: S) -> dict:
        calls.append("first")
        if len(calls) == 1:
            get_manager(run_id).cancel("operator stop")
        return {"x": ["first"]}

    graph = observer.instrument(_chain(("first", first), ("second", lambda s: {"x": ["second"]})))
    _, exc = run_api(graph, api, {"x": []}, thread_config(run_id))
    assert isinstance(exc, ScanCancelled)
    _, exc = run_api(graph, api, None, thread_config(run_id))
    assert exc is None
    events = observer.store.load(run_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert _scan_level(events) == [
        ("scan_started", None),
        ("scan_cancelled", "operator stop"),
        ("scan_resumed", None),
        ("scan_complete", None),
    ]
    assert types(events[-4:-1]) == ["node_exit", "node_enter", "node_exit"] and events[-2].node == "second"


@pytest.mark.timeout(30)
def test_cancel_issued_once_the_terminal_event_is_out_applies_to_the_next_invocation(
    observer: SwarmObserver, run_id: str
) -> None:
    """A cancel made by a subscriber of the terminal event (between invocations) stops the next one."""

    def ask(state: S) -> dict:
        return {"x": [interrupt("go on?")]}

    def cancel_on_pause(event: StreamEvent) -> None:
        if event.type_name == "scan_paused":
            get_manager(run_id).cancel("not needed any more")

    observer.emitter.subscribe(cancel_on_pause)
    graph = observer.instrument(_chain(("ask", ask), ("after", lambda s: {"x": ["after"]})))
    graph.invoke({"x": []}, thread_config(run_id))
    assert get_manager(run_id).is_cancelled
    with pytest.raises(ScanCancelled, match="not needed any more"):
        graph.invoke(Command(resume="yes"), thread_config(run_id))
    assert _scan_level(observer.store.load(run_id))[-1] == ("scan_cancelled", "not needed any more")
    assert not get_manager(run_id).is_cancelled


@pytest.mark.timeout(30)
@pytest.mark.parametrize("api", ["invoke", "ainvoke", "astream"])
def test_manager_drain_works_without_passing_control(observer: SwarmObserver, run_id: str, api: str) -> None:
    """manager.drain() ends an uncontrolled invocation with scan_paused(drain); invoke(None) finishes it."""
    drains: list[str] = []

    def first(state: S) -> dict:
        if not drains:
            drains.append("maintenance")
            get_manager(run_id).drain("maintenance")
        return {"x": ["first"]}

    graph = observer.instrument(_chain(("first", first), ("second", lambda s: {"x": ["second"]})))
    _, exc = run_api(graph, api, {"x": []}, thread_config(run_id))
    assert isinstance(exc, GraphDrained) and exc.reason == "maintenance"
    paused = observer.store.load(run_id)[-1]
    assert (paused.type_name, paused.data["reason"], paused.data["drain_reason"]) == (
        "scan_paused",
        "drain",
        "maintenance",
    )
    assert graph.invoke(None, thread_config(run_id)) == {"x": ["first", "second"]}
    assert _scan_level(observer.store.load(run_id))[-2:] == [("scan_resumed", None), ("scan_complete", None)]


def test_control_of_the_caller_or_an_enclosing_run_is_kept(observer: SwarmObserver, run_id: str) -> None:
    """A control= passed by the caller, or shared by an enclosing LangGraph run, is not replaced."""
    from langgraph.runtime import RunControl

    mine, outer_control = RunControl(), RunControl()
    seen: list[Any] = []

    def record(state: S, runtime: Any) -> dict:
        seen.append(runtime.control)
        return {"x": ["a"]}

    graph = observer.instrument(_chain(("a", record)))
    graph.invoke({"x": []}, thread_config(run_id), control=mine)
    outer = _chain(("outer", lambda s: graph.invoke({"x": []})))  # inherits the node's config
    outer.invoke({"x": []}, thread_config(run_id), control=outer_control)
    graph.invoke({"x": []}, thread_config(run_id))
    assert seen[0] is mine and seen[1] is outer_control
    assert isinstance(seen[2], RunControl) and seen[2] not in (mine, outer_control)


def _interrupting(state: S) -> dict:
    return {"x": [interrupt("approve?")]}


def _failing(state: S) -> dict:
    raise RuntimeError("boom")


def _cancelling(run_id: str) -> Any:
    def node(state: S) -> dict:
        get_manager(run_id).cancel("stop")
        return {"x": ["c"]}

    return node


@pytest.mark.timeout(60)
@pytest.mark.parametrize("api", ["invoke", "ainvoke", "astream"])
@pytest.mark.parametrize(
    ("ending", "terminal"),
    [
        ("ok", "scan_complete"),
        ("error", "scan_error"),
        ("cancel", "scan_cancelled"),
        ("interrupt", "scan_paused"),
    ],
)
def test_terminal_event_is_durable_when_the_call_returns(
    tmp_path: Path, run_id: str, api: str, ending: str, terminal: str
) -> None:
    """With a background-written SQLite store the terminal event is stored before the call returns."""
    node = {
        "ok": lambda s: {"x": ["ok"]},
        "error": _failing,
        "cancel": _cancelling(run_id),
        "interrupt": _interrupting,
    }[ending]
    with SQLiteEventStore(tmp_path / "events.db", durability="normal") as store:
        observer = SwarmObserver(store, heartbeat_interval=None)
        assert observer.emitter.write == "background"
        graph = observer.instrument(_chain(("a", lambda s: {"x": ["a"]}), ("b", node)))
        try:
            run_api(graph, api, {"x": []}, thread_config(run_id))
            assert store.load(run_id)[-1].type_name == terminal
        finally:
            observer.close()


@pytest.mark.timeout(30)
def test_flush_failure_does_not_break_the_result_and_is_raised_later(
    observer: SwarmObserver, run_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A background write failing at the end of an invocation is logged; the next flush raises it."""
    from swarm_observability.emitter import EventEmitter
    from swarm_observability.exceptions import EventStoreError
    from swarm_observability.stores.memory import InMemoryEventStore

    class BrokenStore(InMemoryEventStore):
        def append_batch(self, events: Any) -> Any:
            raise OSError("disk full")

        def append(self, event: Any) -> Any:
            raise OSError("disk full")

    emitter = EventEmitter(BrokenStore(), write="background")
    broken = SwarmObserver(emitter=emitter, heartbeat_interval=None)
    graph = broken.instrument(_chain(("a", lambda s: {"x": ["a"]})))
    assert graph.invoke({"x": []}, thread_config(run_id)) == {"x": ["a"]}
    with pytest.raises(EventStoreError, match="disk full"):
        emitter.flush()
    emitter.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["async-with", "aclosing"])
def test_closing_the_event_stream_ends_the_run_at_once(observer: SwarmObserver, how: str) -> None:
    """stream_events used as an async context manager (or in aclosing) ends the run as abandoned on exit."""
    graph = observer.instrument(compile_swarm())

    async def main() -> list[str]:
        names: list[str] = []
        items = stream_events(graph, swarm_input(), thread_config("t"))
        async with items if how == "async-with" else contextlib.aclosing(items) as events:
            async for event in events:
                names.append(event.type_name)
                if event.type_name == "node_enter":
                    break
        names.append(observer.store.load("t")[-1].type_name)
        return names

    assert asyncio.run(main()) == ["scan_started", "node_enter", "scan_cancelled"]
    # a sync node body cannot be stopped: on a slow machine its node_exit may land after the terminal event
    terminal = [e for e in observer.store.load("t") if e.type_name == "scan_cancelled"]
    assert len(terminal) == 1 and terminal[0].data["reason"] == "abandoned"


@pytest.mark.timeout(30)
def test_an_abandoned_event_stream_stays_open_until_collected(observer: SwarmObserver) -> None:
    """Breaking out without closing leaves the run open; dropping the stream then ends it as abandoned."""
    graph = observer.instrument(compile_swarm())

    async def main() -> tuple[str, str]:
        events = stream_events(graph, swarm_input(), thread_config("t"))
        async for event in events:
            if event.type_name == "node_enter":
                break
        await asyncio.sleep(0.05)
        while_held = observer.store.load("t")[-1].type_name
        del events
        gc.collect()
        for _ in range(500):
            if observer.store.load("t")[-1].type_name in TERMINALS:
                break
            await asyncio.sleep(0.01)
        return while_held, observer.store.load("t")[-1].type_name

    while_held, after = asyncio.run(main())
    assert while_held not in TERMINALS and after == "scan_cancelled"
    assert observer.store.load("t")[-1].data["reason"] == "abandoned"


class _CollectingStore(InMemoryEventStore):
    """An in-memory store in which a garbage collection starts inside ``append`` once armed (as any allocation
    there could start one), while the emitter holds its lock."""

    armed = False

    def append(self, event: StreamEvent) -> None:
        if self.armed:
            self.armed = False
            gc.collect()
        super().append(event)


@pytest.mark.timeout(60)
def test_a_stream_the_collector_finalizes_inside_the_emitter_does_not_deadlock() -> None:
    """An abandoned stream in a cycle, collected while its thread is inside the emitter, still ends."""
    store = _CollectingStore()
    observer = SwarmObserver(store=store, heartbeat_interval=None)
    graph = observer.instrument(_chain(("a", lambda s: {"x": ["a"]}), ("b", lambda s: {"x": ["b"]})))

    class Cycle:
        pass

    def run() -> None:
        cycle = Cycle()
        cycle.self, cycle.stream = cycle, graph.stream({"x": []}, thread_config("abandoned"))  # type: ignore[attr-defined]
        next(cycle.stream)  # type: ignore[attr-defined]
        del cycle
        store.armed = True
        graph.invoke({"x": []}, thread_config("other"))

    was_enabled = gc.isenabled()
    gc.disable()  # only the armed collection may finalize the stream
    try:
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(30)
    finally:
        if was_enabled:
            gc.enable()
    assert not worker.is_alive(), "deadlocked: the finalized stream waited for a lock its own thread holds"
    assert [e.type_name for e in store.load("other")][-1] == "scan_complete"
    for _ in range(500):
        if store.load("abandoned")[-1].type_name in TERMINALS:
            break
        threading.Event().wait(0.01)
    last = store.load("abandoned")[-1]
    assert (last.type_name, last.data["reason"]) == ("scan_cancelled", "abandoned")
    observer.close()


def test_manager_the_observer_created_is_dropped_at_the_end(observer: SwarmObserver, run_id: str) -> None:
    """A manager only the invocation used leaves the registry when the invocation ends; a held one stays."""
    graph = observer.instrument(_chain(("a", lambda s: {"x": ["a"]})))
    graph.invoke({"x": []}, thread_config(run_id))
    assert run_id not in managers()

    held = get_manager(run_id)
    graph.invoke({"x": []}, thread_config(run_id))
    assert managers().get(run_id) is held


def test_manager_kept_while_someone_holds_it_then_dropped(observer: SwarmObserver, run_id: str) -> None:
    """A manager a node fetched and kept survives the invocation; once released, a later end drops it."""
    kept: list[Any] = []
    calls: list[int] = []

    def grab(state: S) -> dict:
        calls.append(1)
        if len(calls) == 1:
            kept.append(get_manager(run_id))
        return {"x": ["a"]}

    graph = observer.instrument(_chain(("a", grab)))
    graph.invoke({"x": []}, thread_config(run_id))
    assert managers().get(run_id) is kept[0]
    kept.clear()
    graph.invoke({"x": []}, thread_config("someone-else"))
    assert run_id not in managers() and "someone-else" not in managers()


def test_manager_with_a_pending_request_stays_registered(observer: SwarmObserver, run_id: str) -> None:
    """A pause requested for the next invocation keeps the manager registered (so it is not lost)."""

    def ask(state: S) -> dict:
        return {"x": [interrupt("go on?")]}

    observer.emitter.subscribe(lambda e: e.type_name == "scan_paused" and get_manager(run_id).pause())
    graph = observer.instrument(_chain(("ask", ask)))
    graph.invoke({"x": []}, thread_config(run_id))
    assert run_id in managers() and managers()[run_id].is_paused
