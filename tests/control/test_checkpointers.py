"""get_checkpointer / aget_checkpointer / ThreadedSqliteSaver / timeline with real LangGraph graphs."""

from __future__ import annotations

import operator
import os
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, interrupt

from swarm_observability.checkpointers import (
    DATA_DIR_ENV,
    ThreadedSqliteSaver,
    aget_checkpointer,
    default_checkpoint_path,
    get_checkpointer,
    timeline,
)
from swarm_observability.emitter import EventEmitter
from swarm_observability.exceptions import CheckpointerError
from tests.instrumentation.helpers import chain


class State(TypedDict):
    x: Annotated[list[str], operator.add]


def _chain(async_nodes: bool, *, ask: bool = False) -> StateGraph:
    """first -> second (-> ask, which interrupts) ; second is async when async_nodes."""

    def first(state: State) -> dict[str, Any]:
        return {"x": ["first"]}

    def second_sync(state: State) -> dict[str, Any]:
        return {"x": ["second"]}

    async def second_async(state: State) -> dict[str, Any]:
        return {"x": ["second"]}

    def ask_node(state: State) -> dict[str, Any]:
        answer = interrupt("approve?")
        return {"x": [f"answer:{answer}"]}

    second = second_async if async_nodes else second_sync
    return chain(("first", first), ("second", second), *([("ask", ask_node)] if ask else []))


def _config(thread: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread}}


async def _run(graph: Any, call: str, payload: Any, config: RunnableConfig) -> dict[str, Any]:
    if call == "invoke":
        return graph.invoke(payload, config)
    if call == "stream":
        for _ in graph.stream(payload, config):
            pass
        return graph.get_state(config).values
    if call == "ainvoke":
        return await graph.ainvoke(payload, config)
    async for _ in graph.astream(payload, config, stream_mode="updates"):
        pass
    return (await graph.aget_state(config)).values


@pytest.mark.parametrize("persistent", [True, False], ids=["sqlite", "memory"])
@pytest.mark.parametrize("call", ["invoke", "stream", "ainvoke", "astream"])
async def test_one_saver_serves_sync_and_async_calls(tmp_path: Path, persistent: bool, call: str) -> None:
    """The same saver type runs a graph under invoke/stream and ainvoke/astream and records its state."""
    path = tmp_path / "ck.db" if persistent else None
    with get_checkpointer(persistent, path) as saver:
        graph = _chain(async_nodes=call.startswith("a")).compile(checkpointer=saver)
        values = await _run(graph, call, {"x": []}, _config("t1"))
        assert values["x"] == ["first", "second"]
        assert graph.get_state(_config("t1")).next == ()
        assert len(list(graph.get_state_history(_config("t1")))) == 4
    if persistent:
        with get_checkpointer(path=path) as reopened:
            graph = _chain(async_nodes=False).compile(checkpointer=reopened)
            assert graph.get_state(_config("t1")).values["x"] == ["first", "second"]


@pytest.mark.parametrize("call", ["invoke", "ainvoke", "astream"])
async def test_interrupt_and_command_resume_with_sqlite(tmp_path: Path, call: str) -> None:
    """interrupt() pauses with the SQLite saver and Command(resume=...) finishes, in sync and async."""
    with get_checkpointer(path=tmp_path / "ck.db") as saver:
        graph = _chain(async_nodes=call != "invoke", ask=True).compile(checkpointer=saver)
        config = _config("t-int")
        await _run(graph, call, {"x": []}, config)
        paused = graph.get_state(config)
        assert paused.next == ("ask",)
        assert [i.value for i in paused.interrupts] == ["approve?"]
        values = await _run(graph, call, Command(resume="yes"), config)
        assert values["x"] == ["first", "second", "answer:yes"]
        assert graph.get_state(config).next == ()


def _open_fds_to(path: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(path)):
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to list open files")
def test_close_releases_the_file(tmp_path: Path) -> None:
    """close() closes the owned connection: no descriptor left on the file, later use is a clear error."""
    path = tmp_path / "ck.db"
    saver = get_checkpointer(path=path)
    assert isinstance(saver, ThreadedSqliteSaver)
    _chain(async_nodes=False).compile(checkpointer=saver).invoke({"x": []}, _config("t"))
    assert _open_fds_to(path)
    saver.close()
    saver.close()
    assert saver.closed
    assert _open_fds_to(path) == []
    assert not Path(f"{path}-wal").exists()
    with pytest.raises(CheckpointerError, match="closed"):
        saver.get_tuple(_config("t"))


