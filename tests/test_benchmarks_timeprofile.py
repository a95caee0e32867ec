"""benchmarks/timeprofile.py: its GC counting and its folding of py-spy stacks (no timing asserted)."""

from __future__ import annotations

import gc
from pathlib import Path

from benchmarks import _pyspy, timeprofile

_OURS = "emit (/x/swarm_observability/emitter.py:10)"
_LOOP = "_run_block (/x/benchmarks/timeprofile.py:80)"


def test_gc_timer_counts_collections_by_generation() -> None:
    """A full collection inside the timer is counted once in generation 2, with its time."""
    with timeprofile.GCTimer() as timer:
        gc.collect()
    assert timer.count[2] == 1
    assert timer.seconds[2] >= 0
    assert timer not in gc.callbacks


def test_fold_splits_by_caller_and_leaf_and_skips_startup(tmp_path: Path) -> None:
    """Loop samples fold by the innermost owned frame and the leaf; startup and idle samples are set apart."""
    raw = tmp_path / "raw.txt"
    lines = [
        f"thread (1): MainThread;{_LOOP};{_OURS};to_json (/x/site-packages/pydantic/main.py:5) 3",
        f"thread (1): MainThread;{_LOOP};{_OURS} 2",
        f"thread (1): MainThread;<module> (/x/swarm_observability/__init__.py:1);{_OURS} 7",
        "thread (2): swarm-obs-writer;append (/x/swarm_observability/stores/sqlite.py:3);"
        "PyThread_acquire_lock_timed (libpython3.11.so.1.0) 5",
    ]
    raw.write_text("\n".join(lines) + "\n")
    folded = _pyspy.fold(raw)
    assert folded["loop"] == {"ours/pydantic": 3, "ours/self": 2}
    assert folded["other threads"] == {"idle": 5}
    assert "ours/pydantic" in _pyspy.summarize(raw, loop_us_per_node=10.0)


def test_gc_share_smoke_reports_both_sides() -> None:
    """gc_share runs plain and instrumented sides with GC on and off and reports collections per run."""
    out = timeprofile.gc_share("memory", runs=2, block=1)
    for side in ("plain", "instr"):
        for state in ("on", "off"):
            assert out[f"{side}_us_per_node_gc_{state}"] > 0
        assert set(out[f"{side}_collections_per_run"]) == {0, 1, 2}


def test_commit_waits_smoke_finds_each_runs_last_commit() -> None:
    """commit_waits sees at least one commit inside every run, holding that run's events."""
    out = timeprofile.commit_waits(runs=2, durability="normal")
    assert out["runs"] == 2
    assert out["commits_per_run"] >= 1
    assert out["events_in_last_commit"] > 0
    assert set(out["last_commit_ms"]) == {"p50", "p90", "p97"}
