"""The demo's probes and its offline reviewer model, without any graph."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

from swarm_observability.demo import inventory as inventory_module
from swarm_observability.demo import probes
from swarm_observability.demo.model import OfflineReviewModel, build_review_prompt
from swarm_observability.demo.probes import PROBES, files_for, run_probe, take_inventory

from .planted import EXPECTED, FAKE_AWS_KEY, FAKE_PASSWORD, plant_folder


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    return plant_folder(tmp_path / "src")


def _findings(root: Path, name: str) -> list[probes.Finding]:
    inventory = take_inventory(root)
    spec = PROBES[name]
    return list(run_probe(spec, root, files_for(spec, inventory)))


def test_inventory_skips_tool_folders_and_classifies_files(planted: Path) -> None:
    """.venv and node_modules are not entered; NUL bytes make a file binary."""
    entries = {entry["path"]: entry for entry in take_inventory(planted).files}
    assert not any(path.startswith((".venv/", "node_modules/")) for path in entries)
    assert entries["assets/logo.bin"]["kind"] == "binary"
    assert entries["app/config.py"]["kind"] == "text"
    assert entries["data/big.log"]["size"] >= probes.LARGE_FILE_BYTES


@pytest.mark.parametrize(("probe_name", "kind", "path"), EXPECTED)
def test_probe_finds_planted_issue(planted: Path, probe_name: str, kind: str, path: str) -> None:
    """Every planted issue is found by its probe, at the right file."""
    found = {(f.kind, f.path) for f in _findings(planted, probe_name)}
    assert (kind, path) in found


def test_clean_content_gives_no_findings(planted: Path) -> None:
    """Pinned requirements, tested modules and plain text are not reported."""
    deps = [f.message for f in _findings(planted, "dependencies")]
    assert not any(message.startswith("rich") for message in deps)
    assert "app/worker.py" not in {f.path for f in _findings(planted, "missing_tests")}
    assert {f.path for f in _findings(planted, "secrets")} == {"app/config.py"}


def test_secret_values_are_masked(planted: Path) -> None:
    """A finding names the kind of secret but never carries the value itself."""
    messages = " ".join(f.message for f in _findings(planted, "secrets"))
    assert FAKE_AWS_KEY not in messages
    assert FAKE_PASSWORD not in messages
    assert "AKIA..." in messages


def test_secrets_in_test_files_are_downgraded(tmp_path: Path) -> None:
    """A key inside a tests folder is reported as a likely fixture, low severity."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(f'KEY = "{FAKE_AWS_KEY}"\n')
    (finding,) = _findings(tmp_path, "secrets")
    assert finding.severity == "low"
    assert "test file" in finding.message


def test_file_vanishing_during_scan_is_a_finding_not_a_crash(planted: Path) -> None:
    """A file that cannot be read any more is reported and the probe goes on with the others."""
    inventory = take_inventory(planted)
    (planted / "app" / "worker.py").unlink()
    spec = PROBES["todos"]
    found = list(run_probe(spec, planted, files_for(spec, inventory)))
    assert [(f.kind, f.path) for f in found] == [("unreadable", "app/worker.py")]
    found = list(run_probe(PROBES["secrets"], planted, files_for(PROBES["secrets"], inventory)))
    assert ("aws-access-key", "app/config.py") in {(f.kind, f.path) for f in found}


def test_unreadable_inventory_entry_goes_to_file_access(tmp_path: Path) -> None:
    """An entry the inventory could not read is only reported by the file_access probe."""
    entry = probes.FileEntry(path="locked.txt", size=10, kind="unreadable", error="PermissionError: denied")
    inventory = probes.Inventory(root=tmp_path, files=[entry])
    assert [name for name, spec in PROBES.items() if files_for(spec, inventory)] == ["file_access"]
    (finding,) = run_probe(PROBES["file_access"], tmp_path, [entry])
    assert "PermissionError" in finding.message


def test_huge_file_is_reported_and_skipped_by_text_probes(
    planted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file over the text limit is a large_files finding and is never read by text probes."""
    monkeypatch.setattr(inventory_module, "MAX_TEXT_BYTES", 100_000)  # where the limit lives
    inventory = take_inventory(planted)
    assert "data/big.log" not in {e["path"] for e in files_for(PROBES["secrets"], inventory)}
    (large,) = _findings(planted, "large_files")
    assert "not scanned" in large.message


def test_pyproject_without_versions_and_invalid_toml(tmp_path: Path) -> None:
    """pyproject dependencies without any constraint are reported; broken TOML is a finding."""
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["httpx>=0.27", "pydantic"]\n'
        '[dependency-groups]\ndev = ["pytest"]\n'
    )
    messages = sorted(f.message for f in _findings(tmp_path, "dependencies"))
    assert messages == [
        "pydantic (dependencies) has no version constraint",
        "pytest (dependency-groups.dev) has no version constraint",
    ]
    (tmp_path / "pyproject.toml").write_text("[project\n")
    (broken,) = _findings(tmp_path, "dependencies")
    assert broken.kind == "invalid-toml"


def test_work_markers_need_a_comment_or_colon(tmp_path: Path) -> None:
    """Markers count in comments or before a colon; the word inside prose or code does not."""
    (tmp_path / "a.py").write_text('x = "TODO|FIXME"  # FIXME later\n"""TODO: docstring"""\ntodo = 1\n')
    (finding,) = _findings(tmp_path, "todos")
    assert finding.message == "2 open marker(s): FIXME x1, TODO x1"
    assert finding.line == 1


def test_offline_model_is_a_deterministic_chat_model(planted: Path) -> None:
    """The reviewer model is a real BaseChatModel and gives the same review for the same findings."""
    findings = [f.to_dict() for name in PROBES for f in _findings(planted, name)]
    model = OfflineReviewModel()
    assert isinstance(model, BaseChatModel)
    prompt = build_review_prompt(str(planted), findings, list(PROBES))
    first, second = model.invoke(prompt), model.invoke(prompt)
    assert first.content == second.content
    lines = str(first.content).splitlines()
    assert lines[0].startswith("Verdict: fail - ")
    assert "[high] secrets" in first.content
    assert first.usage_metadata is not None and first.usage_metadata["output_tokens"] > 0


def test_offline_model_answers_other_prompts_without_findings() -> None:
    """A prompt without a findings block gets a plain answer, not an exception."""
    answer = OfflineReviewModel().invoke([HumanMessage("hello")])
    assert answer.content == "No audit findings were found in the prompt."


def test_review_prompt_is_capped_but_totals_cover_everything() -> None:
    """At most 200 findings reach the model; the totals still count all of them."""
    many = [{"probe": "todos", "severity": "info", "path": f"f{i}.py", "message": "m"} for i in range(250)]
    answer = OfflineReviewModel().invoke(build_review_prompt("/x", many, ["todos"]))
    assert str(answer.content).startswith("Verdict: pass - 250 finding(s): 250 info.")
    assert str(build_review_prompt("/x", many, ["todos"])[1].content).count('"path"') == 200
