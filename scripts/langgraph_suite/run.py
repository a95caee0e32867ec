"""LangGraph's own test suites, run plain and with every graph instrumented; the failure sets must match.

Usage (``make langgraph-suite [SUITE=prebuilt|core|swarm|supervisor|agents|all]``)::

    .venv/bin/python scripts/langgraph_suite/run.py prebuilt [--workdir .langgraph-suite] [--jobs N]

Downloads the source distributions of the ``langgraph`` / ``langgraph-prebuilt`` versions installed
here, of the multi-agent libraries built on them, ``langgraph-swarm`` and ``langgraph-supervisor``,
and of ``langchain`` (for its ``create_agent`` tests) with ``pip download --no-binary :all:`` (they
ship their tests), builds a venv for them beside the project (this project editable, the installed
versions pinned, plus the suites' test dependencies; rebuilt when that list changes), runs each
suite twice with ``NO_DOCKER=true`` (no Postgres or Redis): once plain and once with ``-p swarm_obs_plugin``
(``swarm_obs_plugin.py``: every compiled graph instrumented, recording to what ``--config`` names:
in-memory events by default, or an SQLite store, or spans too), and compares the sets of failed tests
from the JUnit reports. Exit 1 if the instrumented run fails a test the plain run passes.
Results go to ``<workdir>/results.json``. Opt-in: not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import venv
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SUITES = {
    "prebuilt": "langgraph-prebuilt",
    "core": "langgraph",
    "swarm": "langgraph-swarm",
    "supervisor": "langgraph-supervisor",
    "agents": "langchain",
}
TESTS = {"agents": "tests/unit_tests/agents"}
"""A suite's tests when not all of ``tests``: langchain's are its agent tests (``create_agent``) only."""
PINNED = (*SUITES.values(), "langchain-core")
"""The suites' packages, pinned in their venv to the versions installed here."""
WITH_LANGCHAIN = frozenset({"swarm", "supervisor", "agents"})
"""The suites whose venv has ``langchain`` (and the multi-agent libraries); the others' has neither."""
PINNED_CORE = ("langgraph", "langgraph-prebuilt", "langchain-core")
TEST_DEPS = [
    "pytest",
    "pytest-asyncio",
    "pytest-mock",
    "pytest-xdist",
    "pytest-repeat",
    "pytest-dotenv",
    "syrupy",
    "httpx",
    "pycryptodome",
    "redis",
    "psycopg[binary]",
    "langgraph-checkpoint-postgres",
    "langgraph-sdk",
    "pytest-socket",
    "blockbuster",
    "langchain-tests",
    "langchain-openai",
]
"""The suites' ``test`` dependency groups, minus CLI (``langgraph-cli``), benchmark, coverage, MCP tools."""


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=False, text=True, **kwargs)  # type: ignore[call-overload,no-any-return]


def suite_venv(workdir: Path, suite: str) -> Path:
    """The interpreter of ``suite`` (created once, reused while its requirements stay the same).

    Two venvs: LangGraph's own suites run where ``langchain`` is not installed (``langgraph-swarm``
    needs it), since its presence changes what ``langchain-core`` reports in a model call's metadata
    (``lc_versions``), which nine core tests assert; the multi-agent suites run beside it.
    """
    folder = workdir / ("venv-langchain" if suite in WITH_LANGCHAIN else "venv")
    python = folder / "bin" / "python"
    stamp = folder / ".installed"
    pinned = PINNED if suite in WITH_LANGCHAIN else PINNED_CORE
    wanted = [f"{name}=={metadata.version(name)}" for name in pinned] + TEST_DEPS
    if not stamp.exists() or stamp.read_text().split() != wanted:
        shutil.rmtree(folder, ignore_errors=True)  # rebuilt: what the old list installed must go too
        venv.create(folder, with_pip=True)
        done = _run([str(python), "-m", "pip", "install", "-q", "-e", str(ROOT), *wanted])
        if done.returncode != 0:
            raise SystemExit("could not install the suites' test dependencies")
        stamp.write_text("\n".join(wanted) + "\n")
    return python


