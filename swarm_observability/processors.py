"""Event processors: plain callables the emitter runs on every event before it is stored or sent.

A processor takes a :class:`StreamEvent` and returns it (the same object when nothing changed, a
``model_copy`` otherwise), or ``None`` to drop the event. Drops happen before a seq is assigned, so
the log stays gapless. The default pipeline is ``[SecretRedactor(), PayloadLimit()]``:

* :class:`SecretRedactor` replaces the values of secret-looking keys (``api_key``, ``token``,
  ``password``, ``Authorization`` ...) and secret-looking strings (``Bearer ...``, ``sk-...``, AWS and
  GitHub keys, JWTs, ``password=...`` in text) in ``data`` and ``message`` with ``"[REDACTED]"``.
  Token *counts* and timings (``max_tokens``, ``prompt_tokens``, ``token_count``,
  ``time_to_first_token_ms``) are not secrets and are kept.
  Extend it with ``SecretRedactor(extra_keys=..., extra_patterns=...)``, or pass ``processors=[]``
  to turn it off.
* :class:`PayloadLimit` caps the serialized ``data`` (default 256 KiB) and ``message`` (default
  16 KiB). Over the cap it **truncates** by default: ``data`` keeps its small top-level scalars (so
  ``outcome``, ``duration_ms``, ``error_type`` survive) and gains
  ``{"_truncated": true, "_original_bytes": N, "_preview": "<first bytes of the JSON>"}``; a long
  message is cut and ends with ``"...[truncated N bytes]"``. With ``on_oversize="reject"`` it raises
  :class:`PayloadTooLargeError` instead, and nothing is stored.

Redaction runs first, so a truncation preview never shows a secret.

Most events (every ``node_enter`` and ``node_exit``) hold nothing either could change: no message
and a few small scalars. A processor may say so in advance with a method
``unchanged_for(shape: dict[str, str | type]) -> bool``, defined in the same class as its
``__call__``: ``True`` promises that it returns unchanged (the same object) every event without a
message whose ``data`` has the keys of ``shape``, holding at each the string given there, or for a
type, any value of it (``int`` of at most 640 digits, as event data holds, finite ``float``,
``bool``, ``NoneType``). A :class:`Pipeline` asks once per shape and then skips the processor for
such events. Both built-in processors define it; a processor without it sees every event.

A processor whose work depends on an event's kind, not its payload (one that stamps span ids, say)
may promise instead ``unchanged_for_kind(type: str, traced: bool) -> bool``, same rule: ``True``
promises it returns unchanged every event of ``type`` (an :class:`EventType` or a plain string),
with span ids (``trace_id`` set: ``traced``) or without, whatever its data and message. Either
promise skips a processor only when the processors before it are skipped too: what a later one sees
may have been changed by an earlier one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic_core import from_json, to_json

from ._storable import INT_LIMIT
from .events import StreamEvent
from .exceptions import PayloadTooLargeError
from .processors_pipeline import Processor as Processor

REDACTED = "[REDACTED]"
"""What a redacted value is replaced with."""

_SECRET_KEY = (
    r"api[-_ ]?key|apikey|secret|token(?!s|iz|_?(?:count|limit|usage|type|ms))|passw(?:or)?d|passphrase"
    r"|authorization|auth[-_]?header|cookie|credential|private[-_]?key|session[-_]?id"
)
_SECRET_VALUE = (
    r"\bBearer\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\bBasic\s+[A-Za-z0-9+/=]{8,}"
    r"|\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}"
    r"|\bxox[abpr]-[A-Za-z0-9-]{10,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
# The shortest text a built-in pattern can match ("token=x"); shorter strings are skipped unscanned.
_MIN_BUILTIN_MATCH = 7
_KEY_CACHE_LIMIT = 4096
_CLEAN_TEXT = 128
_CLEAN_JSON_BYTES = 64 * 1024
_CLEAN_JSON_LIMIT = 64
_KEEP_ITEM_BYTES = 256


def _compile(patterns: Iterable[str], flags: int, what: str) -> re.Pattern[str]:
    patterns = list(patterns)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid {what} regular expression {pattern!r}: {exc}") from None
    return re.compile("|".join(f"(?:{p})" for p in patterns), flags)


class SecretRedactor:
    """Redact secret-looking keys and values in ``data`` (recursively) and ``message``.

    Keys are matched case-insensitively anywhere in the key (``X-Api-Key``, ``db_password``); the
    whole value under such a key is replaced, unless it is empty, ``None`` or a boolean (a flag such
    as ``has_api_key`` says nothing secret). ``[name, value]`` pairs in lists (header lists) are
    treated like dict items. In strings, token-like values and ``key=value`` / ``key: value``
    assignments of secret keys are replaced.

    Args:
        extra_keys: more regular expressions matched (case-insensitively, anywhere) against dict keys
            and against the key of ``key=value`` text.
        extra_patterns: more regular expressions matched against string values; every match is
            replaced.
        redact_values: also scan string values for token-like secrets (on by default).

    Raises:
        ValueError: an extra pattern is not a valid regular expression.
    """

    def __init__(
        self,
        extra_keys: Iterable[str] = (),
        extra_patterns: Iterable[str] = (),
        *,
        redact_values: bool = True,
    ) -> None:
        extra_keys = [extra_keys] if isinstance(extra_keys, str) else list(extra_keys)
        extra_patterns = [extra_patterns] if isinstance(extra_patterns, str) else list(extra_patterns)
        keys = _compile([_SECRET_KEY, *extra_keys], re.IGNORECASE, "secret key")
        self._key = keys
        self._key_cache: dict[str, bool] = {}
        self._clean: set[str] = set()
        self._clean_json: set[bytes] = set()
        self._value: re.Pattern[str] | None = None
        self._assignment: re.Pattern[str] | None = None
        if redact_values:
            self._value = _compile([_SECRET_VALUE, *extra_patterns], 0, "secret value")
            self._assignment = re.compile(
                rf"(?P<key>(?:{keys.pattern})[\w.-]*)(?P<sep>\s*[=:]\s*)(?P<value>[^\s,;&\"']+)",
                re.IGNORECASE,
            )
        self._min_len = 1 if extra_keys or extra_patterns else _MIN_BUILTIN_MATCH

    def __call__(self, event: StreamEvent) -> StreamEvent:
        update: dict[str, Any] = {}
        if event.data:
            data = self._scrub_dict(event.data, self._scrub_recurring)
            if data is not None:
                update["data"] = data
        if event.message:
            message = self._scrub_text(event.message)
            if message is not None:
                update["message"] = message
        return event.model_copy(update=update) if update else event

    def unchanged_for(self, shape: dict[str, str | type]) -> bool:
        """Whether events without a message and with ``data`` of ``shape`` pass unchanged (see above).

        Values under a non-secret key are redacted for their text only, never for a number.
        """
        return self._scrub_dict({key: _example(value) for key, value in shape.items()}) is None

    def is_secret_key(self, key: str) -> bool:
        """Whether values under ``key`` are redacted."""
        hit = self._key_cache.get(key)
        if hit is None:
            hit = self._key.search(key) is not None
            if len(self._key_cache) < _KEY_CACHE_LIMIT:
                self._key_cache[key] = hit
        return hit

    # The _scrub_* helpers return the redacted copy, or None when nothing changed (the common case,
    # which then allocates nothing).

    def _scrub_text(self, text: str) -> str | None:
        if self._value is None or self._assignment is None or len(text) < self._min_len:
            return None
        if text in self._clean:
            return None
        out = self._value.sub(REDACTED, text)
        out = self._assignment.sub(rf"\g<key>\g<sep>{REDACTED}", out)
        if out != text:
            return out
        if len(text) <= _CLEAN_TEXT and len(self._clean) < _KEY_CACHE_LIMIT:
            self._clean.add(text)  # names and labels recur in every run: scanned once
        return None

    def _redacts(self, key: object, item: Any) -> bool:
        return (
            isinstance(key, str)
            and self.is_secret_key(key)
            and item is not None
            and not isinstance(item, bool)
            and item != ""
            and item != REDACTED
        )

    def _scrub_any(self, item: Any) -> Any | None:
        if isinstance(item, str):
            return self._scrub_text(item)
        if isinstance(item, dict):
            return self._scrub_dict(item)
        if isinstance(item, list | tuple):
            return self._scrub_list(item)
        return None

    def _scrub_recurring(self, item: Any) -> Any | None:
        # A container at the top of data, which often recurs unchanged (a graph's shape in every run's
        # scan_started): one found clean is known again by its JSON, serialized in C instead of walked.
        # Only JSON values are remembered (equal to their JSON's parse): another value with the same JSON
        # has the same text wherever it has text, and elsewhere non-text values (bytes, dates), never
        # scanned, whose text is that of clean ones ("" or None under a secret key): nothing to redact.
        try:
            raw = to_json(item)
        except Exception:  # not serializable (a cycle, an unknown type): walked as always
            return self._scrub_any(item)
        if raw in self._clean_json:
            return None
        new = self._scrub_any(item)
        if new is None and len(raw) <= _CLEAN_JSON_BYTES and _parses_to(raw, item):
            if len(self._clean_json) >= _CLEAN_JSON_LIMIT:
                self._clean_json.clear()
            self._clean_json.add(raw)
        return new

    def _scrub_dict(
        self, value: dict[Any, Any], nested: Callable[[Any], Any | None] | None = None
    ) -> dict[Any, Any] | None:
        # Called for every event with data: the common cases (cached key verdicts, plain scalars,
        # short strings) are inlined; anything else takes the general path (``nested``, if given).
        out: dict[Any, Any] | None = None
        cache = self._key_cache
        for key, item in value.items():
            if key.__class__ is str:
                secret = cache.get(key)
                if secret is None:
                    secret = self.is_secret_key(key)
            else:
                secret = isinstance(key, str) and self.is_secret_key(key)
            kind = item.__class__
            if secret and self._redacts(key, item):
                new: Any = REDACTED
            elif kind is int or kind is float or kind is bool or item is None:
                continue
            elif kind is str:
                if len(item) < self._min_len:
                    continue
                new = self._scrub_text(item)
            else:
                new = self._scrub_any(item) if nested is None else nested(item)
            if new is not None:
                if out is None:
                    out = dict(value)
                out[key] = new
        return out

    def _scrub_list(self, value: list[Any] | tuple[Any, ...]) -> list[Any] | None:
        if len(value) == 2 and self._redacts(value[0], value[1]):
            return [value[0], REDACTED]
        out: list[Any] | None = None
        for index, item in enumerate(value):
            new = self._scrub_any(item)
            if new is not None:
                if out is None:
                    out = list(value)
                out[index] = new
        return out


class PayloadLimit:
    """Cap the serialized size of ``data`` and ``message``; truncate (default) or reject.

    A truncated ``data`` keeps its top-level scalars of at most 256 bytes each while they fit, so the
    contract fields (``outcome``, ``duration_ms``, ``error_type`` ...) survive, and gains the markers
    ``_truncated``, ``_original_bytes`` and ``_preview`` (as much of the original JSON as still fits,
    up to ``preview_bytes``). The result is never over the cap.

    Args:
        max_data_bytes: cap on the JSON of ``data``.
        max_message_bytes: cap on the UTF-8 of ``message``.
        on_oversize: ``"truncate"`` (keep the event, with an explicit marker) or ``"reject"``
            (raise :class:`PayloadTooLargeError`).
        preview_bytes: how much of the original JSON a truncated ``data`` keeps (at most half the cap).

    Treat the settings as fixed once the processor is in an emitter's pipeline: the emitter
    remembers which small events it cannot affect (see ``unchanged_for`` above).

    Raises:
        ValueError: a limit under 64 bytes, a negative preview or an unknown ``on_oversize``.
    """

    def __init__(
        self,
        max_data_bytes: int = 256 * 1024,
        max_message_bytes: int = 16 * 1024,
        *,
        on_oversize: Literal["truncate", "reject"] = "truncate",
        preview_bytes: int = 1024,
    ) -> None:
        if on_oversize not in ("truncate", "reject"):
            raise ValueError(f"on_oversize must be 'truncate' or 'reject', not {on_oversize!r}")
        if max_data_bytes < 64 or max_message_bytes < 64:
            raise ValueError("payload limits must be at least 64 bytes")
        if preview_bytes < 0:
            raise ValueError(f"preview_bytes must not be negative, not {preview_bytes}")
        self.max_data_bytes = max_data_bytes
        self.max_message_bytes = max_message_bytes
        self.on_oversize = on_oversize
        self.preview_bytes = min(preview_bytes, max_data_bytes // 2)

    def __call__(self, event: StreamEvent) -> StreamEvent:
        update: dict[str, Any] = {}
        data = event.data
        if data:
            raw = to_json(data, fallback=repr)
            if len(raw) > self.max_data_bytes:
                self._refuse("data", len(raw), self.max_data_bytes)
                update["data"] = self._truncate_data(data, raw)
        # A str of n characters is at most 4n UTF-8 bytes: only long messages need encoding.
        if event.message and len(event.message) * 4 > self.max_message_bytes:
            encoded = event.message.encode()
            if len(encoded) > self.max_message_bytes:
                self._refuse("message", len(encoded), self.max_message_bytes)
                kept = encoded[: self.max_message_bytes - 64].decode("utf-8", "ignore")
                update["message"] = f"{kept}...[truncated {len(encoded) - len(kept.encode())} bytes]"
        return event.model_copy(update=update) if update else event

    def unchanged_for(self, shape: dict[str, str | type]) -> bool:
        """Whether events without a message and with ``data`` of ``shape`` pass unchanged (see above):
        whether such ``data`` fits the cap even with the longest numbers."""
        return len(to_json({key: _largest(value) for key, value in shape.items()})) <= self.max_data_bytes

    def _truncate_data(self, data: dict[str, Any], raw: bytes) -> dict[str, Any]:
        markers: dict[str, Any] = {"_truncated": True, "_original_bytes": len(raw), "_preview": ""}
        budget = self.max_data_bytes - len(to_json(markers))
        kept: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, dict | list) or key in markers:
                continue
            size = len(to_json(key)) + len(to_json(value, fallback=repr)) + 2
            if size <= _KEEP_ITEM_BYTES and size <= budget:
                kept[key] = value
                budget -= size
        take = min(self.preview_bytes, budget)
        while take > 0:
            preview = raw[:take].decode("utf-8", "ignore")
            if len(to_json(preview)) - 2 <= budget:
                markers["_preview"] = preview
                break
            take //= 2  # JSON escaping made the preview longer than its byte count
        return {**kept, **markers}

    def _refuse(self, what: str, size: int, limit: int) -> None:
        if self.on_oversize == "reject":
            exc = PayloadTooLargeError(size, limit)
            exc.add_note(f"the oversized field is the event's {what!r}")
            raise exc


_EXAMPLES: dict[type, Any] = {int: 0, float: 0.0, bool: False, None.__class__: None}
_LARGEST: dict[type, Any] = {
    int: 1 - INT_LIMIT,
    float: -2.2250738585072014e-308,
    bool: False,
    type(None): None,
}


def _parses_to(raw: bytes, value: Any) -> bool:
    try:
        return bool(from_json(raw) == value)
    except ValueError:  # nested deeper than the parser goes (to_json goes a little deeper)
        return False


def _example(value: str | type) -> Any:
    return value if value.__class__ is str else _EXAMPLES[value]  # type: ignore[index]


def _largest(value: str | type) -> Any:
    return value if value.__class__ is str else _LARGEST[value]  # type: ignore[index]


def default_processors() -> list[Processor]:
    """The default pipeline: secret redaction, then the payload size cap."""
    return [SecretRedactor(), PayloadLimit()]
