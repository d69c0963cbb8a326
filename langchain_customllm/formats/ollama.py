"""Ollama's native API: ``POST /api/chat`` and ``POST /api/generate``, streamed as NDJSON.

Select it with ``wire_format="ollama"``; ``base_url`` is the server root
(``http://host:11434``, no ``/v1``). Field names, the NDJSON stream shape and the error
bodies follow Ollama's own source, ``api/types.go`` (``ChatRequest``, ``GenerateRequest``,
``Message``, ``ToolCall``, ``ChatResponse``, ``GenerateResponse``, ``Metrics``, ``Options``)
and ``server/routes.go`` (``ChatHandler``, ``GenerateHandler``, ``streamResponse``), and the
docs at docs.ollama.com/api (``streaming``, ``errors``) and ``docs/api.md``.

Sampling settings go under ``options`` (``max_tokens`` is Ollama's ``num_predict``). Vendor
fields in ``extra_body`` (``format``, ``keep_alive``, ``think``, ``raw``, ``tools``) go to the
top level of the body, except Ollama option names (``top_k``, ``num_ctx``, ...) and an
``options`` mapping, which are merged into ``options``: Ollama ignores unknown top-level
fields, so a top-level ``top_k`` would otherwise be dropped without a word.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ToolMessage,
)

from langchain_customllm._exceptions import (
    ConfigurationError,
    ResponseError,
    StreamError,
    error_detail,
)
from langchain_customllm._framing import StreamEvent
from langchain_customllm._json import loads
from langchain_customllm._text import excerpt
from langchain_customllm.formats.base import (
    EmbedParams,
    GenerationParams,
    ParsedChunk,
    ParsedEmbeddings,
    TokenUsage,
    WireFormat,
    WireRequest,
    register_builtin_format,
    sampling_fields,
)
from langchain_customllm.formats.embedding import ollama_embed_body, parse_ollama_embeddings
from langchain_customllm.formats.prompt import message_role

__all__ = [
    "OLLAMA_DEFAULT_CONTEXT",
    "OllamaFormat",
    "configured_context",
    "context_from_show",
    "messages_to_ollama",
    "show_request",
]

OLLAMA_DEFAULT_CONTEXT = 4096
"""The ``num_ctx`` Ollama gives a request when neither the request nor the model's Modelfile
sets one (docs.ollama.com/context-length). A server started with ``OLLAMA_CONTEXT_LENGTH``
uses that instead, which its API does not tell: set ``num_ctx`` to know for sure."""

_NUM_CTX_LINE = re.compile(r"^num_ctx\s+(\d+)\s*$", re.MULTILINE)

# The JSON names of api.Options and api.Runner (api/types.go), current and retired ones
# (older servers still read them). Only these belong under "options".
_OPTION_NAMES = frozenset(
    {
        "num_keep", "seed", "num_predict", "top_k", "top_p", "min_p", "typical_p",
        "repeat_last_n", "temperature", "repeat_penalty", "presence_penalty",
        "frequency_penalty", "stop", "num_ctx", "num_batch", "num_gpu", "main_gpu",
        "use_mmap", "num_thread", "tfs_z", "mirostat", "mirostat_tau", "mirostat_eta",
        "penalize_newline", "numa", "low_vram", "f16_kv", "logits_all", "vocab_only",
        "use_mlock",
    }
)  # fmt: skip
# api.Metrics: nanosecond durations, on the final ("done") object only.
_DURATIONS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")
# Content blocks Ollama has no field for; dropping them would lose the user's input.
_UNSUPPORTED_MEDIA = frozenset({"audio", "input_audio", "file", "video"})


def _image_data(url: str) -> str:
    # Ollama's Message.images is []ImageData ([]byte), which Go's JSON reads from base64
    # strings only; the server never fetches URLs.
    if url.startswith("data:") and ";base64," in url:
        return url.split(";base64,", 1)[1]
    raise ConfigurationError(
        "wire_format 'ollama' sends images as base64 only (Ollama does not fetch URLs); "
        f"pass the image as base64 data instead of {excerpt(url, 80)!r}"
    )


def _content(content: str | list[Any]) -> tuple[str, list[str]]:
    """Split LangChain content into Ollama's ``content`` text and ``images`` list."""
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind == "image_url":  # OpenAI style: {"image_url": {"url": "data:..."}}
            ref = part.get("image_url")
            images.append(_image_data(str(ref.get("url", "") if isinstance(ref, dict) else ref)))
        elif kind == "image":  # LangChain standard blocks (v1 and the older source_type form)
            if part.get("base64"):
                images.append(str(part["base64"]))
            elif part.get("source_type") == "base64" and part.get("data"):
                images.append(str(part["data"]))
            else:
                images.append(_image_data(str(part.get("url", ""))))
        elif kind in _UNSUPPORTED_MEDIA:
            raise ConfigurationError(f"wire_format 'ollama' cannot send {kind!r} content")
        # Anything else (v1 "reasoning" / "tool_call" blocks) travels in other fields.
    # Separate parts stay separate lines, as langchain-ollama joins them.
    return "\n".join(texts), images


