"""RunState: a pure fold of the event log, incremental or from scratch, that refuses gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from swarm_observability.emitter import EventEmitter
from swarm_observability.events import StreamEvent, make_event
from swarm_observability.exceptions import EventValidationError, InvalidRunIdError, StoreCorruptionError
from swarm_observability.state import RunStateBuilder, RunStatus, rebuild_run_state
from swarm_observability.stores.memory import InMemoryEventStore

RUN = "scan-42"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Log:
    """Builds a synthetic event log with consecutive seqs and a clock advancing 1 s per event."""

    def __init__(self) -> None:
        self.events: list[StreamEvent] = []

    def add(self, type: str, **fields: Any) -> StreamEvent:
        seq = len(self.events) + 1
        fields.setdefault("thread_id", RUN)
        event = make_event(type, RUN, seq=seq, timestamp=T0 + timedelta(seconds=seq - 1), **fields)
        self.events.append(event)
        return event

    def start(self, inv: str, resumed: bool = False) -> None:
        self.add(
            "scan_resumed" if resumed else "scan_started",
            invocation_id=inv,
            scope_id=inv,
            data={"graph": "swarm"},
        )

    def end(self, type: str, inv: str, **data: Any) -> None:
        self.add(type, invocation_id=inv, scope_id=inv, data=data)

    def node(self, inv: str, name: str, scope: str, outcome: str | None = "ok", **exit_data: Any) -> None:
        self.add("node_enter", invocation_id=inv, scope_id=scope, parent_scope_id=inv, node=name, step=1)
        if outcome is not None:
            self.add(
                "node_exit",
                invocation_id=inv,
                scope_id=scope,
                parent_scope_id=inv,
                node=name,
                step=1,
                data={"outcome": outcome, "duration_ms": 10.0, **exit_data},
            )


def _completed_log() -> Log:
    log = Log()
    log.start("i1")
    log.node("i1", "plan", "s1")
    log.add("node_enter", invocation_id="i1", scope_id="s2", parent_scope_id="i1", node="probe_fanout")
    for i, outcome in enumerate(["ok", "error", "ok"]):
        scope = f"p{i}"
        log.add("probe_start", invocation_id="i1", scope_id=scope, parent_scope_id="s2", probe=f"probe{i}")
        log.add(
            "probe_result",
            invocation_id="i1",
            scope_id=scope,
            parent_scope_id="s2",
            probe=f"probe{i}",
            data={"finding": i},
        )
        extra = {"error_type": "TimeoutError", "error_message": "slow host"} if outcome == "error" else {}
        log.add(
            "probe_complete",
            invocation_id="i1",
            scope_id=scope,
            parent_scope_id="s2",
            probe=f"probe{i}",
            data={"outcome": outcome, "duration_ms": 5, **extra},
        )
    log.add(
        "node_progress",
        invocation_id="i1",
        scope_id="s2",
        parent_scope_id="i1",
        node="probe_fanout",
        progress=0.5,
        message="half",
    )
    log.add(
        "node_exit",
        invocation_id="i1",
        scope_id="s2",
        parent_scope_id="i1",
        node="probe_fanout",
        data={"outcome": "ok", "duration_ms": 30},
    )
    log.add("agent_start", invocation_id="i1", scope_id="a1", parent_scope_id="i1", agent="reviewer")
    log.add(
        "agent_complete",
        invocation_id="i1",
        scope_id="a1",
        parent_scope_id="i1",
        agent="reviewer",
        data={"outcome": "ok", "duration_ms": 7},
    )
    log.end("scan_complete", "i1", outcome="ok", duration_ms=100)
    return log


def test_completed_run_summarises_nodes_probes_agents_and_errors() -> None:
    """A finished scan folds into status, per-scope counts, progress, errors, times and counts."""
    state = rebuild_run_state(_completed_log().events, RUN)
    assert state.status is RunStatus.COMPLETED and state.is_terminal
    assert (state.graph, state.thread_id, state.invocations, state.current_invocation_id) == (
        "swarm",
        RUN,
        1,
        "i1",
    )
    assert state.current_nodes == ()
    assert {n: (s.started, s.finished, s.outcomes) for n, s in state.nodes.items()} == {
        "plan": (1, 1, {"ok": 1}),
        "probe_fanout": (1, 1, {"ok": 1}),
    }
    assert {n: (s.outcomes, s.results) for n, s in state.probes.items()} == {
        "probe0": ({"ok": 1}, 1),
        "probe1": ({"error": 1}, 1),
        "probe2": ({"ok": 1}, 1),
    }
    assert state.agents["reviewer"].last_outcome == "ok"
    assert [(e.event_type, e.error_type, e.message, e.probe) for e in state.errors] == [
        ("probe_complete", "TimeoutError", "slow host", "probe1")
    ]
    assert state.node_progress == {"probe_fanout": 0.5}
    assert (state.progress, state.last_message) == (1.0, "half")
    assert state.started_at == T0 and state.ended_at == T0 + timedelta(seconds=state.last_seq - 1)
    assert state.duration_s == state.last_seq - 1
    assert state.event_counts["probe_complete"] == 3 and sum(state.event_counts.values()) == state.last_seq


@pytest.mark.parametrize(
    ("terminal", "data", "status"),
    [
        ("scan_error", {"outcome": "error", "error_type": "KeyError", "error_message": "k"}, "failed"),
        ("scan_cancelled", {"outcome": "cancelled", "reason": "operator"}, RunStatus.CANCELLED),
        ("scan_paused", {"outcome": "paused", "reason": "drain"}, RunStatus.PAUSED),
        ("scan_paused", {"outcome": "interrupted", "reason": "interrupt"}, RunStatus.PAUSED),
    ],
)
def test_terminal_event_decides_status(terminal: str, data: dict[str, Any], status: str) -> None:
    """Each terminal scan event maps to its status and closes the invocation's open nodes."""
    log = Log()
    log.start("i1")
    log.node("i1", "worker", "s1", outcome=None)
    log.end(terminal, "i1", **data)
    state = rebuild_run_state(log.events, RUN)
    assert state.status == status
    assert state.status_reason == data.get("reason")
    assert state.current_nodes == ()
    assert state.ended_at is not None
    assert [e.error_type for e in state.errors] == (["KeyError"] if terminal == "scan_error" else [])


