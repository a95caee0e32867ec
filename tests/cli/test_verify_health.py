"""`swarm-obs verify` health notes: a run over the span budget is reported (exit 0), not hidden."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from swarm_observability.emitter import EventEmitter
from swarm_observability.stores.sqlite import SQLiteEventStore

_DONE = {"outcome": "ok", "duration_ms": 1.0}


def _wide_run(db: Path, probes: int) -> None:
    with SQLiteEventStore(db) as store, EventEmitter(store, write="sync") as emitter:
        scan = {"invocation_id": "inv-1", "scope_id": "inv-1"}
        emitter.emit("scan_started", "wide", **scan, data={"graph": "g"})
        for i in range(probes):
            scope = {"invocation_id": "inv-1", "scope_id": f"p-{i}", "parent_scope_id": "inv-1", "probe": "x"}
            emitter.emit("probe_start", "wide", **scope)
            emitter.emit("probe_complete", "wide", **scope, data=_DONE)
        emitter.emit("scan_complete", "wide", **scan, data=_DONE)


def test_verify_notes_a_run_over_the_span_budget(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """31 scopes with a budget of 10: verify passes and says about 21 are summarised in traces."""
    db = tmp_path / "events.db"
    _wide_run(db, 30)
    plain = cli("verify", "wide", "--store", str(db))
    assert plain.code == 0 and "span budget" not in plain.out
    monkeypatch.setenv("SWARM_OBS_SPAN_BUDGET", "10")
    result = cli("verify", "wide", "--json", "--store", str(db))
    assert result.code == 0, result
    (report,) = result.json()["runs"]
    assert any("31 scopes, over the span budget of 10" in w and "about 21" in w for w in report["warnings"])
