"""StreamEvent: contract fields, timestamps, lossless round trips, forward compatibility, schema."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from importlib import resources
from typing import Any

import pytest
from pydantic import Field

from swarm_observability import (
    SCHEMA_VERSION,
    EventEmitter,
    EventType,
    EventValidationError,
    InvalidRunIdError,
    Outcome,
    event_json_schema,
    validate_run_id,
)
from swarm_observability.event_fast import plain_event, plain_values
from swarm_observability.events import StreamEvent, copy_event, make_event, plain_node_fields

CONTRACT_TYPES = {
    "scan_started", "scan_paused", "scan_resumed", "scan_cancelled", "scan_complete", "scan_error",
    "node_enter", "node_progress", "node_exit", "plan_start", "plan_complete", "probe_start",
    "probe_result", "probe_complete", "agent_start", "agent_complete", "log", "heartbeat",
}  # fmt: skip

TS = datetime(2026, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)

ROUND_TRIP_CASES: dict[str, dict[str, Any]] = {
    "minimal": {"type": EventType.LOG},
    "unicode": {
        "type": EventType.LOG,
        "message": 'Überprüfung läuft ☃ 🚀 \u2028 "quoted" \\ slash',
        "node": "nœud",
    },
    "nested data": {
        "type": EventType.PROBE_RESULT,
        "probe": "dns",
        "data": {"hosts": [{"name": "a", "ips": ["10.0.0.1"]}], "depth": {"x": {"y": [1, 2.5, None, True]}}},
    },
    "namespace tuple": {
        "type": EventType.NODE_ENTER,
        "node": "inner",
        "step": 4,
        "task_id": "t-1",
        "namespace": ("outer:abc", "middle:def"),
        "checkpoint_id": "1ef-2",
    },
    "progress zero": {"type": EventType.NODE_PROGRESS, "progress": 0.0, "message": "start"},
    "progress one": {"type": EventType.NODE_PROGRESS, "progress": 1.0},
    "every field": {
        "type": EventType.NODE_EXIT,
        "seq": 7,
        "thread_id": "thread-1",
        "node": "planner",
        "agent": "lead",
        "probe": "http",
        "message": "done",
        "data": {"outcome": Outcome.OK.value, "duration_ms": 12.5},
        "progress": 0.5,
        "step": 3,
        "task_id": "task",
        "namespace": ("sub:1",),
        "checkpoint_id": "ckpt",
        "invocation_id": "a" * 32,
        "scope_id": "b" * 32,
        "parent_scope_id": "c" * 32,
        "trace_id": "d" * 32,
        "span_id": "e" * 16,
    },
    "unknown type": {"type": "probe_retried", "data": {"attempt": 2}},
    "extra fields": {"type": EventType.LOG, "cost_usd": 0.25, "tags": ["a", "b"]},
    "floats": {"type": EventType.HEARTBEAT, "data": {"elapsed_s": 1e-7, "big": 1.5e300, "neg": -0.0}},
}


@pytest.fixture(params=list(ROUND_TRIP_CASES), ids=list(ROUND_TRIP_CASES))
def varied_event(request: pytest.FixtureRequest) -> StreamEvent:
    return make_event(run_id="run-1", timestamp=TS, **ROUND_TRIP_CASES[request.param])


def test_event_types_cover_the_contract() -> None:
    """Every event type of the product contract is an EventType value."""
    assert {t.value for t in EventType} >= CONTRACT_TYPES
    assert all(isinstance(t, str) for t in EventType)


def test_new_event_has_uuid7_id_utc_millisecond_timestamp_and_version() -> None:
    """A new event gets a unique UUIDv7 id, an aware UTC timestamp truncated to ms and the schema version."""
    events = [make_event(EventType.LOG, "r") for _ in range(200)]
    assert len({e.id for e in events}) == 200
    for event in events:
        parsed = uuid.UUID(event.id)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122 and str(parsed) == event.id
        assert event.timestamp.utcoffset() == timedelta(0)
        assert event.timestamp.microsecond % 1000 == 0
        assert event.version == SCHEMA_VERSION and event.seq is None
    assert abs(events[0].timestamp - datetime.now(UTC)) < timedelta(minutes=1)


def test_event_ids_embed_their_creation_millisecond_and_sort_by_it() -> None:
    """A v7 id starts with the Unix milliseconds it was made at, so later ids sort after earlier ones."""
    before = time.time_ns() // 1_000_000
    first = make_event(EventType.LOG, "r").id
    time.sleep(0.002)
    second = StreamEvent(type=EventType.LOG, run_id="r").id
    after = time.time_ns() // 1_000_000
    stamps = [uuid.UUID(i).int >> 80 for i in (first, second)]
    assert before <= stamps[0] < stamps[1] <= after
    assert first < second
    random_bits = {uuid.UUID(make_event(EventType.LOG, "r").id).int & ((1 << 62) - 1) for _ in range(100)}
    assert len(random_bits) == 100


def test_timestamp_is_converted_to_utc_and_serialized_with_milliseconds_and_z() -> None:
    """An aware non-UTC timestamp becomes UTC, loses sub-millisecond digits and serializes as ISO ...Z."""
    local = datetime(2026, 3, 4, 7, 6, 7, 123456, tzinfo=timezone(timedelta(hours=2)))
    event = make_event(EventType.LOG, "r", timestamp=local)
    assert event.timestamp == datetime(2026, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)
    assert event.to_dict()["timestamp"] == "2026-03-04T05:06:07.123Z"
    assert b'"timestamp":"2026-03-04T05:06:07.123Z"' in event.to_json_bytes()


@pytest.mark.parametrize("build", ["fast path", "validated"])
def test_new_event_carries_its_precise_time_in_the_millisecond_of_its_timestamp(build: str) -> None:
    """time_unix_nano is the reading timestamp was truncated from: same ms, ns precision, appended last."""
    before = time.time_ns()
    if build == "fast path":
        events = [make_event(EventType.LOG, "r", data={"i": i}) for i in range(50)]
    else:  # a list in data (and a bare constructor) take pydantic's path and its default factories
        events = [StreamEvent(type=EventType.LOG, run_id="r", data={"i": [i]}) for i in range(50)]
    after = time.time_ns()
    for event in events:
        assert event.time_unix_nano is not None and before <= event.time_unix_nano <= after
        assert event.time_unix_nano // 1_000_000 == (event.timestamp - datetime(1970, 1, 1, tzinfo=UTC)) // (
            timedelta(milliseconds=1)
        )
        assert list(event.to_dict())[-1] == "time_unix_nano"
        assert StreamEvent.from_json(event.to_json()) == event
        assert StreamEvent.from_stored_json(event.to_json_bytes()).time_unix_nano == event.time_unix_nano
    assert [e.time_unix_nano for e in events] == sorted(e.time_unix_nano for e in events)  # type: ignore[misc]
    assert len({e.time_unix_nano for e in events}) > len({e.timestamp for e in events})


def test_an_explicit_timestamp_has_no_precise_time_and_both_given_must_agree() -> None:
    """A caller's timestamp alone leaves time_unix_nano unset; a disagreeing pair is refused, named."""
    moment = datetime(2026, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)
    assert make_event(EventType.LOG, "r", timestamp=moment).time_unix_nano is None
    ns = int(moment.timestamp()) * 1_000_000_000 + 123_456_789
    assert make_event(EventType.LOG, "r", timestamp=moment, time_unix_nano=ns).time_unix_nano == ns
    with pytest.raises(EventValidationError, match="time_unix_nano: is not within the millisecond of"):
        make_event(EventType.LOG, "r", timestamp=moment, time_unix_nano=ns + 1_000_000)
    with pytest.raises(EventValidationError, match="time_unix_nano"):
        make_event(EventType.LOG, "r", time_unix_nano=-1)
    old = make_event(EventType.LOG, "r", timestamp=moment).to_json()
    assert "time_unix_nano" not in old and StreamEvent.from_json(old).time_unix_nano is None


