"""Processors: secret redaction (keys, values, extensible, off), payload caps (truncate or reject), drops."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pytest
from pydantic_core import to_json

from swarm_observability import (
    EventEmitter,
    EventType,
    InMemoryEventStore,
    PayloadLimit,
    PayloadTooLargeError,
    SecretRedactor,
    default_processors,
)
from swarm_observability.events import StreamEvent, make_event
from swarm_observability.processors import REDACTED

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


def _event(**fields: Any) -> StreamEvent:
    return make_event(EventType.LOG, "run-1", **fields)


SECRET_KEYS = [
    "api_key",
    "apiKey",
    "X-Api-Key",
    "token",
    "access_token",
    "password",
    "db_passwd",
    "Authorization",
    "client_secret",
    "Cookie",
    "private_key",
    "session_id",
    "credentials",
]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_keys_are_redacted(key: str) -> None:
    """The value of a secret-looking key is replaced, whatever its type."""
    for value in ["hunter2", 123456, {"nested": "x"}, ["a"]]:
        assert SecretRedactor()(_event(data={key: value})).data == {key: REDACTED}


@pytest.mark.parametrize(
    "data",
    [
        {"usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}},
        {"max_tokens": 256, "token_count": 3, "tokenizer": "cl100k"},
        {"has_api_key": True, "password": None, "token": ""},
        {"outcome": "ok", "duration_ms": 1.5, "error_type": "ValueError"},
        {"input_tokens": 11, "reasoning_tokens": 2, "time_to_first_token_ms": 12.5},
    ],
    ids=["token-usage", "token-settings", "flags-and-empties", "contract-fields", "llm-end-fields"],
)
def test_non_secrets_are_kept_and_the_event_is_not_copied(data: dict[str, Any]) -> None:
    """Token counts, flags and empty values are kept, and an unchanged event is returned as is."""
    event = _event(data=data, message="all fine")
    assert SecretRedactor()(event) is event


def test_nested_dicts_lists_and_header_pairs_are_redacted() -> None:
    """Secrets deep in dicts and lists, and [name, value] header pairs, are replaced; the rest is kept."""
    data = {
        "request": {"headers": [["Authorization", "opaque-value"], ["Accept", "json"]], "url": "/x"},
        "attempts": [{"auth": {"password": "p", "user": "bob"}}, {"note": "ok"}],
        "tuples": [("X-Api-Key", "k1")],
    }
    out = SecretRedactor()(_event(data=data)).data
    assert out == {
        "request": {"headers": [["Authorization", REDACTED], ["Accept", "json"]], "url": "/x"},
        "attempts": [{"auth": {"password": REDACTED, "user": "bob"}}, {"note": "ok"}],
        "tuples": [["X-Api-Key", REDACTED]],
    }


def test_unnormalized_data_is_redacted_like_plain_data() -> None:
    """Data not normalized by the emitter (str-subclass keys, tuples, odd scalars) is still redacted."""

    class Key(StrEnum):
        SECRET = "client_secret"

    data = {Key.SECRET: "s3cret", 7: "sk-proj-ABCDEFGHIJKLMNOPqrstuv", "pair": ("token", "t0k3n"), "n": 1.5}
    event = StreamEvent.model_construct(type=EventType.LOG, run_id="run-1", data=data)
    out = SecretRedactor()(event).data
    assert out == {Key.SECRET: REDACTED, 7: REDACTED, "pair": ["token", REDACTED], "n": 1.5}
    assert event.data["pair"] == ("token", "t0k3n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("header Bearer abc.def-ghi_123456", f"header {REDACTED}"),
        ("Basic dXNlcjpwYXNz", REDACTED),
        ("key sk-proj-ABCDEFGHIJKLMNOPqrstuv done", f"key {REDACTED} done"),
        ("sk-ant-api03-abcdefghijklmnop", REDACTED),
        ("aws AKIAIOSFODNN7EXAMPLE", f"aws {REDACTED}"),
        ("gh token ghp_abcdefghijklmnopqrstuvwxyz0123456789", f"gh token {REDACTED}"),
        (f"jwt={JWT}", f"jwt={REDACTED}"),
        ("login with password=hunter2 now", f"login with password={REDACTED} now"),
        ("api_key: abc123, user=bob", f"api_key: {REDACTED}, user=bob"),
        ("Authorization: Bearer abcdefghijkl", f"Authorization: {REDACTED}"),
    ],
)
def test_secret_values_are_redacted_in_data_and_message(text: str, expected: str) -> None:
    """Token-like strings and secret assignments are replaced in messages and nested data values."""
    out = SecretRedactor()(_event(message=text, data={"deep": [{"text": text}]}))
    assert out.message == expected
    assert out.data == {"deep": [{"text": expected}]}


def test_ordinary_text_is_not_redacted() -> None:
    """Prose that mentions tokens or keys without a secret stays as written."""
    text = "used 42 tokens; max_tokens=512; the key insight is skipping; sky-high; AKIA"
    event = _event(message=text, data={"text": text})
    assert SecretRedactor()(event) is event


def test_redactor_can_be_extended() -> None:
    """extra_keys and extra_patterns add redactions on top of the built-in ones."""
    redactor = SecretRedactor(extra_keys=[r"\bssn\b"], extra_patterns=[r"\bACME-[0-9]{4}\b"])
    out = redactor(
        _event(message="id ACME-1234, ssn=123", data={"ssn": "1", "api_key": "k", "x": "ACME-9999"})
    )
    assert out.message == f"id {REDACTED}, ssn={REDACTED}"
    assert out.data == {"ssn": REDACTED, "api_key": REDACTED, "x": REDACTED}


def test_redactor_without_value_scanning_still_redacts_keys() -> None:
    """redact_values=False keeps token-like strings but still hides secret keys."""
    out = SecretRedactor(redact_values=False)(_event(message=f"t {JWT}", data={"token": "x", "note": JWT}))
    assert out.message == f"t {JWT}"
    assert out.data == {"token": REDACTED, "note": JWT}


@pytest.mark.parametrize("argument", ["extra_keys", "extra_patterns"])
def test_invalid_extra_regex_is_refused(argument: str) -> None:
    """A broken extra regular expression raises ValueError naming it."""
    with pytest.raises(ValueError, match=r"invalid .* regular expression '\(unclosed'"):
        SecretRedactor(**{argument: ["(unclosed"]})


@pytest.mark.parametrize("processors", [None, []], ids=["default", "off"])
def test_redaction_is_on_by_default_and_can_be_turned_off(processors: list[Any] | None) -> None:
    """The emitter redacts by default; processors=[] stores secrets as given."""
    store = InMemoryEventStore()
    emitter = EventEmitter(store, processors=processors)
    emitter.emit(EventType.LOG, "r", message="password=hunter2", data={"api_key": "k"})
    (stored,) = store.load("r")
    redacted = processors is None
    assert stored.message == (f"password={REDACTED}" if redacted else "password=hunter2")
    assert stored.data == {"api_key": REDACTED if redacted else "k"}


# -- payload limits ------------------------------------------------------------------------------------


@pytest.mark.parametrize("cap", [64, 200, 1000, 4096])
@pytest.mark.parametrize(
    "blob", ["x" * 20_000, '"\\\x01' * 5_000, "é☃🚀" * 3_000], ids=["ascii", "escapes", "multibyte"]
)
def test_oversized_data_is_truncated_with_a_marker_under_the_cap(cap: int, blob: str) -> None:
    """Over-cap data becomes markers plus the small contract scalars, and its JSON fits the cap."""
    data = {"outcome": "error", "duration_ms": 12.5, "blob": blob, "error_type": "TimeoutError"}
    original = len(to_json(data))
    out = PayloadLimit(max_data_bytes=cap)(_event(data=data)).data
    assert len(to_json(out)) <= cap
    assert out["_truncated"] is True and out["_original_bytes"] == original
    assert to_json(data).decode().startswith(out["_preview"])
    assert "blob" not in out
    if cap >= 200:
        assert {k: out[k] for k in ("outcome", "duration_ms", "error_type")} == {
            "outcome": "error", "duration_ms": 12.5, "error_type": "TimeoutError",
        }  # fmt: skip


def test_data_under_the_cap_is_untouched() -> None:
    """Data whose JSON fits the cap passes through as the same event."""
    event = _event(data={"blob": "x" * 900})
    assert PayloadLimit(max_data_bytes=1000)(event) is event


@pytest.mark.parametrize(
    "text", ["a" * 10_000, "ü" * 10_000, "🚀" * 10_000], ids=["ascii", "2-byte", "4-byte"]
)
def test_oversized_message_is_cut_with_a_marker_under_the_cap(text: str) -> None:
    """A long message keeps its start, ends with the truncation marker and fits the cap as UTF-8."""
    out = PayloadLimit(max_message_bytes=1024)(_event(message=text)).message
    assert out is not None
    kept, _, marker = out.rpartition("...[truncated ")
    assert text.startswith(kept) and kept
    assert marker == f"{len(text.encode()) - len(kept.encode())} bytes]"
    assert len(out.encode()) <= 1024


@pytest.mark.parametrize(
    ("fields", "size"),
    [({"data": {"blob": "x" * 2000}}, len(to_json({"blob": "x" * 2000}))), ({"message": "é" * 1000}, 2000)],
    ids=["data", "message"],
)
def test_reject_mode_raises_and_stores_nothing(fields: dict[str, Any], size: int) -> None:
    """on_oversize='reject' raises PayloadTooLargeError with size and limit; no event and no seq is used."""
    store = InMemoryEventStore()
    limit = PayloadLimit(max_data_bytes=1024, max_message_bytes=1024, on_oversize="reject")
    emitter = EventEmitter(store, processors=[limit])
    with pytest.raises(PayloadTooLargeError) as info:
        emitter.emit(EventType.LOG, "r", **fields)
    assert (info.value.size, info.value.limit) == (size, 1024)
    assert any(next(iter(fields)) in note for note in info.value.__notes__)
    assert store.load("r") == []
    assert emitter.emit(EventType.LOG, "r").seq == 1  # type: ignore[union-attr]


def test_redaction_runs_before_truncation() -> None:
    """The truncation preview of the default pipeline never shows a secret."""
    data = {"api_key": "sk-live-secret-value", "note": "Bearer abcdefghijklmnop", "blob": "x" * 400_000}
    event = _event(data=data)
    for processor in default_processors():
        event = processor(event)  # type: ignore[assignment]
    assert event.data["_truncated"] is True
    assert "sk-live" not in event.data["_preview"] and "abcdefghijklmnop" not in event.data["_preview"]
    assert REDACTED in event.data["_preview"]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_data_bytes": 63}, {"max_message_bytes": 10}, {"on_oversize": "drop"}, {"preview_bytes": -1}],
)
def test_payload_limit_refuses_bad_settings(kwargs: dict[str, Any]) -> None:
    """Limits under 64 bytes, a negative preview or an unknown mode raise ValueError."""
    with pytest.raises(ValueError):
        PayloadLimit(**kwargs)


def test_processor_returning_none_drops_without_using_a_seq() -> None:
    """A dropped event is neither stored nor delivered, and the next event takes the seq it would have had."""
    store = InMemoryEventStore()
    emitter = EventEmitter(store, processors=[lambda e: None if e.type_name == "heartbeat" else e])
    seen: list[StreamEvent] = []
    emitter.subscribe(seen.append)
    assert emitter.emit(EventType.LOG, "r") is not None
    assert emitter.emit(EventType.HEARTBEAT, "r") is None
    assert emitter.emit(EventType.LOG, "r") is not None
    assert [e.seq for e in store.load("r")] == [1, 2]
    assert [e.type_name for e in seen] == ["log", "log"]


class _Loud(SecretRedactor):
    """Changes what ``__call__`` does, so it must not inherit the redactor's promise."""

    def __call__(self, event: StreamEvent) -> StreamEvent:
        return event.model_copy(update={"data": {**event.data, "seen": True}})