def sources(workdir: Path, package: str) -> Path:
    """The unpacked source distribution of the installed ``package`` version (downloaded once)."""
    version = metadata.version(package)
    dist = workdir / "sdist"
    folder = dist / f"{package.replace('-', '_')}-{version}"
    if not folder.exists():
        spec = f"{package}=={version}"
        pip = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", spec]
        pip += ["-d", str(dist)]
        if _run(pip).returncode != 0:
            raise SystemExit(f"could not download the source distribution of {spec}")
        archive = next(dist.glob(f"{package.replace('-', '_')}-{version}.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(dist, filter="data")
    return folder


def outcomes(report: Path) -> dict[str, str]:
    """``test id -> passed|failed|skipped`` from a JUnit XML report (errors count as failed)."""
    result: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            result[name] = "failed"
        elif case.find("skipped") is not None:
            result.setdefault(name, "skipped")
        else:
            result.setdefault(name, "passed")
    return result


def run_suite(
    python: Path, folder: Path, tests: str, label: str, config: str | None, jobs: int
) -> tuple[dict[str, str], dict[str, int]]:
    """Outcomes of one run and, instrumented (``config`` given), how many graphs the plugin instrumented,
    events it saw and spans it exported."""
    report = folder.parent / f"{folder.name}.{label}.xml"
    seen = folder.parent / f"{folder.name}.{label}.plugin"
    seen.unlink(missing_ok=True)
    env = {**os.environ, "NO_DOCKER": "true", "PYTHONDONTWRITEBYTECODE": "1"}
    args = [str(python), "-m", "pytest", tests, "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
    args += ["-o", "addopts=", "-W", "ignore::DeprecationWarning"]
    if jobs > 1:
        args += ["-n", str(jobs)]
    if config is not None:
        env["SWARM_OBS_PLUGIN_CONFIG"] = config
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
        env["SWARM_OBS_PLUGIN_REPORT"] = str(seen)
        args += ["-p", "swarm_obs_plugin"]
    _run(args, cwd=folder, env=env, stdout=subprocess.DEVNULL)
    lines = seen.read_text().split("\n") if seen.exists() else []
    counts = [tuple(int(n) for n in line.split()) for line in lines if line.strip()]
    plugin = {key: sum(c[i] for c in counts) for i, key in enumerate(("graphs", "events", "spans"))}
    return outcomes(report), plugin


def compare(plain: dict[str, str], observed: dict[str, str]) -> dict[str, object]:
    def count(results: dict[str, str]) -> dict[str, int]:
        return {k: sum(1 for v in results.values() if v == k) for k in ("passed", "failed", "skipped")}

    failed_plain = {t for t, v in plain.items() if v == "failed"}
    failed_observed = {t for t, v in observed.items() if v == "failed"}
    return {
        "plain": count(plain),
        "instrumented": count(observed),
        "new_failures": sorted(failed_observed - failed_plain),
        "fixed": sorted(failed_plain - failed_observed),
        "missing": sorted(set(plain) - set(observed)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("suite", choices=[*SUITES, "all"], nargs="?", default="prebuilt")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".langgraph-suite")
    parser.add_argument("--jobs", type=int, default=1, help="pytest-xdist workers per run (default 1)")
    parser.add_argument(
        "--config",
        choices=["memory", "memory+otel", "sqlite", "sqlite+otel"],
        default="memory",
        help="what the instrumented run records (swarm_obs_plugin.py; default: events in memory)",
    )
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    results_file = args.workdir / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    names = list(SUITES) if args.suite == "all" else [args.suite]
    broken = False
    for name in names:
        python = suite_venv(args.workdir, name)
        folder = sources(args.workdir, SUITES[name])
        tests = TESTS.get(name, "tests")
        plain, _ = run_suite(python, folder, tests, "plain", None, args.jobs)
        label = f"instrumented-{args.config}"
        observed, plugin = run_suite(python, folder, tests, label, args.config, args.jobs)
        summary = {"version": metadata.version(SUITES[name]), **compare(plain, observed), "plugin": plugin}
        if not plugin["graphs"]:
            raise SystemExit(f"{name}: the plugin instrumented no graph; the comparison would prove nothing")
        results[name if args.config == "memory" else f"{name} {args.config}"] = summary
        broken = broken or bool(summary["new_failures"])
        print(f"{name} {summary['version']}: plain {summary['plain']}")
        seen = f"{plugin['graphs']} graphs, {plugin['events']} events, {plugin['spans']} spans"
        print(f"{' ' * len(name)} instrumented ({args.config}) {summary['instrumented']} ({seen})")
        for test in summary["new_failures"]:
            print(f"  NEW FAILURE: {test}")
    results_file.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {results_file}")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
