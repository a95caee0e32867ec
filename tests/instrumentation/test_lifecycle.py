"""The scan lifecycle: terminal events, cancellation, drain, control pause, nesting, ids, stream shapes."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphDrained
from langgraph.runtime import RunControl

from swarm_observability import probe
from swarm_observability.control.registry import get_manager, remove_manager
from swarm_observability.events import StreamEvent
from swarm_observability.exceptions import ScanCancelled
from swarm_observability.instrumentation.observer import SwarmObserver

from .helpers import ChainState as S
from .helpers import chain, run_api, types
from .swarm_graph import compile_swarm, swarm_input, thread_config


def _terminals(events: list[StreamEvent]) -> list[StreamEvent]:
    return [
        e for e in events if e.type_name in ("scan_complete", "scan_error", "scan_cancelled", "scan_paused")
    ]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("api", ["stream", "astream"])
def test_abandoned_stream_is_cancelled(observer: SwarmObserver, api: str) -> None:
    """Closing the stream after the first item ends the invocation with scan_cancelled(abandoned)."""
    graph = observer.instrument(compile_swarm(node_mode="sync" if api == "stream" else "async"))
    config = thread_config("t")
    if api == "stream":
        items = graph.stream(swarm_input(), config, stream_mode="custom")
        first = next(items)
        items.close()
    else:

        async def take_one() -> Any:
            items = graph.astream(swarm_input(), config, stream_mode="custom")
            item = await items.__anext__()
            await items.aclose()
            return item

        first = asyncio.run(take_one())
    events = observer.store.load("t")
    assert first.type_name == "scan_started"
    assert [(e.type_name, e.data["reason"]) for e in _terminals(events)] == [("scan_cancelled", "abandoned")]
    assert events[-1].type_name == "scan_cancelled" and events[-1].scope_id == first.scope_id


@pytest.mark.timeout(30)
def test_task_cancel_marks_running_nodes_and_probes_cancelled(observer: SwarmObserver) -> None:
    """task.cancel() while probes run: probes and their nodes end cancelled, then scan_cancelled."""
    graph = observer.instrument(compile_swarm(probe_delay=5.0))

    async def main() -> None:
        started = asyncio.Event()
        observer.emitter.subscribe(lambda e: e.type_name == "probe_start" and started.set())
        task = asyncio.create_task(graph.ainvoke(swarm_input(), thread_config("t")))
        await asyncio.wait_for(started.wait(), 10)
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    events = observer.store.load("t")
    completes = [e for e in events if e.type_name == "probe_complete"]
    probe_exits = [e for e in events if e.type_name == "node_exit" and e.node == "probe"]
    assert len(completes) == 3 and {e.data["outcome"] for e in completes} == {"cancelled"}
    assert len(probe_exits) == 3 and {e.data["outcome"] for e in probe_exits} == {"cancelled"}
    assert [(e.type_name, e.data["reason"]) for e in _terminals(events)] == [("scan_cancelled", "cancelled")]


@pytest.mark.parametrize("api", ["invoke", "ainvoke"])
def test_drain_pauses_and_resume_continues(observer: SwarmObserver, api: str) -> None:
    """RunControl.request_drain() ends the invocation with scan_paused(drain); GraphDrained is re-raised."""
    control = RunControl()

    def first(state: S) -> dict:
        control.request_drain("maintenance")
        return {"x": ["first"]}

    graph = observer.instrument(
        chain(("first", first), ("second", lambda s: {"x": ["second"]})).compile(checkpointer=InMemorySaver())
    )
    config = thread_config("t")
    _, exc = run_api(graph, api, {"x": []}, config, control=control)
    assert isinstance(exc, GraphDrained)
    paused = _terminals(observer.store.load("t"))[-1]
    assert paused.type_name == "scan_paused"
    assert paused.data["reason"] == "drain" and paused.data["drain_reason"] == "maintenance"
    assert paused.data["outcome"] == "paused"
    assert graph.invoke(None, config) == {"x": ["first", "second"]}
    events = observer.store.load("t")
    resumed = next(e for e in events if e.type_name == "scan_resumed")
    assert resumed.data["previous_invocation_id"] == paused.invocation_id
    assert [(e.type_name, e.node) for e in events if e.invocation_id == resumed.invocation_id] == [
        ("scan_resumed", None),
        ("node_enter", "second"),
        ("node_exit", "second"),
        ("scan_complete", None),
    ]


@pytest.mark.parametrize("api", ["stream", "astream"])
def test_control_cancel_at_safe_point(observer: SwarmObserver, api: str) -> None:
    """A cancel requested inside a node takes effect at its exit safe point: node and scan cancelled."""
    run_id = f"cancel-{api}"

    def first(state: S) -> dict:
        get_manager(run_id).cancel("operator stop")
        return {"x": ["first"]}

    graph = observer.instrument(chain(("first", first), ("second", lambda s: {"x": ["second"]})).compile())
    try:
        seen, exc = run_api(graph, api, {"x": []}, thread_config(run_id))
    finally:
        remove_manager(run_id)
    assert isinstance(exc, ScanCancelled)
    events = observer.store.load(run_id)
    assert [(e.type_name, e.node) for e in events] == [
        ("scan_started", None),
        ("node_enter", "first"),
        ("node_exit", "first"),
        ("scan_cancelled", "first"),
    ]
    assert events[2].data["outcome"] == "cancelled" and events[2].data["reason"] == "operator stop"
    assert events[-1].data["reason"] == "operator stop" and events[-1].data["outcome"] == "cancelled"
    assert [e.id for _, e in seen] == [e.id for e in events]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("api", ["invoke", "ainvoke"])
def test_control_pause_and_resume_emit_events(observer: SwarmObserver, api: str) -> None:
    """A pause holds the scan at the next safe point; scan_paused/scan_resumed(pause) bracket the wait."""
    run_id = f"pause-{api}"

    def first(state: S) -> dict:
        get_manager(run_id).pause()
        threading.Timer(0.05, get_manager(run_id).resume).start()
        return {"x": ["first"]}

    graph = observer.instrument(chain(("first", first), ("second", lambda s: {"x": ["second"]})).compile())
    try:
        _, exc = run_api(graph, api, {"x": []}, thread_config(run_id))
    finally:
        remove_manager(run_id)
    assert exc is None
    events = observer.store.load(run_id)
    assert [(e.type_name, e.node) for e in events] == [
        ("scan_started", None),
        ("node_enter", "first"),
        ("scan_paused", "first"),
        ("scan_resumed", "first"),
        ("node_exit", "first"),
        ("node_enter", "second"),
        ("node_exit", "second"),
        ("scan_complete", None),
    ]
    assert events[2].data == {"reason": "pause", "outcome": "paused"} and events[3].data == {
        "reason": "pause"
    }
    assert {events[2].scope_id, events[3].scope_id} == {events[0].invocation_id}


def test_static_interrupt_before_pauses(observer: SwarmObserver) -> None:
    """interrupt_before stops the run without a node raising; that is scan_paused(interrupt), next named."""
    graph = observer.instrument(
        chain(("a", lambda s: {"x": ["a"]}), ("b", lambda s: {"x": ["b"]})).compile(
            checkpointer=InMemorySaver(), interrupt_before=["b"]
        )
    )
    graph.invoke({"x": []}, thread_config("t"))
    paused = _terminals(observer.store.load("t"))
    assert [(e.type_name, e.data["reason"], e.data["next"]) for e in paused] == [
        ("scan_paused", "interrupt", ["b"])
    ]


@pytest.mark.parametrize("api", ["invoke", "ainvoke"])
def test_graph_invoked_inside_a_node_joins_the_enclosing_scan(observer: SwarmObserver, api: str) -> None:
    """A graph called inside a node adds no second lifecycle; its nodes nest under the calling node."""
    inner = observer.instrument(chain(("inner", lambda s: {"x": ["i"]})).compile())

    def outer_sync(state: S) -> dict:
        return inner.invoke({"x": []})

    async def outer_async(state: S) -> dict:
        return await inner.ainvoke({"x": []})

    graph = observer.instrument(chain(("outer", outer_sync if api == "invoke" else outer_async)).compile())
    _, exc = run_api(graph, api, {"x": []}, thread_config("t"))
    assert exc is None
    events = observer.store.load("t")
    assert [(e.type_name, e.node) for e in events] == [
        ("scan_started", None),
        ("node_enter", "outer"),
        ("node_enter", "inner"),
        ("node_exit", "inner"),
        ("node_exit", "outer"),
        ("scan_complete", None),
    ]
    assert events[2].parent_scope_id == events[1].scope_id
    assert events[2].namespace == (f"outer:{events[1].task_id}",)


def test_run_id_from_scan_id_or_fresh(observer: SwarmObserver) -> None:
    """configurable["scan_id"] names the run; without a thread id every invocation gets a fresh run id."""
    graph = observer.instrument(chain(("a", lambda s: {"x": ["a"]})).compile())
    graph.invoke({"x": []}, thread_config("thread-9", scan_id="scan-42"))
    assert {(e.run_id, e.thread_id) for e in observer.store.load("scan-42")} == {("scan-42", "thread-9")}
    graph.invoke({"x": []})
    graph.invoke({"x": []})
    fresh = [run.run_id for run in observer.store.runs() if run.run_id != "scan-42"]
    assert len(fresh) == 2 and all(len(r) == 32 for r in fresh)
    assert {e.thread_id for r in fresh for e in observer.store.load(r)} == {None}


@pytest.mark.parametrize(
    ("kwargs", "shape"),
    [
        ({"stream_mode": "custom"}, lambda e: e),
        ({"stream_mode": ["custom", "updates"]}, lambda e: ("custom", e)),
        ({"stream_mode": "custom", "subgraphs": True}, lambda e: ((), e)),
        ({"stream_mode": ["custom"], "subgraphs": True}, lambda e: ((), "custom", e)),
        (
            {"stream_mode": ["custom", "values"], "version": "v2"},
            lambda e: {"type": "custom", "ns": (), "data": e},
        ),
        ({"stream_mode": "values"}, None),
    ],
    ids=["single", "list", "subgraphs", "list-subgraphs", "v2", "no-custom"],
)
def test_lifecycle_items_follow_the_stream_shape(observer: SwarmObserver, kwargs: dict, shape: Any) -> None:
    """scan_started and the terminal event are yielded in LangGraph's shape for the requested modes."""
    graph = observer.instrument(chain(("a", lambda s: {"x": ["a"]})).compile())
    items = list(graph.stream({"x": []}, thread_config("t"), **kwargs))
    first, last = observer.store.load("t")[0], observer.store.load("t")[-1]
    if shape is None:
        assert all(
            not isinstance(i, StreamEvent) and first not in (i if isinstance(i, tuple) else ()) for i in items
        )
    else:
        assert items[0] == shape(first) and items[-1] == shape(last)
        custom = [i for i in items if i == shape(first) or i == shape(last)]
        assert len(custom) == 2