def test_running_when_no_terminal_event_yet() -> None:
    """Without a terminal event the run is running and entered nodes are current."""
    log = Log()
    log.start("i1")
    log.node("i1", "worker", "s1", outcome=None)
    log.add("node_progress", invocation_id="i1", scope_id="s1", node="worker", progress=0.25)
    state = rebuild_run_state(log.events, RUN)
    assert state.status is RunStatus.RUNNING and not state.is_terminal
    assert [(n.node, n.scope_id, n.progress) for n in state.current_nodes] == [("worker", "s1", 0.25)]
    assert state.ended_at is None and state.duration_s == 2


def test_empty_log_is_pending() -> None:
    """A run without events is pending, with zero counts."""
    state = rebuild_run_state([], RUN)
    assert (state.status, state.invocations, state.last_seq) == (RunStatus.PENDING, 0, 0)
    assert state.started_at is None


def test_pause_at_safe_point_then_resume_is_running_again() -> None:
    """scan_paused(reason=pause) then scan_resumed in the same invocation returns to running."""
    log = Log()
    log.start("i1")
    log.node("i1", "worker", "s1", outcome=None)
    log.end("scan_paused", "i1", reason="pause", outcome="paused")
    paused = rebuild_run_state(log.events, RUN)
    assert paused.status is RunStatus.PAUSED
    assert [n.node for n in paused.current_nodes] == ["worker"]
    log.add("scan_resumed", invocation_id="i1", scope_id="i1")
    state = rebuild_run_state(log.events, RUN)
    assert state.status is RunStatus.RUNNING
    assert state.invocations == 1
    assert [n.node for n in state.current_nodes] == ["worker"]


