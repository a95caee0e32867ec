"""Event-store backends behind one protocol; pick one with :func:`open_store`.

* :class:`InMemoryEventStore`: process memory, for tests and short-lived observers.
* :class:`SQLiteEventStore`: the default persistent log (WAL; safe for many threads and processes).
* :class:`JSONLEventStore`: an append-only, human-readable ``events.jsonl`` with crash recovery.
* :class:`PostgresEventStore`: a shared PostgreSQL database, for many workers and hosts (``postgres`` extra).
"""

from .base import EventStore, RunInfo, StoreStats
from .jsonl import JSONLEventStore
from .memory import InMemoryEventStore
from .postgres import PostgresEventStore
from .sqlite import SQLiteEventStore
from .url import default_store_path, open_store

__all__ = [
    "EventStore",
    "InMemoryEventStore",
    "JSONLEventStore",
    "PostgresEventStore",
    "RunInfo",
    "SQLiteEventStore",
    "StoreStats",
    "default_store_path",
    "open_store",
]
