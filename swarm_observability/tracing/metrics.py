"""GenAI semconv metrics of model calls, recorded from the event stream.

:class:`GenAIMetrics` subscribes to an emitter (``SwarmObserver(meter_provider=...)`` wires it in) and
records, for every ``llm_end``/``llm_error``, the two histograms of OpenTelemetry GenAI semantic
conventions v1.41 with the buckets the spec advises:

* ``gen_ai.client.token.usage`` (``{token}``): one value per token type, ``gen_ai.token.type`` =
  ``input`` / ``output``, only for calls that reported usage (a missing count is not a zero);
* ``gen_ai.client.operation.duration`` (``s``): the call's ``duration_ms`` in seconds, with
  ``error.type`` on failed calls.

Attributes: ``gen_ai.operation.name=chat``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
``gen_ai.response.model`` when known. Like every subscriber it never raises into the graph.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..events import EventType, StreamEvent
from . import semconv as sc
from .semconv import instrumentation_version

logger = logging.getLogger("swarm_observability.tracing")

TOKEN_BUCKETS = tuple(4**i for i in range(14))
"""1, 4, 16, ... 67108864: the boundaries semconv advises for ``gen_ai.client.token.usage``."""

DURATION_BUCKETS = tuple(0.01 * 2**i for i in range(14))
"""0.01, 0.02, ... 81.92 s: the boundaries semconv advises for ``gen_ai.client.operation.duration``."""


class GenAIMetrics:
    """Record the GenAI client histograms on ``meter_provider`` from model-call events."""

    def __init__(self, meter_provider: Any) -> None:
        meter = meter_provider.get_meter(
            sc.INSTRUMENTATION_NAME, instrumentation_version(), schema_url=sc.SCHEMA_URL
        )
        self.tokens = meter.create_histogram(
            sc.GEN_AI_CLIENT_TOKEN_USAGE,
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
        )
        self.duration = meter.create_histogram(
            sc.GEN_AI_CLIENT_OPERATION_DURATION,
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )

    def install(self, emitter: Any) -> Callable[[], None]:
        """Subscribe to ``emitter``; returns the unsubscribe function."""
        return emitter.subscribe(self.on_event)

    def on_event(self, event: StreamEvent) -> None:
        """Record one event (only ``llm_end``/``llm_error`` count). Never raises."""
        if event.type not in (EventType.LLM_END, EventType.LLM_ERROR):
            return
        try:
            self._record(event)
        except Exception:
            logger.exception("swarm_observability: GenAI metrics not recorded for %s", event.type_name)

    def _record(self, event: StreamEvent) -> None:
        data = event.data
        attributes: dict[str, Any] = {sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT}
        for key, attr in (
            ("provider", sc.GEN_AI_PROVIDER_NAME),
            ("model", sc.GEN_AI_REQUEST_MODEL),
            ("response_model", sc.GEN_AI_RESPONSE_MODEL),
        ):
            value = data.get(key)
            if isinstance(value, str) and value:
                attributes[attr] = value
        for key, token_type in (
            ("input_tokens", sc.TOKEN_TYPE_INPUT),
            ("output_tokens", sc.TOKEN_TYPE_OUTPUT),
        ):
            value = data.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                self.tokens.record(value, {**attributes, sc.GEN_AI_TOKEN_TYPE: token_type})
        duration = data.get("duration_ms")
        if isinstance(duration, int | float):
            if data.get("outcome") == "error":
                attributes[sc.ERROR_TYPE] = str(data.get("error_type") or "_OTHER")
            self.duration.record(float(duration) / 1000.0, attributes)
