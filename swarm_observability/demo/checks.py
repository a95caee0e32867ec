"""The checks the demo's probes run on one file each: secrets, work markers, syntax, dependencies, tests.

A check gets the file's inventory entry and its decoded text (``None`` for the probes that work from
the entry alone) and returns its :class:`~.inventory.Finding` records. Matches of secret patterns are
masked: a finding never contains the secret itself.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from .inventory import FileEntry, Finding, Severity, is_text, too_large_for_text

Checker = Callable[[FileEntry, str | None], list[Finding]]


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


def check_secrets(entry: FileEntry, text: str | None) -> list[Finding]:
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


def check_todos(entry: FileEntry, text: str | None) -> list[Finding]:
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


def check_syntax(entry: FileEntry, text: str | None) -> list[Finding]:
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


def wants_dependencies(entry: FileEntry) -> bool:
    return is_text(entry) and (
        _is_requirements(entry["path"]) or entry["path"].rsplit("/", 1)[-1] == "pyproject.toml"
    )


def check_dependencies(entry: FileEntry, text: str | None) -> list[Finding]:
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
            found.append(_unpinned(entry, name, number))
    return found


def _unpinned(entry: FileEntry, what: str, line: int | None) -> Finding:
    message = f"{what} has no version constraint"
    return Finding("dependencies", "medium", "unpinned", entry["path"], message, line)


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
                found.append(_unpinned(entry, f"{match.group(1)} ({group})", line))
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


def prepare_missing_tests(files: Sequence[FileEntry]) -> Checker:
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


def check_large(entry: FileEntry, _text: str | None) -> list[Finding]:
    size = entry["size"]
    note = "; too large for the text probes, not scanned" if too_large_for_text(entry) else ""
    return [Finding("large_files", "medium", "large-file", entry["path"], f"{human_size(size)}{note}")]


def check_binary(entry: FileEntry, _text: str | None) -> list[Finding]:
    return [
        Finding(
            "binary_files", "low", "binary-file", entry["path"], f"binary file ({human_size(entry['size'])})"
        )
    ]


def check_access(entry: FileEntry, _text: str | None) -> list[Finding]:
    return [Finding("file_access", "medium", "unreadable", entry["path"], f"cannot read: {entry['error']}")]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
