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
        ThreadedSqliteSaver,
        TimelineEntry,
        aget_checkpointer,
        get_checkpointer,
        timeline,
    )
    from .control import (
        CancellationManager,
        ControlAction,
        ControlChannel,
        ControlRequest,
        ControlWatcher,
        get_manager,
        remove_manager,
    )
    from .emitter import EmitterStats, EventEmitter
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
        ControlChannelError,
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
    from .instrumentation.checkpoints import checkpoint
    from .instrumentation.decorator import observe_node
    from .instrumentation.emit_event import emit_event
    from .instrumentation.event_stream import EventStream, iter_events, stream_events
    from .instrumentation.helpers import agent, log, plan, probe, progress
    from .instrumentation.observer import SwarmObserver, instrument
    from .processors import PayloadLimit, SecretRedactor, default_processors
    from .state import RunState, RunStateBuilder, RunStatus, rebuild_run_state
    from .stores import (
        EventStore,
        InMemoryEventStore,
        JSONLEventStore,
        PostgresEventStore,
        RunInfo,
        SQLiteEventStore,
        StoreStats,
        default_store_path,
        open_store,
    )
    from .timetravel import CheckpointInfo, list_checkpoints, resume_from_checkpoint
    from .tracing import (
        ExportedRun,
        LiveTracer,
        TracingStats,
        configure_tracing,
        export_jaeger_json,
        export_run,
        provider_stats,
    )

_EXPORTS: dict[str, str] = {
    "agent": ".instrumentation.helpers",
    "aget_checkpointer": ".checkpointers",
    "CancellationManager": ".control",
    "CheckpointerError": ".exceptions",
    "configure_tracing": ".tracing",
    "ControlAction": ".control",
    "ControlChannel": ".control",
    "ControlChannelError": ".exceptions",
    "ControlRequest": ".control",
    "ControlWatcher": ".control",
    "default_processors": ".processors",
    "default_store_path": ".stores",
    "DuplicateEventError": ".exceptions",
    "event_json_schema": ".events",
    "checkpoint": ".instrumentation.checkpoints",
    "CheckpointInfo": ".timetravel",
    "emit_event": ".instrumentation.emit_event",
    "list_checkpoints": ".timetravel",
    "resume_from_checkpoint": ".timetravel",
    "EmitterStats": ".emitter",
    "EventEmitter": ".emitter",
    "EventStore": ".stores",
    "EventStoreError": ".exceptions",
    "EventStream": ".instrumentation.event_stream",
    "EventType": ".events",
    "EventValidationError": ".exceptions",
    "export_jaeger_json": ".tracing",
    "export_run": ".tracing",
    "ExportedRun": ".tracing",
    "get_checkpointer": ".checkpointers",
    "get_manager": ".control",
    "InMemoryEventStore": ".stores",
    "instrument": ".instrumentation.observer",
    "InstrumentationError": ".exceptions",
    "InvalidRunIdError": ".exceptions",
    "iter_events": ".instrumentation.event_stream",
    "JSONLEventStore": ".stores",
    "LiveTracer": ".tracing",
    "log": ".instrumentation.helpers",
    "make_event": ".events",
    "NoActiveRunError": ".exceptions",
    "observe_node": ".instrumentation.decorator",
    "open_store": ".stores",
    "Outcome": ".events",
    "PayloadLimit": ".processors",
    "PayloadTooLargeError": ".exceptions",
    "plan": ".instrumentation.helpers",
    "probe": ".instrumentation.helpers",
    "progress": ".instrumentation.helpers",
    "provider_stats": ".tracing",
    "rebuild_run_state": ".state",
    "remove_manager": ".control",
    "PostgresEventStore": ".stores",
    "RunInfo": ".stores",
    "RunState": ".state",
    "RunStateBuilder": ".state",
    "RunStatus": ".state",
    "ScanCancelled": ".exceptions",
    "SCHEMA_VERSION": ".events",
    "SecretRedactor": ".processors",
    "SequenceConflictError": ".exceptions",
    "SQLiteEventStore": ".stores",
    "StoreClosedError": ".exceptions",
    "StoreCorruptionError": ".exceptions",
    "StoreStats": ".stores",
    "stream_events": ".instrumentation.event_stream",
    "StreamEvent": ".events",
    "SwarmObservabilityError": ".exceptions",
    "SwarmObserver": ".instrumentation.observer",
    "ThreadedSqliteSaver": ".checkpointers",
    "timeline": ".checkpointers",
    "TimelineEntry": ".checkpointers",
    "TracingConfigError": ".exceptions",
    "TracingStats": ".tracing",
    "validate_run_id": ".events",
}
"""Where each public name lives; imported on first use so that light tools (a store reader, the CLI)
do not pay for LangGraph and the OpenTelemetry SDK until they need them."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "CancellationManager",
    "CheckpointInfo",
    "CheckpointerError",
    "ControlAction",
    "ControlChannel",
    "ControlChannelError",
    "ControlRequest",
    "ControlWatcher",
    "DuplicateEventError",
    "EmitterStats",
    "EventEmitter",
    "EventStore",
    "EventStoreError",
    "EventStream",
    "EventType",
    "EventValidationError",
    "ExportedRun",
    "InMemoryEventStore",
    "InstrumentationError",
    "InvalidRunIdError",
    "JSONLEventStore",
    "LiveTracer",
    "NoActiveRunError",
    "Outcome",
    "PayloadLimit",
    "PayloadTooLargeError",
    "PostgresEventStore",
    "RunInfo",
    "RunState",
    "RunStateBuilder",
    "RunStatus",
    "SQLiteEventStore",
    "ScanCancelled",
    "SecretRedactor",
    "SequenceConflictError",
    "StoreClosedError",
    "StoreCorruptionError",
    "StoreStats",
    "StreamEvent",
    "SwarmObservabilityError",
    "SwarmObserver",
    "ThreadedSqliteSaver",
    "TimelineEntry",
    "TracingConfigError",
    "TracingStats",
    "__version__",
    "agent",
    "aget_checkpointer",
    "checkpoint",
    "configure_tracing",
    "default_processors",
    "default_store_path",
    "emit_event",
    "event_json_schema",
    "export_jaeger_json",
    "export_run",
    "get_checkpointer",
    "get_manager",
    "instrument",
    "iter_events",
    "list_checkpoints",
    "log",
    "make_event",
    "observe_node",
    "open_store",
    "plan",
    "probe",
    "progress",
    "provider_stats",
    "rebuild_run_state",
    "remove_manager",
    "resume_from_checkpoint",
    "stream_events",
    "timeline",
    "validate_run_id",
]
