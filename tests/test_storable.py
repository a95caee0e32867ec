"""Values no store could keep as they are (issue 17 items 1, 2, 12): replaced where the event is built,
marked, counted, and never taking other events down with them."""

from __future__ import annotations

import logging
import operator
import os
import sys
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.graph import START, StateGraph

from swarm_observability import log, progress
from swarm_observability._storable import INT_AS_STRING, MAX_INT_DIGITS, SURROGATES_ESCAPED
from swarm_observability.emitter import EventEmitter
from swarm_observability.events import StreamEvent, make_event, storable_event, validate_run_id
from swarm_observability.exceptions import EventValidationError, InvalidRunIdError
from swarm_observability.instrumentation.observer import SwarmObserver
from swarm_observability.state import RunStatus, rebuild_run_state
from swarm_observability.stores import JSONLEventStore, SQLiteEventStore

BAD_NAME = os.fsdecode(b"report-\xff\xfe.txt")  # what a non-UTF-8 file name becomes in Python
HUGE = 10**4400


def _file_store(kind: str, folder: Path) -> Any:
    return SQLiteEventStore(folder / "events.db") if kind == "sqlite" else JSONLEventStore(folder / "j")


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_a_lone_surrogate_costs_no_event_of_its_batch(tmp_path: Path, kind: str) -> None:
    """Good events written in the same background batch as a surrogate message all survive, in order."""
    store = _file_store(kind, tmp_path)
    emitter = EventEmitter(store, write="background", linger=0.05)
    emitter.emit("log", "r", message="before")
    emitter.emit("log", "r", message=BAD_NAME, data={"file": BAD_NAME})
    emitter.emit("log", "r", message="after")
    emitter.flush()
    events = store.load("r")
    assert [e.message for e in events] == ["before", "report-\\udcff\\udcfe.txt", "after"]
    assert events[1].data == {"file": "report-\\udcff\\udcfe.txt"}
    assert events[1].sanitized == {"/message": SURROGATES_ESCAPED, "/data/file": SURROGATES_ESCAPED}
    assert emitter.stats().sanitized_events == 1
    emitter.close()
    store.close()


def test_the_escaped_form_gives_back_the_original_bytes() -> None:
    """Escaping is lossless for surrogateescape text: the original bytes are rebuilt from the stored text."""
    event = make_event("log", "r", message=BAD_NAME)
    stored = event.message
    assert stored is not None and stored.isascii()
    rebuilt = stored.encode().decode("unicode_escape").encode("utf-8", "surrogateescape")
    assert rebuilt == b"report-\xff\xfe.txt"


def test_surrogates_in_data_no_longer_raise_from_emit() -> None:
    """Data with lone surrogates (values, keys, nested, in the payload cap's way) is emitted, not refused."""
    emitter = EventEmitter()
    event = emitter.emit("log", "r", data={"files": ["ok", BAD_NAME], BAD_NAME: 1, "deep": {"x": "\ud800"}})
    assert event is not None
    assert event.data == {
        "files": ["ok", "report-\\udcff\\udcfe.txt"],
        "report-\\udcff\\udcfe.txt": 1,
        "deep": {"x": "\\ud800"},
    }
    assert event.sanitized == {
        "/data/files/1": SURROGATES_ESCAPED,
        "/data/report-\\udcff\\udcfe.txt": "key_surrogates_escaped",
        "/data/deep/x": SURROGATES_ESCAPED,
    }
    assert StreamEvent.from_json(event.to_json_bytes()) == event


