"""Values every store can keep faithfully, and the marked form of those it cannot.

Two kinds of value pass Python's type checks and still cannot become JSON that every reader parses
back:

* **Text with lone surrogates** (U+D800..U+DFFF): what ``os.fsdecode`` makes of a non-UTF-8 file name
  and ``bytes.decode(errors="surrogateescape")`` of any bytes. UTF-8 cannot encode them, so writing
  such an event fails, and with it every event written in the same batch. The text is stored with
  each lone surrogate spelled as the six characters ``\\udcff`` (Python's ``backslashreplace``); the
  rest of the text is unchanged, so the original code points (and for ``surrogateescape`` text the
  original bytes) can be recovered from the marked value.
* **Integers of more than 640 decimal digits**: Python refuses to parse longer ones when a process
  lowers ``sys.set_int_max_str_digits`` to its minimum (640), and pydantic's JSON reader refuses
  those over ~4300 digits, so one such value would make a whole run unreadable. They are stored as
  a string of their decimal digits (lossless).

The replacement is marked in the event's ``sanitized`` field, a dict from the JSON Pointer
(RFC 6901) of each replaced value, such as ``/message`` or ``/data/files/3``, to what was done
(:data:`SURROGATES_ESCAPED`, :data:`KEY_SURROGATES_ESCAPED`, :data:`INT_AS_STRING`), and the emitter
counts such events. Floats need nothing here: NaN and infinities become ``null`` when ``data`` is
normalized, as documented in :mod:`swarm_observability.events`.
"""

from __future__ import annotations

import re
from itertools import islice
from typing import Any

from pydantic_core import PydanticSerializationError, to_json

SURROGATES_ESCAPED = "surrogates_escaped"
"""Mark of text whose lone surrogates were written as ``\\udcXX`` escapes."""
KEY_SURROGATES_ESCAPED = "key_surrogates_escaped"
"""Mark of a ``data`` key (the pointer names the escaped key) whose lone surrogates were escaped."""
INT_AS_STRING = "int_as_string"
"""Mark of an integer of more than :data:`MAX_INT_DIGITS` digits, stored as its decimal string."""
MAX_INT_DIGITS = 640
"""The longest integer (in decimal digits) stored as a JSON number."""

INT_LIMIT = 10**MAX_INT_DIGITS
"""Integers strictly between ``-INT_LIMIT`` and ``INT_LIMIT`` are stored as JSON numbers."""
_DIGITS = b"0123456789"
_LONG_DIGITS = re.compile(rb"\d{%d}" % (MAX_INT_DIGITS + 1))


def storable_text(value: str) -> bool:
    """Whether ``value`` encodes as UTF-8 (has no lone surrogates); ASCII is answered without encoding."""
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def storable_int(value: int) -> bool:
    """Whether ``value`` is stored as a JSON number (at most :data:`MAX_INT_DIGITS` digits)."""
    return -INT_LIMIT < value < INT_LIMIT


def escape_surrogates(value: str) -> str:
    """``value`` with every lone surrogate written as a ``\\udcXX`` escape; other text unchanged."""
    return value.encode("utf-8", "backslashreplace").decode()


def int_as_string(value: int) -> str:
    """The decimal digits of ``value``, also beyond Python's ``int_max_str_digits`` limit."""
    return to_json(value).decode()


def needs_scrub(value: Any) -> bool:
    """Whether the JSON value ``value`` holds something :func:`scrub` would replace.

    One pass in C (serialization) instead of a Python walk: lone surrogates make it fail, and an
    over-long integer shows as a run of more than :data:`MAX_INT_DIGITS` digits (a long digit string
    matches too; :func:`scrub` then finds nothing to change).
    """
    try:
        text = to_json(value)
    except PydanticSerializationError:
        return True
    if len(text) <= MAX_INT_DIGITS or len(text) - len(text.translate(None, _DIGITS)) <= MAX_INT_DIGITS:
        return False  # too few digits in all (counted in C, ~20x faster than the search)
    return _LONG_DIGITS.search(text) is not None


def scrub(value: Any, pointer: str, marks: dict[str, str]) -> Any:
    """``value`` (plain JSON types) with unstorable parts replaced; each replacement is added to ``marks``.

    Copy on write: containers without replacements are returned as they are, so the caller's objects
    are never changed.
    """
    kind = value.__class__
    if kind is str:
        if storable_text(value):
            return value
        _mark(marks, pointer, SURROGATES_ESCAPED)
        return escape_surrogates(value)
    if kind is int:
        if storable_int(value):
            return value
        _mark(marks, pointer, INT_AS_STRING)
        return int_as_string(value)
    if kind is dict:
        out: dict[Any, Any] | None = None
        for position, (key, item) in enumerate(value.items()):
            new_key = key
            if key.__class__ is str and not storable_text(key):
                new_key = escape_surrogates(key)
            child = f"{pointer}/{_pointer_token(new_key)}"
            new_item = scrub(item, child, marks)
            if new_key is not key:
                _mark(marks, child, KEY_SURROGATES_ESCAPED)
            if out is None and (new_key is not key or new_item is not item):
                out = dict(islice(value.items(), position))
            if out is not None:
                out[new_key] = new_item
        return value if out is None else out
    if kind is list:
        items: list[Any] | None = None
        for position, item in enumerate(value):
            new_item = scrub(item, f"{pointer}/{position}", marks)
            if items is None and new_item is not item:
                items = value[:position]
            if items is not None:
                items.append(new_item)
        return value if items is None else items
    return value


def _mark(marks: dict[str, str], pointer: str, what: str) -> None:
    marks[pointer] = f"{marks[pointer]}+{what}" if pointer in marks else what


def _pointer_token(key: object) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")
