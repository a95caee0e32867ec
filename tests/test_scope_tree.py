"""The scope tree of a run (``show``, ``/api/runs/{id}/tree``) accounts for every event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swarm_observability.cli import main
from swarm_observability.emitter import EventEmitter
from swarm_observability.scope_tree import Scope, build_timeline
from swarm_observability.stores import SQLiteEventStore


def _emit_seed_style(store: Any, run: str) -> None:
    """Events emitted straight through EventEmitter, no scopes (the seeds' own usage)."""
    with EventEmitter(store) as emitter:
        emitter.emit("scan_started", run, data={"graph": "seed"})
        emitter.emit("node_enter", run, node="fetch")
        emitter.emit("node_progress", run, node="fetch", progress=0.5, message="half way")
        emitter.emit("probe_start", run, node="fetch", probe="ping")
        emitter.emit("probe_result", run, probe="ping", data={"ok": True})
        emitter.emit("probe_complete", run, probe="ping", data={"outcome": "ok"})
        emitter.emit("node_exit", run, node="fetch", data={"outcome": "ok", "duration_ms": 12})
        emitter.emit("log", run, message="all done")
        emitter.emit("scan_complete", run, data={"outcome": "ok"})


def _walk(scope: Scope) -> list[int]:
    seqs = [scope.first_seq] + ([scope.last_seq] if scope.end is not None else [])
    seqs += [event["seq"] for event in scope.events]
    for child in scope.children:
        seqs += _walk(child)
    return seqs


def test_scopeless_events_form_a_tree_and_every_event_is_in_it(tmp_path: Path) -> None:
    """Unscoped node/probe pairs nest by name; point events attach to the innermost open scope."""
    store = SQLiteEventStore(tmp_path / "e.db")
    _emit_seed_style(store, "seed-1")
    (invocation,) = build_timeline(store.iter_events("seed-1"))
    assert invocation.kind == "invocation" and invocation.outcome == "ok"
    (node,) = invocation.children
    assert (node.kind, node.name, node.outcome, node.duration_ms) == ("node", "fetch", "ok", 12.0)
    (probe,) = node.children
    assert (probe.kind, probe.name, probe.results, probe.outcome) == ("probe", "ping", 1, "ok")
    assert node.progress == 0.5 and [e["type"] for e in node.events] == ["node_progress"]
    assert [e["message"] for e in invocation.events] == ["all done"]
    assert sorted(set(_walk(invocation))) == list(range(1, 10))
    store.close()


def test_show_prints_the_tree_of_a_scopeless_run(tmp_path: Path, capsys: Any) -> None:
    """`swarm-obs show` of a run without scopes prints its nodes, probes and events, not only a header."""
    db = tmp_path / "e.db"
    store = SQLiteEventStore(db)
    _emit_seed_style(store, "seed-2")
    store.close()
    assert main(["show", "seed-2", "--store", str(db)]) == 0
    out = capsys.readouterr().out
    assert "node fetch" in out and "probe ping" in out
    assert "log (seq 8)" in out and "all done" in out
    assert "probe_result (seq 5)" in out


def test_model_and_tool_call_pairs_become_scopes_of_their_own_kind() -> None:
    """`llm_start`/`llm_end` (and any `<kind>_start`/`_end` pair with a scope id) nest as scopes."""
    from swarm_observability.events import make_event

    events = [
        make_event("scan_started", "r", seq=1, scope_id="inv"),
        make_event("agent_start", "r", seq=2, agent="coder", scope_id="a1", parent_scope_id="inv"),
        make_event("llm_start", "r", seq=3, scope_id="m1", parent_scope_id="a1", data={"model": "gpt-x"}),
        make_event("llm_end", "r", seq=4, scope_id="m1", data={"input_tokens": 7, "output_tokens": 3}),
        make_event("tool_start", "r", seq=5, scope_id="t1", parent_scope_id="a1", data={"name": "grep"}),
        make_event("tool_error", "r", seq=6, scope_id="t1", data={"error_type": "OSError"}),
        make_event("agent_complete", "r", seq=7, agent="coder", scope_id="a1", data={"outcome": "ok"}),
        make_event("scan_complete", "r", seq=8, scope_id="inv"),
    ]
    (invocation,) = build_timeline(events)
    (agent,) = invocation.children
    llm, tool = agent.children
    assert (llm.kind, llm.name, llm.outcome, llm.detail["input_tokens"]) == ("llm", "gpt-x", "ok", 7)
    assert (tool.kind, tool.name, tool.outcome, tool.error) == ("tool", "grep", "error", "OSError")
