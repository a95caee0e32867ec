"""The event -> span mapping, asserted as whole span trees built from realistic event sequences."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from swarm_observability.events import EventType, make_event
from swarm_observability.tracing.mapping import SpanMapper, tracer_for

from .conftest import map_events
from .scenario import T0, Scenario, tree

NS_PER_MS = 1_000_000


def _t0_ns() -> int:
    return int(T0.timestamp()) * 1_000_000_000


def test_parallel_probes_are_sibling_spans_with_their_results_as_events(provider, exporter):
    """A node with two overlapping probes gives root > node > two execute_tool siblings, with point events."""
    s = Scenario()
    inv = s.start()
    node = s.open("node", "scanner", step=1, task_id="t-1", checkpoint_id="ck-1")
    p1 = s.open("probe", "port_scan", node, data={"host": "10.0.0.1", "ports": ["22", "80"]})
    p2 = s.open("probe", "dns_lookup", node)
    s.point(EventType.PROBE_RESULT, p2, data={"a": "1.2.3.4"})
    s.point(EventType.NODE_PROGRESS, node, progress=0.5, message="half way")
    s.close(p2)
    s.point(EventType.PROBE_RESULT, p1, data={"open": [22]})
    s.close(p1)
    s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")

    got = tree(map_events(provider, exporter, s.events))

    assert set(got) == {inv, node, p1, p2}
    assert got[inv]["name"] == "invoke_workflow swarm"
    assert got[inv]["parent"] is None
    assert got[node]["name"] == "node scanner" and got[node]["parent"] == inv
    assert (got[p1]["name"], got[p1]["parent"]) == ("execute_tool port_scan", node)
    assert (got[p2]["name"], got[p2]["parent"]) == ("execute_tool dns_lookup", node)
    assert {e["kind"] for e in got.values()} == {"INTERNAL"}
    assert {e["status"] for e in got.values()} == {("UNSET", None)}
    root = got[inv]["attributes"]
    assert root["gen_ai.operation.name"] == "invoke_workflow"
    assert root["gen_ai.workflow.name"] == "swarm"
    assert (root["swarm.seq.first"], root["swarm.seq.last"]) == (1, len(s.events))
    assert root["swarm.outcome"] == "ok" and root["swarm.resumed"] is False
    assert (root["swarm.run_id"], root["swarm.invocation_id"]) == ("run-1", inv)
    for entry in got.values():
        assert entry["attributes"]["gen_ai.conversation.id"] == "thread-1"
    for scope in (node, p1, p2):  # the invocation's constants are on its root; the run id differs
        assert got[scope]["attributes"]["swarm.run_id"] == "run-1"
        assert "swarm.invocation_id" not in got[scope]["attributes"]
    node_attrs = got[node]["attributes"]
    assert (node_attrs["swarm.node"], node_attrs["swarm.step"]) == ("scanner", 1)
    assert node_attrs["swarm.task_id"] == "t-1"
    assert node_attrs["swarm.checkpoint_id"] == "ck-1"
    probe_attrs = got[p1]["attributes"]
    assert probe_attrs["gen_ai.operation.name"] == "execute_tool"
    assert probe_attrs["gen_ai.tool.name"] == "port_scan"
    assert probe_attrs["swarm.probe.host"] == "10.0.0.1"
    assert probe_attrs["swarm.probe.ports"] == ("22", "80")
    assert probe_attrs["swarm.node"] == "scanner"
    assert got[p2]["events"] == [("probe_result", {"swarm.seq": 5, "swarm.data": '{"a":"1.2.3.4"}'})]
    assert got[node]["events"] == [
        ("node_progress", {"swarm.seq": 6, "swarm.message": "half way", "swarm.progress": 0.5})
    ]
    # timestamps come from the events (5 ms apart): p2 opens at event 4 and closes at event 7
    assert got[p2]["times"] == (_t0_ns() + 20 * NS_PER_MS, _t0_ns() + 35 * NS_PER_MS)
    assert got[p1]["times"][0] < got[p2]["times"][0] < got[p2]["times"][1] < got[p1]["times"][1]


def test_subgraph_nodes_nest_under_their_parent_node_and_agents_under_agents(provider, exporter):
    """Subgraph nodes nest via parent_scope_id; agents nest under the node or agent that opened them."""
    s = Scenario()
    inv = s.start()
    outer = s.open("node", "research", step=1, task_id="t-r")
    inner = s.open("node", "plan_step", outer, step=1, task_id="t-i", namespace=("research:t-r",))
    agent = s.open("agent", "researcher", inner, data={"provider": "openai", "model": "gpt-4o"})
    sub_agent = s.open("agent", "critic", agent)
    plan = s.open("plan", "researcher", agent, data={"goal": "scan"})
    s.close(plan, steps=3)
    s.close(sub_agent)
    s.close(agent)
    s.close(inner)
    s.close(outer)
    s.end(EventType.SCAN_COMPLETE, "ok")

    got = tree(map_events(provider, exporter, s.events))

    assert {k: (v["name"], v["parent"]) for k, v in got.items()} == {
        inv: ("invoke_workflow swarm", None),
        outer: ("node research", inv),
        inner: ("node plan_step", outer),
        agent: ("invoke_agent researcher", inner),
        sub_agent: ("invoke_agent critic", agent),
        plan: ("plan researcher", agent),
    }
    assert got[inner]["attributes"]["swarm.namespace"] == ("research:t-r",)
    agent_attrs = got[agent]["attributes"]
    assert agent_attrs["gen_ai.operation.name"] == "invoke_agent"
    assert agent_attrs["gen_ai.agent.name"] == "researcher"
    assert agent_attrs["gen_ai.provider.name"] == "openai"
    assert agent_attrs["gen_ai.request.model"] == "gpt-4o"
    assert got[plan]["attributes"]["gen_ai.operation.name"] == "plan"
    assert got[plan]["attributes"]["swarm.plan.steps"] == 3
    assert all(v["same_trace_as_parent"] for v in got.values())


def test_a_graph_invoked_inside_a_node_nests_its_invocation_under_that_node(provider, exporter):
    """A scan_started whose parent_scope_id names an open node starts its root under that node's span."""
    s = Scenario()
    outer = s.start()
    node = s.open("node", "delegate")
    s.invocation = nested = uuid.uuid4().hex
    s._emit(EventType.SCAN_STARTED, scope_id=nested, parent_scope_id=node, data={"graph": "child"})
    s._emit(EventType.SCAN_COMPLETE, scope_id=nested, data={"outcome": "ok"})
    s.invocation = outer
    s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")

    got = tree(map_events(provider, exporter, s.events))

    assert (got[nested]["name"], got[nested]["parent"]) == ("invoke_workflow child", node)
    assert got[node]["parent"] == outer and got[nested]["same_trace_as_parent"]


