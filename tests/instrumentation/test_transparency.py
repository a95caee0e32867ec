"""An instrumented graph behaves like the plain one in everything a user or LangGraph can observe.

One test (or a parametrized group) per cause found by running LangGraph's own suites instrumented
(issue 16): streams, drawing and node attributes, memory retention, thread ids, Runnable returns
under ainvoke, copies, the graph's class and checkpointer traffic.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import logging
import operator
import time
import weakref
from typing import Annotated, Any

import pytest
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from swarm_observability import StreamEvent, SwarmObserver, stream_events


class S(TypedDict):
    x: Annotated[list, operator.add]


def _writing_graph(**compile_kwargs: Any) -> Any:
    """Two nodes that write their own custom payloads and read nothing else."""

    def a(state: S) -> dict:
        get_stream_writer()({"mine": "a"})
        return {"x": ["a"]}

    def b(state: S) -> dict:
        get_stream_writer()({"mine": "b"})
        return {"x": ["b"]}

    builder = StateGraph(S)
    builder.add_node("a", a)
    builder.add_node("b", b)
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", END)
    return builder.compile(**compile_kwargs)


async def _astream(graph: Any, **kwargs: Any) -> list[Any]:
    return [chunk async for chunk in graph.astream({"x": []}, {"configurable": {"thread_id": "t"}}, **kwargs)]


STREAM_ARGS = [
    {"stream_mode": "custom"},
    {"stream_mode": ["custom", "updates"]},
    {"stream_mode": ["custom", "values"], "subgraphs": True},
    {"stream_mode": "custom", "version": "v2"},
]


@pytest.mark.parametrize("kwargs", STREAM_ARGS, ids=["custom", "list", "subgraphs", "v2"])
def test_streams_are_unchanged_by_default(kwargs: dict[str, Any]) -> None:
    """By default every stream mode yields exactly what the plain graph yields (no StreamEvent in custom)."""
    plain = asyncio.run(_astream(_writing_graph(), **kwargs))
    observer = SwarmObserver(heartbeat_interval=None)
    graph = observer.instrument(_writing_graph())
    assert asyncio.run(_astream(graph, **kwargs)) == plain
    assert list(graph.stream({"x": []}, {"configurable": {"thread_id": "t"}}, **kwargs)) == list(
        _writing_graph().stream({"x": []}, {"configurable": {"thread_id": "t"}}, **kwargs)
    )
    assert observer.store.load("t"), "the events still reach the store"


def test_custom_stream_opt_in_interleaves_our_events_and_keeps_the_users() -> None:
    """custom_stream=True adds our events to stream_mode='custom'; the user's payloads stay, in order."""
    observer = SwarmObserver(heartbeat_interval=None, custom_stream=True)
    items = asyncio.run(_astream(observer.instrument(_writing_graph()), stream_mode="custom"))
    assert [i for i in items if not isinstance(i, StreamEvent)] == [{"mine": "a"}, {"mine": "b"}]
    ours = [i.id for i in items if isinstance(i, StreamEvent)]
    assert ours == [e.id for e in observer.store.load("t")]


def test_stream_events_yields_our_events_without_the_opt_in() -> None:
    """stream_events() yields every stored event (and nothing of the user's) with the default observer."""
    observer = SwarmObserver(heartbeat_interval=None)
    graph = observer.instrument(_writing_graph())

    async def collect() -> list[StreamEvent]:
        async with stream_events(graph, {"x": []}, {"configurable": {"thread_id": "t"}}) as events:
            return [event async for event in events]

    got = asyncio.run(collect())
    assert [e.id for e in got] == [e.id for e in observer.store.load("t")]
    assert got[0].type_name == "scan_started" and got[-1].type_name == "scan_complete"


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return query.upper()


def _drawn_graph() -> Any:
    inner = StateGraph(S)
    inner.add_node("deep", lambda s: {"x": ["deep"]})
    inner.add_edge(START, "deep")

    def plain_node(state: S) -> dict:
        return {"x": ["n"]}

    builder = StateGraph(S)
    builder.add_node("n", plain_node)
    builder.add_node("sub", inner.compile())
    builder.add_node("tools", ToolNode([lookup]))
    builder.add_edge(START, "n")
    builder.add_edge("n", "sub")
    builder.add_edge("sub", END)
    return builder.compile()


