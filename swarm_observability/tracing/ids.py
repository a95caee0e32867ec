"""Deterministic trace and span ids for spans rebuilt from a stored event log.

The OpenTelemetry SDK asks its ``IdGenerator`` for ids without saying which span they are for, so
:class:`ScopeIdGenerator` is *primed* by the mapping right before each ``start_span`` with the
scope's seeds (thread-locally). Ids are the leading bytes of a BLAKE2b hash of the seed: the trace
id of an invocation comes from its ``invocation_id``, a span id from its ``scope_id``. Exporting the
same run twice therefore produces identical ids (a backend overwrites instead of duplicating, and
a Jaeger JSON file is reproducible). Unprimed calls fall back to random ids.
"""

from __future__ import annotations

import hashlib
import threading

from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.trace import SpanContext, TraceFlags

from ..events import TERMINAL_SCAN_TYPES, StreamEvent
from ..stores.base import EventStore


def derive_trace_id(seed: str) -> int:
    """A non-zero 128-bit trace id derived from ``seed``."""
    return int.from_bytes(hashlib.blake2b(seed.encode(), digest_size=16, person=b"swarm-trace").digest()) or 1


def derive_span_id(seed: str) -> int:
    """A non-zero 64-bit span id derived from ``seed``."""
    return int.from_bytes(hashlib.blake2b(seed.encode(), digest_size=8, person=b"swarm-span").digest()) or 1


class ScopeIdGenerator(IdGenerator):
    """An ``IdGenerator`` whose next ids can be fixed per thread with :meth:`prime`."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._random = RandomIdGenerator()

    def prime(self, trace_seed: str | None, span_seed: str | None) -> None:
        """Make the next ``generate_trace_id``/``generate_span_id`` on this thread derive from the seeds."""
        self._local.trace_seed = trace_seed
        self._local.span_seed = span_seed

    def generate_span_id(self) -> int:
        seed = getattr(self._local, "span_seed", None)
        if seed is None:
            return self._random.generate_span_id()
        self._local.span_seed = None
        return derive_span_id(seed)

    def generate_trace_id(self) -> int:
        seed = getattr(self._local, "trace_seed", None)
        if seed is None:
            return self._random.generate_trace_id()
        self._local.trace_seed = None
        return derive_trace_id(seed)


def span_context_of(event: StreamEvent) -> SpanContext | None:
    """The span context stamped on an event (``trace_id``/``span_id``), if both are valid hex ids."""
    if not event.trace_id or not event.span_id:
        return None
    try:
        trace_id, span_id = int(event.trace_id, 16), int(event.span_id, 16)
    except ValueError:
        return None
    if len(event.trace_id) != 32 or len(event.span_id) != 16 or not trace_id or not span_id:
        return None
    return SpanContext(trace_id, span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))


def find_stamped_root(store: EventStore, run_id: str, invocation_id: str) -> SpanContext | None:
    """The root span context a live tracer stamped on an invocation's terminal event, if any."""
    for stored in store.query(run_id=run_id, types=TERMINAL_SCAN_TYPES):
        if stored.invocation_id == invocation_id and stored.scope_id in (invocation_id, None):
            found = span_context_of(stored)
            if found is not None:
                return found
    return None
