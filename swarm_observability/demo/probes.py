"""The demo's probes: real checks on the files of a source folder, free of any LangGraph code.

The planner node takes an :func:`take_inventory` of the folder and asks each :class:`ProbeSpec` which
files it wants; every probe then runs in its own ``Send`` branch through :func:`run_probe`, which
yields :class:`Finding` records one by one so the graph can emit a ``probe_result`` per finding.

Bad input never crashes a scan: a file that cannot be read, a directory that cannot be listed, a
binary file or a file too large to scan becomes a finding of its own (probes ``file_access``,
``binary_files``, ``large_files``), and the text probes skip those files. Symbolic links, FIFOs and
device files are never opened (a FIFO would block the scan), and the folders in :data:`SKIP_DIRS`
are not entered.
"""

from __future__ import annotations

import ast
import os
import re
import stat
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

Severity = Literal["high", "medium", "low", "info"]
SEVERITIES: tuple[Severity, ...] = ("high", "medium", "low", "info")
"""Severities, most serious first."""

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".swarm",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".ipynb_checkpoints",
    }
)
"""Folder names never entered: VCS data, virtualenvs, caches and our own data folder."""

LARGE_FILE_BYTES = 1_000_000
"""Files at least this big are reported by ``large_files``."""
MAX_TEXT_BYTES = 4_000_000
"""Text probes skip files bigger than this (``large_files`` reports them as not scanned)."""
_SNIFF_BYTES = 8192


class FileEntry(TypedDict):
    """One file of the inventory (a plain dict so it can travel in graph state and checkpoints)."""

    path: str
    """Path relative to the scanned folder, with ``/`` separators."""
    size: int
    """Size in bytes (0 when unknown)."""
    kind: Literal["text", "binary", "unreadable"]
    """``binary`` if the first 8 KiB contain a NUL byte; ``unreadable`` if it could not be opened."""
    error: str | None
    """Why an ``unreadable`` entry could not be read."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a probe found. Never contains a secret itself: matches are masked."""

    probe: str
    severity: Severity
    kind: str
    path: str
    message: str
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The finding as a JSON-compatible dict (the ``probe_result`` payload)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Inventory:
    """What the planner found in the folder."""

    root: Path
    files: list[FileEntry]