def _add_secret(event: StreamEvent) -> StreamEvent:
    return event.model_copy(update={"data": {**event.data, "api_key": "sk-1"}})


SMALL = [{}, {"outcome": "ok", "duration_ms": 0.25, "attempt": 1}, {"flag": None}, {"k" * 60: 1.5}]


@pytest.mark.parametrize(
    "make",
    [
        default_processors,
        lambda: [SecretRedactor(extra_keys=["duration", "attempt"])],
        lambda: [SecretRedactor(extra_patterns=["ok"])],
        lambda: [PayloadLimit(max_data_bytes=64)],
        lambda: [_add_secret, *default_processors()],
        lambda: [_Loud(), PayloadLimit()],
    ],
)
@pytest.mark.parametrize("data", SMALL)
def test_small_events_are_processed_as_the_pipeline_would_by_hand(make: Any, data: dict[str, Any]) -> None:
    """Skipping processors that promise no change never changes a result: twice, so a cached plan is used."""
    emitter = EventEmitter(InMemoryEventStore(), processors=make())
    for _ in range(2):
        expected: StreamEvent | None = _event(data=data)
        for processor in make():
            expected = processor(expected)  # type: ignore[arg-type]
        emitted = emitter.emit(EventType.LOG, "run-1", data=data)
        assert emitted is not None and expected is not None and emitted.data == expected.data


