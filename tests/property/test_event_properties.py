"""Properties of events built from any values: they build, serialize, and read back as built."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_observability._storable import storable_text
from swarm_observability.emitter import EventEmitter
from swarm_observability.event_fast import data_shape, plain_data, plain_values
from swarm_observability.events import EventType, Outcome, StreamEvent, make_event, plain_node_fields
from swarm_observability.exceptions import EventValidationError
from swarm_observability.instrumentation.outcomes import attempt_shape, closing_data
from swarm_observability.instrumentation.recorder import Invocation, Recorder, Scope

from ._budget import examples
from .strategies import event_fields, event_types, hostile_data, hostile_text, run_ids


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _walk(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _walk(item)
    else:
        yield value


@settings(max_examples=examples(120))
@given(event_types, run_ids, event_fields())
def test_any_event_builds_serializes_and_reads_back_equal(kind: Any, run_id: str, fields: dict) -> None:
    """make_event accepts hostile values; the JSON parses back to an equal event, byte for byte."""
    event = make_event(kind, run_id, **fields)
    raw = event.to_json_bytes()
    again = StreamEvent.from_stored_json(raw)
    assert again == event
    assert again.to_json_bytes() == raw
    assert StreamEvent.from_json(raw) == event
    for value in _walk(event.to_dict()):
        if isinstance(value, str):
            assert storable_text(value)
        if isinstance(value, int) and not isinstance(value, bool):
            assert abs(value) < 10**640


@settings(max_examples=examples(80))
@given(hostile_data, hostile_text)
def test_marks_name_exactly_the_replaced_values(data: dict, message: str) -> None:
    """Without anything unstorable there is no mark; with something, each mark's pointer resolves."""
    event = make_event("log", "r", data=data, message=message)
    if event.sanitized is None:
        assert event.message == message
        return
    body = event.to_dict()
    for pointer in event.sanitized:
        node: Any = body
        for token in pointer.split("/")[1:]:
            token = token.replace("~1", "/").replace("~0", "~")
            node = node[int(token)] if isinstance(node, list) else node[token]


@settings(max_examples=examples(50))
@given(st.lists(st.tuples(run_ids, event_fields()), min_size=1, max_size=8))
def test_emitted_events_keep_gapless_seqs_whatever_their_values(items: list) -> None:
    """An emitter stores every event of a hostile sequence, with per-run seqs 1..n."""
    emitter = EventEmitter(processors=[])
    for run_id, fields in items:
        assert emitter.emit("log", run_id, **fields) is not None
    for run_id in {run for run, _ in items}:
        seqs = [event.seq for event in emitter.store.load(run_id)]
        assert seqs == list(range(1, len(seqs) + 1))


class _Name(str):
    """A str subclass, as a node name: not plain (validation makes a plain str of it)."""


_node_texts = st.one_of(
    hostile_text, st.sampled_from(["n1", "节点", "a" * 300, "task-1"]), hostile_text.map(_Name)
)
_optional_texts = st.one_of(st.none(), _node_texts)
_steps = st.one_of(
    st.none(), st.integers(-(2**64), 2**64), st.booleans(), st.sampled_from([2**63 - 1, -(2**63)])
)
_namespaces = st.one_of(
    st.none(), st.lists(_node_texts, max_size=3).map(tuple), st.lists(hostile_text, min_size=1, max_size=2)
)
_node_executions = st.tuples(_node_texts, _steps, _optional_texts, _optional_texts, _namespaces)
_attempts = st.one_of(
    st.none(),
    st.integers(-(2**60), 2**60),
    st.booleans(),
    st.floats(),
    st.sampled_from([2**53 - 1, 2**53, 10**400]),
)
_node_data = st.one_of(
    _attempts.map(lambda attempt: {} if attempt is None else {"attempt": attempt}),
    hostile_data,
    st.builds(lambda attempt, more: {"attempt": attempt, **more}, _attempts, hostile_data),
)