def test_a_pause_in_place_is_a_pair_of_span_events_on_the_root_not_a_new_root(provider, exporter):
    """scan_paused(reason=pause) then scan_resumed on the same invocation keep one root span going."""
    s = Scenario()
    inv = s.start()
    node = s.open("node", "scanner")
    paused = {"reason": "pause", "outcome": "paused"}
    s._emit(EventType.SCAN_PAUSED, scope_id=inv, node="scanner", data=paused)
    s._emit(EventType.SCAN_RESUMED, scope_id=inv, node="scanner", data={"reason": "pause"})
    s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")

    got = tree(map_events(provider, exporter, s.events))

    assert set(got) == {inv, node}
    assert [name for name, _ in got[inv]["events"]] == ["scan_paused", "scan_resumed"]
    assert got[inv]["attributes"]["swarm.outcome"] == "ok"
    assert got[node]["attributes"]["swarm.outcome"] == "ok"
    assert "swarm.ended_by" not in got[node]["attributes"]


def test_an_error_is_recorded_once_where_it_happened_and_flagged_on_every_failed_ancestor(provider, exporter):
    """The probe that raised gets the exception event; the node and scan failing with it get ERROR only."""
    s = Scenario()
    inv = s.start()
    node = s.open("node", "scanner")
    probe = s.open("probe", "port_scan", node)
    error = {"error_type": "ValueError", "error_message": "bad port"}
    s.close(probe, "error", **error)
    s.close(node, "error", **error)
    s.end(EventType.SCAN_ERROR, "error", **error)

    got = tree(map_events(provider, exporter, s.events))

    for scope in (inv, node, probe):
        assert got[scope]["status"] == ("ERROR", "bad port")
        assert got[scope]["attributes"]["error.type"] == "ValueError"
        assert got[scope]["attributes"]["swarm.outcome"] == "error"
    exception = {"exception.type": "ValueError", "exception.message": "bad port"}
    assert got[probe]["events"] == [("exception", exception)]
    assert got[node]["events"] == []
    assert got[inv]["events"] == []


