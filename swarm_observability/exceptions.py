"""Every error this package raises on purpose.

The hierarchy::

    SwarmObservabilityError                 root: catch this to catch everything of ours
    +-- EventValidationError (ValueError)   an event or its payload is malformed
    |   +-- PayloadTooLargeError            a payload is over the configured size cap
    +-- InvalidRunIdError (ValueError)      a run id that cannot be stored (empty, path traversal, ...)
    +-- EventStoreError                     a store operation failed; nothing was changed
    |   +-- SequenceConflictError           seq != last + 1 for the run (optimistic concurrency)
    |   +-- DuplicateEventError             an event id that is already stored
    |   +-- StoreCorruptionError            a store refuses to open or read damaged data
    |   +-- StoreClosedError                the store was closed
    +-- InstrumentationError                misuse of the LangGraph instrumentation API
    |   +-- NoActiveRunError (RuntimeError) a helper was called outside an instrumented run
    +-- ScanCancelled                       a scan was cancelled at a safe point
    +-- ControlChannelError                 a control channel cannot be opened, read or written
    +-- CheckpointerError                   a checkpointer that cannot serve the requested call
    +-- TracingConfigError (ValueError)     OpenTelemetry export settings that cannot work

Exceptions carry the context a caller needs as attributes (``exc.run_id``, ``exc.expected`` ...) so
that code can react without parsing messages.
"""

from __future__ import annotations


class SwarmObservabilityError(Exception):
    """Root of every error raised on purpose by ``swarm_observability``."""


class EventValidationError(SwarmObservabilityError, ValueError):
    """An event, or a field of it, does not satisfy the event schema."""


class PayloadTooLargeError(EventValidationError):
    """An event's serialized payload is larger than the configured cap.

    Attributes:
        size: the serialized size in bytes.
        limit: the configured cap in bytes.
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"event payload is {size} bytes, over the limit of {limit} bytes")


class InvalidRunIdError(SwarmObservabilityError, ValueError):
    """A run id that cannot be used as a storage key (empty, too long, path separators, ...)."""

    def __init__(self, run_id: object, reason: str) -> None:
        self.run_id = run_id
        self.reason = reason
        super().__init__(f"invalid run id {run_id!r}: {reason}")


class EventStoreError(SwarmObservabilityError):
    """A store operation failed. A failed append never leaves a partial write behind."""


class SequenceConflictError(EventStoreError):
    """An append whose ``seq`` is not ``last + 1`` for its run.

    Attributes:
        run_id: the run appended to.
        expected: the seq the store expected (``last_sequence(run_id) + 1``).
        actual: the seq the event carried.
    """

    def __init__(self, run_id: str, expected: int, actual: int | None) -> None:
        self.run_id = run_id
        self.expected = expected
        self.actual = actual
        super().__init__(f"sequence conflict in run {run_id!r}: expected seq {expected}, got {actual}")


class DuplicateEventError(EventStoreError):
    """An event whose id is already stored."""

    def __init__(self, event_id: str) -> None:
        self.event_id = event_id
        super().__init__(f"event id {event_id!r} is already stored")


class StoreCorruptionError(EventStoreError):
    """Stored data is damaged in a way that cannot be repaired without losing acknowledged events.

    Attributes:
        location: where the damage is (a file path and offset, a run and seq, ...).
    """

    def __init__(self, message: str, location: str | None = None) -> None:
        self.location = location
        super().__init__(message if location is None else f"{message} (at {location})")


class StoreClosedError(EventStoreError):
    """The store was closed; open it again to use it."""


class InstrumentationError(SwarmObservabilityError):
    """The LangGraph instrumentation API was used in a way that cannot work."""


class NoActiveRunError(InstrumentationError, RuntimeError):
    """A helper such as ``progress()`` or ``probe()`` was called outside an instrumented run."""


class ScanCancelled(SwarmObservabilityError):
    """Raised at a safe point of a scan whose cancellation was requested.

    Attributes:
        run_id: the cancelled scan.
        reason: the reason given to ``cancel()``, if any.
        node: the node whose safe point observed the cancellation, if any.
    """

    def __init__(self, run_id: str, reason: str | None = None, node: str | None = None) -> None:
        self.run_id = run_id
        self.reason = reason
        self.node = node
        where = f" at node {node!r}" if node else ""
        why = f": {reason}" if reason else ""
        super().__init__(f"scan {run_id!r} cancelled{where}{why}")


class ControlChannelError(SwarmObservabilityError):
    """A control channel cannot be opened, read or written (read-only, damaged, not a database, ...).

    Attributes:
        location: the channel's file (or URL), so the message names what to fix.
    """

    def __init__(self, message: str, location: str | None = None) -> None:
        self.location = location
        super().__init__(message)


class CheckpointerError(SwarmObservabilityError):
    """A checkpointer cannot serve the requested call (for example a sync saver under ``astream``)."""


class TracingConfigError(SwarmObservabilityError, ValueError):
    """OpenTelemetry export settings that cannot work (unknown protocol, malformed headers, ...)."""