@pytest.mark.parametrize(
    "field", ["node", "agent", "probe", "thread_id", "task_id", "scope_id", "checkpoint_id", "namespace"]
)
def test_every_text_field_is_escaped_and_named(field: str) -> None:
    """Each optional text field (and namespace elements) gets the same treatment and its own pointer."""
    value: Any = ("ok:1", BAD_NAME) if field == "namespace" else BAD_NAME
    event = make_event("log", "r", **{field: value})
    pointer = "/namespace/1" if field == "namespace" else f"/{field}"
    assert event.sanitized == {pointer: SURROGATES_ESCAPED}
    event.to_json_bytes()


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_an_overlong_int_keeps_the_run_readable(tmp_path: Path, kind: str) -> None:
    """10**4400 is stored as its digits, marked; the run loads; ints up to 640 digits stay numbers."""
    store = _file_store(kind, tmp_path)
    emitter = EventEmitter(store)
    biggest = 10**MAX_INT_DIGITS - 1
    emitter.emit("log", "r", data={"n": HUGE, "fits": biggest, "neg": [-HUGE]})
    emitter.emit("log", "r", message="next")
    emitter.flush()
    first, second = store.load("r")
    assert first.data["fits"] == biggest
    assert first.data["n"] == "1" + "0" * 4400
    assert first.data["neg"] == ["-1" + "0" * 4400]
    assert first.sanitized == {"/data/n": INT_AS_STRING, "/data/neg/0": INT_AS_STRING}
    assert second.message == "next"
    emitter.close()
    store.close()


def test_a_reader_at_the_lowest_int_digit_limit_can_read_every_stored_int() -> None:
    """With int_max_str_digits at its minimum (640) the stored JSON still parses in the stdlib."""
    import json

    text = make_event("log", "r", data={"a": 10**MAX_INT_DIGITS - 1, "b": 10**MAX_INT_DIGITS}).to_json()
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        assert json.loads(text)["data"]["b"] == "1" + "0" * MAX_INT_DIGITS
    finally:
        sys.set_int_max_str_digits(old)


def test_keys_are_refused_not_rewritten() -> None:
    """A run id, event id or type with lone surrogates is a clear error (keys are never altered)."""
    with pytest.raises(EventValidationError, match="run_id: is not valid Unicode"):
        make_event("log", BAD_NAME)
    with pytest.raises(EventValidationError, match="run_id"):
        EventEmitter().emit("log", "run-\udcff")
    with pytest.raises(InvalidRunIdError, match="lone surrogates"):
        validate_run_id("run-\udcff")
    with pytest.raises(EventValidationError, match="id"):
        make_event("log", "r", id="\udcff")
    with pytest.raises(EventValidationError, match="type"):
        make_event("kind-\udcff", "r")


def test_caller_built_and_processed_events_are_checked_too(caplog: pytest.LogCaptureFixture) -> None:
    """emit_event of a bare-constructed event and a processor's model_copy are made storable as well."""

    def inject(event: StreamEvent) -> StreamEvent:
        return event.model_copy(update={"message": "p-\udcff"}) if event.message == "inject" else event

    emitter = EventEmitter(processors=[inject])
    caplog.set_level(logging.WARNING, "swarm_observability")
    built = StreamEvent(type="log", run_id="r", agent="a-\udcff")
    stored = emitter.emit_event(built)
    assert stored is not None and stored.agent == "a-\\udcff" and built.agent == "a-\udcff"
    processed = emitter.emit("log", "r", message="inject")
    assert processed is not None and processed.sanitized == {"/message": SURROGATES_ESCAPED}
    assert emitter.stats().sanitized_events == 2
    assert "marked form" in caplog.text
    for event in emitter.store.load("r"):
        event.to_json_bytes()


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_a_store_refuses_an_unserializable_event_whole(tmp_path: Path, kind: str) -> None:
    """Appending a bare event that cannot serialize (no emitter) raises our error and stores nothing."""
    store = _file_store(kind, tmp_path)
    good = make_event("log", "r", seq=1)
    bad = StreamEvent(type="log", run_id="r", seq=2, message="\udcff")
    with pytest.raises(EventValidationError, match="cannot be serialized"):
        store.append_batch([good, bad])
    assert store.last_sequence("r") == 0
    store.close()