def test_a_different_error_in_the_parent_is_recorded_there_too(provider, exporter):
    """A node that handles a probe's error and fails with another one records its own exception event."""
    s = Scenario()
    s.start()
    node = s.open("node", "scanner")
    probe = s.open("probe", "port_scan", node)
    s.close(probe, "error", error_type="TimeoutError", error_message="slow host")
    s.close(node, "error", error_type="RuntimeError", error_message="gave up")
    s.end(EventType.SCAN_ERROR, "error", error_type="RuntimeError", error_message="gave up")

    got = tree(map_events(provider, exporter, s.events))

    assert [e[0] for e in got[probe]["events"]] == ["exception"]
    exception = {"exception.type": "RuntimeError", "exception.message": "gave up"}
    assert got[node]["events"] == [("exception", exception)]
    assert got[node]["attributes"]["error.type"] == "RuntimeError"


def test_interrupt_is_no_error_and_the_resumed_invocation_links_to_the_interrupted_one(provider, exporter):
    """An interrupt leaves status UNSET; the resume is a new trace whose root links to the first root."""
    s = Scenario()
    first = s.start()
    ask = s.open("node", "approve", task_id="t-a")
    s.close(ask, "interrupted")
    s.end(EventType.SCAN_PAUSED, "interrupted", reason="interrupt", interrupts=[{"value": "ok?", "id": "i1"}])
    second = s.start(resumed_from=first)
    ask2 = s.open("node", "approve", task_id="t-a")
    s.close(ask2)
    s.end(EventType.SCAN_COMPLETE, "ok")

    spans = map_events(provider, exporter, s.events)
    got = tree(spans)

    assert got[first]["status"] == ("UNSET", None) and got[ask]["status"] == ("UNSET", None)
    assert got[first]["attributes"]["swarm.outcome"] == "interrupted"
    assert got[first]["attributes"]["swarm.pause.reason"] == "interrupt"
    assert got[first]["attributes"]["swarm.interrupts"] == '[{"value":"ok?","id":"i1"}]'
    assert "error.type" not in got[first]["attributes"]
    assert got[ask]["attributes"]["swarm.outcome"] == "interrupted"
    assert got[second]["parent"] is None
    assert got[second]["links"] == [(first, {"swarm.link.type": "resumes", "swarm.invocation_id": first})]
    assert got[second]["attributes"]["swarm.resumed"] is True
    assert got[second]["attributes"]["swarm.previous_invocation_id"] == first
    trace_ids = {s.attributes["swarm.scope_id"]: s.context.trace_id for s in spans}
    assert trace_ids[first] != trace_ids[second]
    assert trace_ids[ask2] == trace_ids[second]
    conversation = {got[k]["attributes"]["gen_ai.conversation.id"] for k in (first, second)}
    assert conversation == {"thread-1"}


def _ns_of(event) -> int:
    return int(event.timestamp.timestamp() * 1000) * NS_PER_MS