@pytest.mark.timeout(30)
@pytest.mark.parametrize("api", ["stream", "astream"])
def test_heartbeats_for_long_nodes_and_probes(api: str) -> None:
    """A node and a probe running past the interval emit heartbeats in their scope, also to the stream."""
    observer = SwarmObserver(heartbeat_interval=0.02, custom_stream=True)

    def slow(state: S) -> dict:
        with probe("long"):
            time.sleep(0.15)
        return {"x": ["slow"]}

    async def aslow(state: S) -> dict:
        async with probe("long"):
            await asyncio.sleep(0.15)
        return {"x": ["slow"]}

    graph = observer.instrument(chain(("slow", slow if api == "stream" else aslow)).compile())
    seen, exc = run_api(graph, api, {"x": []}, thread_config("t"))
    observer.close()
    assert exc is None
    events = observer.store.load("t")
    node_scope = next(e.scope_id for e in events if e.type_name == "node_enter")
    probe_scope = next(e.scope_id for e in events if e.type_name == "probe_start")
    beats = [e for e in events if e.type_name == "heartbeat"]
    assert {e.scope_id for e in beats} == {node_scope, probe_scope}
    assert all(e.data["elapsed_s"] > 0 and e.node == "slow" for e in beats)
    closes = {e.scope_id: e.seq for e in events if e.type_name in ("node_exit", "probe_complete")}
    assert all(e.seq < closes[e.scope_id] for e in beats)
    assert [e.id for _, e in seen] == [e.id for e in events]


