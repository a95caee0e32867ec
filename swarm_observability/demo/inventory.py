"""The inventory a scan starts from: every regular file of the folder, classified text, binary or unreadable.

Symbolic links, FIFOs and device files are never opened (a FIFO would block the scan), and the
folders in :data:`SKIP_DIRS` are not entered. A folder or file that cannot be read becomes an
``unreadable`` entry, reported by the ``file_access`` probe.
"""

from __future__ import annotations

import os
import stat
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
        files.append(FileEntry(path=where, size=0, kind="unreadable", error=describe_os_error(exc)))

    for folder, dirs, names in os.walk(root, onerror=on_error, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(names):
            full = Path(folder, name)
            try:
                info = full.lstat()
            except OSError as exc:
                files.append(
                    FileEntry(
                        path=_relative(root, full), size=0, kind="unreadable", error=describe_os_error(exc)
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
        return FileEntry(path=rel, size=size, kind="unreadable", error=describe_os_error(exc))
    return FileEntry(path=rel, size=size, kind="binary" if b"\0" in head else "text", error=None)


def _relative(root: Path, full: Path) -> str:
    try:
        return full.relative_to(root).as_posix()
    except ValueError:
        return full.as_posix()


def describe_os_error(exc: OSError) -> str:
    return f"{type(exc).__name__}: {exc.strerror or exc}"


def is_text(entry: FileEntry) -> bool:
    return entry["kind"] == "text" and not too_large_for_text(entry)


def too_large_for_text(entry: FileEntry) -> bool:
    """Whether the text probes skip ``entry`` for its size (over :data:`MAX_TEXT_BYTES`)."""
    return entry["size"] > MAX_TEXT_BYTES


def is_python(entry: FileEntry) -> bool:
    return is_text(entry) and entry["path"].endswith(".py")