def test_work_that_outlives_its_cancelled_scan_ends_when_it_really_ended(provider, exporter):
    """A probe still running at scan_cancelled ends at its own close; the root waits to cover it, no error."""
    s = Scenario()
    inv = s.start()
    node = s.open("node", "scanner")
    probe = s.open("probe", "port_scan", node)
    cancel = s.end(EventType.SCAN_CANCELLED, "cancelled", reason="user stop", node="scanner")
    late = s.point(EventType.PROBE_RESULT, probe, data={"open": [22]})
    probe_end = s.close(probe, "cancelled")
    node_end = s.close(node, "cancelled")

    got = tree(map_events(provider, exporter, s.events))

    root = got[inv]
    assert root["attributes"]["swarm.outcome"] == "cancelled"
    assert root["attributes"]["swarm.cancel.reason"] == "user stop"
    assert root["attributes"]["swarm.cancel.node"] == "scanner"
    assert root["events"] == [("scan_cancelled", {"swarm.seq": cancel.seq})]
    assert root["event_times"] == [_ns_of(cancel)]
    assert got[probe]["times"][1] == _ns_of(probe_end) > _ns_of(cancel)
    assert got[probe]["events"] == [("probe_result", {"swarm.seq": late.seq, "swarm.data": '{"open":[22]}'})]
    assert got[node]["times"][1] == _ns_of(node_end) == root["times"][1]
    for scope in (inv, node, probe):
        assert got[scope]["status"] == ("UNSET", None)
        assert (
            "error.type" not in got[scope]["attributes"] and "swarm.ended_by" not in got[scope]["attributes"]
        )
    for scope in (node, probe):
        assert got[scope]["attributes"]["swarm.outcome"] == "cancelled"


def test_a_probe_thread_outliving_its_cancelled_node_ends_when_it_really_ended(provider, exporter):
    """node_exit(cancelled) and scan_cancelled before the probe's close: node and root wait and cover it."""
    s = Scenario()
    inv = s.start()
    node = s.open("node", "probe")
    probe = s.open("probe", "secrets", node)
    node_exit = s.close(node, "cancelled", reason="cancelled")
    cancel = s.end(EventType.SCAN_CANCELLED, "cancelled", reason="operator")
    probe_end = s.close(probe, "cancelled", reason="operator")

    got = tree(map_events(provider, exporter, s.events))

    assert got[probe]["times"][1] == _ns_of(probe_end) == got[node]["times"][1] == got[inv]["times"][1]
    assert got[node]["events"] == [("node_exit", {"swarm.seq": node_exit.seq})]
    assert got[node]["event_times"] == [_ns_of(node_exit)]
    assert got[inv]["events"] == [("scan_cancelled", {"swarm.seq": cancel.seq})]
    assert {got[k]["attributes"]["swarm.outcome"] for k in (inv, node, probe)} == {"cancelled"}
    assert not any("swarm.ended_by" in got[k]["attributes"] for k in (inv, node, probe))


def test_work_that_never_closes_after_a_cancel_ends_as_cancelled_at_the_end_of_the_log(provider, exporter):
    """A node and probe open at scan_cancelled that never close: ended as cancelled when the log ends."""
    s = Scenario()
    inv = s.start()
    node = s.open("node", "scanner")
    probe = s.open("probe", "port_scan", node)
    cancel = s.end(EventType.SCAN_CANCELLED, "cancelled", reason="user stop")

    mapper = SpanMapper(tracer_for(provider))
    for event in s.events:
        mapper.feed(event)
    assert mapper.open_scope_count == 3 and exporter.get_finished_spans() == ()
    assert mapper.end_open_scopes() == 3

    got = tree(exporter.get_finished_spans())
    assert got[inv]["attributes"]["swarm.outcome"] == "cancelled"
    for scope in (inv, node, probe):
        assert got[scope]["times"][1] == _ns_of(cancel)
    for scope in (node, probe):
        assert got[scope]["attributes"]["swarm.outcome"] == "cancelled"
        assert got[scope]["attributes"]["swarm.ended_by"] == "end_of_log"