@pytest.mark.parametrize(
    "value", [datetime(2026, 1, 1), "2026-01-01T00:00:00"], ids=["datetime", "iso-string"]
)
def test_naive_timestamp_is_refused(value: object) -> None:
    """A naive timestamp (object or string) raises EventValidationError naming the field."""
    with pytest.raises(EventValidationError, match=r"timestamp: .*naive"):
        make_event(EventType.LOG, "r", timestamp=value)


def test_round_trip_through_dict_and_json_is_lossless(varied_event: StreamEvent) -> None:
    """to_dict/from_dict and to_json/from_json both reproduce an equal event with the same JSON."""
    assert StreamEvent.from_dict(varied_event.to_dict()) == varied_event
    assert StreamEvent.from_json(varied_event.to_json()) == varied_event
    again = StreamEvent.from_json(varied_event.to_json_bytes())
    assert again == varied_event
    assert again.to_json_bytes() == varied_event.to_json_bytes()
    assert json.loads(varied_event.to_json_bytes()) == varied_event.to_dict()


PARSERS = [StreamEvent.from_json, StreamEvent.from_stored_json]


def test_stored_json_parses_to_the_same_event_as_from_json(varied_event: StreamEvent) -> None:
    """from_stored_json (the stores' reader) yields an event equal to from_json's, with the same JSON."""
    written = varied_event.to_json_bytes()
    stored = StreamEvent.from_stored_json(written)
    assert stored == StreamEvent.from_json(written) == varied_event
    assert stored.to_json_bytes() == written
    assert stored.timestamp.tzinfo is UTC


