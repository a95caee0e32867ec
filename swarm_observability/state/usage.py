"""Model and tool usage of a run: calls and tokens as the models reported them, per agent and model, costs.

A call that reported no usage is counted in ``calls_without_usage``, never as 0 tokens; a priced call
(``cost_usd`` on ``llm_end``, stamped by the observer with a price table) adds to the cost, and a
model without a price is listed in ``unpriced_models``, never priced as zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..events import StreamEvent
from .models import CostSummary, Usage, UsageTotals

_TOKEN_FIELDS = ("input_tokens", "output_tokens", "total_tokens")
_NOT_PRICED = object()


class _Totals:
    __slots__ = ("calls_without_usage", "cost", "llm_calls", "tokens", "tool_calls")

    def __init__(self) -> None:
        self.llm_calls = 0
        self.tool_calls = 0
        self.calls_without_usage = 0
        self.tokens = dict.fromkeys(_TOKEN_FIELDS, 0)
        self.cost: float | None = None

    def llm(self, tokens: Mapping[str, Any], cost: Any) -> None:
        self.llm_calls += 1
        reported = False
        for key, value in tokens.items():
            if isinstance(value, int) and not isinstance(value, bool):
                self.tokens[key] += value
                reported = True
        if not reported:
            self.calls_without_usage += 1
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            self.cost = (self.cost or 0.0) + float(cost)

    def fields(self) -> dict[str, Any]:
        return {
            "llm_calls": self.llm_calls,
            "tool_calls": self.tool_calls,
            "calls_without_usage": self.calls_without_usage,
            "cost_usd": self.cost,
            **self.tokens,
        }


class UsageLedger:
    """The usage of one run, folded call by call; :meth:`freeze` gives the :class:`Usage`."""

    def __init__(self) -> None:
        self._run = _Totals()
        self._by_agent: dict[str, _Totals] = {}
        self._by_model: dict[str, _Totals] = {}
        self._unpriced: set[str] = set()
        self._priced_calls = 0
        self._unpriced_calls = 0

    def model_call(self, event: StreamEvent) -> None:
        """Count a model call that ended (``llm_end`` or ``llm_error``)."""
        data = event.data
        model = data.get("model") or data.get("response_model")
        model = model if isinstance(model, str) else ""
        tokens = {k: data.get(k) for k in _TOKEN_FIELDS}
        cost = data.get("cost_usd") if "cost_usd" in data else _NOT_PRICED
        for totals in (self._run, self._agent(event.agent or ""), self._model(model)):
            totals.llm(tokens, cost)
        if cost is not _NOT_PRICED:
            if isinstance(cost, int | float):
                self._priced_calls += 1
            else:
                self._unpriced_calls += 1
                self._unpriced.add(model or "(unnamed)")

    def tool_call(self, agent: str) -> None:
        """Count a tool run of ``agent`` (``""``: outside any agent) that ended."""
        self._run.tool_calls += 1
        self._agent(agent).tool_calls += 1

    def freeze(self) -> Usage:
        """The usage so far."""
        priced = self._priced_calls or self._unpriced_calls
        cost = None
        if priced:
            cost = CostSummary(
                total_usd=self._run.cost or 0.0,
                priced_calls=self._priced_calls,
                unpriced_calls=self._unpriced_calls,
                unpriced_models=tuple(sorted(self._unpriced)),
            )
        return Usage(
            **self._run.fields(),
            by_agent={k: UsageTotals(**v.fields()) for k, v in self._by_agent.items()},
            by_model={k: UsageTotals(**v.fields()) for k, v in self._by_model.items()},
            cost=cost,
        )

    def _model(self, model: str) -> _Totals:
        totals = self._by_model.get(model)
        if totals is None:
            totals = self._by_model[model] = _Totals()
        return totals

    def _agent(self, agent: str) -> _Totals:
        totals = self._by_agent.get(agent)
        if totals is None:
            totals = self._by_agent[agent] = _Totals()
        return totals