def test_stragglers_are_ended_at_their_last_sign_of_life_once_the_grace_is_over(provider, exporter):
    """Scopes open straggler_grace after their scan ended are ended for them; later closes change nothing."""
    s = Scenario()
    inv = s.start()
    node = s.open("node", "slow_sync")
    alive = s.point(EventType.HEARTBEAT, node, data={"elapsed_s": 1})
    s.end(EventType.SCAN_CANCELLED, "cancelled", reason="consumer closed the stream")
    other = Scenario(run_id="run-2")
    other.now = s.now + timedelta(seconds=2)  # an event of another run, 2 s later, moves the clock on
    other.start()
    s.close(node)

    mapper = SpanMapper(tracer_for(provider), straggler_grace=1.0)
    for event in [*s.events[:-1], *other.events, s.events[-1]]:
        mapper.feed(event)

    got = tree(exporter.get_finished_spans())
    assert set(got) == {inv, node}
    assert got[node]["attributes"]["swarm.outcome"] == "cancelled"
    assert got[node]["attributes"]["swarm.ended_by"] == "straggler_grace"
    assert got[node]["times"][1] == _ns_of(alive) == got[inv]["times"][1] - 5 * NS_PER_MS
    assert mapper.open_scope_count == 1  # only run-2's invocation


def test_precise_event_times_time_the_spans_and_children_never_lie_outside_parents(provider, exporter):
    """Spans use time_unix_nano (sub-ms durations survive); a child is clamped into its parent's span."""
    s = Scenario()
    inv = s.start()
    node = s.open("node", "fast")
    probe = s.open("probe", "quick", node)
    s.close(probe)
    s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")
    base = _t0_ns() + 5 * NS_PER_MS
    precise = [base, base + 1_000, base + 1_250, base + 1_750, base + 2_000, base + 2_100]
    events = [e.model_copy(update={"timestamp": T0 + timedelta(milliseconds=5), "time_unix_nano": t})
              for e, t in zip(s.events, precise, strict=True)]  # fmt: skip
    skewed = [events[0], events[1].model_copy(update={"time_unix_nano": base - 7}), *events[2:]]

    got = tree(map_events(provider, exporter, events))
    assert got[inv]["times"] == (base, base + 2_100)
    assert got[node]["times"] == (base + 1_000, base + 2_000)
    assert got[probe]["times"] == (base + 1_250, base + 1_750)

    exporter.clear()
    clamped = tree(map_events(provider, exporter, skewed))
    assert clamped[node]["times"][0] == base  # not before its parent
    late_child = [*events[:3], events[3].model_copy(update={"time_unix_nano": base + 2_050}), *events[4:]]
    exporter.clear()
    covered = tree(map_events(provider, exporter, late_child))
    assert covered[probe]["times"][1] == base + 2_050
    assert covered[node]["times"][1] == base + 2_050  # the parent ends no earlier than its child
    assert covered[inv]["times"][1] == base + 2_100


def test_a_crashed_run_ends_open_scopes_as_incomplete_at_the_last_event(provider, exporter):
    """end_open_scopes ends every span whose closing event never came at the last event's time."""
    s = Scenario()
    inv = s.start()
    node = s.open("node", "scanner")
    probe = s.open("probe", "port_scan", node)
    last = s.point(EventType.HEARTBEAT, probe, data={"elapsed_s": 3})

    mapper = SpanMapper(tracer_for(provider))
    for event in s.events:
        mapper.feed(event)
    assert mapper.end_open_scopes() == 3

    got = tree(exporter.get_finished_spans())
    last_ns = int(last.timestamp.timestamp() * 1000) * NS_PER_MS
    for scope in (inv, node, probe):
        assert got[scope]["attributes"]["swarm.outcome"] == "incomplete"
        assert got[scope]["attributes"]["swarm.ended_by"] == "end_of_log"
        assert got[scope]["times"][1] == last_ns
        assert got[scope]["status"] == ("UNSET", None)


