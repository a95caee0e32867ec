"""One ``service.name`` per run, whichever way its spans leave: live, ``export_run``, Jaeger JSON, CLI.

The name a run was traced (or meant to be traced) with is written into the log, as
``data["service_name"]`` of its ``scan_started``/``scan_resumed`` events: the live tracer stamps
its provider's ``service.name`` there, and :func:`record_service_name` is a processor that stamps a
fixed name on runs recorded without tracing (the demo uses it). Exports then pick, in this order:
an explicit name, the name recorded in the run (its first invocation's), ``OTEL_SERVICE_NAME`` or
``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``, and finally :data:`DEFAULT_SERVICE_NAME`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..events import EventType, StreamEvent, copy_event
from ..stores.base import EventStore

DEFAULT_SERVICE_NAME = "swarm-observability"
"""``service.name`` when neither the caller, the run nor the environment names one."""

SERVICE_NAME_KEY = "service_name"
"""The ``data`` key of ``scan_started``/``scan_resumed`` that records the run's service name."""

_OPENING = (EventType.SCAN_STARTED, EventType.SCAN_RESUMED)
SERVICE_NAME = "service.name"

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource


def stamp_service_name(event: StreamEvent, name: str) -> StreamEvent:
    """``event`` with ``data["service_name"] = name`` if it opens an invocation and names none yet."""
    if event.type not in _OPENING or SERVICE_NAME_KEY in event.data or not name:
        return event
    return copy_event(event, data={**event.data, SERVICE_NAME_KEY: name})


def record_service_name(name: str) -> Callable[[StreamEvent], StreamEvent]:
    """An emitter processor recording ``name`` as the service name of every run it sees start.

    For runs recorded without live tracing, so that a later ``export_run``, ``export_jaeger_json``
    or ``swarm-obs export --otlp`` uses the same name. Raises ``ValueError`` for an empty name.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError("record_service_name needs a non-empty service name")

    def processor(event: StreamEvent) -> StreamEvent:
        return stamp_service_name(event, name)

    return processor


def recorded_service_name(store: EventStore, run_id: str) -> str | None:
    """The service name recorded in the run's first invocation that has one, else ``None``."""
    names = [  # query() lists newest first
        e.data[SERVICE_NAME_KEY]
        for e in store.query(run_id=run_id, types=_OPENING)
        if isinstance(e.data.get(SERVICE_NAME_KEY), str) and e.data[SERVICE_NAME_KEY]
    ]
    return names[-1] if names else None


def service_resource(name: str | None) -> Resource:
    """A resource named ``name``, else after the ``OTEL_*`` variables, else :data:`DEFAULT_SERVICE_NAME`.

    The other attributes of ``OTEL_RESOURCE_ATTRIBUTES`` are kept either way.
    """
    from opentelemetry.sdk.resources import Resource

    resource = Resource.create({SERVICE_NAME: name} if name else {})
    if not name and str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def service_name_of(provider: object) -> str | None:
    """The ``service.name`` of an SDK provider's resource (``None`` for other providers)."""
    resource = getattr(provider, "resource", None)
    value = getattr(resource, "attributes", {}).get(SERVICE_NAME) if resource is not None else None
    return value if isinstance(value, str) and value else None
