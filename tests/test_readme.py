"""Everything the README shows runs: each ```python block is executed as a script in a fresh folder.

A ``# -> TEXT`` comment (up to two spaces) is output the block must print on some line.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests._postgres import fresh_database, server_url
from tests.tracing.otlp_sink import OtlpSink

README = Path(__file__).resolve().parent.parent / "README.md"
TEXT = README.read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", TEXT, re.DOTALL)


def _section_of(block: str) -> str:
    headings = re.findall(r"^## (.+)$", TEXT[: TEXT.find(block)], re.MULTILINE)
    return re.sub(r"\W+", "-", headings[-1] if headings else "top").strip("-")


SECTIONS = [_section_of(block) for block in BLOCKS]


def _run(code: str, cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"README block failed:\n{code}\n--- stderr ---\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_the_readme_has_the_sections_a_newcomer_needs() -> None:
    """The README names both set-up commands and shows runnable code for every feature section."""
    assert "make demo" in TEXT and "make test" in TEXT
    assert len(BLOCKS) >= 6
    assert "BENCHMARKS_PLACEHOLDER" not in TEXT


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "index",
    [
        pytest.param(i, marks=[pytest.mark.postgres] if "DATABASE_URL" in block else [])
        for i, block in enumerate(BLOCKS)
    ],
    ids=SECTIONS,
)
def test_readme_code_block_runs(index: int, tmp_path: Path) -> None:
    """A README python block runs to completion as a user would paste it (spans go to a local OTLP sink)."""
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(OtlpSink())
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": sink.http_endpoint}
        if "DATABASE_URL" in BLOCKS[index]:  # the PostgreSQL example: a database of its own
            env["DATABASE_URL"] = stack.enter_context(fresh_database(server_url()))
        out = _run(BLOCKS[index], tmp_path, env)
        if "configure_tracing" in BLOCKS[index]:
            names = {span.name for span in sink.wait_for(3)}
            assert "invoke_workflow audit" in names and "node step" in names
            assert (tmp_path / "scan-42.json").exists()
    assert out.strip(), "every README example prints what it shows"
    printed = out.splitlines()
    for expected in re.findall(r"# -> (.+?)(?:  .*)?$", BLOCKS[index], re.MULTILINE):
        assert any(expected in line for line in printed), f"README shows `# -> {expected}`; printed:\n{out}"


@pytest.mark.timeout(120)
def test_package_docstring_example_runs(tmp_path: Path) -> None:
    """The complete example in the package docstring (what `help(swarm_observability)` shows) runs."""
    import swarm_observability

    doc = swarm_observability.__doc__ or ""
    example = textwrap.dedent(doc.split("A complete example::", 1)[1])
    out = _run(example, tmp_path, dict(os.environ))
    assert "scan_started" in out and "probe_result" in out and "scan_complete" in out


def test_the_readme_go_route_builds_the_jaeger_the_script_and_ci_pin() -> None:
    """The README's copy-paste `go` commands name the Jaeger module version scripts/jaeger.sh (CI) builds."""
    script = (README.parent / "scripts" / "jaeger.sh").read_text(encoding="utf-8")
    pinned = re.search(r'JAEGER_VERSION="\$\{JAEGER_VERSION:-(v[0-9.]+)\}"', script)
    assert pinned is not None
    shown = set(re.findall(r"github\.com/jaegertracing/jaeger(?:/cmd/jaeger)?@(v[0-9.]+)", TEXT))
    assert shown == {pinned.group(1)}
    assert "scripts/jaeger.sh start" in TEXT and "make jaeger" in TEXT