def test_repeated_and_unknown_events_are_harmless(provider, exporter):
    """A repeated opening starts no second span; unknown types become span events; strays go to the root."""
    s = Scenario()
    inv = s.start()
    node = s.open("node", "scanner")
    s.events.append(s.events[-1])
    s.point("custom_thing", node, message="future event type")
    s.point(EventType.LOG, "no-such-scope", message="stray")

    mapper = SpanMapper(tracer_for(provider))
    for event in s.events:
        mapper.feed(event)
    s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")
    for event in s.events[-2:]:
        mapper.feed(event)

    got = tree(exporter.get_finished_spans())
    assert set(got) == {inv, node}
    assert [name for name, _ in got[node]["events"]] == ["custom_thing"]
    assert got[inv]["events"] == [("log", {"swarm.seq": 5, "swarm.message": "stray"})]


def test_export_with_an_exporter_gives_reproducible_ids_derived_from_the_events():
    """Two exports of the same stored run produce identical trace and span ids."""
    from swarm_observability.stores import InMemoryEventStore
    from swarm_observability.tracing import export_run

    s = Scenario()
    s.start()
    node = s.open("node", "scanner")
    s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")
    store = InMemoryEventStore()
    store.append_batch(s.events)

    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    result = export_run(store, "run-1", first)
    export_run(store, "run-1", second)

    ids = [
        [(sp.context.trace_id, sp.context.span_id) for sp in e.get_finished_spans()] for e in (first, second)
    ]
    assert ids[0] == ids[1]
    assert result.spans == 2 and result.incomplete == 0
    assert result.trace_ids == (f"{first.get_finished_spans()[0].context.trace_id:032x}",)


def test_spans_on_a_sampled_out_provider_cost_nothing_and_break_nothing():
    """With an always-off sampler the mapping still runs and closes every scope without exporting."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exporter = InMemorySpanExporter()
    tp = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False)
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    s = Scenario()
    s.start()
    s.close(s.open("node", "scanner"))
    s.end(EventType.SCAN_COMPLETE, "ok")

    mapper = SpanMapper(tracer_for(tp))
    for event in s.events:
        mapper.feed(event)

    assert mapper.open_scope_count == 0
    assert exporter.get_finished_spans() == ()


def test_a_node_exit_under_a_new_checkpoint_updates_the_span(provider, exporter):
    """The node span's swarm.checkpoint_id is the one of node_exit when it differs from node_enter's."""
    s = Scenario()
    s.start()
    same = s.open("node", "a", checkpoint_id="ck-1")
    s.close(same)
    moved = s.open("node", "b", checkpoint_id="ck-1")
    s._scopes[moved]["checkpoint_id"] = "ck-2"
    s.close(moved)
    s.end(EventType.SCAN_COMPLETE, "ok")

    got = tree(map_events(provider, exporter, s.events))

    assert got[same]["attributes"]["swarm.checkpoint_id"] == "ck-1"
    assert got[moved]["attributes"]["swarm.checkpoint_id"] == "ck-2"


def test_a_scope_seen_only_opening_ends_one_nanosecond_after_its_start(provider, exporter):
    """A crashed log ending in a node's opening event: its span is 1 ns long, never zero-length."""
    s = Scenario()
    inv = s.start()
    node = s.open("node", "scanner")

    mapper = SpanMapper(tracer_for(provider))
    for event in s.events:
        mapper.feed(event)
    assert mapper.end_open_scopes() == 2

    got = tree(exporter.get_finished_spans())
    start, end = got[node]["times"]
    assert end == start + 1
    assert got[inv]["times"][1] >= end


def test_spans_below_the_root_carry_the_thread_id_and_no_repeated_run_constants(provider, exporter):
    """run_id == thread_id: only the root has swarm.run_id/invocation_id; all spans have the thread id."""
    s = Scenario(run_id="scan-7", thread_id="scan-7")
    inv = s.start()
    node = s.open("node", "scanner", step=1)
    s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")
    got = tree(map_events(provider, exporter, s.events))
    assert {k: v["attributes"].get("gen_ai.conversation.id") for k, v in got.items()} == {
        inv: "scan-7",
        node: "scan-7",
    }
    assert (got[inv]["attributes"]["swarm.run_id"], got[inv]["attributes"]["swarm.invocation_id"]) == (
        "scan-7",
        inv,
    )
    assert not {"swarm.run_id", "swarm.invocation_id"} & set(got[node]["attributes"])


