"""What the observer tells every invocation's LangChain handler: content capture and the price table.

One :class:`CallbackSettings` is built by ``SwarmObserver(capture_content=, prices=)`` and shared by the
handler of every invocation (see :mod:`.callbacks`). Prices are checked when the observer is built, so a
malformed table is a clear ``ValueError`` at set-up, never a failure inside a running graph.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""Set to ``true`` to record prompts, completions and tool payloads (as the OTel GenAI SDKs read it)."""

Prices = Mapping[str, tuple[float, float]]
"""Model name -> (US$ per million input tokens, US$ per million output tokens)."""


def capture_content_from_env() -> bool:
    """Whether ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` asks for content capture."""
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def check_prices(prices: Any) -> dict[str, tuple[float, float]] | None:
    """``prices`` as a plain dict, or ``ValueError`` naming the first malformed entry."""
    if prices is None:
        return None
    if not isinstance(prices, Mapping):
        raise ValueError(f"prices must map model names to (input, output) US$ per 1M tokens, got {prices!r}")
    table: dict[str, tuple[float, float]] = {}
    for model, price in prices.items():
        ok = isinstance(model, str) and model and isinstance(price, tuple | list) and len(price) == 2
        if ok:
            ok = all(
                isinstance(p, int | float) and not isinstance(p, bool) and 0 <= p < float("inf")
                for p in price
            )
        if not ok:
            raise ValueError(
                f"prices[{model!r}] must be (US$ per 1M input tokens, US$ per 1M output tokens), "
                f"two non-negative numbers; got {price!r}"
            )
        table[model] = (float(price[0]), float(price[1]))
    return table


def call_cost(prices: Prices, model: str | None, data: Mapping[str, Any]) -> float | None:
    """US$ of one call, from the request model's (else the response model's) price; ``None`` if unknown."""
    price = prices.get(model) if model else None
    if price is None:
        response_model = data.get("response_model")
        price = prices.get(response_model) if isinstance(response_model, str) else None
    if price is None or "input_tokens" not in data:
        return None
    per_input, per_output = price
    return (data["input_tokens"] * per_input + data.get("output_tokens", 0) * per_output) / 1_000_000


@dataclass(slots=True)
class CallbackSettings:
    """What the observer tells every invocation's handler (shared by all of them).

    Attributes:
        capture_content: record prompts, completions, tool arguments and results.
        prices: the price table; ``llm_end`` then carries ``cost_usd`` (``None`` for unknown models).
        warned_runs: runs already told that a streamed model reported no usage (once per run).
    """

    capture_content: bool = False
    prices: Prices | None = None
    warned_runs: set[str] = field(default_factory=set)
