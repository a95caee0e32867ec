"""Time travel: labelled checkpoints, state as of a point, and forking a thread from an earlier checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import StateGraph
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from swarm_observability import (
    InvalidRunIdError,
    SwarmObserver,
    checkpoint,
    list_checkpoints,
    rebuild_run_state,
    resume_from_checkpoint,
    timeline,
)
from swarm_observability.cli import main
from swarm_observability.exceptions import CheckpointerError, InstrumentationError, NoActiveRunError
from swarm_observability.state import RunStateBuilder
from swarm_observability.stores.sqlite import SQLiteEventStore
from swarm_observability.tracing import export_run

from .helpers import ChainState as S
from .helpers import chain

RAN: list[str] = []


def _node(name: str) -> Any:
    def run(state: S) -> S:
        RAN.append(name)
        if name == "b":
            checkpoint("before-b")
        return {"x": [name]}

    return run


def _graph(observer: SwarmObserver, saver: Any) -> Any:
    return observer.instrument(build().compile(checkpointer=saver))


@pytest.fixture
def recorded(tmp_path: Path) -> Any:
    """Thread ``t`` ran a -> b -> c, with ``checkpoint("before-b")`` in b; live states captured."""
    RAN.clear()
    store = SQLiteEventStore(tmp_path / "events.db")
    observer = SwarmObserver(store=store, heartbeat_interval=None)
    live = RunStateBuilder("t")
    at_b: list[Any] = []

    def watch(event: Any) -> None:
        if event.type_name == "node_enter" and event.node == "b" and not at_b:
            at_b.append(live.state)  # the state the run had just before b started
        live.apply(event)

    observer.emitter.subscribe(watch)
    saver = InMemorySaver()
    graph = _graph(observer, saver)
    assert graph.invoke({"x": []}, {"configurable": {"thread_id": "t"}}) == {"x": ["a", "b", "c"]}
    observer.emitter.flush()
    yield observer, graph, store, at_b[0], tmp_path
    observer.close()
    store.close()


def test_state_until_a_label_matches_the_live_state_and_langgraph(recorded: Any) -> None:
    """rebuild_run_state(until=label|checkpoint_id|seq) gives the state the run had at that point."""
    _, graph, store, live_at_b, _ = recorded
    events = store.load("t")
    label = next(e for e in events if e.type_name == "checkpoint")
    assert label.data["label"] == "before-b" and label.message == "before-b" and label.node == "b"
    by_label = rebuild_run_state(store, "t", until="before-b")
    assert by_label == live_at_b
    assert rebuild_run_state(store, "t", until=label.checkpoint_id) == by_label
    assert rebuild_run_state(store, "t", until=by_label.last_seq) == by_label
    assert set(by_label.nodes) == {"a"} and by_label.nodes["a"].finished == 1 and not by_label.current_nodes
    snapshot = graph.get_state({"configurable": {"thread_id": "t", "checkpoint_id": label.checkpoint_id}})
    assert snapshot.values["x"] == ["a"] and snapshot.next == ("b",)
    with pytest.raises(ValueError, match="neither a checkpoint label nor a checkpoint id"):
        rebuild_run_state(store, "t", until="no-such-label")


def test_fork_reruns_exactly_the_nodes_after_the_checkpoint(recorded: Any, capsys: Any) -> None:
    """Forking from the label re-runs b and c only, records the fork, and keeps the old branch readable."""
    observer, graph, store, _, tmp_path = recorded
    before = store.load("t")
    old_checkpoints = {c.checkpoint_id for c in list_checkpoints(graph, "t")}
    RAN.clear()
    result = observer.resume_from_checkpoint(graph, "t", "before-b")
    assert RAN == ["b", "c"]
    assert result == {"x": ["a", "b", "c"]}
    observer.emitter.flush()
    after = store.load("t")
    assert after[: len(before)] == before  # the old branch's events are untouched
    resumed = next(e for e in after[len(before) :] if e.type_name == "scan_resumed")
    label = next(e for e in before if e.type_name == "checkpoint")
    assert resumed.data["from_checkpoint_id"] == label.checkpoint_id
    assert len(resumed.data["discarded_checkpoints"]) == 2  # after b and after c on the old branch
    old_seqs = [
        e.seq
        for e in before
        if e.checkpoint_id in {label.checkpoint_id, *resumed.data["discarded_checkpoints"]}
    ]
    assert resumed.data["discarded_events"] == len(old_seqs) and resumed.data["discarded_seq"] == [
        old_seqs[0],
        old_seqs[-1],
    ]
    infos = list_checkpoints(graph, "t", store)
    assert old_checkpoints <= {c.checkpoint_id for c in infos}  # the old branch stays readable
    side = [c for c in infos if not c.current]
    assert {c.checkpoint_id for c in side} == set(resumed.data["discarded_checkpoints"])
    origin = next(c for c in infos if c.checkpoint_id == label.checkpoint_id)
    assert origin.current and origin.labels == ("before-b",)
    assert [e.node for e in origin.events if e.type_name == "node_enter"] == ["b"]
    fork_point = next(c for c in infos if c.source == "fork")  # LangGraph's copy of the origin
    assert fork_point.parent_id == label.checkpoint_id and fork_point.current
    assert [e.node for e in fork_point.events if e.type_name == "node_enter"] == ["b"]
    exporter = InMemorySpanExporter()
    export_run(store, "t", exporter)
    roots = [s for s in exporter.get_finished_spans() if s.parent is None]
    assert [r.attributes.get("swarm.fork.from_checkpoint_id") for r in roots] == [None, label.checkpoint_id]
    capsys.readouterr()
    assert main(["show", "t", "--store", str(tmp_path / "events.db")]) == 0
    assert f"fork from checkpoint {label.checkpoint_id}" in capsys.readouterr().out


def test_misuse_and_unknown_checkpoints(recorded: Any) -> None:
    """Outside a node, without a checkpointer, or an unknown checkpoint: clear errors, nothing run."""
    _, graph, store, _, _ = recorded
    with pytest.raises(NoActiveRunError, match="create_checkpoint"):
        checkpoint("x")
    RAN.clear()
    with pytest.raises(CheckpointerError, match="no checkpoint 'nope'"):
        resume_from_checkpoint(graph, "t", "nope", store=store)
    assert RAN == []
    plain = SwarmObserver(heartbeat_interval=None)
    builder = chain(("b", _node("b")))
    with pytest.raises(InstrumentationError, match="no LangGraph checkpoint"):
        plain.instrument(builder.compile()).invoke({"x": []}, {"configurable": {"thread_id": "u"}})
    plain.close()


def test_create_checkpoint_names_the_newest_checkpoint(recorded: Any) -> None:
    """create_checkpoint(run, label, graph=...) labels the thread's newest checkpoint; forking from
    it runs nothing again (the run had finished)."""
    observer, graph, store, _, _ = recorded
    event = observer.create_checkpoint("t", "done", graph=graph)
    newest = graph.get_state({"configurable": {"thread_id": "t"}}).config["configurable"]["checkpoint_id"]
    assert (
        event is not None and event.checkpoint_id == newest and store.load("t")[-1].data == {"label": "done"}
    )
    assert rebuild_run_state(store, "t", until="done").last_seq == event.seq
    with pytest.raises(InstrumentationError, match="graph="):
        observer.create_checkpoint("t", "x")


def build() -> StateGraph:
    """The a -> b -> c graph for ``swarm-obs resume --graph`` (no checkpointer: the CLI adds one)."""
    return chain(*((name, _node(name)) for name in ("a", "b", "c")))


def test_cli_checkpoints_and_resume_from_a_label(tmp_path: Path, capsys: Any) -> None:
    """`swarm-obs checkpoints THREAD` lists labels and events; `resume --checkpoint LABEL` forks."""
    from swarm_observability import get_checkpointer

    store = SQLiteEventStore(tmp_path / "events.db")
    observer = SwarmObserver(store=store, heartbeat_interval=None)
    with get_checkpointer(path=tmp_path / "checkpoints.db") as saver:
        observer.instrument(build().compile(checkpointer=saver)).invoke(
            {"x": []}, {"configurable": {"thread_id": "cli-t"}}
        )
    observer.close()
    store.close()
    db = str(tmp_path / "events.db")
    capsys.readouterr()
    assert main(["checkpoints", "cli-t", "--store", db, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    labelled = [c for c in listed if c["labels"] == ["before-b"]]
    assert len(labelled) == 1 and labelled[0]["nodes"] == ["b"] and all(c["current_branch"] for c in listed)
    with SQLiteEventStore(db, read_only=True) as reader:
        count = reader.last_sequence("cli-t")
    graph_ref = "tests.instrumentation.test_time_travel:build"
    code = main(
        ["resume", "cli-t", "--graph", graph_ref, "--checkpoint", "before-b", "--store", db, "--no-progress"]
    )
    with SQLiteEventStore(db, read_only=True) as reader:
        forked = reader.load_since("cli-t", count)
    assert code == 0 and [e.node for e in forked if e.type_name == "node_enter"] == ["b", "c"]
    assert forked[0].type_name == "scan_resumed" and forked[0].data["discarded_events"] == 5
    capsys.readouterr()
    assert main(["checkpoints", "cli-t", "--store", db]) == 0
    text = capsys.readouterr().out
    assert "side branch" in text and "fork" in text
    for argv, message in [
        (["resume", "cli-t", "--graph", graph_ref, "--checkpoint", "nope"], "no checkpoint 'nope'"),
        (["resume", "cli-t", "--checkpoint", "before-b"], "--checkpoint needs --graph"),
        (["checkpoints", "nobody"], "unknown thread 'nobody'"),
    ]:
        assert main([*argv, "--store", db]) == 2
        assert message in capsys.readouterr().err


def test_a_subgraphs_events_belong_to_the_checkpoint_its_node_ran_from() -> None:
    """A subgraph's events carry its own checkpoint ids; listed, they join their node's checkpoint."""
    outer = chain("a", ("sub", chain("i1", "i2").compile()))
    observer = SwarmObserver(heartbeat_interval=None)
    saver = InMemorySaver()
    observer.instrument(outer.compile(checkpointer=saver)).invoke(
        {"x": []}, {"configurable": {"thread_id": "t"}}
    )
    infos = list_checkpoints(saver, "t", observer.store)
    (sub,) = [c for c in infos if any(e.node == "sub" for e in c.events)]
    seqs = [e.seq for e in sub.events]
    assert seqs == list(range(seqs[0], seqs[-1] + 1))
    assert [e.node for e in sub.events if e.type_name == "node_enter"] == ["sub", "i1", "i2"]
    nested = {e.checkpoint_id for e in sub.events} - {sub.checkpoint_id}
    assert len(nested) == 2
    listed = [e.seq for c in infos for e in c.events]
    assert sorted(listed) == sorted(set(listed))
    observer.close()


def test_a_thread_id_the_log_maps_still_finds_its_events_and_labels() -> None:
    """A thread id with a tab (LangGraph accepts it; its events go under a mapped run id) lists its
    events and resumes from its labels; an explicit ``run_id=""`` or ``timeline(..., "", ...)`` is refused."""
    thread = "thread\twith a tab"
    RAN.clear()
    observer = SwarmObserver(heartbeat_interval=None)
    saver = InMemorySaver()
    graph = observer.instrument(build().compile(checkpointer=saver))
    graph.invoke({"x": []}, {"configurable": {"thread_id": thread}})
    observer.emitter.flush()
    infos = list_checkpoints(saver, thread, observer.store)
    assert sum(len(c.events) for c in infos) > 0
    assert [label for c in infos for label in c.labels] == ["before-b"]
    RAN.clear()
    assert resume_from_checkpoint(graph, thread, "before-b", store=observer.store) == {"x": ["a", "b", "c"]}
    assert RAN == ["b", "c"]
    with pytest.raises(InvalidRunIdError, match="must not be empty"):
        list_checkpoints(saver, thread, observer.store, run_id="")
    with pytest.raises(InvalidRunIdError, match="must not be empty"):
        timeline(observer.store, "", graph, {"configurable": {"thread_id": thread}})
    observer.close()
