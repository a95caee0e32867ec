"""The public surface: ``swarm_observability.__all__`` is deliberate, sorted, importable and documented."""

from __future__ import annotations

import ast
import inspect
import itertools
import re
from pathlib import Path

import swarm_observability

# Extend this list (keeping its order) when a feature adds a public name; the test below says where.
EXPECTED_ALL = [
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

# Names that are plain values by convention and need no docstring.
_UNDOCUMENTED_OK = {"__version__"}


def _sort_key(name: str) -> tuple[int, list[object]]:
    """isort-style order, as ruff's RUF022 keeps ``__all__``: CONSTANTS, then Classes, then the rest."""
    group = 0 if name.isupper() else 1 if name[:1].isupper() else 2
    natural = [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
    return group, natural


def _documented_constants() -> set[str]:
    """Module-level names in the package that are followed by an attribute docstring."""
    names: set[str] = set()
    for path in Path(swarm_observability.__file__).parent.rglob("*.py"):
        body = ast.parse(path.read_text(encoding="utf-8")).body
        for statement, following in itertools.pairwise(body):
            is_doc = (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
                and following.value.value.strip()
            )
            if not is_doc:
                continue
            if isinstance(statement, ast.Assign):
                names |= {t.id for t in statement.targets if isinstance(t, ast.Name)}
            elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                names.add(statement.target.id)
    return names


def test_all_is_the_expected_public_api() -> None:
    """__all__ equals the reviewed list: a name added or removed must be added or removed here too."""
    actual = swarm_observability.__all__
    missing = sorted(set(EXPECTED_ALL) - set(actual))
    unexpected = sorted(set(actual) - set(EXPECTED_ALL))
    assert not missing and not unexpected, f"missing from __all__: {missing}; not reviewed: {unexpected}"
    assert len(actual) == len(set(actual)), "duplicate names in __all__"


def test_all_and_the_expected_list_are_sorted() -> None:
    """__all__ (and this file's list) is in isort-style order, so additions land in one obvious place."""
    assert swarm_observability.__all__ == sorted(swarm_observability.__all__, key=_sort_key)
    assert sorted(EXPECTED_ALL, key=_sort_key) == EXPECTED_ALL


def test_every_public_name_is_importable() -> None:
    """``from swarm_observability import <name>`` works for every name in __all__."""
    namespace: dict[str, object] = {}
    exec(f"from swarm_observability import {', '.join(swarm_observability.__all__)}", namespace)
    for name in swarm_observability.__all__:
        assert namespace[name] is getattr(swarm_observability, name)


def test_every_public_object_has_a_docstring() -> None:
    """The package, each public class and function, and each public constant carry their own docstring."""
    assert (swarm_observability.__doc__ or "").strip()
    constants = _documented_constants()
    undocumented = []
    for name in swarm_observability.__all__:
        obj = getattr(swarm_observability, name)
        if name in _UNDOCUMENTED_OK:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj) or inspect.ismethod(obj):
            documented = bool((obj.__doc__ or "").strip())
        else:
            documented = name in constants
        if not documented:
            undocumented.append(name)
    assert undocumented == []


def test_reading_a_store_does_not_import_langgraph_or_the_otel_sdk() -> None:
    """Public names load on first use, so a store reader pays for neither LangGraph nor the OTel SDK."""
    import subprocess
    import sys

    code = (
        "import sys, swarm_observability as so\n"
        "from swarm_observability.stores import open_store\n"
        "so.StreamEvent, so.EventEmitter\n"
        "heavy = [m for m in ('langgraph', 'langchain_core', 'opentelemetry.sdk') if m in sys.modules]\n"
        "print(heavy)\n"
        "so.SwarmObserver\n"
        "print('langgraph' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "True"]
