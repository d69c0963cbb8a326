"""Token counts from the server's own tokenizer, cached: the requests, their answers, the I/O.

Three server families expose their tokenizer, each with its own request shape:

- llama.cpp's C++ ``llama-server``: ``POST /tokenize {"content", "add_special"}`` ->
  ``{"tokens": [...]}``, and ``POST /apply-template`` with a chat request's body -> ``{"prompt"}``:
  the prompt its chat template renders, parsed exactly as ``/v1/chat/completions`` parses that
  body (tools, ``tool_choice``, ``chat_template_kwargs`` included). The server tokenizes a
  rendered chat prompt, and a completion prompt, with special tokens added and parsed
  (``tokenize_input_prompts(..., add_special=true, parse_special=true)`` in its source), so
  the prompt is counted that way.
- vLLM: ``POST /tokenize`` with ``{"model", "prompt"}`` or with ``{"model", "messages",
  "tools", "add_generation_prompt": true}`` -> ``{"count", "tokens", "max_model_len"}``.
- llama-cpp-python's server: ``POST /extras/tokenize {"input"}`` -> ``{"tokens"}``, always with
  the model's BOS added and special tokens parsed. It has no template endpoint: messages are
  rendered as ChatML here (``<|im_start|>`` role, content, ``<|im_end|>``), which is a
  good but not exact count (SmolLM2's own template, for one, adds a default system prompt), so
  those counts are marked not exact. A count without special tokens subtracts the count
  of an empty text (the BOS the server adds).

A count is a *plan*: a generator that yields `WireRequest`s and receives their decoded
answers, pure apart from the shared cache. `TokenCounter.run` and `arun` drive a plan over
the runtime's pools with no retries and a short timeout, and differ only by ``await``.
Counts are cached per server root, tokenizer, model and text (a bounded, thread-safe LRU
keyed by a digest of the text), so counting the same text twice sends one request.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from langchain_customllm._client import ProviderClient
from langchain_customllm._exceptions import (
    APIConnectionError,
    APIStatusError,
    CustomLLMError,
    ResponseError,
)
from langchain_customllm._replicas import Replica, ReplicaSet
from langchain_customllm._request import RequestEncoder, server_root
from langchain_customllm._runtime import Runtime
from langchain_customllm._text import excerpt
from langchain_customllm.formats.base import WireRequest
from langchain_customllm.profiles import TokenizerKind

__all__ = ["Count", "Plan", "TokenCounter", "chatml", "clear_cache"]

TOKENIZE_TIMEOUT = 10.0
"""Seconds a tokenizer request may take: counting must never hold an answer up for long."""

_CACHE_SIZE = 4096
# Keys of a chat request body that shape the prompt vLLM's /tokenize renders.
_VLLM_CHAT_KEYS = (
    "messages", "tools", "chat_template", "chat_template_kwargs", "add_generation_prompt",
    "continue_final_message", "documents", "add_special_tokens",
)  # fmt: skip
# Keys of a chat request body that only concern how the answer is sent.
_TRANSPORT_KEYS = ("stream", "stream_options")


@dataclass(frozen=True)
class Count:
    """A token count.

    Attributes:
        tokens: How many tokens.
        exact: Counted as the server counts (its tokenizer and its template); False for a
            rendering of our own (ChatML on llama-cpp-python) or an estimate.
    """

    tokens: int
    exact: bool = True


# A count to make: yields requests, receives each one's decoded answer, returns the count.
Plan = Generator[WireRequest, Any, Count]


class _LRU:
    """A bounded, thread-safe mapping that forgets the least recently used entry."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[tuple[str, ...], Count] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> Count | None:
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
            return found

    def put(self, key: tuple[str, ...], value: Count) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_CACHE = _LRU(_CACHE_SIZE)
# Servers (root, tokenizer) that answered "no such endpoint": not asked again, so a profile
# naming a tokenizer the server lacks costs one failed request, not one per answer.
_MISSING: set[tuple[str, str]] = set()
_MISSING_STATUS = frozenset({404, 405, 501})


