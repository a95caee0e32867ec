"""``module:attr`` references on the command line (``--graph``, ``--model``)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from ._common import CliError


def import_object(reference: str, flag: str) -> Any:
    """Import ``package.module:attr.sub``; the current folder is importable, like ``python -m``."""
    module_name, sep, attr = reference.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"{flag} {reference!r}: expected MODULE:ATTR, e.g. myproject.graphs:swarm")
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        value: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"{flag} {reference!r}: cannot import {module_name}: {exc}") from exc
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise CliError(f"{flag} {reference!r}: {module_name} has no attribute {attr!r}") from None
    return value