def test_storable_event_returns_clean_events_unchanged() -> None:
    """A storable event is returned as the same object (no copy on the common path)."""
    event = make_event("log", "r", message="plain", data={"nested": {"a": [1, "b"]}}, thread_id="t")
    assert storable_event(event) is event
    assert event.sanitized is None


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_nan_in_an_unknown_field_round_trips_byte_for_byte(tmp_path: Path, kind: str) -> None:
    """An extra field holding NaN/Infinity (as written by a newer release) is written back unchanged."""
    line = (
        b'{"type":"future","run_id":"r","id":"e-1","seq":1,"timestamp":"2026-01-01T00:00:00.000Z",'
        b'"version":2,"score":NaN,"range":[Infinity,-Infinity],"note":null}'
    )
    event = StreamEvent.from_json(line)
    assert event.to_json_bytes() == line
    store = _file_store(kind, tmp_path)
    store.append(event)
    store.close()
    store = _file_store(kind, tmp_path)
    assert store.load("r")[0].to_json_bytes() == line
    store.close()


def test_nan_in_an_extra_field_built_here_is_normalized_like_data() -> None:
    """make_event normalizes extras as it does data, so it never writes a non-standard NaN token itself."""
    event = make_event("log", "r", score=float("nan"), when=[float("inf")])
    assert event.extra_fields == {"score": None, "when": [None]}
    assert b"NaN" not in event.to_json_bytes()


class _S(TypedDict, total=False):
    x: Annotated[list[str], operator.add]


def _hostile_node(state: _S) -> dict[str, Any]:
    progress(0.5, BAD_NAME)
    log(f"opened {BAD_NAME}", path=BAD_NAME, size=HUGE)
    return {"x": [BAD_NAME]}


def test_a_sanitized_event_handed_over_fresh_is_counted_as_emit_counts_it() -> None:
    """emit_event(fresh=True) of a just-built marked event counts it in sanitized_events, as emit() does
    (the recorder closes traced scopes that way)."""
    emitter = EventEmitter()
    emitter.emit("log", "r", message=BAD_NAME)
    stored = emitter.emit_event(make_event("log", "r", message=BAD_NAME), fresh=True)
    assert stored is not None and stored.sanitized == {"/message": SURROGATES_ESCAPED}
    assert emitter.stats().sanitized_events == 2


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
def test_hostile_values_inside_an_instrumented_graph_leave_a_complete_log(tmp_path: Path, kind: str) -> None:
    """A node emitting surrogate text and a huge int: invoke returns, the log ends in scan_complete."""
    store = _file_store(kind, tmp_path)
    observer = SwarmObserver(store, heartbeat_interval=None)
    builder = StateGraph(_S)
    builder.add_node("hostile", _hostile_node)
    builder.add_edge(START, "hostile")
    graph = observer.instrument(builder.compile())
    result = graph.invoke({"x": []}, {"configurable": {"thread_id": "hostile-1"}})
    assert result == {"x": [BAD_NAME]}, "the graph's own output is untouched"
    observer.emitter.flush()
    events = store.load("hostile-1")
    types = [e.type_name for e in events]
    assert types[-1] == "scan_complete"
    assert "node_exit" in types and "node_progress" in types and "log" in types
    marked = [e for e in events if e.sanitized]
    assert {p for e in marked for p in e.sanitized or {}} >= {"/message", "/data/path", "/data/size"}
    assert rebuild_run_state(store, "hostile-1").status == RunStatus.COMPLETED
    assert observer.emitter.stats().sanitized_events == len(marked)
    observer.close()
    store.close()


def test_assigned_fields_left_unset_may_be_passed_back_to_emit() -> None:
    """Re-emitting ``event.model_dump()`` works (sanitized/prev_hash None); giving them values does not."""
    emitter = EventEmitter()
    first = emitter.emit("log", "r", message="one")
    assert first is not None
    again = emitter.emit("log", "r", **first.model_dump(exclude={"type", "run_id", "seq", "id"}))
    assert again is not None and again.message == "one"
    with pytest.raises(EventValidationError, match="prev_hash is assigned by the hash chain"):
        emitter.emit("log", "r", prev_hash="sha256:" + "0" * 64)