def clear_cache() -> None:
    """Forget every cached count and missing endpoint (tests; a server restarted)."""
    _CACHE.clear()
    _MISSING.clear()


def _digest(text: str) -> str:
    # A digest, not the text: cached prompts can be long, and a key is kept for each.
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def chatml(messages: Sequence[Mapping[str, Any]], tools: Sequence[Any] = ()) -> str:
    """Messages (OpenAI dicts) rendered as ChatML with the assistant's turn opened.

    Tools, having no ChatML spelling, are put in a system turn as JSON, as Hermes-style
    ChatML templates do (so their size is counted, roughly).
    """
    parts = []
    if tools:
        parts.append(f"<|im_start|>system\n{json.dumps(list(tools))}<|im_end|>\n")
    for message in messages:
        content = message.get("content")
        if not isinstance(content, str):
            content = json.dumps(content) if content is not None else ""
        if message.get("tool_calls"):
            content += json.dumps(message["tool_calls"])
        parts.append(f"<|im_start|>{message.get('role', 'user')}\n{content}<|im_end|>\n")
    parts.append("<|im_start|>assistant\n")
    return "".join(parts)


# ------------------------------------------------------------------ answers


def _read_tokens(answer: Any, what: str) -> int:
    """The number of tokens in a ``/tokenize`` answer (``count`` or the ``tokens`` list)."""
    if isinstance(answer, dict):
        count = answer.get("count")
        if isinstance(count, int) and not isinstance(count, bool):
            return count
        tokens = answer.get("tokens")
        if isinstance(tokens, list):
            return len(tokens)
    raise ResponseError(f"The server's {what} answer has no tokens: {excerpt(answer)}")


def _read_prompt(answer: Any) -> str:
    """The rendered prompt of an ``/apply-template`` answer."""
    prompt = answer.get("prompt") if isinstance(answer, dict) else None
    if not isinstance(prompt, str):
        raise ResponseError(f"The server's /apply-template answer has no prompt: {excerpt(answer)}")
    return prompt


# ------------------------------------------------------------------ the counter


def _stale(error: CustomLLMError) -> bool:
    """A pooled keep-alive connection the server had closed while it sat idle.

    llama-server closes idle connections after 5 s; a count sent on one just then breaks
    before any answer ("Server disconnected without sending a response"; measured in the
    integration suite, where a stream took about that long). The request never reached the
    server and counting changes nothing there, so it is sent once more; a refused
    connection or a timeout is not resent (the count falls back to an estimate at once).
    """
    cause = error.__cause__
    return isinstance(error, APIConnectionError) and isinstance(
        cause, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError
    )


class _ShortEncoder(RequestEncoder):
    """Every request with its own (short) timeout, also through the model's own pools."""

    def options(self, request: WireRequest, *, stream: bool, user: bool) -> dict[str, Any]:
        options = super().options(request, stream=stream, user=user)
        options["timeout"] = self.timeout
        return options