def test_a_node_span_whose_run_is_its_thread_carries_each_id_once_and_nothing_unset(provider, exporter):
    """With run id = thread id a node span has the thread id once, its ids and seq range, no None value."""
    s = Scenario(run_id="thread-1", thread_id="thread-1")
    s.start()
    full = s.open("node", "fetch", step=2, task_id="t-2", checkpoint_id="ck-2", namespace=["outer:1"])
    s.close(full)
    bare = s.open("node", "plain")  # LangGraph gave no step, task or checkpoint
    s.close(bare)
    s.end(EventType.SCAN_COMPLETE, "ok")
    got = tree(map_events(provider, exporter, s.events))
    assert got[full]["name"] == "node fetch"
    assert got[full]["attributes"] == {
        "gen_ai.conversation.id": "thread-1",
        "swarm.scope_id": full,
        "swarm.seq.first": 2,
        "swarm.node": "fetch",
        "swarm.step": 2,
        "swarm.task_id": "t-2",
        "swarm.checkpoint_id": "ck-2",
        "swarm.namespace": ("outer:1",),
        "swarm.outcome": "ok",
        "swarm.seq.last": 3,
    }
    assert got[bare]["attributes"] == {
        "gen_ai.conversation.id": "thread-1",
        "swarm.scope_id": bare,
        "swarm.seq.first": 4,
        "swarm.node": "plain",
        "swarm.outcome": "ok",
        "swarm.seq.last": 5,
    }


def test_a_late_child_nests_under_an_ended_scope_only_while_it_is_remembered(provider, exporter):
    """remember=2: a child opened after its node ended nests under it while the node is among the last 2."""
    s = Scenario()
    inv = s.start()
    nodes = [s.open("node", name) for name in ("a", "b", "c")]
    for node in nodes:
        s.close(node)
    late_c = s.open("probe", "late", nodes[2])  # c ended last: remembered
    late_a = s.open("probe", "late", nodes[0])  # a ended first: forgotten, so under the invocation
    s.close(late_c)
    s.close(late_a)
    s.end(EventType.SCAN_COMPLETE, "ok")
    mapper = SpanMapper(tracer_for(provider), remember=2)
    for event in s.events:
        mapper.feed(event)
    got = tree(exporter.get_finished_spans())
    assert (got[late_c]["parent"], got[late_a]["parent"]) == (nodes[2], inv)


@pytest.mark.parametrize("state", [(), (("vendor", "v1"),)])
def test_a_late_child_of_an_ended_deferred_node_keeps_its_trace_flags_and_state(provider, exporter, state):
    """A child opened after its deferred node ended nests under it with the caller's flags and state."""
    caller = SpanContext(0xC0FFEE, 0xBEEF, True, TraceFlags(TraceFlags.SAMPLED), TraceState(list(state)))
    s = Scenario()
    s.start()
    node = s.open("node", "a")
    s.close(node)
    late = s.open("probe", "late", node)
    s.close(late)
    s.end(EventType.SCAN_COMPLETE, "ok")
    mapper = SpanMapper(
        tracer_for(provider),
        root_parent=lambda event: trace.set_span_in_context(NonRecordingSpan(caller), Context()),
    )
    for event in s.events:
        mapper.feed(event)
    spans = {span.attributes["swarm.scope_id"]: span for span in exporter.get_finished_spans()}
    got = spans[late]
    assert got.parent is not None and got.parent.span_id == spans[node].context.span_id
    assert (got.context.trace_id, got.context.trace_flags, dict(got.context.trace_state)) == (
        0xC0FFEE,
        TraceFlags.SAMPLED,
        dict(state),
    )
    assert got.parent.trace_flags == TraceFlags.SAMPLED and dict(got.parent.trace_state) == dict(state)


