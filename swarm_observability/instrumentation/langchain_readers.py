"""Reading LangChain's objects: model names, token usage, finish reasons and messages.

Providers report these in different places (``usage_metadata`` on chat messages, ``llm_output`` on plain
LLMs, ``generation_info`` or ``response_metadata``); these readers know where to look so the callback
handler (:mod:`.callbacks`) does not. Each one is total: a missing or odd field reads as absent, never
as an exception, since a reader failing would lose the whole event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage

MODEL_PARAM_KEYS = ("model", "model_name", "model_id", "deployment_name")
"""Invocation parameters that may name the model, in the order they are tried."""


def model_name(metadata: Mapping[str, Any], params: Mapping[str, Any]) -> str | None:
    """The request model: LangChain's ``ls_model_name``, else the first model-naming invocation parameter."""
    return metadata.get("ls_model_name") or next(
        (params[k] for k in MODEL_PARAM_KEYS if isinstance(params.get(k), str) and params[k]), None
    )


def token_usage(message: Any, llm_output: Any) -> dict[str, int]:
    """Token counts from ``usage_metadata`` (chat models) or ``llm_output["token_usage"]`` (LLMs)."""
    usage = getattr(message, "usage_metadata", None)
    out: dict[str, int] = {}
    if usage:
        for key in ("input_tokens", "output_tokens", "total_tokens"):
            value = usage.get(key)
            if isinstance(value, int):
                out[key] = value
        cache_read = (usage.get("input_token_details") or {}).get("cache_read")
        if isinstance(cache_read, int) and cache_read:
            out["cache_read_tokens"] = cache_read
        reasoning = (usage.get("output_token_details") or {}).get("reasoning")
        if isinstance(reasoning, int) and reasoning:
            out["reasoning_tokens"] = reasoning
        return out
    reported = (llm_output or {}).get("token_usage") if isinstance(llm_output, dict) else None
    if isinstance(reported, dict):
        for ours, theirs in (
            ("input_tokens", "prompt_tokens"),
            ("output_tokens", "completion_tokens"),
            ("total_tokens", "total_tokens"),
        ):
            if isinstance(reported.get(theirs), int):
                out[ours] = reported[theirs]
    return out


def finish_reasons(generations: Sequence[Any]) -> list[str]:
    """The finish (or stop) reason of each generation that reports one."""
    reasons = []
    for generation in generations:
        info = getattr(generation, "generation_info", None) or {}
        metadata = getattr(getattr(generation, "message", None), "response_metadata", None) or {}
        reason = info.get("finish_reason") or metadata.get("finish_reason") or metadata.get("stop_reason")
        if isinstance(reason, str) and reason:
            reasons.append(reason)
    return reasons


def message_record(message: BaseMessage) -> dict[str, Any]:
    """A message as recorded content: role, content and its tool calls (name, args, id)."""
    out: dict[str, Any] = {"role": message.type, "content": message.content}
    tool_calls = getattr(message, "tool_calls", None)
    if tool_calls:
        out["tool_calls"] = [
            {"name": c.get("name"), "args": c.get("args"), "id": c.get("id")} for c in tool_calls
        ]
    return out


def message_records(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """:func:`message_record` of each message."""
    return [message_record(m) for m in messages]


def text(content: Any) -> str:
    """A message's content as text (non-string content, such as content blocks, by ``str``)."""
    return content if isinstance(content, str) else str(content)
