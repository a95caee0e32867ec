"""The clock side of an event: its id and timestamps, made for the hot path of every event.

Events come much faster than once a millisecond, so what depends only on the millisecond is made
once per millisecond (:func:`tick`): the ``timestamp`` datetime (immutable, shared by the events of
that millisecond) and the first groups of a version 7 UUID made in it. The random rest of an id is
taken from a pool made a few hundred at a time by C-level byte operations, which costs a fifth of
formatting each id's integers.

Ids are RFC 9562 version 7 UUIDs: 48-bit Unix milliseconds, then 74 random bits around the version
and variant bits. Time-ordered ids keep inserts into a store's id index at its right edge (random
UUID4s touch a different page per row, which halves SQLite's commit rate on a large log); the random
bits keep ids unique across processes. They come from the random module (seeded from os.urandom,
re-seeded after fork; the pool is emptied in a forked child), not os.urandom: os.urandom releases
the GIL, and with LangGraph's worker threads around, getting it back cost ~17 us per call.
"""

from __future__ import annotations

import binascii
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from random import getrandbits
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)

Tick = tuple[int, datetime, str]
"""``(ms, its UTC datetime, the id prefix of a UUID7 made in it: "xxxxxxxx-xxxx-")``."""

current: list[Tick] = [(-1, EPOCH, "")]
"""The tick of the latest millisecond asked for; one element, replaced whole (threads read it safely)."""


def tick(ms: int) -> Tick:
    """The :data:`Tick` of Unix millisecond ``ms`` (cached for the latest one)."""
    now = current[0]
    return now if now[0] == ms else new_tick(ms)


def new_tick(ms: int) -> Tick:
    """The :data:`Tick` of Unix millisecond ``ms``, made now: for a caller that found ``current[0]`` older."""
    now = current[0] = (ms, EPOCH + MILLISECOND * ms, f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-")
    return now


def utc_ms(ms: int) -> datetime:
    """The UTC datetime of Unix millisecond ``ms``."""
    return tick(ms)[1]


def ms_of(value: datetime) -> int:
    """The Unix millisecond of an aware datetime."""
    return (value - EPOCH) // MILLISECOND


_POOL = 256
_TAIL = 23  # "7xxx-Vxxx-xxxxxxxxxxxx" and a space, per id
_TEMPLATE = b"7...-....-............ " * _POOL
_LAYOUT = ((1, 1), (2, 2), (3, 3), (5, 6), (6, 7), (7, 8), *((digit, digit + 2) for digit in range(8, 20)))
"""Where the hex digits of an id's 10 random bytes go in its tail (digit 0 is not used, 4 is the variant)."""
_VARIANT = bytes.maketrans(b"0123456789abcdef", b"89ab" * 4)
_tails: list[str] = []
os.register_at_fork(after_in_child=_tails.clear)


def _refill() -> None:
    hexed = binascii.hexlify(getrandbits(80 * _POOL).to_bytes(10 * _POOL, "big"))
    out = bytearray(_TEMPLATE)
    for digit, position in _LAYOUT:
        out[position::_TAIL] = hexed[digit::20]
    out[5::_TAIL] = hexed[4::20].translate(_VARIANT)  # the variant bits 10, then two random bits
    _tails.extend(out.decode().split())


def uuid7(prefix: str) -> str:
    """A new version 7 UUID made in the millisecond of the tick whose id prefix is ``prefix``."""
    while True:
        try:
            return prefix + _tails.pop()  # list.pop is atomic: no two ids share a tail
        except IndexError:
            _refill()


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_scope_id() -> str:
    """A random UUID4 as 32 hex digits, the format of every ``scope_id`` and ``invocation_id``."""
    # random, not os.urandom per call, for the reason given above.
    return f"{getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"


def event_id_at(ms: int) -> str:
    """A new version 7 UUID of Unix millisecond ``ms``."""
    return uuid7(tick(ms)[2])


def new_event_id() -> str:
    """A new version 7 UUID of now (the default ``id`` of an event)."""
    return event_id_at(time.time_ns() // 1_000_000)


class _ClockReading(threading.local):
    """The clock reading behind the last default ``timestamp`` built on this thread.

    pydantic builds defaults field by field, so ``timestamp``'s factory keeps its reading here and
    ``time_unix_nano``'s factory, which runs right after it for the same event, takes it back: one
    reading, two fields that agree.
    """

    timestamp: datetime | None = None
    ns: int = 0


_clock_reading = _ClockReading()


def utc_now_ms() -> datetime:
    """Now in UTC, truncated to the millisecond (the default ``timestamp`` of an event)."""
    ns = time.time_ns()
    now = utc_ms(ns // 1_000_000)
    reading = _clock_reading
    reading.timestamp, reading.ns = now, ns
    return now


def time_of_default_timestamp(data: dict[str, Any]) -> int | None:
    """The default ``time_unix_nano``: the reading behind a default ``timestamp``, else ``None``."""
    reading = _clock_reading
    if reading.timestamp is None or data.get("timestamp") is not reading.timestamp:
        return None  # an explicit timestamp: its precise time is unknown
    reading.timestamp = None
    return reading.ns


_last_formatted: tuple[datetime | None, str] = (None, "")


def format_timestamp(value: datetime) -> str:
    """``2026-11-22T19:24:18.123Z``: how a timestamp is serialized."""
    # Runs for every serialized event; events of one millisecond share a datetime object.
    global _last_formatted
    last = _last_formatted
    if last[0] is value:
        return last[1]
    if value.year >= 1000:
        text = value.isoformat(timespec="milliseconds")[:23] + "Z"
    else:
        text = value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    _last_formatted = (value, text)
    return text
