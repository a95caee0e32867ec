"""``open_store``: one string (a URL or a path) names an event store; ``SWARM_OBS_STORE`` sets the default.

Accepted forms:

=================================  ==========================================================
``memory://``                      :class:`InMemoryEventStore` (nothing persists)
``sqlite:///events.db``            :class:`SQLiteEventStore` at ``./events.db`` (relative)
``sqlite:////var/swarm/events.db`` ... at ``/var/swarm/events.db`` (absolute: four slashes)
``sqlite:///:memory:``             a private in-memory SQLite database
``jsonl:///runs``                  :class:`JSONLEventStore` in ``./runs/events.jsonl``
``jsonl:////var/swarm``            ... in ``/var/swarm/events.jsonl``
``path/to/events.db``              SQLite for a path ending in ``.db``, ``.sqlite`` or ``.sqlite3``
``path/to/events.jsonl``           JSONL, that file
``path/to/folder``                 JSONL in that folder (a path without suffix, or a folder)
``postgresql://user@host/db``      :class:`PostgresEventStore` (also ``postgres://``; the ``postgres``
                                   extra), any libpq URL; ``?schema=name`` picks the schema
=================================  ==========================================================

The slash rule is SQLAlchemy's: what follows ``scheme:///`` is the path, so a fourth slash makes it
absolute. Query parameters set backend options: ``sqlite:///e.db?durability=normal``,
``jsonl:///runs?fsync=batch``, and ``read_only=true`` for all three. A PostgreSQL URL's other query
parameters (``sslmode``, ``application_name`` ...) go to libpq unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from .base import EventStore, option_value
from .jsonl import JSONLEventStore
from .memory import InMemoryEventStore
from .sqlite import SQLiteEventStore

ENV_VAR = "SWARM_OBS_STORE"
"""Environment variable naming the store ``open_store()`` opens when given no URL."""

_SQLITE_SUFFIXES = frozenset({".db", ".sqlite", ".sqlite3"})
_OPTIONS: dict[str, dict[str, type]] = {
    "sqlite": {"durability": str, "busy_timeout": float, "read_only": bool},
    "jsonl": {"fsync": str, "read_only": bool},
    "memory": {},
    "postgres": {
        "schema": str,
        "pool_size": int,
        "read_only": bool,
        "notify": bool,
        "connect_timeout": float,
    },
}
_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres"})


def default_store_path() -> Path:
    """``./.swarm/events.db``: where the CLI and the demo keep events unless told otherwise.

    :func:`open_store` without a URL opens this path, or the URL in ``$SWARM_OBS_STORE`` when set.
    """
    return Path.cwd() / ".swarm" / "events.db"


def open_store(url: str | os.PathLike[str] | None = None, **options: Any) -> EventStore:
    """Open the event store named by ``url`` (forms in the module docstring).

    Args:
        url: a store URL or a path; ``None`` means ``$SWARM_OBS_STORE`` if set, else
            :func:`default_store_path`.
        options: backend options (``durability``, ``fsync``, ``read_only``, ``busy_timeout``); they
            override the URL's query parameters.

    Raises:
        ValueError: the URL has an unknown scheme, no path, or options its backend does not take.
    """
    if url is None:
        url = os.environ.get(ENV_VAR) or default_store_path()
    text = os.fspath(url)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"not an event store URL or path: {url!r}")
    backend, location, query = _parse(text)
    if backend == "postgres":
        return _open_postgres(text, options)
    params = {**_query_options(text, backend, query), **options}
    unknown = params.keys() - _OPTIONS[backend].keys()
    if unknown:
        raise ValueError(f"{backend} store {text!r} takes no option(s) {', '.join(sorted(unknown))}")
    if backend == "memory":
        return InMemoryEventStore()
    if backend == "sqlite":
        return SQLiteEventStore(location, **params)
    return JSONLEventStore(location, **params)


def _open_postgres(text: str, options: dict[str, Any]) -> EventStore:
    """A :class:`PostgresEventStore`; our URL options checked here, the rest left to libpq."""
    from .postgres import PostgresEventStore, split_url

    conninfo, ours = split_url(text)
    known = _OPTIONS["postgres"]
    unknown = options.keys() - known.keys()
    if unknown:
        raise ValueError(f"postgres store takes no option(s) {', '.join(sorted(unknown))}")
    params: dict[str, Any] = {}
    for key, value in ours.items():
        try:
            params[key] = option_value(value, known[key])
        except ValueError:
            kind = known[key].__name__
            raise ValueError(f"store URL option {key}={value!r} is not a valid {kind}") from None
    return PostgresEventStore(conninfo, **{**params, **options})


def _parse(text: str) -> tuple[str, str, str]:
    """``(backend, location, query string)`` of a URL or plain path."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return _backend_for_path(text), text, ""
    scheme = scheme.lower()
    if scheme in _POSTGRES_SCHEMES:
        return "postgres", text, ""
    if scheme not in _OPTIONS:
        raise ValueError(
            f"unknown event store URL {text!r}: scheme {scheme!r} is not one of memory://, sqlite:///, "
            "jsonl:///, postgresql://"
        )
    rest, _, query = rest.partition("?")
    if scheme == "memory":
        if rest:
            raise ValueError(f"memory:// takes no path, got {text!r}")
        return scheme, "", query
    if not rest.startswith("/") or not rest[1:]:
        raise ValueError(
            f"event store URL {text!r} needs a path after {scheme}:/// (e.g. {scheme}:///events)"
        )
    return scheme, unquote(rest[1:]), query


def _backend_for_path(text: str) -> str:
    path = Path(text).expanduser()
    suffix = path.suffix.lower()
    if suffix in _SQLITE_SUFFIXES:
        return "sqlite"
    if suffix == ".jsonl" or not suffix or path.is_dir():
        return "jsonl"
    raise ValueError(
        f"cannot tell the event store backend of {text!r}: use a .db/.sqlite file, a .jsonl file, "
        "a folder, or a URL (sqlite:///..., jsonl:///..., memory://)"
    )


def _query_options(text: str, backend: str, query: str) -> dict[str, Any]:
    known = _OPTIONS[backend]
    options: dict[str, Any] = {}
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ValueError(
            f"store URL {text!r} has a malformed query {query!r} (expected key=value&...)"
        ) from None
    for key, value in pairs:
        kind = known.get(key)
        if kind is None:
            raise ValueError(f"{backend} store URL {text!r} has an unknown option {key!r}")
        try:
            options[key] = option_value(value, kind)
        except ValueError:
            raise ValueError(f"store URL {text!r}: {key}={value!r} is not a valid {kind.__name__}") from None
    return options
