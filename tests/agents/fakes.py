"""A scripted tool-calling chat model built on langchain-core's ``GenericFakeChatModel``.

``GenericFakeChatModel`` answers from an iterator of messages but cannot bind tools, and its
streaming drops ``tool_calls`` and ``usage_metadata``. :class:`ScriptedChatModel` adds both, so real
agent libraries (``create_react_agent``, ``create_agent``, ``langgraph-swarm``, ``langgraph-supervisor``)
can drive it like a provider model, and reports a model name and provider the way real integrations do
(``ls_model_name``/``ls_provider``), so the instrumentation sees what it would see with ChatOpenAI.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable

USAGE = {"input_tokens": 11, "output_tokens": 7, "total_tokens": 18}


def reply(
    text: str = "",
    *,
    tool_calls: Sequence[tuple[str, dict[str, Any]]] = (),
    usage: dict[str, int] | None = USAGE,
    call_ids: Sequence[str] | None = None,
) -> AIMessage:
    """An assistant message: ``text`` and tool calls given as ``(tool name, args)`` pairs."""
    calls = [
        {
            "name": name,
            "args": args,
            "id": (call_ids[i] if call_ids else f"call_{name}_{i}"),
            "type": "tool_call",
        }
        for i, (name, args) in enumerate(tool_calls)
    ]
    return AIMessage(
        content=text,
        tool_calls=calls,
        usage_metadata=dict(usage) if usage is not None else None,  # type: ignore[arg-type]
        response_metadata={"finish_reason": "tool_calls" if calls else "stop"},
    )


class ScriptedChatModel(GenericFakeChatModel):
    """Answers with the scripted messages in order (thread-safe); supports ``bind_tools`` and streaming.

    Streaming yields the text word by word, then one last chunk carrying the tool calls and, when
    ``stream_usage`` is true, the usage, as provider integrations do with ``stream_usage=True``.
    """

    model_name: str = "fake-gpt-4o"
    response_model: str | None = "fake-gpt-4o-2024-08-06"
    provider: str = "openai"
    stream_usage: bool = True
    lock: Any = None

    def model_post_init(self, context: Any) -> None:
        self.lock = threading.Lock()

    @classmethod
    def of(cls, *messages: AIMessage | str, **kwargs: Any) -> ScriptedChatModel:
        """A model answering ``messages`` in order."""
        return cls(messages=iter(list(messages)), **kwargs)

    @property
    def _llm_type(self) -> str:
        return "scripted-fake-chat"

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self.provider
        params["ls_model_name"] = self.model_name
        return params

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, BaseMessage]:
        """Tools are accepted and ignored: the script decides which tools get called."""
        return self

    def _next(self) -> AIMessage:
        with self.lock:
            message = next(self.messages)
        message = AIMessage(content=message) if isinstance(message, str) else message.model_copy(deep=True)
        if self.response_model:
            message.response_metadata = {"model_name": self.response_model, **message.response_metadata}
        return message

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = self._next()
        info = {"finish_reason": message.response_metadata.get("finish_reason", "stop")}
        return ChatResult(generations=[ChatGeneration(message=message, generation_info=info)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        message = self._next()
        text = message.content if isinstance(message.content, str) else ""
        for token in (t for t in re.split(r"(\s)", text) if t):
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=token, id=message.id))
            if run_manager:
                run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk
        last = AIMessageChunk(
            content="",
            id=message.id,
            tool_call_chunks=[
                tool_call_chunk(name=c["name"], args=_json(c["args"]), id=c["id"], index=i)
                for i, c in enumerate(message.tool_calls)
            ],
            usage_metadata=message.usage_metadata if self.stream_usage else None,
            response_metadata=message.response_metadata,
            chunk_position="last",
        )
        chunk = ChatGenerationChunk(message=last)
        if run_manager:
            run_manager.on_llm_new_token("", chunk=chunk)
        yield chunk


def _json(value: Any) -> str:
    import json

    return json.dumps(value)
