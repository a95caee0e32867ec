"""swarm-observability: observe and control LangGraph agent swarms.

Typed events (:class:`StreamEvent`) flow one way: node wrapper or helper -> :class:`EventEmitter`
(id, seq, processors) -> event store, LangGraph's custom stream, OpenTelemetry spans, subscribers.

A complete example::

    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    from swarm_observability import SwarmObserver, probe, progress

    class State(TypedDict):
        target: str

    def scan(state: State) -> State:
        with probe("ping", target=state["target"]) as p:
            p.result(reachable=True)
        progress(1.0, "done")
        return state

    builder = StateGraph(State)
    builder.add_node("scan", scan)
    builder.add_edge(START, "scan")
    builder.add_edge("scan", END)

    observer = SwarmObserver()                      # in-memory store; pass store=open_store(...) to persist
    graph = observer.instrument(builder.compile())
    graph.invoke({"target": "db"}, {"configurable": {"thread_id": "scan-1"}})
    print([e.type_name for e in observer.store.load("scan-1")])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .checkpointers import (
        ThreadedSqliteSaver as ThreadedSqliteSaver,
        TimelineEntry as TimelineEntry,
        aget_checkpointer as aget_checkpointer,
        get_checkpointer as get_checkpointer,
        timeline as timeline,
    )
    from .control import (
        CancellationManager as CancellationManager,
        ControlAction as ControlAction,
        ControlChannel as ControlChannel,
        ControlRequest as ControlRequest,
        ControlWatcher as ControlWatcher,
        get_manager as get_manager,
        remove_manager as remove_manager,
    )
    from .emitter import EmitterStats as EmitterStats, EventEmitter as EventEmitter
    from .events import (
        SCHEMA_VERSION as SCHEMA_VERSION,
        EventType as EventType,
        Outcome as Outcome,
        StreamEvent as StreamEvent,
        event_json_schema as event_json_schema,
        make_event as make_event,
        validate_run_id as validate_run_id,
    )
    from .exceptions import (
        CheckpointerError as CheckpointerError,
        ControlChannelError as ControlChannelError,
        DuplicateEventError as DuplicateEventError,
        EventStoreError as EventStoreError,
        EventValidationError as EventValidationError,
        InstrumentationError as InstrumentationError,
        InvalidRunIdError as InvalidRunIdError,
        NoActiveRunError as NoActiveRunError,
        PayloadTooLargeError as PayloadTooLargeError,
        ScanCancelled as ScanCancelled,
        SequenceConflictError as SequenceConflictError,
        StoreClosedError as StoreClosedError,
        StoreCorruptionError as StoreCorruptionError,
        SwarmObservabilityError as SwarmObservabilityError,
        TracingConfigError as TracingConfigError,
    )
    from .instrumentation.checkpoints import checkpoint as checkpoint
    from .instrumentation.decorator import observe_node as observe_node
    from .instrumentation.emit_event import emit_event as emit_event
    from .instrumentation.event_stream import (
        EventStream as EventStream,
        iter_events as iter_events,
        stream_events as stream_events,
    )
    from .instrumentation.helpers import (
        agent as agent,
        log as log,
        plan as plan,
        probe as probe,
        progress as progress,
    )
    from .instrumentation.observer import SwarmObserver as SwarmObserver, instrument as instrument
    from .processors import (
        PayloadLimit as PayloadLimit,
        SecretRedactor as SecretRedactor,
        default_processors as default_processors,
    )
    from .state import (
        RunState as RunState,
        RunStateBuilder as RunStateBuilder,
        RunStatus as RunStatus,
        rebuild_run_state as rebuild_run_state,
    )
    from .stores import (
        EventStore as EventStore,
        InMemoryEventStore as InMemoryEventStore,
        JSONLEventStore as JSONLEventStore,
        PostgresEventStore as PostgresEventStore,
        RunInfo as RunInfo,
        SQLiteEventStore as SQLiteEventStore,
        StoreStats as StoreStats,
        default_store_path as default_store_path,
        open_store as open_store,
    )
    from .timetravel import (
        CheckpointInfo as CheckpointInfo,
        list_checkpoints as list_checkpoints,
        resume_from_checkpoint as resume_from_checkpoint,
    )
    from .tracing import (
        ExportedRun as ExportedRun,
        LiveTracer as LiveTracer,
        TracingStats as TracingStats,
        configure_tracing as configure_tracing,
        export_jaeger_json as export_jaeger_json,
        export_run as export_run,
        provider_stats as provider_stats,
    )

_LAZY: dict[str, tuple[str, ...]] = {
    ".checkpointers": (
        "ThreadedSqliteSaver",
        "TimelineEntry",
        "aget_checkpointer",
        "get_checkpointer",
        "timeline",
    ),
    ".control": (
        "CancellationManager",
        "ControlAction",
        "ControlChannel",
        "ControlRequest",
        "ControlWatcher",
        "get_manager",
        "remove_manager",
    ),
    ".emitter": ("EmitterStats", "EventEmitter"),
    ".events": (
        "SCHEMA_VERSION",
        "EventType",
        "Outcome",
        "StreamEvent",
        "event_json_schema",
        "make_event",
        "validate_run_id",
    ),
    ".exceptions": (
        "CheckpointerError",
        "ControlChannelError",
        "DuplicateEventError",
        "EventStoreError",
        "EventValidationError",
        "InstrumentationError",
        "InvalidRunIdError",
        "NoActiveRunError",
        "PayloadTooLargeError",
        "ScanCancelled",
        "SequenceConflictError",
        "StoreClosedError",
        "StoreCorruptionError",
        "SwarmObservabilityError",
        "TracingConfigError",
    ),
    ".instrumentation.checkpoints": ("checkpoint",),
    ".instrumentation.decorator": ("observe_node",),
    ".instrumentation.emit_event": ("emit_event",),
    ".instrumentation.event_stream": ("EventStream", "iter_events", "stream_events"),
    ".instrumentation.helpers": ("agent", "log", "plan", "probe", "progress"),
    ".instrumentation.observer": ("SwarmObserver", "instrument"),
    ".processors": ("PayloadLimit", "SecretRedactor", "default_processors"),
    ".state": ("RunState", "RunStateBuilder", "RunStatus", "rebuild_run_state"),
    ".stores": (
        "EventStore",
        "InMemoryEventStore",
        "JSONLEventStore",
        "PostgresEventStore",
        "RunInfo",
        "SQLiteEventStore",
        "StoreStats",
        "default_store_path",
        "open_store",
    ),
    ".timetravel": ("CheckpointInfo", "list_checkpoints", "resume_from_checkpoint"),
    ".tracing": (
        "ExportedRun",
        "LiveTracer",
        "TracingStats",
        "configure_tracing",
        "export_jaeger_json",
        "export_run",
        "provider_stats",
    ),
}
"""The public names, by the module that defines them: the one list to edit when a name is added. Each is
imported on first use, so that light tools (a store reader, the CLI) do not pay for LangGraph and the
OpenTelemetry SDK until they need them. The ``TYPE_CHECKING`` block above repeats them for type checkers;
tests/test_public_api.py keeps the two equal."""

_EXPORTS: dict[str, str] = {name: module for module, names in _LAZY.items() for name in names}
"""Where each public name lives (derived from ``_LAZY``)."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


def _public_order(name: str) -> tuple[int, str]:
    """isort-style order, as ruff's RUF022 keeps ``__all__``: CONSTANTS, then Classes, then the rest."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2), name


__version__ = "0.1.0"

__all__ = sorted([*_EXPORTS, "__version__"], key=_public_order)
