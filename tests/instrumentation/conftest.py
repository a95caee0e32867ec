"""Fixtures and small helpers shared by the instrumentation tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from swarm_observability.instrumentation.observer import SwarmObserver


@pytest.fixture
def observer() -> Iterator[SwarmObserver]:
    """A fresh observer on an in-memory store that also streams its events (heartbeats off).

    These tests read our events from ``stream_mode="custom"``, so they opt in with
    ``custom_stream=True``; the default (nothing added to any stream) is tested in test_transparency.py.
    """
    obs = SwarmObserver(heartbeat_interval=None, custom_stream=True)
    yield obs
    obs.close()
