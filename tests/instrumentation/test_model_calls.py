"""Model calls are recorded wherever user code makes them: node bodies, routers, threads, ``@task``s."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.func import entrypoint, task
from langgraph.graph import END, START, StateGraph

from swarm_observability.instrumentation.observer import SwarmObserver

from .helpers import run_api


class _State(TypedDict, total=False):
    x: int


def _model() -> FakeListChatModel:
    return FakeListChatModel(responses=["ok"] * 20)


def _parents(observer: SwarmObserver, thread: str) -> list[str]:
    """For each recorded model call, the type of the event that opened its parent scope."""
    events = observer.store.load(thread)
    opened = {e.scope_id: e.type_name for e in events if e.type_name in ("scan_started", "node_enter")}
    starts = [e for e in events if e.type_name == "llm_start"]
    assert len([e for e in events if e.type_name == "llm_end"]) == len(starts)
    return sorted(opened[e.parent_scope_id or ""] for e in starts)


@pytest.mark.parametrize("api", ["invoke", "astream"])
def test_model_calls_in_routers_bodies_and_threads_are_recorded(observer: SwarmObserver, api: str) -> None:
    """Routers (also from START), a body's calls with and without its config, in a thread and a pool."""

    def first(state: _State) -> str:
        _model().invoke("route from start")
        return "work"

    def work(state: _State, config: RunnableConfig) -> _State:
        _model().invoke("no config")
        thread = threading.Thread(target=lambda: _model().invoke("thread", config))
        thread.start()
        thread.join()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(lambda: _model().invoke("pool", config)).result()
        return {"x": 1}

    def after(state: _State, config: RunnableConfig) -> str:
        _model().invoke("route", config)
        return END

    builder = StateGraph(_State)
    builder.add_node("work", work)
    builder.add_conditional_edges(START, first, ["work"])
    builder.add_conditional_edges("work", after, [END])
    graph = observer.instrument(builder.compile(checkpointer=InMemorySaver()))
    _, error = run_api(graph, api, {"x": 0}, {"configurable": {"thread_id": f"calls-{api}"}})
    assert error is None
    # a thread without the node's context reports to the invocation, as routers (after the node) do
    assert _parents(observer, f"calls-{api}") == ["node_enter"] + ["scan_started"] * 4


@pytest.mark.parametrize("api", ["invoke", "astream"])
def test_model_calls_in_functional_tasks_are_recorded(observer: SwarmObserver, api: str) -> None:
    """A model called in a ``@task`` of an ``@entrypoint`` is recorded in the entrypoint's node."""

    @task
    def ask(question: str) -> Any:
        return _model().invoke(question).content

    @entrypoint(checkpointer=InMemorySaver())
    def main(count: int) -> int:
        answers = [ask(f"q{i}").result() for i in range(count)]
        return len(answers)

    graph = observer.instrument(main)
    _, error = run_api(graph, api, 2, {"configurable": {"thread_id": f"func-{api}"}})
    assert error is None
    assert _parents(observer, f"func-{api}") == ["node_enter", "node_enter"]
