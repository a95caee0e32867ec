"""The JSONL reader's fuzz target, briefly (long runs: ``python -m tests.property.fuzz_jsonl``)."""

from __future__ import annotations

import os

from .fuzz_jsonl import run


def test_mutated_files_only_ever_raise_the_stores_own_errors() -> None:
    """A few hundred mutated files (5000 with SWARM_OBS_SLOW=1) open, repair and read within the contract."""
    slow = os.environ.get("SWARM_OBS_SLOW") == "1"
    assert run(iterations=5000 if slow else 300, seed=17) == (5000 if slow else 300)
