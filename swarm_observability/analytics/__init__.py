"""Analytics across runs: a DuckDB projection of the event log, and the questions it answers.

Needs the ``analytics`` extra (``pip install 'swarm-observability[analytics]'``, DuckDB)::

    from swarm_observability.analytics import Projection, stats

    Projection.rebuild(store, "analytics.duckdb")          # from the event log alone
    with Projection(store, "analytics.duckdb") as projection:
        projection.catch_up()                              # or .start() for a background tailer
        print(projection.stats(since="7d")["scopes"])
        print(projection.query("SELECT name, count(*) FROM scopes GROUP BY name"))

Tables and their columns: :mod:`swarm_observability.analytics.schema`.
"""

from __future__ import annotations

from ._duckdb import INSTALL_HINT, AnalyticsUnavailableError, is_interrupt, require_duckdb
from .database import DEFAULT_DB_NAME, AnalyticsError, default_db_path
from .insights import open_readonly, parse_since, run_query, stats
from .projection import Projection

__all__ = [
    "DEFAULT_DB_NAME",
    "INSTALL_HINT",
    "AnalyticsError",
    "AnalyticsUnavailableError",
    "Projection",
    "default_db_path",
    "is_interrupt",
    "open_readonly",
    "parse_since",
    "require_duckdb",
    "run_query",
    "stats",
]