@pytest.mark.parametrize(
    "parse", [StreamEvent.from_json, StreamEvent.from_stored_json], ids=["json", "stored"]
)
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-04T05:06:07.123Z", datetime(2026, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)),
        ("2026-03-04T07:06:07.123+02:00", datetime(2026, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)),
        ("2026-03-04T05:06:07.123456Z", datetime(2026, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)),
        ("2026-03-04T05:06:07Z", datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)),
        ("2026-03-04T05:06:07.999+00:00", datetime(2026, 3, 4, 5, 6, 7, 999000, tzinfo=UTC)),
    ],
)
def test_parsed_timestamps_become_utc_milliseconds(
    text: str, expected: datetime, parse: Callable[[str], StreamEvent]
) -> None:
    """Any aware ISO timestamp read from JSON becomes a datetime.UTC value truncated to milliseconds."""
    event = parse(json.dumps({"type": "log", "run_id": "r", "id": "e-1", "timestamp": text}))
    assert event.timestamp == expected
    assert event.timestamp.tzinfo is UTC


@pytest.mark.parametrize(
    "parse", [StreamEvent.from_json, StreamEvent.from_stored_json], ids=["json", "stored"]
)
@pytest.mark.parametrize(
    "text", ["2026-02-30T05:06:07.123Z", "2026-03-04T25:06:07.123Z", "2026-03-04T05:06:07.123", "yesterday"]
)
def test_bad_timestamp_text_is_refused_naming_the_field(
    text: str, parse: Callable[[str], StreamEvent]
) -> None:
    """Impossible dates in the canonical shape, naive times and non-dates are refused, naming timestamp."""
    with pytest.raises(ValueError, match="timestamp"):
        parse(json.dumps({"type": "log", "run_id": "r", "timestamp": text}))


def test_run_id_checks_hold_for_ids_seen_before() -> None:
    """A run id already accepted once stays accepted, and a bad one is refused even after good ones."""
    for _ in range(2):
        assert StreamEvent.from_json('{"type":"log","run_id":"seen-run"}').run_id == "seen-run"
        assert make_event(EventType.LOG, "seen-run").run_id == "seen-run"
    with pytest.raises(EventValidationError, match="run_id"):
        StreamEvent.from_json(json.dumps({"type": "log", "run_id": "seen-run\n"}))


def test_to_dict_leaves_out_none_and_empty_fields() -> None:
    """Unset optional fields, empty data and an empty namespace are not serialized."""
    event = make_event(EventType.LOG, "r", timestamp=TS)
    assert set(event.to_dict()) == {"type", "run_id", "id", "timestamp", "version"}


