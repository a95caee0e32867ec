"""DuckDB is an optional extra: import it with an install hint instead of a bare ImportError."""

from __future__ import annotations

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
