"""Properties of events built from any values: they build, serialize, and read back as built."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from swarm_observability._storable import storable_text
from swarm_observability.emitter import EventEmitter
from swarm_observability.events import StreamEvent, make_event

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
