"""The PostgreSQL server of the `postgres`-marked tests (SWARM_OBS_TEST_PG_URL); a schema or database each.

``make test-postgres`` and CI's ``.ci/stages/10-postgres.sh`` start a throwaway cluster
(``.ci/with-postgres.sh``) and set the variable. Without it the tests skip with a reason that says so
(and the run's summary repeats it); with it set under ``CI=true``, an unreachable server fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
