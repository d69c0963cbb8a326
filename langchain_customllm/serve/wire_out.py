"""LangChain answers out, as OpenAI's JSON: whole answers, stream chunks, usage and cost.

Usage is always in a whole answer, and in a stream's last chunk when the client asked
(``stream_options.include_usage``), summed over the choices; where the model is priced its
cost in USD rides along in the usage block as ``cost`` (an extra field OpenAI clients
ignore and keep: ``usage.model_extra`` in the ``openai`` SDK).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import Generation

from langchain_customllm._json import dumps

__all__ = [
    "ChunkWriter",
    "Tally",
    "chat_answer",
    "completion_answer",
    "new_id",
]

SSE_DONE = b"data: [DONE]\n\n"


def new_id(prefix: str) -> str:
    """A fresh answer id (``chatcmpl-...``) for answers whose backend gave none."""
    return f"{prefix}-{uuid.uuid4().hex}"


def sse(payload: dict[str, Any]) -> bytes:
    """One server-sent event carrying ``payload`` as JSON."""
    return b"data: " + dumps(payload) + b"\n\n"


@dataclass
class Tally:
    """Token counts and cost, summed over the choices of one answer.

    Attributes:
        prompt_tokens: Input tokens.
        completion_tokens: Output tokens.
        cached_tokens: Input tokens read from the backend's prompt cache, if reported.
        reasoning_tokens: Output tokens spent on reasoning, if reported.
        cost: USD where the model is priced, else None.
        reported: Whether any choice reported usage at all.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost: float | None = None
    reported: bool = False

    def add_usage(self, usage: Any) -> None:
        """Add LangChain ``usage_metadata`` (a dict) if there is one."""
        if not usage:
            return
        self.reported = True
        self.prompt_tokens += int(usage.get("input_tokens") or 0)
        self.completion_tokens += int(usage.get("output_tokens") or 0)
        cached = (usage.get("input_token_details") or {}).get("cache_read")
        if cached is not None:
            self.cached_tokens = (self.cached_tokens or 0) + int(cached)
        reasoning = (usage.get("output_token_details") or {}).get("reasoning")
        if reasoning is not None:
            self.reasoning_tokens = (self.reasoning_tokens or 0) + int(reasoning)

    def add_token_usage(self, usage: Any) -> None:
        """Add OpenAI-style ``token_usage`` (text models' ``generation_info``)."""
        if not usage:
            return
        self.add_usage(
            {
                "input_tokens": usage.get("prompt_tokens"),
                "output_tokens": usage.get("completion_tokens"),
                "input_token_details": {
                    "cache_read": (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
                },
                "output_token_details": {
                    "reasoning": (usage.get("completion_tokens_details") or {}).get(
                        "reasoning_tokens"
                    )
                },
            }
        )

    def add_cost(self, cost: Any) -> None:
        """Add a ``cost`` dict (``response_metadata["cost"]``) if there is one."""
        if isinstance(cost, dict) and cost.get("total_cost") is not None:
            self.cost = (self.cost or 0.0) + float(cost["total_cost"])

    def block(self) -> dict[str, Any]:
        """OpenAI's ``usage`` object, with ``cost`` where priced."""
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if self.cached_tokens is not None:
            out["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        if self.reasoning_tokens is not None:
            out["completion_tokens_details"] = {"reasoning_tokens": self.reasoning_tokens}
        if self.cost is not None:
            out["cost"] = self.cost
        return out


def _tool_calls(message: AIMessage) -> list[dict[str, Any]]:
    calls = [
        {"id": call.get("id"), "name": call["name"], "arguments": dumps(call["args"]).decode()}
        for call in message.tool_calls
    ]
    # Arguments that are not a JSON object are the backend's text: passed on, never dropped.
    calls += [
        {"id": call.get("id"), "name": call.get("name") or "", "arguments": call.get("args") or ""}
        for call in message.invalid_tool_calls
    ]
    return [
        {
            "id": call["id"] or new_id("call"),
            "type": "function",
            "function": {"name": call["name"], "arguments": call["arguments"]},
        }
        for call in calls
    ]


def _finish_reason(reason: Any, tool_calls: bool) -> str:
    if isinstance(reason, str) and reason:
        return reason
    return "tool_calls" if tool_calls else "stop"


def chat_answer(name: str, messages: Sequence[AIMessage], tally: Tally) -> dict[str, Any]:
    """A ``chat.completion`` object: one choice per message (``n``), usage summed in ``tally``."""
    choices = []
    for index, message in enumerate(messages):
        meta = message.response_metadata
        tally.add_usage(message.usage_metadata)
        tally.add_cost(meta.get("cost"))
        out: dict[str, Any] = {"role": "assistant", "content": message.text or None}
        calls = _tool_calls(message)
        if calls:
            out["tool_calls"] = calls
        elif out["content"] is None:
            out["content"] = ""
        reasoning = message.additional_kwargs.get("reasoning_content")
        if reasoning:
            out["reasoning_content"] = reasoning
        choices.append(
            {
                "index": index,
                "message": out,
                "logprobs": meta.get("logprobs"),
                "finish_reason": _finish_reason(meta.get("finish_reason"), bool(calls)),
            }
        )
    first = messages[0]
    return {
        "id": first.id or new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": name,
        "choices": choices,
        "usage": tally.block(),
        "system_fingerprint": first.response_metadata.get("system_fingerprint"),
    }


def completion_answer(name: str, generations: Sequence[Generation], tally: Tally) -> dict[str, Any]:
    """A ``text_completion`` object: one choice per generation."""
    choices = []
    for index, generation in enumerate(generations):
        info = generation.generation_info or {}
        tally.add_token_usage(info.get("token_usage"))
        tally.add_cost(info.get("cost"))
        choices.append(
            {
                "index": index,
                "text": generation.text,
                "logprobs": info.get("logprobs"),
                "finish_reason": _finish_reason(info.get("finish_reason"), False),
            }
        )
    return {
        "id": new_id("cmpl"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": name,
        "choices": choices,
        "usage": tally.block(),
    }


@dataclass
class _Choice:
    """What one streamed choice has said so far that its last chunk repeats."""

    finish_reason: Any = None
    logprobs: Any = None
    tool_calls: bool = False
    opened: bool = False
    started: set[int] = field(default_factory=set)


class ChunkWriter:
    """Stream events of one streamed answer, in OpenAI's ``chat.completion.chunk`` shape.

    Args:
        name: The model name the client asked for.
        kind: ``"chat"`` (``chat.completion.chunk``) or ``"text"`` (``text_completion``).
        include_usage: End with a usage chunk (``stream_options.include_usage``).
    """

    def __init__(self, name: str, kind: str, *, include_usage: bool) -> None:
        self.name = name
        self.chat = kind == "chat"
        self.include_usage = include_usage
        self.id = new_id("chatcmpl" if self.chat else "cmpl")
        self.created = int(time.time())
        self.object = "chat.completion.chunk" if self.chat else "text_completion"
        self.tally = Tally()
        self.choices: dict[int, _Choice] = {}

    def _event(self, choice: dict[str, Any]) -> bytes:
        return sse(
            {
                "id": self.id,
                "object": self.object,
                "created": self.created,
                "model": self.name,
                "choices": [choice],
            }
        )

    def open(self, index: int) -> None:
        """Start choice ``index`` (its first event is written with its first chunk)."""
        self.choices[index] = _Choice()

    def _role(self, index: int, state: _Choice) -> bytes:
        """A chat choice's first event, naming the assistant role; then nothing."""
        if state.opened or not self.chat:
            return b""
        state.opened = True
        delta = {"role": "assistant", "content": ""}
        return self._event(
            {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}
        )

    def chat_chunk(self, index: int, chunk: AIMessageChunk) -> bytes:
        """The events for one `AIMessageChunk` of choice ``index`` (empty if nothing new)."""
        state = self.choices[index]
        head = self._role(index, state)
        self._note(state, chunk.response_metadata, chunk.usage_metadata)
        delta: dict[str, Any] = {}
        text = chunk.text
        if text:
            delta["content"] = text
        reasoning = chunk.additional_kwargs.get("reasoning_content")
        if reasoning:
            delta["reasoning_content"] = reasoning
        if chunk.tool_call_chunks:
            state.tool_calls = True
            delta["tool_calls"] = [self._tool_delta(state, call) for call in chunk.tool_call_chunks]
        if not delta:
            return head
        return head + self._event(
            {"index": index, "delta": delta, "logprobs": None, "finish_reason": None}
        )

    def text_chunk(self, index: int, text: str, info: dict[str, Any] | None) -> bytes:
        """The event for one piece of a text completion (``info``: the last piece's)."""
        state = self.choices[index]
        if info:
            state.finish_reason = info.get("finish_reason") or state.finish_reason
            state.logprobs = info.get("logprobs") or state.logprobs
            self.tally.add_token_usage(info.get("token_usage"))
            self.tally.add_cost(info.get("cost"))
        if not text:
            return b""
        return self._event({"index": index, "text": text, "logprobs": None, "finish_reason": None})

    def _note(self, state: _Choice, meta: dict[str, Any], usage: Any) -> None:
        if meta:
            state.finish_reason = meta.get("finish_reason") or state.finish_reason
            state.logprobs = meta.get("logprobs") or state.logprobs
            self.tally.add_cost(meta.get("cost"))
        self.tally.add_usage(usage)

    @staticmethod
    def _tool_delta(state: _Choice, call: Any) -> dict[str, Any]:
        index = call.get("index") or 0
        out: dict[str, Any] = {"index": index}
        function: dict[str, Any] = {"arguments": call.get("args") or ""}
        if index not in state.started:
            # The first delta of a call names it: id, type and function name.
            state.started.add(index)
            out["id"] = call.get("id") or new_id("call")
            out["type"] = "function"
            function["name"] = call.get("name") or ""
        out["function"] = function
        return out

    def finish(self, index: int) -> bytes:
        """The last event of a choice: its finish reason (and its logprobs, if asked)."""
        state = self.choices[index]
        head = self._role(index, state)
        reason = _finish_reason(state.finish_reason, state.tool_calls)
        if self.chat:
            choice: dict[str, Any] = {"index": index, "delta": {}}
        else:
            choice = {"index": index, "text": ""}
        choice["logprobs"] = state.logprobs
        choice["finish_reason"] = reason
        return head + self._event(choice)

    def end(self) -> bytes:
        """The usage chunk (if asked) and ``[DONE]``."""
        if not self.include_usage:
            return SSE_DONE
        usage = sse(
            {
                "id": self.id,
                "object": self.object,
                "created": self.created,
                "model": self.name,
                "choices": [],
                "usage": self.tally.block(),
            }
        )
        return usage + SSE_DONE