def test_default_heartbeat_interval() -> None:
    """Heartbeats are on by default every 15 s; 0 or None turns them off."""
    assert SwarmObserver().heartbeat_interval == 15.0
    assert SwarmObserver(heartbeat_interval=0).heartbeat_interval is None
    for bad in (-1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="heartbeat_interval must be >= 0 seconds and finite"):
            SwarmObserver(heartbeat_interval=bad)


@pytest.mark.parametrize("kwargs", [{"store": "memory://"}, {"store": 5}, {"emitter": object()}])
def test_a_store_or_emitter_of_another_kind_is_refused_at_once(kwargs: dict[str, object]) -> None:
    """A URL string (or anything else) as store or emitter is a TypeError naming it, not runs lost later."""
    name = next(iter(kwargs))
    with pytest.raises(TypeError, match=f"^{name} must be an? "):
        SwarmObserver(**kwargs)  # type: ignore[arg-type]


def test_observer_events_helper_closes_early(observer: SwarmObserver) -> None:
    """observer.events() yields only StreamEvents; leaving the loop early ends the scan as abandoned."""
    graph = compile_swarm()

    async def main() -> list[str]:
        names = []
        async with contextlib.aclosing(observer.events(graph, swarm_input(), thread_config("t"))) as events:
            async for event in events:
                names.append(event.type_name)
                if event.type_name == "node_exit":
                    break
        return names

    assert asyncio.run(main()) == [
        "scan_started",
        "node_enter",
        "plan_start",
        "log",
        "plan_complete",
        "node_exit",
    ]
    assert observer.store.load("t")[-1].data["reason"] == "abandoned"