def test_drawing_and_node_attributes_are_unchanged() -> None:
    """get_graph() JSON and Mermaid (xray too), .bound.func, a ToolNode's tools_by_name and subgraphs stay."""
    plain = _drawn_graph()
    graph = _drawn_graph()
    func = graph.nodes["n"].bound.func
    SwarmObserver(heartbeat_interval=None).instrument(graph)
    assert graph.get_graph().to_json() == plain.get_graph().to_json()
    assert graph.get_graph().draw_mermaid() == plain.get_graph().draw_mermaid()
    assert graph.get_graph(xray=True).draw_mermaid() == plain.get_graph(xray=True).draw_mermaid()
    assert graph.nodes["n"].bound.func is func
    assert set(graph.nodes["tools"].bound.tools_by_name) == {"lookup"}
    assert [type(s) for s in graph.nodes["sub"].subgraphs] == [type(s) for s in plain.nodes["sub"].subgraphs]
    assert type(graph) is CompiledStateGraph and type(graph) is type(plain)


class _Payload:
    """A state value whose lifetime the test watches."""


def test_a_finished_run_is_not_kept_alive_by_the_heartbeat_thread() -> None:
    """After invoke returns, nothing of ours (heartbeat thread included) holds the run's state."""

    class P(TypedDict):
        payload: Any

    def slow(state: P) -> dict:
        time.sleep(0.08)  # long enough for the heartbeat thread to beat for this node
        return {}

    builder = StateGraph(P)
    builder.add_node("slow", slow)
    builder.add_edge(START, "slow")
    observer = SwarmObserver(heartbeat_interval=0.02)
    graph = observer.instrument(builder.compile())
    payload = _Payload()
    watch = weakref.ref(payload)
    graph.invoke({"payload": payload}, {"configurable": {"thread_id": "t"}})
    assert any(e.type_name == "heartbeat" for e in observer.store.load("t"))
    del payload
    gc.collect()
    assert watch() is None, gc.get_referrers(watch()) if watch() is not None else None
    observer.close()


