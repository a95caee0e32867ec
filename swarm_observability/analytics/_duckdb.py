"""DuckDB is an optional extra: import it with an install hint instead of a bare ImportError."""

from __future__ import annotations

import sys
from typing import Any

from ..exceptions import SwarmObservabilityError

INSTALL_HINT = "pip install 'swarm-observability[analytics]'"


class AnalyticsUnavailableError(SwarmObservabilityError, ImportError):
    """DuckDB, which the analytics projection needs, is not installed."""


def require_duckdb() -> Any:
    """The ``duckdb`` module, or :class:`AnalyticsUnavailableError` naming the extra to install."""
    try:
        import duckdb
    except ImportError as exc:
        raise AnalyticsUnavailableError(
            f"the analytics projection needs DuckDB, which is not installed: {INSTALL_HINT}"
        ) from exc
    return duckdb


def is_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is DuckDB reporting a Ctrl-C that arrived while it ran a statement.

    DuckDB takes the pending ``SIGINT`` itself and raises ``RuntimeError("Query interrupted")`` (or
    its ``InterruptException``) instead of ``KeyboardInterrupt``, so code that retries failed
    batches would swallow the user's Ctrl-C; callers turn it back into ``KeyboardInterrupt``.
    """
    interrupt = getattr(sys.modules.get("duckdb"), "InterruptException", None)
    if interrupt is not None and isinstance(exc, interrupt):
        return True
    return type(exc) is RuntimeError and str(exc) == "Query interrupted"