@pytest.mark.timeout(30)
def test_concurrent_scans_keep_separate_logs(observer: SwarmObserver) -> None:
    """Two scans of one graph running at once on one loop each get their own complete, gapless log."""
    graph = observer.instrument(compile_swarm(probe_delay=0.01))

    async def main() -> None:
        await asyncio.gather(*(graph.ainvoke(swarm_input(), thread_config(t)) for t in ("a", "b")))

    asyncio.run(main())
    logs = {t: observer.store.load(t) for t in ("a", "b")}
    assert [len(v) for v in logs.values()] == [50, 50]
    for thread, events in logs.items():
        assert [e.seq for e in events] == list(range(1, 51))
        assert {e.run_id for e in events} == {thread} and len({e.invocation_id for e in events}) == 1
        assert types(events)[0] == "scan_started" and types(events)[-1] == "scan_paused"


def test_log_appended_elsewhere_between_invocations_is_respected(observer: SwarmObserver) -> None:
    """An event another process appended to the run between invocations is continued, not overwritten."""
    from swarm_observability.events import make_event

    graph = observer.instrument(chain(("a", lambda s: {"x": ["a"]})).compile(checkpointer=InMemorySaver()))
    graph.invoke({"x": []}, thread_config("t"))
    last = observer.store.last_sequence("t")
    foreign = make_event("log", "t", seq=last + 1, message="appended by another process")
    observer.store.append(foreign)
    graph.invoke({"x": []}, thread_config("t"))
    events = observer.store.load("t")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[last].id == foreign.id and events[last + 1].type_name == "scan_started"


@pytest.mark.timeout(30)
def test_heartbeat_timer_wakes_again_after_going_idle() -> None:
    """After every scope closed and the timer idled, a later long node still gets repeated heartbeats."""
    observer = SwarmObserver(heartbeat_interval=0.02, custom_stream=True)
    graph = observer.instrument(chain(("slow", lambda s: time.sleep(0.12) or {"x": ["slow"]})).compile())
    try:
        for thread in ("first", "second"):
            graph.invoke({"x": []}, thread_config(thread))
            time.sleep(0.1)  # nothing open: the timer thread goes to its untimed wait
    finally:
        observer.close()
    for thread in ("first", "second"):
        events = observer.store.load(thread)
        node = next(e for e in events if e.type_name == "node_enter")
        exit_seq = next(e.seq for e in events if e.type_name == "node_exit")
        beats = [e for e in events if e.type_name == "heartbeat"]
        assert len(beats) >= 2 and {e.scope_id for e in beats} == {node.scope_id}
        assert all(e.seq < exit_seq for e in beats)