def test_data_is_normalized_to_json_and_detached_from_the_caller() -> None:
    """Tuples, sets, NaN and non-JSON objects become JSON values; later caller mutation changes nothing."""

    class Opaque:
        def __repr__(self) -> str:
            return "<Opaque>"

    payload: dict[str, Any] = {
        "pair": (1, 2),
        "set": {3},
        "nan": float("nan"),
        "inf": [float("inf")],
        "obj": Opaque(),
        "when": datetime(2026, 1, 2, tzinfo=UTC),
        "bytes": b"\xff\xfe",
        "nested": {"list": [1]},
    }
    event = make_event(EventType.LOG, "r", data=payload)
    payload["nested"]["list"].append(2)
    payload["added"] = True
    assert event.data == {
        "pair": [1, 2],
        "set": [3],
        "nan": None,
        "inf": [None],
        "obj": "<Opaque>",
        "when": "2026-01-02T00:00:00Z",
        "bytes": repr(b"\xff\xfe"),
        "nested": {"list": [1]},
    }
    assert StreamEvent.from_json(event.to_json_bytes()) == event


def test_event_is_immutable() -> None:
    """Assigning a field of a stored event raises instead of changing it."""
    event = make_event(EventType.LOG, "r")
    with pytest.raises(ValueError, match="frozen"):
        event.node = "x"  # type: ignore[misc]


class _FutureStreamEvent(StreamEvent):
    """What a newer release looks like: fields appended at the end, a newer version, new types."""

    cost_usd: float | None = Field(default=None)
    retries: list[int] = Field(default_factory=list)


@pytest.mark.parametrize(
    "fields",
    [
        {"type": "probe_retried", "version": SCHEMA_VERSION + 1, "cost_usd": 0.5, "retries": [1, 2]},
        {"type": EventType.NODE_EXIT, "version": 99, "cost_usd": 1e-9, "node": "ñ", "data": {"x": [1.5]}},
        {"type": "totally_new", "retries": [3], "namespace": ("a:1",), "progress": 0.25},
    ],
    ids=["new-type", "newer-version", "new-type-and-fields"],
)
@pytest.mark.parametrize(
    "parse", [StreamEvent.from_json, StreamEvent.from_stored_json], ids=["json", "stored"]
)
def test_newer_writer_event_is_kept_and_written_back_byte_identical(
    fields: dict[str, Any], parse: Callable[[bytes], StreamEvent]
) -> None:
    """An event from a newer release (unknown type, fields, version) reads and re-serializes byte for byte."""
    written = _FutureStreamEvent(run_id="r", seq=3, timestamp=TS, **fields).to_json_bytes()
    event = parse(written)
    assert event.to_json_bytes() == written
    assert event.type_name == str(fields["type"])
    assert event.version == fields.get("version", SCHEMA_VERSION)
    stored = json.loads(written)
    assert event.extra_fields == {k: v for k, v in stored.items() if k in ("cost_usd", "retries")}
    assert "retries" in event.extra_fields
    assert StreamEvent.from_dict(event.to_dict()).to_json_bytes() == written


def test_foreign_extra_fields_keep_order_and_null_values() -> None:
    """Unknown fields, including null ones, survive a read/write cycle in their original order."""
    written = (
        '{"type":"x_custom","run_id":"r","id":"i-1","timestamp":"2026-03-04T05:06:07.123Z","version":4,'
        '"data":{"k":"v"},"zeta":null,"alpha":{"n":[1,"é"]},"mid":false}'
    ).encode()
    event = StreamEvent.from_json(written)
    assert list(event.extra_fields) == ["zeta", "alpha", "mid"]
    assert event.to_json_bytes() == written
    assert list(event.to_dict())[-3:] == ["zeta", "alpha", "mid"]


INVALID_FIELDS: dict[str, tuple[dict[str, Any], str]] = {
    "progress above 1": ({"progress": 1.5}, "progress"),
    "progress below 0": ({"progress": -0.01}, "progress"),
    "progress nan": ({"progress": float("nan")}, "progress"),
    "progress text": ({"progress": "half"}, "progress"),
    "step text": ({"step": "third"}, "step"),
    "node number": ({"node": 5}, "node"),
    "data list": ({"data": [1, 2]}, "data"),
    "namespace string": ({"namespace": "a:1"}, "namespace"),
    "seq zero": ({"seq": 0}, "seq"),
    "version zero": ({"version": 0}, "version"),
    "empty run id": ({"run_id": ""}, "run_id"),
    "run id not a string": ({"run_id": 12}, "run_id"),
    "run id control char": ({"run_id": "a\nb"}, "run_id"),
    "run id too long": ({"run_id": "r" * 257}, "run_id"),
}


