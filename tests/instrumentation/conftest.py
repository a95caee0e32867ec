"""Fixtures and small helpers shared by the instrumentation tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from swarm_observability.instrumentation.observer import SwarmObserver


@pytest.fixture
def observer() -> Iterator[SwarmObserver]:
    """A fresh observer on an in-memory store (heartbeats off unless a test asks for them)."""
    obs = SwarmObserver(heartbeat_interval=None)
    yield obs
    obs.close()
