"""Event-store backends behind one protocol; pick one with :func:`open_store`."""

from .base import EventStore, RunInfo, StoreStats
from .memory import InMemoryEventStore

__all__ = ["EventStore", "InMemoryEventStore", "RunInfo", "StoreStats"]