@pytest.mark.parametrize("how", ["make_event", "from_dict", "from_json"])
@pytest.mark.parametrize(("fields", "field"), list(INVALID_FIELDS.values()), ids=list(INVALID_FIELDS))
def test_invalid_field_raises_event_validation_error_naming_it(
    fields: dict[str, Any], field: str, how: str
) -> None:
    """Bad values raise EventValidationError whose message starts the problem with the field's name."""
    values: dict[str, Any] = {"type": "log", "run_id": "r", **fields}
    with pytest.raises(EventValidationError, match=rf"(^|; | ){field}: "):
        if how == "make_event":
            make_event(**values)
        elif how == "from_dict":
            StreamEvent.from_dict(values)
        else:
            StreamEvent.from_json(json.dumps(values, allow_nan=True))


def test_an_empty_type_is_refused_but_one_already_stored_stays_readable() -> None:
    """emit("", run) is refused by name; an event of empty type an older release stored still loads."""
    with pytest.raises(
        EventValidationError, match=r"^invalid StreamEvent: type: must not be empty \(got ''\)$"
    ):
        EventEmitter().emit("", "r")
    stored = StreamEvent.from_stored_json(json.dumps({**make_event("log", "r").to_dict(), "type": ""}))
    assert stored.type_name == ""


def test_a_validation_error_names_only_the_bad_field() -> None:
    """No consequential noise (time_unix_nano's default factory) after the field that is wrong."""
    with pytest.raises(EventValidationError) as info:
        make_event("node_enter", "r", step="x")
    assert str(info.value).count(":") == 2 and "time_unix_nano" not in str(info.value)


@pytest.mark.parametrize(("fields", "field"), list(INVALID_FIELDS.values()), ids=list(INVALID_FIELDS))
def test_stored_json_still_validates_every_field(fields: dict[str, Any], field: str) -> None:
    """from_stored_json skips only data normalization: every invalid field is still refused by name."""
    text = json.dumps({"type": "log", "run_id": "r", **fields}, allow_nan=True)
    with pytest.raises(ValueError, match=rf"(?m)^{field}$"):
        StreamEvent.from_stored_json(text)


@pytest.mark.parametrize("how", ["from_dict", "from_json"])
def test_missing_run_id_is_named(how: str) -> None:
    """A stored event without a run id is refused with the field named."""
    with pytest.raises(EventValidationError, match="run_id: Field required"):
        if how == "from_dict":
            StreamEvent.from_dict({"type": "log"})
        else:
            StreamEvent.from_json('{"type":"log"}')


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '{"type": "log", "run_id": "r"'])
def test_malformed_json_raises_event_validation_error(text: str) -> None:
    """Input that is not a JSON object raises EventValidationError, not a parser error."""
    with pytest.raises(EventValidationError):
        StreamEvent.from_json(text)


@pytest.mark.parametrize(
    ("run_id", "for_filename", "ok"),
    [
        ("thread-1", True, True),
        ("scan 2026/03", False, True),
        ("scan 2026/03", True, False),
        ("..", True, False),
        (".hidden", True, False),
        ("a\\b", True, False),
        ("", False, False),
        ("x" * 256, False, True),
        ("x" * 257, False, False),
        ("tab\there", False, False),
        ("del\x7f", False, False),
    ],
)
def test_validate_run_id(run_id: str, for_filename: bool, ok: bool) -> None:
    """validate_run_id accepts storable ids and refuses the rest with InvalidRunIdError."""
    if ok:
        assert validate_run_id(run_id, for_filename=for_filename) == run_id
    else:
        with pytest.raises(InvalidRunIdError) as info:
            validate_run_id(run_id, for_filename=for_filename)
        assert info.value.run_id == run_id and info.value.reason


