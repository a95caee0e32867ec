"""Hypothesis strategies for hostile event values and for the events themselves."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from swarm_observability.events import EventType

# Every code point, lone surrogates included, plus the characters that matter to JSON, JSON Pointer
# and our framing.
hostile_char = st.one_of(
    st.characters(),
    st.integers(0xD800, 0xDFFF).map(chr),
    st.sampled_from(list('"\\\n\r\t\x00\x7f\u2028\u2029~/{}[],:é🚀')),
)
hostile_text = st.text(hostile_char, max_size=24)
plain_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=24)

hostile_int = st.one_of(
    st.integers(),
    st.builds(pow, st.just(10), st.integers(600, 4400)).flatmap(lambda n: st.sampled_from([n, n - 1, -n])),
    st.sampled_from([2**63, -(2**63) - 1, 2**64]),
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    hostile_int,
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
json_value = st.recursive(
    scalar,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(hostile_text, children, max_size=4),
    ),
    max_leaves=12,
)
hostile_data = st.dictionaries(hostile_text, json_value, max_size=5)

run_ids = st.sampled_from(["r", "run-ü", "scan:1/2", "x" * 256])
event_types = st.one_of(st.sampled_from(list(EventType)), st.sampled_from(["future_type", "custom.kind"]))


@st.composite
def event_fields(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments of ``make_event``/``emit``: any mix of optional fields, hostile values inside."""
    fields: dict[str, Any] = {}
    for name in ("message", "node", "agent", "probe", "thread_id", "task_id", "scope_id", "checkpoint_id"):
        if draw(st.booleans()):
            fields[name] = draw(st.one_of(st.none(), hostile_text))
    if draw(st.booleans()):
        fields["data"] = draw(hostile_data)
    if draw(st.booleans()):
        fields["namespace"] = tuple(draw(st.lists(hostile_text, max_size=3)))
    if draw(st.booleans()):
        fields["progress"] = draw(st.floats(0.0, 1.0))
    if draw(st.booleans()):
        fields["step"] = draw(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)))
    return fields
