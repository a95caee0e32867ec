"""Durable pause across processes: drain a scan in one process, resume it in another."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from langgraph.types import StateSnapshot

from swarm_observability.checkpointers import get_checkpointer
from swarm_observability.control import ControlAction, ControlChannel

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHILD = HERE / "_drain_child.py"


def _env() -> dict[str, str]:
    paths = [str(REPO), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def _report(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def _load_child_module():
    spec = importlib.util.spec_from_file_location("_drain_child", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def _state(db: Path, thread: str) -> StateSnapshot:
    """The thread's state as this (third) process reads it from the checkpointer."""
    with get_checkpointer(path=db) as saver:
        graph = _load_child_module().build("inspect", thread).compile(checkpointer=saver)
        return graph.get_state({"configurable": {"thread_id": thread}})


def _run_child(mode: str, db: Path, thread: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(CHILD), mode, str(db), thread],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return _report(done.stdout)


def _drain_while_n1_runs(how: str, db: Path, thread: str) -> dict:
    """Start the child, wait until n1 runs, ask for a drain from this process, collect its report."""
    mode = "sigterm" if how == "sigterm" else "channel-drain"
    child = subprocess.Popen(
        [sys.executable, str(CHILD), mode, str(db), thread],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=REPO,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "n1-running"
        if how == "sigterm":
            child.send_signal(signal.SIGTERM)
        else:
            with ControlChannel(db) as channel:
                channel.request(thread, ControlAction.DRAIN, "maintenance window")
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    return _report(out)


@pytest.mark.parametrize(("how", "reason"), [("sigterm", "SIGTERM"), ("channel", "maintenance window")])
@pytest.mark.timeout(120)
def test_drained_scan_resumes_in_another_process(tmp_path: Path, how: str, reason: str) -> None:
    """A scan drained in node 1 stops after it, checkpoint saved; another process resumes it to the end."""
    db, thread = tmp_path / "swarm.db", f"scan-{how}"
    first = _drain_while_n1_runs(how, db, thread)
    assert first == {"ran": ["n1"], "ended": "drained", "reason": reason}
    between = _state(db, thread)
    assert between.next == ("n2",)
    assert between.values == {"x": ["n1"]}

    second = _run_child("resume", db, thread)
    assert second == {"ran": ["n2", "n3"], "ended": "complete", "values": ["n1", "n2", "n3"]}
    final = _state(db, thread)
    assert final.next == ()
    assert final.values == {"x": ["n1", "n2", "n3"]}
    if how == "channel":
        with ControlChannel(db) as channel:
            assert [r.consumed_at is not None for r in channel.requests(thread)] == [True]
