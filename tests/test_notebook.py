"""The quickstart notebook runs top to bottom in a real kernel, offline, and draws its chart."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import swarm_observability as so

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
PUBLIC_NAMES = (
    "SwarmObserver",
    "ScanCancelled",
    "agent",
    "export_jaeger_json",
    "export_run",
    "get_checkpointer",
    "get_manager",
    "log",
    "open_store",
    "plan",
    "probe",
    "progress",
    "rebuild_run_state",
)


def test_notebook_is_generated_from_its_builder() -> None:
    """The committed notebook is exactly what notebooks/_build_quickstart.py writes (no stale copy)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_build_quickstart", NOTEBOOK.with_name("_build_quickstart.py")
    )
    assert spec is not None and spec.loader is not None
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    committed = nbformat.read(NOTEBOOK, as_version=4)
    assert [c.source for c in committed.cells] == [c.source for c in builder.build_notebook().cells]
    assert all(not c.get("outputs") for c in committed.cells if c.cell_type == "code")


@pytest.mark.timeout(180)
def test_quickstart_notebook_runs_and_draws_the_timeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every cell runs without error; the chart is shown as a PNG and saved; the trace file is written."""
    missing = [name for name in PUBLIC_NAMES if not hasattr(so, name)]
    assert not missing, f"the notebook uses public names not exported by swarm_observability: {missing}"
    monkeypatch.setenv("QUICKSTART_DIR", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "['scan_started', 'scan_cancelled', 'scan_resumed', 'scan_complete']" in text, text
    assert text.count("scan_paused {'reason': 'pause'") == 1
    assert (tmp_path / "timeline.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((tmp_path / "quickstart-trace.json").read_text())["data"]
