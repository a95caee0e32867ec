"""The analytics database file: opening it safely, creating its tables, refusing another schema.

One function opens every connection (the tailer's, a rebuild's, ``stats``/``query``'s read-only ones)
so that the same guards hold everywhere: file access from SQL switched off, configuration locked, a
database of another schema version refused with the hint to rebuild it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..exceptions import SwarmObservabilityError
from ..stores.base import EventStore
from . import schema
from ._duckdb import require_duckdb

DEFAULT_DB_NAME = "analytics.duckdb"
"""File name of the analytics database beside an on-disk store."""


class AnalyticsError(SwarmObservabilityError):
    """The analytics database cannot be used as asked (locked, from another schema, a bad query)."""


def default_db_path(store: EventStore) -> Path:
    """``analytics.duckdb`` beside the store's file (SQLite) or in its folder (JSONL).

    Raises:
        AnalyticsError: the store is not on disk (pass a database path explicitly).
    """
    path = getattr(store, "path", None)
    if not path:
        raise AnalyticsError(f"the {type(store).__name__} has no folder: give the analytics database a path")
    path = Path(path)
    return (path if path.is_dir() else path.parent) / DEFAULT_DB_NAME


def open_database(
    path: Path, *, writable: bool, allowed_dir: Path | None = None, wait: float = 5.0, ordered: bool = True
) -> Any:
    """Open the analytics database, creating its tables when ``writable``; retry a lock for ``wait`` s.

    File access from SQL is switched off (only ``allowed_dir``, the tailer's own staging folder, stays
    readable), so a query can neither read nor write files outside the database. ``ordered=False``
    lets DuckDB insert in parallel without keeping the input order (rows are compared sorted anyway).

    Raises:
        AnalyticsError: missing (read-only), locked past ``wait``, or of another schema version.
    """
    duckdb = require_duckdb()
    if not writable and not path.is_file():
        raise AnalyticsError(f"no analytics database at {path} (build it with `swarm-obs rebuild-db`)")
    _refuse_foreign_file(path)
    deadline = time.monotonic() + wait
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=not writable)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise AnalyticsError(f"cannot open the analytics database {path}: {exc}") from exc
            time.sleep(0.05)
        except duckdb.Error as exc:
            raise AnalyticsError(f"cannot open the analytics database {path}: {exc}") from exc
    try:
        if writable:
            _ensure_schema(conn, path)
        else:
            _check_version(conn, path)
        if allowed_dir is not None:
            conn.execute("SET allowed_directories = ?", [[f"{allowed_dir}/"]])
        if not ordered:
            conn.execute("SET preserve_insertion_order = false")
        conn.execute("SET enable_progress_bar = false")
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")
    except BaseException:
        conn.close()
        raise
    return conn


def _refuse_foreign_file(path: Path) -> None:
    """A file that is not a DuckDB database is refused before DuckDB opens it: DuckDB opens some such
    files (a small JSON file) as an empty database, and creating our tables in it, or ``rebuild``
    moving a new database over it, would destroy a file that is not ours."""
    try:
        with path.open("rb") as handle:
            header = handle.read(12)
    except (FileNotFoundError, IsADirectoryError):
        return
    except OSError as exc:
        raise AnalyticsError(f"cannot open the analytics database {path}: {exc}") from exc
    if header and header[8:12] != b"DUCK":
        raise AnalyticsError(
            f"{path} is not a DuckDB database (not an analytics database of swarm-observability); "
            "it is left as it is: pass another --db"
        )


def _ensure_schema(conn: Any, path: Path) -> None:
    tables = {row[0] for row in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if tables and "projection_meta" not in tables:
        raise AnalyticsError(f"{path} is not an analytics database of swarm-observability")
    conn.execute("BEGIN TRANSACTION")
    for statement in schema.DDL.split(";"):
        if statement.strip():
            conn.execute(statement)
    if not conn.execute("SELECT count(*) FROM scope_types").fetchone()[0]:
        conn.executemany("INSERT INTO scope_types VALUES (?, ?, ?)", list(schema.SCOPE_TYPES))
    conn.execute(
        "INSERT INTO projection_meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING",
        [schema.SCHEMA_VERSION],
    )
    conn.execute("COMMIT")
    _check_version(conn, path)


def _check_version(conn: Any, path: Path) -> None:
    try:
        row = conn.execute("SELECT value FROM projection_meta WHERE key = 'schema_version'").fetchone()
    except Exception as exc:
        raise AnalyticsError(f"{path} is not an analytics database of swarm-observability") from exc
    if row is None or row[0] != schema.SCHEMA_VERSION:
        found = None if row is None else row[0]
        raise AnalyticsError(
            f"{path} has analytics schema {found!r}, this release writes {schema.SCHEMA_VERSION!r}: "
            "rebuild it with `swarm-obs rebuild-db`"
        )
