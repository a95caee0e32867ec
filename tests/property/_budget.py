"""How many examples a property runs: as given in ``make test``, 25 times more in slow runs."""

from __future__ import annotations

import os

FACTOR = (
    25 if os.environ.get("SWARM_OBS_SLOW") == "1" or os.environ.get("HYPOTHESIS_PROFILE") == "long" else 1
)


def examples(count: int) -> int:
    """``count`` examples in ``make test``, ``count * 25`` with ``SWARM_OBS_SLOW=1``."""
    return count * FACTOR