def test_a_processor_without_a_promise_sees_every_event_and_list_changes_apply() -> None:
    """A user processor after the built-ins sees every small event; one added to the list later does too."""
    seen: list[str] = []
    emitter = EventEmitter(InMemoryEventStore())
    emitter.processors.append(lambda e: seen.append(e.type_name) or e)
    emitter.emit(EventType.NODE_ENTER, "r")
    emitter.emit(EventType.NODE_EXIT, "r", data={"outcome": "ok", "duration_ms": 1.0})
    emitter.processors.insert(0, lambda e: e.model_copy(update={"data": {"token": "abcdefgh"}}))
    stored = emitter.emit(EventType.NODE_EXIT, "r", data={"outcome": "ok", "duration_ms": 1.0})
    assert seen == ["node_enter", "node_exit", "node_exit"]
    assert stored is not None and stored.data == {"token": REDACTED}


class _StampLike:
    """Adds a span id to events without one, except node_enter; promises so by kind."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, event: StreamEvent) -> StreamEvent:
        self.calls.append(event.type_name)
        if event.trace_id is not None or event.type_name == "node_enter":
            return event
        return event.model_copy(update={"trace_id": "a" * 32})

    def unchanged_for_kind(self, type: str, traced: bool) -> bool:
        return traced or type == "node_enter"


class _LoudStamp(_StampLike):
    """Changes what ``__call__`` does, so it must not inherit the kind promise."""

    def __call__(self, event: StreamEvent) -> StreamEvent:
        self.calls.append(event.type_name)
        return event.model_copy(update={"span_id": "b" * 16})


@pytest.mark.parametrize("message", [None, "a message"])
def test_a_kind_promise_skips_a_processor_only_for_the_kinds_it_names(message: str | None) -> None:
    """unchanged_for_kind(type, traced) skips a processor the events reach unchanged, for those kinds only
    (with a message, the redactor before it runs, so it runs too)."""
    stamp, loud = _StampLike(), _LoudStamp()
    emitter = EventEmitter(InMemoryEventStore(), processors=[*default_processors(), stamp, loud])
    checked = emitter.scope_fields("r", {"node": "n", "message": message} if message else {"node": "n"})
    traced = checked.extended(trace_id="c" * 32, span_id="d" * 16)
    for _ in range(2):  # the second time from the cached plans
        enter = emitter.emit_scoped(EventType.NODE_ENTER, checked, {"attempt": 1})
        exit_ = emitter.emit_scoped(EventType.NODE_EXIT, traced, {"outcome": "ok", "duration_ms": 1.0})
        log = emitter.emit(EventType.LOG, "r", node="n", data={"k": 1}, message=message)
        assert enter is not None and exit_ is not None and log is not None
        assert enter.trace_id is None and exit_.trace_id == "c" * 32 and log.trace_id == "a" * 32
        assert enter.span_id == exit_.span_id == log.span_id == "b" * 16
    assert stamp.calls == (["log"] if message is None else ["node_enter", "node_exit", "log"]) * 2
    assert loud.calls == ["node_enter", "node_exit", "log"] * 2


def test_a_kind_plan_is_kept_per_type_and_tracing_not_per_shape_alone() -> None:
    """Events of one data shape but another type, or with and without span ids, each get their own plan."""
    stamp = _StampLike()
    emitter = EventEmitter(InMemoryEventStore(), processors=[stamp])
    plain = emitter.scope_fields("r", {"node": "n"})
    traced = plain.extended(trace_id="c" * 32, span_id="d" * 16)
    cases = (
        (traced, EventType.LOG, "c" * 32),
        (plain, EventType.LOG, "a" * 32),
        (plain, EventType.NODE_ENTER, None),
    )
    for _ in range(2):  # the second time from the cached plans
        for fields, type, trace_id in cases:
            event = emitter.emit_scoped(type, fields, {"k": 1})
            assert event is not None and event.trace_id == trace_id
    assert stamp.calls == ["log"] * 2


def test_a_kind_promise_does_not_skip_past_a_processor_that_runs() -> None:
    """A processor with a kind promise after one that must run still sees the event."""
    stamp = _StampLike()
    emitter = EventEmitter(InMemoryEventStore(), processors=[lambda e: e, stamp])
    emitter.emit(EventType.NODE_ENTER, "r")
    assert stamp.calls == ["node_enter"]


def test_a_recurring_clean_container_is_redacted_once_it_holds_a_secret() -> None:
    """A nested value found clean is known again by its JSON; a changed one is scanned (same redactor)."""
    redactor = SecretRedactor()
    shape = {"nodes": ["a", "b"], "edges": [{"source": "a", "target": "b"}]}
    for _ in range(2):  # the second run finds it remembered
        event = _event(data={"graph_shape": shape})
        assert redactor(event) is event
    leaked = {"nodes": ["a", "b"], "edges": [{"source": "a", "target": "b", "api_key": "hunter2"}]}
    assert (
        redactor(_event(data={"graph_shape": leaked})).data["graph_shape"]["edges"][0]["api_key"] == REDACTED
    )


def test_a_container_seen_with_bytes_is_not_remembered_for_the_same_text() -> None:
    """Bytes are never scanned, so a clean verdict on them must not clear text with the same JSON."""
    redactor = SecretRedactor()
    as_bytes = StreamEvent.model_construct(
        **{**_event().__dict__, "data": {"headers": [b"Bearer " + b"x" * 20]}}
    )
    assert redactor(as_bytes) is as_bytes  # bytes pass unscanned (and the emitter stores them as text)
    text = _event(data={"headers": ["Bearer " + "x" * 20]})
    assert redactor(text).data == {"headers": [REDACTED]}


def test_a_nested_value_too_deep_to_parse_back_is_scanned_every_time() -> None:
    """A value to_json writes but from_json cannot read back (230 levels) is not remembered, not an error."""
    deep: list[Any] = ["sk-" + "a" * 20]
    for _ in range(230):
        deep = [deep]
    clean: list[Any] = ["x"]
    for _ in range(230):
        clean = [clean]
    redactor = SecretRedactor()
    event = _event(data={"deep": clean})
    assert redactor(event) is event and redactor(event) is event
    redacted = redactor(_event(data={"deep": deep})).data["deep"]
    for _ in range(230):
        redacted = redacted[0]
    assert redacted == [REDACTED]