def test_an_empty_scope_id_opens_no_span_and_nothing_nests_under_it(provider, exporter):
    """A scan whose scope and invocation ids are "" is ignored like one without: its node is a root."""
    fields = {"thread_id": "thread-1", "invocation_id": "", "scope_id": "", "timestamp": T0}
    events = [
        make_event(EventType.SCAN_STARTED, "run-1", seq=1, data={"graph": "g"}, **fields),
        make_event(
            EventType.NODE_ENTER,
            "run-1",
            seq=2,
            node="a",
            **{**fields, "scope_id": "n", "parent_scope_id": ""},
        ),
        make_event(
            EventType.NODE_EXIT,
            "run-1",
            seq=3,
            node="a",
            data={"outcome": "ok"},
            **{**fields, "scope_id": "n", "parent_scope_id": ""},
        ),
        make_event(EventType.SCAN_COMPLETE, "run-1", seq=4, data={"outcome": "ok"}, **fields),
    ]
    got = tree(map_events(provider, exporter, events))
    assert set(got) == {"n"}
    assert got["n"]["parent"] is None


def test_a_deferred_span_renamed_while_it_runs_keeps_its_opening_attributes(provider, exporter):
    """A node span whose name is read and changed before it is built has the new name and every attribute."""
    s = Scenario()
    inv = s.start()
    node = s.open("node", "scanner", step=3)
    mapper = SpanMapper(tracer_for(provider))
    for event in s.events:
        mapper.feed(event)
    span = mapper.span_for(node)
    assert span is not None and span.name == "node scanner"
    span.update_name("node renamed")
    s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")
    for event in s.events[2:]:
        mapper.feed(event)
    got = tree(exporter.get_finished_spans())
    assert got[node]["name"] == "node renamed" and got[node]["parent"] == inv
    attributes = got[node]["attributes"]
    assert (attributes["swarm.node"], attributes["swarm.step"], attributes["swarm.outcome"]) == (
        "scanner",
        3,
        "ok",
    )


def test_spans_started_counts_running_queued_and_built_spans(provider, exporter):
    """spans_started counts a span from its start: while its scope runs, once queued, and once built."""
    s = Scenario()
    s.start()
    first = s.open("node", "a")
    mapper = SpanMapper(tracer_for(provider))
    fed = 0

    def feed_all() -> None:
        nonlocal fed
        for event in s.events[fed:]:
            mapper.feed(event)
        fed = len(s.events)

    feed_all()
    assert mapper.spans_started == 2  # the root, and a node still running
    s.close(first)
    second = s.open("node", "b")
    feed_all()
    assert mapper.spans_started == 3 and exporter.get_finished_spans() == ()  # "a" is queued
    s.close(second)
    s.end(EventType.SCAN_COMPLETE, "ok")
    feed_all()
    assert mapper.spans_started == 3 and len(exporter.get_finished_spans()) == 3


def test_a_span_that_cannot_be_built_is_logged_and_the_batch_goes_on(provider, exporter, caplog):
    """A deferred span whose SDK start fails is logged and missing; the ones after it keep their own ids."""

    class Refuse(SpanProcessor):
        def on_start(self, span, parent_context=None):
            if span.name == "node b":
                raise RuntimeError("refused")

    provider.add_span_processor(Refuse())
    s = Scenario()
    inv = s.start()
    nodes = [s.open("node", name) for name in ("a", "b", "c")]
    for node in nodes:
        s.close(node)
    s.end(EventType.SCAN_COMPLETE, "ok")
    with caplog.at_level("ERROR", logger="swarm_observability.tracing"):
        got = tree(map_events(provider, exporter, s.events))
    assert set(got) == {inv, nodes[0], nodes[2]}
    assert got[nodes[0]]["parent"] == got[nodes[2]]["parent"] == inv
    assert "the span 'node b' could not be made" in caplog.text
    spans = {s.attributes["swarm.scope_id"]: s.context.span_id for s in exporter.get_finished_spans()}
    assert len(set(spans.values())) == 3
