"""The OpenAI-compatible wire format: ``/chat/completions`` and ``/completions``.

Also ``/embeddings`` and ``/images/generations`` (the readers are in `embedding` and `image`).

Spoken by vLLM, llama.cpp, SGLang, LM Studio, TGI's Messages API, Ollama's ``/v1``, LiteLLM
and most gateways. ``base_url`` is the ``/v1`` root. Unlike ChatOpenAI we send ``max_tokens``
under that name (several servers ignore ``max_completion_tokens``), never rewrite ``system`` to
``developer``, ask for stream usage on every server, and keep ``reasoning_content`` /
``reasoning`` from servers that send it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.messages.utils import convert_to_openai_messages

from langchain_customllm._exceptions import ResponseError, StreamError, error_detail
from langchain_customllm._framing import StreamEvent
from langchain_customllm._json import loads, quick_loads
from langchain_customllm._text import excerpt
from langchain_customllm.formats.base import (
    EmbedParams,
    GenerationParams,
    ImageParams,
    ParsedChunk,
    ParsedEmbeddings,
    ParsedImages,
    TokenUsage,
    ToolCallPiece,
    WireFormat,
    WireRequest,
    register_builtin_format,
    sampling_fields,
)
from langchain_customllm.formats.embedding import openai_embed_body, parse_openai_embeddings
from langchain_customllm.formats.image import openai_image_body, parse_openai_images

__all__ = ["OpenAIFormat", "messages_to_openai", "parse_openai_usage"]

_SIMPLE_ROLES: dict[type[BaseMessage], str] = {
    HumanMessage: "user",
    SystemMessage: "system",
    AIMessage: "assistant",
}
# Response fields passed through to response_metadata when present.
_META_KEYS = ("system_fingerprint", "service_tier")
_CHOICE_META_KEYS = ("logprobs", "stop_reason")
# Fields that, when set, send an event down the general path instead of `_plain_delta`.
_NOT_PLAIN_DELTA = ("tool_calls", "function_call", "reasoning_content", "reasoning")
_NOT_PLAIN_CHOICE = ("finish_reason", *_CHOICE_META_KEYS)
_NOT_PLAIN_EVENT = ("error", "usage", *_META_KEYS)


def messages_to_openai(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Convert LangChain messages to OpenAI chat message dicts.

    Plain-text messages take a fast path; anything richer (content blocks, images, tool
    calls, tool results) goes through langchain-core's converter. An assistant message with
    tool calls gets ``content: ""`` rather than null, which llama.cpp answers with a 500.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        if (
            type(message) in _SIMPLE_ROLES
            and isinstance(message.content, str)
            and not (isinstance(message, AIMessage) and message.tool_calls)
        ):
            item: dict[str, Any] = {
                "role": _SIMPLE_ROLES[type(message)],
                "content": message.content,
            }
            if message.name:
                item["name"] = message.name
            out.append(item)
            continue
        # Text-only content blocks go as one string: llama.cpp answers 500 to a list.
        for converted in convert_to_openai_messages([message], text_format="string"):
            if converted.get("role") == "assistant" and converted.get("content") is None:
                converted["content"] = ""
            out.append(converted)
    return out


def parse_openai_usage(raw: Any) -> TokenUsage | None:
    """Read an OpenAI ``usage`` object (None if absent or malformed)."""
    if not isinstance(raw, dict):
        return None
    try:
        prompt = int(raw.get("prompt_tokens") or 0)
        completion = int(raw.get("completion_tokens") or 0)
        total = int(raw.get("total_tokens") or (prompt + completion))
    except (TypeError, ValueError):
        return None
    cached = None
    details = raw.get("prompt_tokens_details")
    if isinstance(details, dict) and details.get("cached_tokens") is not None:
        cached = int(details["cached_tokens"])
    reasoning = None
    details = raw.get("completion_tokens_details")
    if isinstance(details, dict) and details.get("reasoning_tokens") is not None:
        reasoning = int(details["reasoning_tokens"])
    return TokenUsage(prompt, completion, total, cache_read=cached, reasoning=reasoning)


def _common_body(params: GenerationParams, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"model": params.model, **sampling_fields(params)}
    if stream:
        body["stream"] = True
        if params.stream_usage:
            body["stream_options"] = {"include_usage": True}
    if params.logprobs is not None:
        body["logprobs"] = params.logprobs
    if params.top_logprobs is not None:
        body["top_logprobs"] = params.top_logprobs
    return body


def _tool_pieces(raw: Any, *, whole: bool) -> list[ToolCallPiece]:
    """Read ``tool_calls`` (or the legacy ``function_call``) into format-neutral pieces.

    Servers differ in streams: llama.cpp repeats ``id``, ``type`` and ``function.name`` in
    every chunk, vLLM sends the name only in the first; the assembler evens that out.
    """
    calls = raw.get("tool_calls")
    if not calls and isinstance(raw.get("function_call"), dict):
        calls = [{"index": 0, "function": raw["function_call"]}]
    if not calls:
        return []
    if not isinstance(calls, list):
        raise ResponseError(f"`tool_calls` is not a list: {excerpt(calls)}")
    pieces = []
    for position, call in enumerate(calls):
        if not isinstance(call, dict):
            raise ResponseError(f"A tool call is not an object: {excerpt(call)}")
        function = call.get("function") or {}
        if not isinstance(function, dict):
            raise ResponseError(f"A tool call's `function` is not an object: {excerpt(call)}")
        args = function.get("arguments")
        if args is not None and not isinstance(args, str):
            args = json.dumps(args)  # some servers send an object instead of JSON text
        index = call.get("index", position)
        pieces.append(
            ToolCallPiece(
                index=index if isinstance(index, int) else position,
                id=_opt_str(call.get("id")),
                name=_opt_str(function.get("name")),
                args=args or ("{}" if whole and args is None else ""),
            )
        )
    return pieces


class OpenAIFormat(WireFormat):
    """OpenAI-compatible chat and text completions (the default wire format)."""

    name = "openai"
    framing = "sse"
    supports_tools = True
    supports_response_format = True
    supports_images = True
    supports_embeddings = True
    supports_image_generation = True

    def embed_request(self, texts: Sequence[str], params: EmbedParams) -> WireRequest:
        """Build a ``POST /embeddings`` request: raw strings, floats asked for."""
        return WireRequest(path="/embeddings", body=openai_embed_body(texts, params))

    def parse_embeddings(self, body: Any) -> ParsedEmbeddings:
        """Read an ``/embeddings`` answer, its vectors ordered by ``index``."""
        parsed = parse_openai_embeddings(body)
        parsed.usage = parse_openai_usage(body.get("usage"))
        return parsed

    def image_request(self, prompt: str, params: ImageParams) -> WireRequest:
        """Build a ``POST /images/generations`` request."""
        return WireRequest(path="/images/generations", body=openai_image_body(prompt, params))

    def parse_images(self, body: Any) -> ParsedImages:
        """Read an ``/images/generations`` answer (``b64_json`` or ``url`` images)."""
        return parse_openai_images(body)

    def chat_request(
        self, messages: Sequence[BaseMessage], params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        """Build a ``POST /chat/completions`` request."""
        body = _common_body(params, stream)
        body["messages"] = messages_to_openai(messages)
        if params.tools:
            body["tools"] = list(params.tools)
        if params.tool_choice is not None:
            body["tool_choice"] = params.tool_choice
        if params.response_format is not None:
            body["response_format"] = params.response_format
        body.update(params.extra_body)
        return WireRequest(path="/chat/completions", body=body)

    def completion_request(
        self, prompt: str, params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        """Build a ``POST /completions`` request."""
        body = _common_body(params, stream)
        body["prompt"] = prompt
        body.update(params.extra_body)
        return WireRequest(path="/completions", body=body)

    def parse_response(self, body: Any, *, chat: bool) -> ParsedChunk:
        """Parse a whole ``chat.completion`` or ``text_completion`` object."""
        if not isinstance(body, dict):
            raise ResponseError(
                f"Expected a JSON object from the server, got: {excerpt(body)}", body=body
            )
        if "error" in body and "choices" not in body:
            raise ResponseError(f"The server returned an error: {error_detail(body)}", body=body)
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ResponseError(
                "The server's answer has no `choices` -- is this an OpenAI-compatible "
                f"endpoint? Got: {excerpt(body)}",
                body=body,
            )
        choice = choices[0]
        parsed = self._base(body)
        parsed.finish_reason = _opt_str(choice.get("finish_reason"))
        for key in _CHOICE_META_KEYS:
            if choice.get(key) is not None:
                parsed.metadata[key] = choice[key]
        if chat:
            message = choice.get("message")
            if not isinstance(message, dict):
                raise ResponseError(
                    f"The server's choice has no `message`: {excerpt(choice)}", body=body
                )
            parsed.text = _as_text(message.get("content"))
            parsed.reasoning = _as_text(
                message.get("reasoning_content") or message.get("reasoning")
            )
            parsed.tool_calls = _tool_pieces(message, whole=True)
        else:
            parsed.text = _as_text(choice.get("text"))
        return parsed

    def parse_event(self, event: StreamEvent, *, chat: bool) -> ParsedChunk | None:
        """Parse one SSE event of a streamed answer."""
        data = event.data
        if data[:1] != "{":  # not the usual JSON object: an end marker, blank, or junk
            stripped = data.strip()
            if stripped == "[DONE]":
                return ParsedChunk(done=True)
            if not stripped:
                return None
        try:
            obj = quick_loads(data)
        except ValueError:
            obj = _loads_event(data)
        if type(obj) is dict and event.event is None and chat:
            fast = _plain_delta(obj)
            if fast is not None:
                return fast
        return self._full_event(obj, event, data, chat=chat)

    def _full_event(
        self, obj: Any, event: StreamEvent, data: str, *, chat: bool
    ) -> ParsedChunk | None:
        if not isinstance(obj, dict):
            raise ResponseError(f"Unexpected stream event: {excerpt(data)!r}")
        if event.event == "error" or ("error" in obj and "choices" not in obj):
            status = None
            err = obj.get("error")
            if isinstance(err, dict):
                code = err.get("code")
                status = code if isinstance(code, int) else None
            raise StreamError(
                f"The server reported an error mid-stream: {error_detail(obj)}",
                status_code=status,
                body=obj,
            )
        parsed = self._base(obj)
        choices = obj.get("choices") or []
        if not isinstance(choices, list):
            raise ResponseError(f"Stream event `choices` is not a list: {excerpt(data)!r}")
        if choices and isinstance(choices[0], dict):
            choice = choices[0]
            parsed.finish_reason = _opt_str(choice.get("finish_reason"))
            for key in _CHOICE_META_KEYS:
                if choice.get(key) is not None:
                    parsed.metadata[key] = choice[key]
            if chat:
                delta = choice.get("delta") or {}
                if not isinstance(delta, dict):
                    raise ResponseError(f"Stream event `delta` is not an object: {excerpt(data)!r}")
                parsed.text = _as_text(delta.get("content"))
                parsed.tool_calls = _tool_pieces(delta, whole=False)
                parsed.reasoning = _as_text(
                    delta.get("reasoning_content") or delta.get("reasoning")
                )
            else:
                parsed.text = _as_text(choice.get("text"))
        return parsed

    @staticmethod
    def _base(obj: dict[str, Any]) -> ParsedChunk:
        parsed = ParsedChunk(
            model=_opt_str(obj.get("model")),
            id=_opt_str(obj.get("id")),
            usage=parse_openai_usage(obj.get("usage")),
        )
        for key in _META_KEYS:
            if obj.get(key) is not None:
                parsed.metadata[key] = obj[key]
        return parsed


def _plain_delta(obj: dict[str, Any]) -> ParsedChunk | None:
    """The common event, a text delta and nothing else, read without the general path.

    Almost every event of a stream is one choice whose delta holds only text (the role at
    most). Anything more (tool calls, reasoning, a finish reason, logprobs, usage, metadata,
    an error, several choices) returns None and takes `OpenAIFormat._full_event`, so both
    paths give the same `ParsedChunk`; the unit tests compare them on every event shape.
    """
    choices = obj.get("choices")
    if type(choices) is not list or len(choices) != 1:
        return None
    choice = choices[0]
    if type(choice) is not dict:
        return None
    delta = choice.get("delta")
    if type(delta) is not dict:
        return None
    text = delta.get("content")
    if type(text) is not str:
        return None
    for key in _NOT_PLAIN_DELTA:
        if delta.get(key) is not None:
            return None
    for key in _NOT_PLAIN_CHOICE:
        if choice.get(key) is not None:
            return None
    for key in _NOT_PLAIN_EVENT:
        if obj.get(key) is not None:
            return None
    model = obj.get("model")
    ident = obj.get("id")
    return ParsedChunk(
        text=text,
        model=model if model is None or type(model) is str else str(model),
        id=ident if ident is None or type(ident) is str else str(ident),
    )


def _loads_event(data: str) -> Any:
    """What ``json`` reads of an event orjson refused (NaN, ...), or a typed error."""
    try:
        return loads(data)
    except ValueError as exc:
        raise ResponseError(
            f"The server sent a stream event that is not JSON: {excerpt(data)!r}"
        ) from exc


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _as_text(value: Any) -> str:
    """Content as text: servers send a string, null, or (rarely) a list of text parts."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(
            part.get("text", "") if isinstance(part, dict) else str(part) for part in value
        )
    return str(value)


register_builtin_format("openai", OpenAIFormat)
