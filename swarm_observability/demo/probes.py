"""The demo's probes: real checks on the files of a source folder, free of any LangGraph code.

The planner node takes an :func:`take_inventory` of the folder (:mod:`.inventory`) and asks each
:class:`ProbeSpec` of :data:`PROBES` which files it wants; every probe then runs in its own ``Send``
branch through :func:`run_probe`, which applies the probe's check (:mod:`.checks`) file by file and
yields :class:`Finding` records one by one, so the graph can emit a ``probe_result`` per finding.

Bad input never crashes a scan: a file that cannot be read, a directory that cannot be listed, a
binary file or a file too large to scan becomes a finding of its own (probes ``file_access``,
``binary_files``, ``large_files``), and the text probes skip those files. The inventory's names are
re-exported here, so this module stays the one to import from.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .checks import (
    Checker,
    check_access,
    check_binary,
    check_dependencies,
    check_large,
    check_secrets,
    check_syntax,
    check_todos,
    human_size,
    prepare_missing_tests,
    wants_dependencies,
)
from .inventory import (
    LARGE_FILE_BYTES,
    MAX_TEXT_BYTES,
    SEVERITIES,
    SKIP_DIRS,
    FileEntry,
    Finding,
    Inventory,
    Severity,
    describe_os_error,
    is_python,
    is_text,
    take_inventory,
)

__all__ = [
    "LARGE_FILE_BYTES",
    "MAX_TEXT_BYTES",
    "PROBES",
    "SEVERITIES",
    "SKIP_DIRS",
    "Checker",
    "FileEntry",
    "Finding",
    "Inventory",
    "ProbeSpec",
    "Severity",
    "files_for",
    "run_probe",
    "take_inventory",
]


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """A probe: which files it looks at and the check it runs on each.

    ``prepare(files)`` builds the per-file checker once per run (a probe that needs to see all its
    files first, like ``missing_tests``, does that there). Text probes get the decoded text; the
    others get ``None`` and work from the entry alone.
    """

    name: str
    description: str
    wants: Callable[[FileEntry], bool]
    prepare: Callable[[Sequence[FileEntry]], Checker]
    needs_text: bool = True


def _fixed(checker: Checker) -> Callable[[Sequence[FileEntry]], Checker]:
    return lambda _files: checker


PROBES: dict[str, ProbeSpec] = {
    spec.name: spec
    for spec in (
        ProbeSpec(
            "secrets",
            "secret-like strings (cloud keys, private keys, tokens, passwords)",
            is_text,
            _fixed(check_secrets),
        ),
        ProbeSpec("syntax", "Python files that do not parse", is_python, _fixed(check_syntax)),
        ProbeSpec(
            "dependencies",
            "unpinned dependencies in requirements files and pyproject.toml",
            wants_dependencies,
            _fixed(check_dependencies),
        ),
        ProbeSpec(
            "missing_tests",
            "package modules without a test file",
            is_python,
            prepare_missing_tests,
            needs_text=False,
        ),
        ProbeSpec("todos", "TODO / FIXME / XXX markers", is_text, _fixed(check_todos)),
        ProbeSpec(
            "large_files",
            f"files of {human_size(LARGE_FILE_BYTES)} or more",
            lambda e: e["kind"] != "unreadable" and e["size"] >= LARGE_FILE_BYTES,
            _fixed(check_large),
            needs_text=False,
        ),
        ProbeSpec(
            "binary_files",
            "binary files in the source tree",
            lambda e: e["kind"] == "binary",
            _fixed(check_binary),
            needs_text=False,
        ),
        ProbeSpec(
            "file_access",
            "files and folders that cannot be read",
            lambda e: e["kind"] == "unreadable",
            _fixed(check_access),
            needs_text=False,
        ),
    )
}
"""Every probe by name, in planning order."""


def files_for(spec: ProbeSpec, inventory: Inventory) -> list[FileEntry]:
    """The files of the inventory that ``spec`` looks at (empty: the planner skips the probe)."""
    return [entry for entry in inventory.files if spec.wants(entry)]


def run_probe(
    spec: ProbeSpec,
    root: Path,
    files: Sequence[FileEntry],
    tick: Callable[[int, int, str], None] | None = None,
) -> Iterator[Finding]:
    """Run ``spec`` over ``files`` and yield its findings; ``tick(done, total, path)`` after each file.

    A file that vanished or became unreadable since the inventory is reported as a ``file_access``
    finding under this probe, and the probe goes on with the next file.
    """
    checker = spec.prepare(files)
    total = len(files)
    for done, entry in enumerate(files, start=1):
        text: str | None = None
        if spec.needs_text:
            try:
                text = (root / entry["path"]).read_bytes().decode("utf-8", errors="replace")
            except OSError as exc:
                yield Finding(
                    spec.name,
                    "medium",
                    "unreadable",
                    entry["path"],
                    f"cannot read: {describe_os_error(exc)}",
                )
                text = None
        if text is not None or not spec.needs_text:
            yield from checker(entry, text)
        if tick is not None:
            tick(done, total, entry["path"])