# -- the fast path ---------------------------------------------------------------------------------

PLAIN_CASES: dict[str, dict[str, Any]] = {
    "no fields": {},
    "node scope": {
        "thread_id": "t-1", "node": "scanner", "step": 3, "task_id": "task", "checkpoint_id": "1ef-2",
        "invocation_id": "a" * 32, "scope_id": "b" * 32, "parent_scope_id": "c" * 32,
        "namespace": ("outer:abc",), "data": {"attempt": 1},
    },
    "node exit": {"node": "n", "data": {"outcome": "ok", "duration_ms": 0.125, "error_message": None}},
    "every field": {k: v for k, v in ROUND_TRIP_CASES["every field"].items() if k != "type"},
    "None for optional fields": {"node": None, "progress": None, "step": None, "seq": None},
    "data to convert": {"data": {"pair": (1, 2), "nan": float("nan"), "big": 10**40, "nested": {"x": [1]}}},
    "given id": {"id": "my-own-id", "version": 2},
}  # fmt: skip


@pytest.mark.parametrize("fields", list(PLAIN_CASES.values()), ids=list(PLAIN_CASES))
def test_fast_built_event_is_the_event_validation_builds(fields: dict[str, Any]) -> None:
    """make_event's shortcut for plain values builds exactly what pydantic builds: fields, JSON, repr."""
    fast = plain_event(EventType.NODE_EXIT, "run-1", dict(fields))
    assert fast is not None, "these values are meant to take the fast path"
    checked = StreamEvent(
        type=EventType.NODE_EXIT,
        run_id="run-1",
        **{"id": fast.id, **fields},
        timestamp=fast.timestamp,
        time_unix_nano=fast.time_unix_nano,
    )
    assert fast == checked and repr(fast) == repr(checked)
    assert list(fast.__dict__) == list(checked.__dict__)
    assert fast.to_json_bytes() == checked.to_json_bytes() and fast.to_dict() == checked.to_dict()
    assert fast.model_fields_set | {"id", "timestamp", "time_unix_nano"} == checked.model_fields_set | {"id"}
    assert fast.__pydantic_extra__ == checked.__pydantic_extra__ == {}
    assert StreamEvent.from_json(fast.to_json_bytes()) == fast


class _Name(str):
    """A str subclass: plain_values sends it to validation."""


@pytest.mark.parametrize(
    ("own", "fast"),
    [
        (("n1", 3, "task", "1ef-2", None), True),
        (("n1", 2**63 - 1, "task", "1ef-2", ("outer:abc", "inner:1")), True),
        (("n1", -(2**63) + 1, None, "c", None), True),
        (("n1", None, None, None, None), True),
        (("节点", 3, "task", "c", None), False),  # plain, but not vouched for: plain_values decides
        (("n1", -(2**63), "task", "c", None), False),
        (("n1", 2**63, "task", "c", None), False),
        (("n1", True, "task", "c", None), False),
        (("n1", 3.0, "task", "c", None), False),
        ((_Name("n1"), 3, "task", "c", None), False),
        (("n1", 3, 7, "c", None), False),
        (("n1", 3, "task", "c", ["outer:abc"]), False),
        (("n1", 3, "task", "c", ("bad\udc80",)), False),
        (("n1", 3, "task", "c", (_Name("a"),)), False),
        ((None, 3, "task", "c", None), False),
    ],
)
def test_plain_node_fields_vouches_only_for_fields_plain_values_accepts(own: tuple, fast: bool) -> None:
    """The node fields' shortcut says plain for ASCII texts and int steps in bounds, as plain_values does."""
    assert plain_node_fields(*own) is fast
    names = ("node", "step", "task_id", "checkpoint_id", "namespace")
    fields = {name: value for name, value in zip(names, own, strict=True) if value is not None}
    if fast:
        assert plain_values("run-1", fields) is not None


