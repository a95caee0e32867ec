"""Hypothesis settings of the property suite: a fixed, quick profile in ``make test``; long runs opt-in.

``make test`` uses the ``default`` profile: derandomized (the same examples every run, so a failure
reproduces and the suite's time is stable), no example database written into the work tree.
``SWARM_OBS_SLOW=1`` (or ``HYPOTHESIS_PROFILE=long``) switches to random search with 25 times the
examples per property (:mod:`._budget`), and keeps found failures in ``.hypothesis/``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
settings.register_profile(
    "default", derandomize=True, database=None, deadline=None, suppress_health_check=_QUIET
)
settings.register_profile("long", deadline=None, suppress_health_check=_QUIET, print_blob=True)
_slow = os.environ.get("SWARM_OBS_SLOW") == "1"
_LONG = (os.environ.get("HYPOTHESIS_PROFILE") or ("long" if _slow else "default")) == "long"
settings.load_profile("long" if _LONG else os.environ.get("HYPOTHESIS_PROFILE") or "default")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long runs take as long as their examples need: no per-test timeout for the property suite then."""
    if _LONG:
        for item in items:
            if "tests/property/" in str(item.fspath):
                item.add_marker(pytest.mark.timeout(0))