def test_cancelled_then_resumed_invocation_completes() -> None:
    """A cancelled invocation followed by a resuming one: two invocations, the last decides."""
    log = Log()
    log.start("i1")
    log.node("i1", "worker", "s1", outcome="cancelled")
    log.end("scan_cancelled", "i1", reason="stop", outcome="cancelled")
    log.add("scan_resumed", invocation_id="i2", scope_id="i2", data={"previous_invocation_id": "i1"})
    assert rebuild_run_state(log.events, RUN).status is RunStatus.RUNNING
    log.node("i2", "worker", "s2")
    log.end("scan_complete", "i2", outcome="ok")
    state = rebuild_run_state(log.events, RUN)
    assert (state.status, state.invocations, state.current_invocation_id) == (RunStatus.COMPLETED, 2, "i2")
    assert state.nodes["worker"].outcomes == {"cancelled": 1, "ok": 1}
    assert state.status_reason is None


@pytest.mark.parametrize("defect", ["gap", "repeat", "starts_at_2"])
def test_gaps_are_refused(defect: str) -> None:
    """A log whose seqs are not 1..n contiguous raises StoreCorruptionError naming the seq."""
    events = _completed_log().events
    if defect == "gap":
        events = events[:3] + events[4:]
    elif defect == "repeat":
        events = [*events[:3], events[2], *events[3:]]
    else:
        events = events[1:]
    with pytest.raises(StoreCorruptionError, match="not contiguous"):
        rebuild_run_state(events, RUN)


def test_events_of_other_runs() -> None:
    """rebuild skips other runs in a mixed iterable; the builder refuses them outright."""
    other = make_event("log", "other-run", seq=1, message="noise")
    events = _completed_log().events
    assert rebuild_run_state([other, *events], RUN) == rebuild_run_state(events, RUN)
    with pytest.raises(EventValidationError, match="other-run"):
        RunStateBuilder(RUN).apply(other)


def test_unknown_event_types_are_counted_only() -> None:
    """An event type from a newer release is counted and does not change anything else."""
    log = Log()
    log.start("i1")
    log.add("tool_call_started", data={"tool": "grep"})
    state = rebuild_run_state(log.events, RUN)
    assert state.event_counts == {"scan_started": 1, "tool_call_started": 1}
    assert state.status is RunStatus.RUNNING


def test_incremental_fold_equals_rebuild_from_a_store() -> None:
    """Folding events as they are emitted gives the state rebuilt afterwards from the store, at every step."""
    emitter = EventEmitter(InMemoryEventStore(), processors=[])
    live = RunStateBuilder(RUN)
    snapshots = []

    def on_event(event: StreamEvent) -> None:
        live.apply(event)
        snapshots.append(live.state)

    emitter.subscribe(on_event)
    for event in _completed_log().events:
        emitter.emit(event.type, RUN, **event.model_dump(exclude={"type", "run_id", "seq", "id"}))
    stored = emitter.store.load(RUN)
    assert live.state == rebuild_run_state(emitter.store, RUN)
    for i, snapshot in enumerate(snapshots, start=1):
        assert snapshot == rebuild_run_state(stored[:i], RUN)
    assert live.state.status is RunStatus.COMPLETED


@pytest.mark.parametrize("bad", ["", 5, None, "x" * 257])
def test_a_run_id_no_store_could_hold_is_refused_not_pending(bad: object) -> None:
    """rebuild_run_state and RunStateBuilder refuse a bad run id instead of folding an empty pending run."""
    store = InMemoryEventStore()
    for source in (store, _completed_log().events, []):
        with pytest.raises(InvalidRunIdError):
            rebuild_run_state(source, bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidRunIdError):
        RunStateBuilder(bad)  # type: ignore[arg-type]