def test_values_that_need_conversion_still_go_through_validation() -> None:
    """Lists, ints for floats, str subclasses and plain-string types are converted as pydantic does."""

    class Key(StrEnum):
        API = "api"

    event = make_event(
        EventType.LOG, "r", namespace=["a:1"], progress=1, node=Key.API, data={Key.API: Key.API}
    )
    assert event.namespace == ("a:1",) and type(event.progress) is float and event.progress == 1.0
    assert (
        type(event.node) is str and [type(k) for k in event.data] == [str] and type(event.data["api"]) is str
    )
    assert make_event("log", "r").type == "log"
    with pytest.raises(EventValidationError, match="data"):
        make_event(EventType.LOG, "r", data={1: "int key"})


def test_copy_event_is_model_copy() -> None:
    """copy_event gives what model_copy(update=...) gives, and leaves the original unchanged."""
    event = make_event(EventType.NODE_EXIT, "r", node="n", data={"outcome": "ok"}, scope_id="s" * 32)
    changes = {"seq": 4, "trace_id": "d" * 32, "span_id": "e" * 16}
    copied, expected = copy_event(event, **changes), event.model_copy(update=changes)
    assert copied == expected and repr(copied) == repr(expected)
    assert copied.model_fields_set == expected.model_fields_set
    assert copied.to_json_bytes() == expected.to_json_bytes()
    assert event.seq is None and event.trace_id is None


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 2, 28, 23, 59, 59, 999000, tzinfo=UTC), "2026-02-28T23:59:59.999Z"),
        (datetime(2028, 2, 29, 0, 0, 0, 0, tzinfo=UTC), "2028-02-29T00:00:00.000Z"),
        (datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC), "1970-01-01T00:00:00.001Z"),
    ],
)
def test_timestamps_of_events_sharing_a_millisecond_serialize_alike(moment: datetime, text: str) -> None:
    """Events built with one datetime object (as in one millisecond) all serialize its exact ISO form."""
    events = [make_event(EventType.LOG, "r", timestamp=moment) for _ in range(3)]
    assert {json.loads(e.to_json_bytes())["timestamp"] for e in events} == {text}


# -- JSON Schema -------------------------------------------------------------------------------------

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def _schema_errors(value: Any, schema: dict[str, Any], root: dict[str, Any], at: str = "$") -> list[str]:
    """The keywords pydantic emits for StreamEvent, checked as draft 2020-12 defines them."""
    known = {
        "$ref", "anyOf", "type", "enum", "minimum", "maximum", "pattern", "items", "properties", "required",
        "additionalProperties", "title", "description", "default", "format", "$id", "$schema", "$defs",
    }  # fmt: skip
    assert set(schema) <= known, f"unexpected schema keywords {set(schema) - known} at {at}"
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return _schema_errors(value, root["$defs"][name], root, at)
    if "anyOf" in schema:
        branches = [_schema_errors(value, sub, root, at) for sub in schema["anyOf"]]
        return [] if any(not b for b in branches) else [f"{at}: no anyOf branch matches {value!r}"]
    errors: list[str] = []
    if "type" in schema:
        wanted = _JSON_TYPES[schema["type"]]
        if not isinstance(value, wanted) or (isinstance(value, bool) and bool not in wanted):
            return [f"{at}: {value!r} is not {schema['type']}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{at}: {value!r} not in enum")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{at}: {value!r} < minimum")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{at}: {value!r} > maximum")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{at}: {value!r} does not match pattern")
    if "items" in schema:
        for i, item in enumerate(value):
            errors += _schema_errors(item, schema["items"], root, f"{at}[{i}]")
    if isinstance(value, dict):
        errors += [f"{at}: missing {key}" for key in schema.get("required", []) if key not in value]
        for key, item in value.items():
            if key in schema.get("properties", {}):
                errors += _schema_errors(item, schema["properties"][key], root, f"{at}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{at}: unexpected property {key}")
    return errors


def test_json_schema_describes_every_field() -> None:
    """The schema is a draft 2020-12 object schema listing every field, the enum and the required keys."""
    schema = event_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"stream-event-v{SCHEMA_VERSION}.json")
    assert schema["type"] == "object" and schema["additionalProperties"] is True
    assert set(schema["properties"]) == set(StreamEvent.model_fields)
    assert schema["required"] == ["type", "run_id", "id", "timestamp", "version"]
    assert set(schema["$defs"]["EventType"]["enum"]) == {t.value for t in EventType}
    assert schema["properties"]["progress"]["anyOf"][0] == {"type": "number", "minimum": 0.0, "maximum": 1.0}
    assert schema["properties"]["timestamp"]["format"] == "date-time"
    json.dumps(schema)