@settings(max_examples=examples(150))
@given(
    run_ids,
    st.one_of(st.none(), hostile_text),
    st.one_of(st.none(), hostile_text),
    st.lists(st.tuples(_node_executions, _node_data, st.sampled_from(list(Outcome))), min_size=1, max_size=3),
)
def test_node_events_are_what_make_event_builds_from_the_node_fields(
    run_id: str, thread_id: str | None, agent: str | None, nodes: list
) -> None:
    """Node scopes (fields checked from the parent's, own fields checked fast or in full; data of a
    shape the recorder knows taken as built) emit what make_event builds; what it refuses, nothing."""
    emitter = EventEmitter(processors=[])
    recorder = Recorder(emitter, heartbeat_interval=None, durable_node_exit=False)
    invocation = Invocation(recorder, run_id, thread_id, "i" * 32)
    fields = (
        {"invocation_id": "i" * 32}
        if thread_id is None
        else {"thread_id": thread_id, "invocation_id": "i" * 32}
    )
    root = invocation.root = Scope("scan", "g", invocation, None, fields, scope_id="i" * 32)
    recorder.open(root, EventType.SCAN_STARTED, {"graph": "g"})
    parent = root if agent is None else root.child("agent", agent, agent=agent)
    for (name, step, task_id, checkpoint_id, namespace), data, outcome in nodes:
        own = {"node": name, "step": step, "task_id": task_id, "checkpoint_id": checkpoint_id}
        own = {key: value for key, value in {**own, "namespace": namespace}.items() if value is not None}
        plain = plain_node_fields(name, step, task_id, checkpoint_id, namespace)
        if plain:
            assert plain_values(run_id, own) is not None, own
        scope = parent.node_child(name, own, None, None, plain=plain)
        got = [
            recorder.open(scope, EventType.NODE_ENTER, dict(data)),
            recorder.close(scope, EventType.NODE_EXIT, outcome, dict(data)),
        ]
        payloads = [data, {"outcome": outcome.value, "duration_ms": 1.5, **data}]
        for kind, event, payload in zip(
            (EventType.NODE_ENTER, EventType.NODE_EXIT), got, payloads, strict=True
        ):
            if event is None:
                with pytest.raises(EventValidationError):
                    make_event(kind, run_id, **scope.fields, data=payload)
                continue
            if kind is EventType.NODE_EXIT and "duration_ms" not in data:
                payload["duration_ms"] = event.data["duration_ms"]
            expected = make_event(kind, run_id, **scope.fields, **({"data": payload} if payload else {}))
            skip = {"id", "seq", "timestamp", "time_unix_nano"}
            assert {k: v for k, v in event.to_dict().items() if k not in skip} == {
                k: v for k, v in expected.to_dict().items() if k not in skip
            }
            assert event.model_fields_set - {"seq"} == expected.model_fields_set
            assert event.to_json_bytes() == StreamEvent.from_json(event.to_json_bytes()).to_json_bytes()


@settings(max_examples=examples(150))
@given(_node_data, st.sampled_from(list(Outcome)))
def test_the_data_shapes_the_recorder_knows_are_the_shapes_of_plain_data(
    data: dict, outcome: Outcome
) -> None:
    """A shape the recorder gives for a scope's opening or closing data is that data's data_shape, and
    the data is plain as it is (plain_data returns it unchanged): so it may skip both."""
    shape = attempt_shape(data)
    if shape is not None:
        assert shape == data_shape(data) and plain_data(data) == data
        assert [type(v) for v in plain_data(data).values()] == [type(v) for v in data.values()]
    payload, closing = closing_data(outcome, time.perf_counter(), data)
    assert payload == {"outcome": outcome.value, "duration_ms": payload["duration_ms"], **data}
    assert (closing is None) == (shape is None)
    if closing is not None:
        assert closing == data_shape(payload) and plain_data(payload) == payload
        assert [type(v) for v in plain_data(payload).values()] == [type(v) for v in payload.values()]