def take_inventory(root: Path) -> Inventory:
    """Walk ``root`` (not following links), classify each regular file as text, binary or unreadable."""
    files: list[FileEntry] = []

    def on_error(exc: OSError) -> None:
        where = _relative(root, Path(exc.filename)) if exc.filename else "."
        files.append(FileEntry(path=where, size=0, kind="unreadable", error=_describe_os_error(exc)))

    for folder, dirs, names in os.walk(root, onerror=on_error, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(names):
            full = Path(folder, name)
            try:
                info = full.lstat()
            except OSError as exc:
                files.append(
                    FileEntry(
                        path=_relative(root, full), size=0, kind="unreadable", error=_describe_os_error(exc)
                    )
                )
                continue
            if stat.S_ISREG(info.st_mode):
                files.append(_classify(root, full, info.st_size))
    return Inventory(root=root, files=files)


def _classify(root: Path, full: Path, size: int) -> FileEntry:
    rel = _relative(root, full)
    try:
        with full.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        return FileEntry(path=rel, size=size, kind="unreadable", error=_describe_os_error(exc))
    return FileEntry(path=rel, size=size, kind="binary" if b"\0" in head else "text", error=None)


def _relative(root: Path, full: Path) -> str:
    try:
        return full.relative_to(root).as_posix()
    except ValueError:
        return full.as_posix()


def _describe_os_error(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror or exc}"


# -- probe specifications ---------------------------------------------------------------------------

Checker = Callable[[FileEntry, str | None], list[Finding]]


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


def _is_text(entry: FileEntry) -> bool:
    return entry["kind"] == "text" and entry["size"] <= MAX_TEXT_BYTES


def _is_python(entry: FileEntry) -> bool:
    return _is_text(entry) and entry["path"].endswith(".py")


def _fixed(checker: Checker) -> Callable[[Sequence[FileEntry]], Checker]:
    return lambda _files: checker


# secrets ------------------------------------------------------------------------------------------

_SECRET_PATTERNS: tuple[tuple[str, Severity, re.Pattern[str]], ...] = (
    ("aws-access-key", "high", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("private-key", "high", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")),
    ("github-token", "high", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("slack-token", "high", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    ("api-key", "high", re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}")),
    (
        "password-assignment",
        "medium",
        re.compile(
            r"(?i)\b(?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|token)\b"
            r"[\"']?\s*[:=]\s*([\"'])([^\"'\s]{6,})\1"
        ),
    ),
)
_PLACEHOLDERS = re.compile(
    r"(?i)^(?:changeme|password|example\w*|dummy\w*|placeholder|x+|\*+|<.*>|\$\{.*\}|%\(.*\)s)$"
)


def _mask(value: str) -> str:
    return f"{value[:4]}... ({len(value)} chars)"


def _check_secrets(entry: FileEntry, text: str | None) -> list[Finding]:
    in_tests = _is_test_path(entry["path"])
    found: list[Finding] = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        for kind, severity, pattern in _SECRET_PATTERNS:
            for match in pattern.finditer(line):
                value = match.group(2) if match.lastindex else match.group(0)
                if kind == "password-assignment" and _PLACEHOLDERS.match(value):
                    continue
                message = f"possible {kind.replace('-', ' ')}: {_mask(value)}"
                if in_tests:
                    severity, message = "low", f"{message} in a test file (a fixture?)"
                found.append(Finding("secrets", severity, kind, entry["path"], message, number))
    return found


# work markers -----------------------------------------------------------------------------------------

_MARKER = re.compile(r"(?:(?:#|//|/\*|<!--|--|;)\s*(TODO|FIXME|XXX)\b|\b(TODO|FIXME|XXX)(?:\([^)]*\))?:)")
"""A work marker right after a comment sign, or followed by a colon (optionally with an owner in parens)."""


def _check_todos(entry: FileEntry, text: str | None) -> list[Finding]:
    counts: Counter[str] = Counter()
    first_line = None
    for number, line in enumerate((text or "").splitlines(), start=1):
        for match in _MARKER.finditer(line):
            counts[match.group(1) or match.group(2)] += 1
            first_line = first_line or number
    if not counts:
        return []
    detail = ", ".join(f"{marker} x{count}" for marker, count in sorted(counts.items()))
    total = sum(counts.values())
    return [
        Finding(
            "todos", "info", "work-marker", entry["path"], f"{total} open marker(s): {detail}", first_line
        )
    ]


# Python syntax ------------------------------------------------------------------------------------


def _check_syntax(entry: FileEntry, text: str | None) -> list[Finding]:
    try:
        ast.parse(text or "", filename=entry["path"])
    except SyntaxError as exc:
        return [
            Finding(
                "syntax",
                "high",
                "syntax-error",
                entry["path"],
                f"{type(exc).__name__}: {exc.msg}",
                exc.lineno,
            )
        ]
    except ValueError as exc:
        return [Finding("syntax", "high", "unparsable", entry["path"], f"cannot parse: {exc}")]
    return []


# unpinned dependencies ----------------------------------------------------------------------------

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def _is_requirements(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return (name.startswith("requirements") and name.endswith((".txt", ".in"))) or (
        "/requirements/" in f"/{path}" and name.endswith(".txt")
    )


def _wants_dependencies(entry: FileEntry) -> bool:
    return _is_text(entry) and (
        _is_requirements(entry["path"]) or entry["path"].rsplit("/", 1)[-1] == "pyproject.toml"
    )


def _check_dependencies(entry: FileEntry, text: str | None) -> list[Finding]:
    if entry["path"].endswith("pyproject.toml"):
        return _check_pyproject(entry, text or "")
    found = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.split(" #", 1)[0].split(";", 1)[0].strip()
        if not line or line.startswith(("#", "-")) or "://" in line or " @ " in line:
            continue
        match = _REQUIREMENT.match(line)
        if match is None:
            continue
        name, spec = match.group(1), match.group(3).strip()
        if "==" in spec:
            continue
        if spec:
            found.append(
                Finding(
                    "dependencies",
                    "low",
                    "range-only",
                    entry["path"],
                    f"{name} is not pinned to one version ({spec})",
                    number,
                )
            )
        else:
            found.append(
                Finding(
                    "dependencies",
                    "medium",
                    "unpinned",
                    entry["path"],
                    f"{name} has no version constraint",
                    number,
                )
            )
    return found


def _check_pyproject(entry: FileEntry, text: str) -> list[Finding]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return [Finding("dependencies", "medium", "invalid-toml", entry["path"], f"not valid TOML: {exc}")]
    groups: dict[str, list[Any]] = {"dependencies": data.get("project", {}).get("dependencies", [])}
    for extra, deps in data.get("project", {}).get("optional-dependencies", {}).items():
        groups[f"optional-dependencies.{extra}"] = deps
    for group, deps in data.get("dependency-groups", {}).items():
        groups[f"dependency-groups.{group}"] = deps
    lines = text.splitlines()
    found = []
    for group, deps in groups.items():
        for dep in deps if isinstance(deps, list) else []:
            if not isinstance(dep, str):
                continue
            match = _REQUIREMENT.match(dep.split(";", 1)[0])
            if match and not match.group(3).strip() and "@" not in dep:
                line = next((i for i, text_line in enumerate(lines, 1) if f'"{dep}"' in text_line), None)
                found.append(
                    Finding(
                        "dependencies",
                        "medium",
                        "unpinned",
                        entry["path"],
                        f"{match.group(1)} ({group}) has no version constraint",
                        line,
                    )
                )
    return found


# missing tests ------------------------------------------------------------------------------------

_NOT_MODULES = frozenset({"__init__", "__main__", "conftest", "setup", "_version", "version"})


def _is_test_path(path: str) -> bool:
    parts = path.split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    return (
        any(p in ("tests", "test", "testing") for p in parts[:-1])
        or stem.startswith("test_")
        or stem.endswith("_test")
    )


def _prepare_missing_tests(files: Sequence[FileEntry]) -> Checker:
    paths = {entry["path"] for entry in files}
    tested: set[str] = set()
    for path in paths:
        if _is_test_path(path):
            stem = path.rsplit("/", 1)[-1][:-3]
            tested.add(stem.removeprefix("test_").removesuffix("_test").lstrip("_"))

    def check(entry: FileEntry, _text: str | None) -> list[Finding]:
        path = entry["path"]
        folder, _, name = path.rpartition("/")
        stem = name[:-3]
        in_package = f"{folder}/__init__.py" in paths if folder else False
        if not in_package or stem in _NOT_MODULES or _is_test_path(path):
            return []
        key = stem.lstrip("_")
        if key in tested or any(t.startswith(f"{key}_") for t in tested):
            return []
        return [
            Finding(
                "missing_tests",
                "low",
                "no-test-file",
                path,
                f"no test file for module {stem!r} (test_{key}.py)",
            )
        ]

    return check


# file-level probes --------------------------------------------------------------------------------


def _check_large(entry: FileEntry, _text: str | None) -> list[Finding]:
    size = entry["size"]
    note = "; too large for the text probes, not scanned" if size > MAX_TEXT_BYTES else ""
    return [Finding("large_files", "medium", "large-file", entry["path"], f"{_human_size(size)}{note}")]


def _check_binary(entry: FileEntry, _text: str | None) -> list[Finding]:
    return [
        Finding(
            "binary_files", "low", "binary-file", entry["path"], f"binary file ({_human_size(entry['size'])})"
        )
    ]


def _check_access(entry: FileEntry, _text: str | None) -> list[Finding]:
    return [Finding("file_access", "medium", "unreadable", entry["path"], f"cannot read: {entry['error']}")]


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


PROBES: dict[str, ProbeSpec] = {
    spec.name: spec
    for spec in (
        ProbeSpec(
            "secrets",
            "secret-like strings (cloud keys, private keys, tokens, passwords)",
            _is_text,
            _fixed(_check_secrets),
        ),
        ProbeSpec("syntax", "Python files that do not parse", _is_python, _fixed(_check_syntax)),
        ProbeSpec(
            "dependencies",
            "unpinned dependencies in requirements files and pyproject.toml",
            _wants_dependencies,
            _fixed(_check_dependencies),
        ),
        ProbeSpec(
            "missing_tests",
            "package modules without a test file",
            _is_python,
            _prepare_missing_tests,
            needs_text=False,
        ),
        ProbeSpec("todos", "TODO / FIXME / XXX markers", _is_text, _fixed(_check_todos)),
        ProbeSpec(
            "large_files",
            f"files of {_human_size(LARGE_FILE_BYTES)} or more",
            lambda e: e["kind"] != "unreadable" and e["size"] >= LARGE_FILE_BYTES,
            _fixed(_check_large),
            needs_text=False,
        ),
        ProbeSpec(
            "binary_files",
            "binary files in the source tree",
            lambda e: e["kind"] == "binary",
            _fixed(_check_binary),
            needs_text=False,
        ),
        ProbeSpec(
            "file_access",
            "files and folders that cannot be read",
            lambda e: e["kind"] == "unreadable",
            _fixed(_check_access),
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
                    f"cannot read: {_describe_os_error(exc)}",
                )
                text = None
        if text is not None or not spec.needs_text:
            yield from checker(entry, text)
        if tick is not None:
            tick(done, total, entry["path"])
