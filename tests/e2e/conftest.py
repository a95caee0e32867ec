"""Fixtures of the end-to-end tests against a real Jaeger (marker ``jaeger``); see :mod:`tests.e2e.jaeger`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .jaeger import SKIP_REASON, Jaeger, binary, external

_OTEL_VARS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "SWARM_OBS_STORE",
    "SWARM_OBS_DEMO_DELAY",
)


@pytest.fixture(scope="session")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    """A Jaeger shared by the session: ``JAEGER_QUERY_URL``'s, else one started from the built binary."""
    found = external()
    if found is not None:
        yield found
        return
    if not binary().exists():
        pytest.skip(SKIP_REASON)
    started = Jaeger.start(tmp_path_factory.mktemp("jaeger"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def own_jaeger(tmp_path: Path) -> Iterator[Jaeger]:
    """A Jaeger of this test alone, which it may stop and restart (needs the built binary)."""
    if not binary().exists():
        pytest.skip(SKIP_REASON + " (this test stops and restarts Jaeger, so it needs the binary itself)")
    started = Jaeger.start(tmp_path / "jaeger")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _OTEL_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def service() -> str:
    """A service name of this test alone, so searches in a shared Jaeger find only its spans."""
    return f"swarm-e2e-{uuid.uuid4().hex[:10]}"