@pytest.mark.parametrize("thread_id", ["t" * 300, "line\nbreak", "tab\there\x00nul", ""])
def test_thread_ids_langgraph_accepts_are_never_refused(
    thread_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A thread id the log cannot store runs anyway: events under a stable safe run id, original kept."""
    observer = SwarmObserver(heartbeat_interval=None)
    graph = observer.instrument(_writing_graph(checkpointer=InMemorySaver()))
    config = {"configurable": {"thread_id": thread_id}}
    with caplog.at_level(logging.WARNING, logger="swarm_observability"):
        assert graph.invoke({"x": []}, config) == {"x": ["a", "b"]}
        graph.invoke(None, config)
    runs = [r.run_id for r in observer.store.runs()]
    assert len(runs) == 1 and runs[0].startswith("thread-")
    events = observer.store.load(runs[0])
    assert {e.thread_id for e in events} == {thread_id}
    assert [e.type_name for e in events if e.type_name.startswith("scan_")] == [
        "scan_started",
        "scan_complete",
        "scan_resumed",
        "scan_complete",
    ]
    assert "cannot be a run id" in caplog.text


def test_sync_node_returning_a_runnable_works_under_ainvoke() -> None:
    """A sync node that returns an async-only Runnable runs it under ainvoke, as LangGraph does."""

    async def later(state: S) -> dict:
        return {"x": ["later"]}

    def node(state: S) -> Any:
        return RunnableLambda(later)

    def build() -> Any:
        builder = StateGraph(S)
        builder.add_node("n", node)
        builder.add_edge(START, "n")
        return builder.compile()

    plain = asyncio.run(build().ainvoke({"x": []}))
    observer = SwarmObserver(heartbeat_interval=None)
    graph = observer.instrument(build())
    assert asyncio.run(graph.ainvoke({"x": []}, {"configurable": {"thread_id": "t"}})) == plain
    assert [e.type_name for e in observer.store.load("t")][-1] == "scan_complete"


def _outcome(graph: Any, thread_id: str) -> Any:
    try:
        return graph.invoke({"x": []}, {"configurable": {"thread_id": thread_id}})
    except Exception as exc:  # a deep-copied graph fails in LangGraph itself (its sentinels are copied)
        return type(exc)


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy], ids=["copy", "deepcopy"])
def test_copies_behave_like_copies_of_the_plain_graph(how: Any) -> None:
    """copy.copy/deepcopy work, keep the class, run like the plain graph's copy and stay instrumented."""
    observer = SwarmObserver(heartbeat_interval=None)
    graph = observer.instrument(_writing_graph())
    twin = how(graph)
    assert type(twin) is CompiledStateGraph and observer.is_instrumented(twin)
    assert _outcome(twin, "copy") == _outcome(how(_writing_graph()), "plain")
    assert observer.store.load("copy")[0].type_name == "scan_started"
    configured = graph.with_config(recursion_limit=5)
    assert type(configured) is CompiledStateGraph and observer.is_instrumented(configured)
    assert configured.invoke({"x": []}, {"configurable": {"thread_id": "cfg"}}) == {"x": ["a", "b"]}
    assert observer.store.load("cfg")[-1].type_name == "scan_complete"


class _CountingSaver(InMemorySaver):
    """An in-memory saver that counts checkpoint reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get_tuple(self, config: Any) -> Any:
        self.reads += 1
        return super().get_tuple(config)

    async def aget_tuple(self, config: Any) -> Any:
        self.reads += 1
        return await super().aget_tuple(config)


def _interrupting(saver: Any) -> Any:
    def ask(state: S) -> dict:
        return {"x": [interrupt("ok?")]}

    builder = StateGraph(S)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    return builder.compile(checkpointer=saver)


@pytest.mark.parametrize("api", ["invoke", "ainvoke"])
def test_resume_reads_the_checkpointer_as_often_as_plain_langgraph(api: str) -> None:
    """Command(resume=...) costs the same checkpoint reads instrumented as plain."""

    def reads(graph: Any, saver: _CountingSaver) -> int:
        config = {"configurable": {"thread_id": "t"}}
        if api == "invoke":
            graph.invoke({"x": []}, config)
            saver.reads = 0
            graph.invoke(Command(resume="yes"), config)
        else:

            async def both() -> None:
                await graph.ainvoke({"x": []}, config)
                saver.reads = 0
                await graph.ainvoke(Command(resume="yes"), config)

            asyncio.run(both())
        return saver.reads

    plain_saver, saver = _CountingSaver(), _CountingSaver()
    plain = reads(_interrupting(plain_saver), plain_saver)
    observer = SwarmObserver(heartbeat_interval=None)
    assert reads(observer.instrument(_interrupting(saver)), saver) == plain
    assert [e.type_name for e in observer.store.load("t")][-1] == "scan_complete"


def test_astream_events_yields_what_the_plain_graph_yields() -> None:
    """astream_events(v2) (LangGraph streams each node then) gives the same events, names and data."""

    async def events(graph: Any) -> list[tuple[str, str, Any]]:
        config = {"configurable": {"thread_id": "t"}}
        return [
            (e["event"], e["name"], e["data"].get("output"))
            async for e in graph.astream_events({"x": []}, config, version="v2")
        ]

    plain = asyncio.run(events(_writing_graph()))
    observer = SwarmObserver(heartbeat_interval=None)
    assert asyncio.run(events(observer.instrument(_writing_graph()))) == plain
    assert [e.type_name for e in observer.store.load("t")].count("node_exit") == 2


def test_a_subgraph_shared_with_another_observer_does_not_break_the_parent() -> None:
    """Compiling a parent around a subgraph another observer instruments works; its nodes report here."""
    inner = StateGraph(S)
    inner.add_node("deep", lambda s: {"x": ["deep"]})
    inner.add_edge(START, "deep")
    shared = SwarmObserver(heartbeat_interval=None).instrument(inner.compile(name="shared"))
    outer = StateGraph(S)
    outer.add_node("sub", shared)
    outer.add_edge(START, "sub")
    observer = SwarmObserver(heartbeat_interval=None)
    graph = observer.instrument(outer.compile())
    assert graph.invoke({"x": []}, {"configurable": {"thread_id": "t"}}) == {"x": ["deep"]}
    assert [e.node for e in observer.store.load("t") if e.type_name == "node_enter"] == ["sub", "deep"]
