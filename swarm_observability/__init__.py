"""swarm-observability: observe and control LangGraph agent swarms.

Typed events (:class:`StreamEvent`) flow one way: node wrapper or helper -> :class:`EventEmitter`
(id, seq, processors) -> event store, LangGraph's custom stream, OpenTelemetry spans, subscribers.
"""

from .emitter import EventEmitter
from .events import (
    SCHEMA_VERSION,
    EventType,
    Outcome,
    StreamEvent,
    event_json_schema,
    make_event,
    validate_run_id,
)
from .exceptions import (
    CheckpointerError,
    DuplicateEventError,
    EventStoreError,
    EventValidationError,
    InstrumentationError,
    InvalidRunIdError,
    NoActiveRunError,
    PayloadTooLargeError,
    ScanCancelled,
    SequenceConflictError,
    StoreClosedError,
    StoreCorruptionError,
    SwarmObservabilityError,
    TracingConfigError,
)
from .processors import PayloadLimit, SecretRedactor, default_processors
from .stores import EventStore, InMemoryEventStore, RunInfo, StoreStats

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "CheckpointerError",
    "DuplicateEventError",
    "EventEmitter",
    "EventStore",
    "EventStoreError",
    "EventType",
    "EventValidationError",
    "InMemoryEventStore",
    "InstrumentationError",
    "InvalidRunIdError",
    "NoActiveRunError",
    "Outcome",
    "PayloadLimit",
    "PayloadTooLargeError",
    "RunInfo",
    "ScanCancelled",
    "SecretRedactor",
    "SequenceConflictError",
    "StoreClosedError",
    "StoreCorruptionError",
    "StoreStats",
    "StreamEvent",
    "SwarmObservabilityError",
    "TracingConfigError",
    "__version__",
    "default_processors",
    "event_json_schema",
    "make_event",
    "validate_run_id",
]