def test_default_path_is_under_cwd_dot_swarm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a path the database goes to ./.swarm/checkpoints.db, folder created on demand."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert default_checkpoint_path() == tmp_path / ".swarm" / "checkpoints.db"
    with get_checkpointer() as saver:
        _chain(async_nodes=False).compile(checkpointer=saver).invoke({"x": []}, _config("t"))
    assert (tmp_path / ".swarm" / "checkpoints.db").is_file()


def test_data_dir_env_var_moves_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SWARM_OBS_DATA_DIR replaces ./.swarm as the folder of the default database."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    with get_checkpointer() as saver:
        _chain(async_nodes=False).compile(checkpointer=saver).invoke({"x": []}, _config("t"))
    assert (tmp_path / "data" / "checkpoints.db").is_file()
    assert not (tmp_path / ".swarm").exists()


def test_memory_checkpointer_refuses_a_path(tmp_path: Path) -> None:
    """persistent=False with a path is a clear error rather than a silently ignored file."""
    assert isinstance(get_checkpointer(persistent=False), InMemorySaver)
    with pytest.raises(ValueError, match="persistent=False"):
        get_checkpointer(persistent=False, path=tmp_path / "x.db")


@pytest.mark.parametrize("persistent", [True, False], ids=["sqlite", "memory"])
async def test_async_checkpointer_runs_and_resumes(tmp_path: Path, persistent: bool) -> None:
    """aget_checkpointer() yields a working async saver; interrupt + resume work under astream."""
    path = tmp_path / "ack.db" if persistent else None
    config = _config("t-async")
    async with aget_checkpointer(persistent, path) as saver:
        graph = _chain(async_nodes=True, ask=True).compile(checkpointer=saver)
        await _run(graph, "astream", {"x": []}, config)
        assert (await graph.aget_state(config)).next == ("ask",)
        values = await _run(graph, "ainvoke", Command(resume="ok"), config)
        assert values["x"] == ["first", "second", "answer:ok"]
    if persistent:
        with get_checkpointer(path=path) as sync_saver:
            graph = _chain(async_nodes=False).compile(checkpointer=sync_saver)
            assert graph.get_state(config).values["x"] == ["first", "second", "answer:ok"]


async def test_async_sqlite_saver_sync_call_on_loop_is_a_clear_error(tmp_path: Path) -> None:
    """A sync graph call on the event-loop thread with the aiosqlite saver raises CheckpointerError."""
    async with aget_checkpointer(path=tmp_path / "ack.db") as saver:
        graph = _chain(async_nodes=False).compile(checkpointer=saver)
        with pytest.raises(CheckpointerError, match="deadlock"):
            graph.invoke({"x": []}, _config("t"))


def test_timeline_puts_node_events_on_history_checkpoints(tmp_path: Path) -> None:
    """Events carrying the checkpoint id their node ran under are found in get_state_history.

    In langgraph 1.2.22 the id is ``runtime.execution_info.checkpoint_id``; the node's
    ``config["configurable"]["checkpoint_id"]`` is None.
    """
    emitter = EventEmitter()

    def make_node(name: str):
        def node(state: State, runtime: Runtime) -> dict[str, Any]:
            checkpoint_id = runtime.execution_info.checkpoint_id
            emitter.emit("node_enter", "run-tl", node=name, checkpoint_id=checkpoint_id)
            return {"x": [name]}

        return node

    builder = StateGraph(State)
    for name in ("first", "second"):
        builder.add_node(name, make_node(name))
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    builder.add_edge("second", END)
    with get_checkpointer(path=tmp_path / "ck.db") as saver:
        graph = builder.compile(checkpointer=saver)
        emitter.emit("scan_started", "run-tl")
        graph.invoke({"x": []}, _config("run-tl"))
        emitter.emit("scan_complete", "run-tl")
        entries = timeline(emitter.store, "run-tl", graph, _config("run-tl"))
    placed = {e.node: (entry.step, entry.next) for entry in entries[:-1] for e in entry.events}
    assert placed == {"first": (0, ("first",)), "second": (1, ("second",))}
    assert entries[-1].checkpoint_id is None
    assert [e.type_name for e in entries[-1].events] == ["scan_started", "scan_complete"]
    assert sum(len(entry.events) for entry in entries) == 4
