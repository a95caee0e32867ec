"""An async run reads its store off the event loop: a blocking read there would stall every other task."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command, interrupt

from swarm_observability import EventEmitter, SwarmObserver
from swarm_observability.stores.jsonl import JSONLEventStore
from swarm_observability.stores.sqlite import SQLiteEventStore

from .helpers import ChainState, chain

_READS = ("last_sequence", "load", "load_since", "query", "iter_events", "list_runs")


def _guarded(base: type) -> type:
    """``base`` with every read method recording its name when called on a thread running an event loop."""

    def guard(name: str) -> Any:
        def read(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                self.on_loop.append(name)
            return getattr(base, name)(self, *args, **kwargs)

        return read

    return type(f"Guarded{base.__name__}", (base,), {name: guard(name) for name in _READS})


def _store(kind: str, tmp_path: Path) -> Any:
    if kind == "sqlite":
        store = _guarded(SQLiteEventStore)(tmp_path / "events.db")
    else:
        store = _guarded(JSONLEventStore)(tmp_path / "events.jsonl")
    store.on_loop = []
    return store


def _asking(state: ChainState) -> ChainState:
    return {"x": [str(interrupt("name?"))]}


async def _drive(graph: Any, how: str, input: Any, config: dict[str, Any]) -> None:
    if how == "ainvoke":
        await graph.ainvoke(input, config)
    else:
        async for _ in graph.astream(input, config):
            pass


@pytest.fixture(params=["sqlite", "jsonl"])
def kind(request: Any) -> str:
    """The file-backed stores, whose reads are blocking I/O."""
    return str(request.param)


@pytest.mark.parametrize("how", ["ainvoke", "astream"])
@pytest.mark.parametrize("chained", [False, True], ids=["plain", "hash_chain"])
def test_new_and_resumed_async_runs_read_nothing_on_the_loop(
    kind: str, how: str, chained: bool, tmp_path: Path
) -> None:
    """A first run, a resumed one (input None) and a fork read the store only off the event loop."""
    store = _store(kind, tmp_path)
    observer = SwarmObserver(emitter=EventEmitter(store, hash_chain=chained), heartbeat_interval=None)
    graph = observer.instrument(chain("a", "b").compile(checkpointer=InMemorySaver()))
    config = {"configurable": {"thread_id": "t"}}

    async def scenario() -> None:
        await _drive(graph, how, {"x": []}, config)
        await _drive(graph, how, {"x": []}, config)  # a new invocation of the same run
        await _drive(graph, how, None, config)  # a resume: the log names the previous invocation
        first = [s async for s in graph.aget_state_history(config)][-2].config
        await _drive(graph, how, None, first)  # a fork from an earlier checkpoint

    try:
        asyncio.run(scenario())
        observer.emitter.flush()
        events = store.load("t")
    finally:
        observer.close()
        store.close()
    assert store.on_loop == []
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    opening = [e for e in events if e.type_name in ("scan_started", "scan_resumed")]
    assert [e.type_name for e in opening] == ["scan_started", "scan_started", "scan_resumed", "scan_resumed"]
    assert "from_checkpoint_id" in opening[-1].data
    if chained:
        assert all(e.prev_hash for e in events)


def test_command_resume_after_an_interrupt_reads_nothing_on_the_loop(kind: str, tmp_path: Path) -> None:
    """ainvoke, interrupt(), then Command(resume=...) reads the log off the loop and continues its seqs."""
    store = _store(kind, tmp_path)
    observer = SwarmObserver(store=store, heartbeat_interval=None)
    graph = observer.instrument(chain("a", ("ask", _asking)).compile(checkpointer=InMemorySaver()))
    config = {"configurable": {"thread_id": "t"}}

    async def scenario() -> Any:
        await graph.ainvoke({"x": []}, config)
        return await graph.ainvoke(Command(resume="ada"), config)

    try:
        result = asyncio.run(scenario())
        observer.emitter.flush()
        events = store.load("t")
    finally:
        observer.close()
        store.close()
    assert result == {"x": ["a", "ada"]}
    assert store.on_loop == []
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.type_name for e in events if e.type_name.startswith("scan_")] == [
        "scan_started",
        "scan_paused",
        "scan_resumed",
        "scan_complete",
    ]