class TokenCounter:
    """Counts tokens with one runtime's server tokenizer (see the module docstring).

    Args:
        runtime: The model's runtime: its profile names the tokenizer, its pools carry
            the requests (with the model's headers and key).
        kind: The tokenizer endpoint family.
    """

    __slots__ = ("_client", "_root", "kind")

    def __init__(self, runtime: Runtime, kind: TokenizerKind) -> None:
        self.kind = kind
        model_client = runtime.client
        encoder = model_client.encoder
        self._root = server_root(encoder.base_url)
        # No retries: a count that fails falls back to an estimate at once, rather than
        # sending a retry storm at a server that may simply lack the endpoint.
        # The first replica counts for all: they serve the same model.
        short = _ShortEncoder(
            encoder.base_url,
            encoder.headers,
            httpx.Timeout(TOKENIZE_TIMEOUT),
            override=encoder.override,
        )
        self._client = ProviderClient(
            replicas=ReplicaSet([Replica(short)]),
            pools=model_client.pools,
            redact=model_client.redact,
            max_retries=0,
            stream_chunk_timeout=None,
        )

    @classmethod
    def of(cls, runtime: Runtime) -> TokenCounter | None:
        """The counter of the runtime's server, or None if its profile names no tokenizer."""
        kind = runtime.profile.tokenizer
        return None if kind is None else cls(runtime, kind)

    # ---------------------------------------------------------------- plans (pure)

    def text(self, model: str, text: str, *, special: bool) -> Plan:
        """Count a text; ``special`` adds the model's special tokens (BOS) as for a prompt."""
        key = (self._root, self.kind, model, "text+" if special else "text", _digest(text))
        found = _CACHE.get(key)
        if found is not None:
            return found
        if self.kind == "llamacpp":
            body: dict[str, Any] = {"content": text, "add_special": special}
            tokens = _read_tokens((yield WireRequest("/tokenize", body, root=True)), "/tokenize")
        elif self.kind == "vllm":
            body = {"model": model, "prompt": text, "add_special_tokens": special}
            tokens = _read_tokens((yield WireRequest("/tokenize", body, root=True)), "/tokenize")
        else:  # llama-cpp-python always adds the BOS: take away what an empty text gets
            request = WireRequest("/extras/tokenize", {"input": text, "model": model}, root=True)
            tokens = _read_tokens((yield request), "/extras/tokenize")
            if not special and text:
                tokens -= (yield from self.text(model, "", special=True)).tokens
        count = Count(max(tokens, 0))
        _CACHE.put(key, count)
        return count

    def chat(self, model: str, body: Mapping[str, Any]) -> Plan:
        """Count the prompt of a chat request (OpenAI body: messages, tools, ...) as sent."""
        wanted = {k: v for k, v in body.items() if k not in _TRANSPORT_KEYS and v is not None}
        if self.kind == "vllm":
            wanted = {k: v for k, v in wanted.items() if k in _VLLM_CHAT_KEYS}
            wanted.setdefault("add_generation_prompt", True)
        text = json.dumps(wanted, sort_keys=True, default=str)
        key = (self._root, self.kind, model, "chat", _digest(text))
        found = _CACHE.get(key)
        if found is not None:
            return found
        if self.kind == "llamacpp":
            answer = yield WireRequest("/apply-template", wanted, root=True)
            count = yield from self.text(model, _read_prompt(answer), special=True)
        elif self.kind == "vllm":
            request = WireRequest("/tokenize", {"model": model, **wanted}, root=True)
            count = Count(_read_tokens((yield request), "/tokenize"))
        else:
            rendered = chatml(wanted.get("messages") or (), wanted.get("tools") or ())
            # The server's template renders the prompt; ChatML is ours (see module doc).
            counted = yield from self.text(model, rendered, special=False)
            count = Count(counted.tokens, exact=False)
        _CACHE.put(key, count)
        return count

    # ---------------------------------------------------------------- I/O twins

    def _check_present(self, request: WireRequest) -> None:
        if (self._root, self.kind) in _MISSING:
            raise ResponseError(
                f"The server at {self._root} has no {request.path} endpoint (it answered "
                f"so before): server_profile names tokenizer {self.kind!r}"
            )

    def _note_missing(self, error: CustomLLMError) -> None:
        if isinstance(error, APIStatusError) and error.status_code in _MISSING_STATUS:
            _MISSING.add((self._root, self.kind))

    def run(self, plan: Plan) -> Count:
        """Send each request of a plan in turn; its count.

        Raises:
            CustomLLMError: If a request fails or an answer is not what was expected.
        """
        try:
            request = next(plan)
            while True:
                self._check_present(request)
                try:
                    answer = self._client.send(request)
                except CustomLLMError as error:
                    if not _stale(error):
                        self._note_missing(error)
                        raise
                    answer = self._client.send(request)  # on a fresh connection
                request = plan.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def arun(self, plan: Plan) -> Count:
        """Async twin of `run`."""
        try:
            request = next(plan)
            while True:
                self._check_present(request)
                try:
                    answer = await self._client.asend(request)
                except CustomLLMError as error:
                    if not _stale(error):
                        self._note_missing(error)
                        raise
                    answer = await self._client.asend(request)  # on a fresh connection
                request = plan.send(answer)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
