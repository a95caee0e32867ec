"""Shared fixtures for the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests._postgres import ENV, fresh_database, fresh_schema, server_url, with_query


@pytest.fixture
def pg_url() -> str:
    """The PostgreSQL test server (skips loudly without ``SWARM_OBS_TEST_PG_URL``)."""
    return server_url()


@pytest.fixture
def pg_store_url(pg_url: str) -> Iterator[str]:
    """A ``postgresql://...?schema=<unique>`` store URL of this test alone; the schema is dropped after."""
    with fresh_schema(pg_url) as schema:
        yield with_query(pg_url, schema=schema)


@pytest.fixture
def pg_database_url(pg_url: str) -> Iterator[str]:
    """The URL of a new database of this test alone (for LangGraph's checkpoint tables); dropped after."""
    with fresh_database(pg_url) as url:
        yield url


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say once, at the end, that PostgreSQL or Jaeger tests were skipped and how to run them."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if ENV in str(r.longrepr)]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} PostgreSQL test(s) SKIPPED: {ENV} is unset; run `make test-postgres`",
            yellow=True,
            bold=True,
        )
    skips = terminalreporter.stats.get("skipped", [])
    jaeger = [r for r in skips if "needs a real Jaeger" in str(r.longrepr)]
    if jaeger:
        terminalreporter.write_line(
            f"{len(jaeger)} Jaeger test(s) SKIPPED: no Jaeger binary and no JAEGER_QUERY_URL; "
            "run `make jaeger` (Go >= 1.24), then `make test` starts it itself",
            yellow=True,
            bold=True,
        )
