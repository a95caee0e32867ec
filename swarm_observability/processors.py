"""Event processors: plain callables the emitter runs on every event before it is stored or sent.

A processor takes a :class:`StreamEvent` and returns it (the same object when nothing changed, a
``model_copy`` otherwise), or ``None`` to drop the event. Drops happen before a seq is assigned, so
the log stays gapless. The default pipeline is ``[SecretRedactor(), PayloadLimit()]``:

* :class:`SecretRedactor` replaces the values of secret-looking keys (``api_key``, ``token``,
  ``password``, ``Authorization`` ...) and secret-looking strings (``Bearer ...``, ``sk-...``, AWS and
  GitHub keys, JWTs) in ``data`` and ``message`` with ``"[REDACTED]"``. Extend it with
  ``SecretRedactor(extra_keys=..., extra_patterns=...)``, or pass ``processors=[]`` to turn it off.
* :class:`PayloadLimit` caps the serialized ``data`` (default 256 KiB) and ``message`` (default
  16 KiB). Over the cap it **truncates** by default: ``data`` is replaced by
  ``{"_truncated": true, "_original_bytes": N, "_preview": "<first bytes of the JSON>"}`` and a long
  message is cut and ends with ``"...[truncated N bytes]"``. With ``on_oversize="reject"`` it raises
  :class:`PayloadTooLargeError` instead, and nothing is stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Literal

from pydantic_core import to_json

from .events import StreamEvent
from .exceptions import PayloadTooLargeError

Processor = Callable[[StreamEvent], StreamEvent | None]
"""A processor: returns the event (possibly a changed copy) or ``None`` to drop it."""

REDACTED = "[REDACTED]"

_SECRET_KEY = (
    r"api[-_ ]?key|apikey|secret|token|passw(or)?d|passphrase|authorization|auth[-_]?header|cookie"
    r"|credential|private[-_]?key|client[-_]?secret|session[-_]?id|x[-_]api[-_]key"
)
_SECRET_VALUE = (
    r"\bBearer\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|\bBasic\s+[A-Za-z0-9+/=]{8,}"
    r"|\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}"
    r"|\bAKIA[0-9A-Z]{16}\b"
    r"|\bgh[pousr]_[A-Za-z0-9]{30,}"
    r"|\bxox[abpr]-[A-Za-z0-9-]{10,}"
    r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)


class SecretRedactor:
    """Redact secret-looking keys and values in ``data`` (recursively) and ``message``.

    Args:
        extra_keys: more regular expressions matched (case-insensitively, anywhere) against dict keys.
        extra_patterns: more regular expressions matched against string values.
        redact_values: also scan string values for token-like secrets (on by default).
    """

    def __init__(
        self,
        extra_keys: Iterable[str] = (),
        extra_patterns: Iterable[str] = (),
        *,
        redact_values: bool = True,
    ) -> None:
        self._key = re.compile("|".join([_SECRET_KEY, *extra_keys]), re.IGNORECASE)
        self._value = re.compile("|".join([_SECRET_VALUE, *extra_patterns])) if redact_values else None

    def __call__(self, event: StreamEvent) -> StreamEvent:
        update: dict[str, Any] = {}
        if event.data:
            data, changed = self._scrub(event.data)
            if changed:
                update["data"] = data
        if event.message and self._value is not None and self._value.search(event.message):
            update["message"] = self._value.sub(REDACTED, event.message)
        return event.model_copy(update=update) if update else event

    def _scrub(self, value: Any) -> tuple[Any, bool]:
        if isinstance(value, dict):
            out: dict[Any, Any] = {}
            changed = False
            for key, item in value.items():
                if isinstance(key, str) and self._key.search(key) and item not in (None, "", REDACTED):
                    out[key] = REDACTED
                    changed = True
                else:
                    out[key], sub = self._scrub(item)
                    changed = changed or sub
            return (out, True) if changed else (value, False)
        if isinstance(value, list | tuple):
            items = [self._scrub(item) for item in value]
            if any(sub for _, sub in items):
                return [item for item, _ in items], True
            return value, False
        if isinstance(value, str) and self._value is not None and self._value.search(value):
            return self._value.sub(REDACTED, value), True
        return value, False


class PayloadLimit:
    """Cap the serialized size of ``data`` and ``message``; truncate (default) or reject.

    Args:
        max_data_bytes: cap on the JSON of ``data``.
        max_message_bytes: cap on the UTF-8 of ``message``.
        on_oversize: ``"truncate"`` (keep the event, with an explicit marker) or ``"reject"``
            (raise :class:`PayloadTooLargeError`).
        preview_bytes: how much of the original JSON a truncated ``data`` keeps.
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
        self.max_data_bytes = max_data_bytes
        self.max_message_bytes = max_message_bytes
        self.on_oversize = on_oversize
        self.preview_bytes = min(preview_bytes, max_data_bytes // 2)

    def __call__(self, event: StreamEvent) -> StreamEvent:
        update: dict[str, Any] = {}
        if event.data:
            raw = to_json(event.data, fallback=repr)
            if len(raw) > self.max_data_bytes:
                self._refuse(len(raw), self.max_data_bytes)
                preview = raw[: self.preview_bytes].decode("utf-8", "ignore")
                update["data"] = {"_truncated": True, "_original_bytes": len(raw), "_preview": preview}
        if event.message and len(event.message) * 4 > self.max_message_bytes:
            encoded = event.message.encode()
            if len(encoded) > self.max_message_bytes:
                self._refuse(len(encoded), self.max_message_bytes)
                kept = encoded[: self.max_message_bytes - 64].decode("utf-8", "ignore")
                update["message"] = f"{kept}...[truncated {len(encoded) - len(kept.encode())} bytes]"
        return event.model_copy(update=update) if update else event

    def _refuse(self, size: int, limit: int) -> None:
        if self.on_oversize == "reject":
            raise PayloadTooLargeError(size, limit)


def default_processors() -> list[Processor]:
    """The default pipeline: secret redaction, then the payload size cap."""
    return [SecretRedactor(), PayloadLimit()]