def messages_to_ollama(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """Convert LangChain messages to Ollama ``api.Message`` dicts (keys in its field order).

    Assistant tool calls become ``tool_calls: [{"function": {"name", "arguments": {...}}}]``
    with arguments as an object, not a JSON string (``api.ToolCallFunction``); tool results
    become role ``tool`` with ``tool_name`` (looked up from the call when the message does
    not name it) and ``tool_call_id``, so a tool conversation round-trips.
    """
    out: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for message in messages:
        text, images = _content(message.content)
        item: dict[str, Any] = {"role": message_role(message), "content": text}
        if images:
            item["images"] = images
        if isinstance(message, AIMessage) and message.tool_calls:
            calls = []
            for call in message.tool_calls:
                entry: dict[str, Any] = {}
                if call.get("id"):
                    entry["id"] = call["id"]
                    call_names[str(call["id"])] = call["name"]
                entry["function"] = {"name": call["name"], "arguments": call["args"]}
                calls.append(entry)
            item["tool_calls"] = calls
        if isinstance(message, ToolMessage):
            name = message.name or call_names.get(message.tool_call_id)
            if name:
                item["tool_name"] = name
            item["tool_call_id"] = message.tool_call_id
        out.append(item)
    return out


def _body(params: GenerationParams, stream: bool, key: str, value: Any) -> dict[str, Any]:
    options = sampling_fields(params, max_tokens="num_predict")
    # "stream" is always sent: Ollama streams unless told {"stream": false} (api.ChatRequest).
    body: dict[str, Any] = {"model": params.model, key: value, "stream": stream}
    extra: dict[str, Any] = {}
    for name, setting in params.extra_body.items():
        if name == "options" and isinstance(setting, dict):
            options.update(setting)
        elif name in _OPTION_NAMES:
            options[name] = setting
        else:
            extra[name] = setting
    if options:
        body["options"] = options
    body.update(extra)
    return body


def _answer_object(value: Any, got: Any, *, stream: bool) -> dict[str, Any]:
    """``value`` if it is an Ollama answer object; else the typed error for what came.

    The errors are those `OllamaFormat.parse_response` and ``parse_event`` document; ``got``
    is what the message shows (the raw line, for a stream).
    """
    if not isinstance(value, dict):
        where = "per stream line" if stream else "as the answer"
        raise ResponseError(
            f"wire_format 'ollama': expected a JSON object {where}, got: {excerpt(got)!r}",
            body=value,
        )
    if "error" not in value:
        return value
    if stream:
        raise StreamError(
            f"The Ollama server reported an error mid-stream: {error_detail(value)}", body=value
        )
    raise ResponseError(f"The Ollama server returned an error: {error_detail(value)}", body=value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class OllamaFormat(WireFormat):
    """Ollama's native ``/api/chat``, ``/api/generate`` (NDJSON streams) and ``/api/embed``."""

    name = "ollama"
    framing = "ndjson"
    supports_images = True
    supports_embeddings = True

    def embed_request(self, texts: Sequence[str], params: EmbedParams) -> WireRequest:
        """Build a ``POST /api/embed`` request (``truncate`` always said: Ollama's is on)."""
        return WireRequest(path="/api/embed", body=ollama_embed_body(texts, params))

    def parse_embeddings(self, body: Any) -> ParsedEmbeddings:
        """Read an ``api.EmbedResponse``: ``embeddings`` and ``prompt_eval_count``."""
        return parse_ollama_embeddings(body)

    def chat_request(
        self, messages: Sequence[BaseMessage], params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        """Build a ``POST /api/chat`` request."""
        body = _body(params, stream, "messages", messages_to_ollama(messages))
        return WireRequest(path="/api/chat", body=body)

    def completion_request(
        self, prompt: str, params: GenerationParams, *, stream: bool
    ) -> WireRequest:
        """Build a ``POST /api/generate`` request (Ollama templates the prompt unless raw)."""
        return WireRequest(path="/api/generate", body=_body(params, stream, "prompt", prompt))

    def parse_response(self, body: Any, *, chat: bool) -> ParsedChunk:
        """Parse a whole ``api.ChatResponse`` / ``api.GenerateResponse`` object.

        Raises:
            ResponseError: For a body that is not an object, an ``{"error": ...}`` body, or
                an answer without ``message`` (chat) / ``response`` (generate).

        """
        return self._parse(_answer_object(body, body, stream=False), chat=chat, whole=True)

    def parse_event(self, event: StreamEvent, *, chat: bool) -> ParsedChunk | None:
        """Parse one NDJSON line of a stream.

        Raises:
            StreamError: For an ``{"error": ...}`` line: Ollama reports failures after the
                stream began this way, the HTTP status already being 200 (docs: api/errors).
            ResponseError: For a line that is not a JSON object of the expected shape.

        """
        data = event.data.strip()
        if not data:
            return None
        try:
            obj = loads(data)
        except ValueError as exc:
            raise ResponseError(
                f"wire_format 'ollama': the server sent a stream line that is not JSON: "
                f"{excerpt(data)!r}"
            ) from exc
        return self._parse(_answer_object(obj, data, stream=True), chat=chat, whole=False)

    @staticmethod
    def _parse(obj: dict[str, Any], *, chat: bool, whole: bool) -> ParsedChunk:
        done = obj.get("done") is True
        # Very old servers (docs/api.md, 2023) end a chat stream with a "done" object that
        # has no "message"; anywhere else its absence means this is not an Ollama answer.
        field = "message" if chat else "response"
        if field not in obj and (whole or not done):
            raise ResponseError(
                f"wire_format 'ollama': the server's answer has no `{field}`: {excerpt(obj)!r}",
                body=obj,
            )
        if chat:
            message = obj.get(field)
            if field in obj and not isinstance(message, dict):
                raise ResponseError(
                    f"wire_format 'ollama': `message` is not an object: {excerpt(obj)!r}",
                    body=obj,
                )
            message = message or {}
            text, reasoning = _text(message.get("content")), _text(message.get("thinking"))
        else:
            text, reasoning = _text(obj.get("response")), _text(obj.get("thinking"))
        reason = obj.get("done_reason")  # "stop", "length", "load", "unload" (routes.go)
        parsed = ParsedChunk(
            text=text,
            reasoning=reasoning,
            finish_reason=reason if isinstance(reason, str) and reason else None,
            model=obj.get("model") if isinstance(obj.get("model"), str) else None,
            done=done,
        )
        # api.Metrics fields are `omitempty`: a count of 0 is absent, not missing usage.
        parsed.usage = TokenUsage.from_counts(
            _int(obj.get("prompt_eval_count")), _int(obj.get("eval_count"))
        )
        for key in _DURATIONS:
            value = _int(obj.get(key))
            if value is not None:
                parsed.metadata[key] = value
        return parsed


register_builtin_format("ollama", OllamaFormat)


# ------------------------------------------------------------------ the context a request gets
# Ollama cuts an over-long prompt to num_ctx without an error (its runner logs "truncating
# input prompt"), so knowing num_ctx is what lets check_context_window refuse it instead.


def show_request(model: str) -> WireRequest:
    """``POST /api/show`` for ``model``: its Modelfile parameters and ``model_info``."""
    return WireRequest(path="/api/show", body={"model": model})


def context_from_show(body: Any) -> tuple[int | None, str]:
    """The context one request to this model gets, from its ``/api/show`` answer (pure).

    ``num_ctx`` from the Modelfile's ``parameters`` when it sets one; else Ollama's default,
    `OLLAMA_DEFAULT_CONTEXT`, capped by what the model was trained for
    (``model_info["<architecture>.context_length"]``).

    Returns:
        The context in tokens (None when the answer gives nothing to go on) and why.
    """
    if not isinstance(body, Mapping):
        return None, "/api/show answered no object"
    parameters = body.get("parameters")
    found = _NUM_CTX_LINE.search(parameters) if isinstance(parameters, str) else None
    if found is not None and int(found.group(1)) > 0:
        return int(found.group(1)), "num_ctx in the model's parameters"
    info = body.get("model_info")
    trained = None
    if isinstance(info, Mapping):
        trained = next(
            (
                value
                for key, value in info.items()
                if str(key).endswith(".context_length")
                and isinstance(value, int)
                and not isinstance(value, bool)
                and value > 0
            ),
            None,
        )
    if trained is None:
        return None, "no num_ctx in the parameters and no context_length in model_info"
    return (
        min(OLLAMA_DEFAULT_CONTEXT, trained),
        f"Ollama's default num_ctx {OLLAMA_DEFAULT_CONTEXT} (the model was trained for "
        f"{trained}; a server started with OLLAMA_CONTEXT_LENGTH differs: set num_ctx)",
    )


def configured_context(extra_body: Mapping[str, Any] | None) -> int | None:
    """The ``num_ctx`` a model's settings send with every request, if any (pure)."""
    if not extra_body:
        return None
    options = extra_body.get("options")
    value = extra_body.get("num_ctx")
    if value is None and isinstance(options, Mapping):
        value = options.get("num_ctx")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None
