"""The PostgreSQL server of the `postgres`-marked tests (SWARM_OBS_TEST_PG_URL); a schema or database each.

``make test-postgres`` and CI's ``.ci/stages/10-postgres.sh`` start a throwaway cluster
(``.ci/with-postgres.sh``) and set the variable. Without it the tests skip with a reason that says so
(and the run's summary repeats it); with it set under ``CI=true``, an unreachable server fails them.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit, urlunsplit

import pytest

ENV = "SWARM_OBS_TEST_PG_URL"
SKIP_REASON = f"needs PostgreSQL: {ENV} is unset (`make test-postgres` starts a throwaway server)"


def server_url() -> str:
    """The test server's URL; skips (or fails under CI) when there is none or it does not answer."""
    url = os.environ.get(ENV)
    if not url:
        pytest.skip(SKIP_REASON)
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        message = f"{ENV}={url} is set but the server does not answer: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


def unique_name(prefix: str) -> str:
    """A schema or database name no parallel test run uses."""
    return f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:10]}"


def with_query(url: str, **params: str) -> str:
    """``url`` with query parameters added."""
    parts = urlsplit(url)
    extra = "&".join(f"{k}={v}" for k, v in params.items())
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A new schema name on the server (the store creates it); dropped with everything in it afterwards."""
    import psycopg

    name = unique_name("t")
    try:
        yield name
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@contextmanager
def fresh_database(url: str) -> Iterator[str]:
    """A new, empty database; yields its URL and drops it afterwards (closing its sessions)."""
    import psycopg

    name = unique_name("swarm_test")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def record_connect_timeouts(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """From now on, the ``connect_timeout`` of every ``psycopg.Connection.connect`` call, in order."""
    import psycopg

    timeouts: list[object] = []
    real = psycopg.Connection.connect

    def connect(cls: type, *args: object, **kwargs: object) -> object:
        timeouts.append(kwargs.get("connect_timeout"))
        return real(*args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "connect", classmethod(connect))
    return timeouts


class ReplyLosingProxy:
    """A TCP proxy to the test server that, when :attr:`pattern` is set, forwards the next message
    containing it and then drops that connection instead of passing the server's answer on: the
    statement ran (and committed, in autocommit or for a ``COMMIT``), but the client never hears so."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        netloc = f"{parts.netloc.rpartition('@')[0]}@127.0.0.1:{self._listener.getsockname()[1]}"
        self.url = with_query(
            urlunsplit(parts._replace(netloc=netloc)), sslmode="disable", gssencmode="disable"
        )
        """``url`` through the proxy (no TLS, so the proxy can see the statements)."""
        self.pattern: bytes | None = None
        self.lost = 0
        """How many answers were dropped."""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            client, _ = self._listener.accept()
            server = socket.create_connection(self._target)
            cut = threading.Event()
            threading.Thread(target=self._up, args=(client, server, cut), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, cut), daemon=True).start()

    def _up(self, client: socket.socket, server: socket.socket, cut: threading.Event) -> None:
        with suppress(OSError):
            while data := client.recv(65536):
                if self.pattern is not None and self.pattern in data:
                    self.pattern = None
                    cut.set()
                server.sendall(data)

    def _down(self, server: socket.socket, client: socket.socket, cut: threading.Event) -> None:
        with suppress(OSError):
            while data := server.recv(65536):
                if cut.is_set():
                    self.lost += 1
                    break
                client.sendall(data)
        for sock in (client, server):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