def test_json_schema_accepts_serialized_events(varied_event: StreamEvent) -> None:
    """Every serialized event of the round-trip table validates against the schema."""
    schema = event_json_schema()
    assert _schema_errors(json.loads(varied_event.to_json_bytes()), schema, schema) == []


@pytest.mark.parametrize(
    ("change", "problem", "model_rejects"),
    [
        ({"progress": 2}, "progress", True),
        ({"run_id": None}, "run_id", True),
        ({"namespace": "a:1"}, "namespace", True),
        ({"seq": 0}, "seq", True),
        ({"type": 3}, "type", True),
        # The model also reads other aware ISO forms; the schema pins down the form it writes.
        ({"timestamp": "2026-03-04T05:06:07+00:00"}, "pattern", False),
    ],
)
def test_json_schema_rejects_invalid_events(
    change: dict[str, Any], problem: str, model_rejects: bool
) -> None:
    """The schema rejects malformed events (out-of-range progress, wrong types, non-Z timestamp)."""
    schema = event_json_schema()
    document = json.loads(make_event(EventType.LOG, "r", timestamp=TS).to_json_bytes()) | change
    errors = _schema_errors(document, schema, schema)
    assert errors and problem in " ".join(errors)
    if model_rejects:
        with pytest.raises(EventValidationError):
            StreamEvent.from_dict(document)


def test_json_schema_file_matches_the_model() -> None:
    """The shipped schema/stream_event.schema.json equals event_json_schema()."""
    shipped = resources.files("swarm_observability") / "schema" / "stream_event.schema.json"
    regenerate = (
        'regenerate with: python -c "import json; from swarm_observability import event_json_schema as s; '
        "open('swarm_observability/schema/stream_event.schema.json', 'w').write(json.dumps(s(), indent=2, "
        "ensure_ascii=False) + '\\n')\""
    )
    assert json.loads(shipped.read_text(encoding="utf-8")) == event_json_schema(), regenerate


def test_filename_rules_apply_to_run_ids_already_seen() -> None:
    """A run id accepted for events (so remembered as valid) is still refused as a file name if unsafe."""
    for run_id in ("scan/one", "..", ".hidden"):
        assert make_event(EventType.LOG, run_id).run_id == run_id
        assert validate_run_id(run_id) == run_id
        with pytest.raises(InvalidRunIdError):
            validate_run_id(run_id, for_filename=True)
    with pytest.raises(InvalidRunIdError):
        validate_run_id(["not", "hashable"])


@pytest.mark.parametrize("missing", ["id", "timestamp"])
def test_a_stored_record_missing_its_id_or_timestamp_is_refused(missing: str) -> None:
    """A stored event never gets a fresh id or the current time filled in: each read would differ."""
    fields = {"type": "log", "run_id": "r", "id": "e-1", "timestamp": "2026-03-04T05:06:07.123Z"}
    del fields[missing]
    assert StreamEvent.from_json(json.dumps(fields)).type_name == "log"
    with pytest.raises(ValueError, match=f"stored event lacks {missing}"):
        StreamEvent.from_stored_json(json.dumps(fields))


def test_ids_stay_unique_and_well_formed_across_many_refills() -> None:
    """Thousands of ids (many batches of pre-made random parts) are distinct v7 ids with 74 random bits."""
    ids = [make_event(EventType.LOG, "r").id for _ in range(3000)]
    assert len(set(ids)) == 3000
    parsed = [uuid.UUID(i) for i in ids]
    assert all(p.version == 7 and p.variant == uuid.RFC_4122 for p in parsed)
    assert [str(p) for p in parsed] == ids
    random_a = {(p.int >> 64) & 0xFFF for p in parsed}
    variant_bits = {(p.int >> 60) & 0x3 for p in parsed}
    assert len(random_a) > 1000 and variant_bits == {0, 1, 2, 3}
