"""Token accounting around a call: usage the server did not send, counts, prompts too long.

- `fill_usage` / `afill_usage`: an answer that came without usage (llama-cpp-python's
  streams, gateways that drop it, formats without usage) gets it counted with the server's
  tokenizer where the profile names one (``usage_source: "tokenized"``), else langchain-core's
  approximate count (``"estimated"``). Counting never fails the answer: any error falls back
  to the estimate, logged at debug level.
- `check_fits` / `acheck_fits`: with ``check_context_window``, a prompt that with
  ``max_tokens`` does not fit the profile's ``context_window`` is refused before it is sent.
- `count_text` / `count_messages` (and ``a`` twins): ``get_num_tokens*`` of the models.

Each pair of twins differs only by ``await``; what to count and the estimates are pure.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import BaseMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.utils.function_calling import convert_to_openai_tool

from langchain_customllm._assembly import Assembler, Piece
from langchain_customllm._exceptions import ContextLengthExceededError
from langchain_customllm._runtime import Runtime
from langchain_customllm._structured import format_tools
from langchain_customllm._tokens import Count, Plan, TokenCounter
from langchain_customllm.formats.base import TokenUsage
from langchain_customllm.formats.openai import messages_to_openai
from langchain_customllm.profiles import ServerProfile

__all__ = [
    "MissingUsage",
    "Prompt",
    "acheck_fits",
    "acount_messages",
    "acount_text",
    "afill_usage",
    "check_fits",
    "count_messages",
    "count_text",
    "fill_usage",
    "tools_as_openai",
]

logger = logging.getLogger("langchain_customllm")

_CHARS_PER_TOKEN = 4  # langchain-core's count_tokens_approximately default

MissingUsage = Literal["tokenize", "estimate", "none"]
"""The ``missing_usage`` setting: what to do for an answer that came without usage."""


@dataclass(frozen=True)
class Prompt:
    """What one call sends, as needed to count its tokens.

    Attributes:
        model: The model name sent to the server.
        text: The prompt of a text completion (`CustomLLM`), or None for a chat.
        messages: The chat messages (for estimates), empty for a text completion.
        chat_body: The chat request as an OpenAI body (``messages``, ``tools``,
            ``tool_choice``, ``chat_template_kwargs``, ...), what the server's template reads.
        tools: The request's tools in OpenAI's format (for estimates).
        max_tokens: The cap on generated tokens, if any.
        missing_usage: For an answer without usage: ``"tokenize"`` (the server's tokenizer,
            else an estimate), ``"estimate"`` or ``"none"`` (leave it out).
        check_context: Refuse a prompt that does not fit ``context_window`` before sending.
    """

    model: str
    text: str | None = None
    messages: Sequence[BaseMessage] = ()
    chat_body: dict[str, Any] = field(default_factory=dict)
    tools: Sequence[dict[str, Any]] = ()
    max_tokens: int | None = None
    missing_usage: MissingUsage = "tokenize"
    check_context: bool = False


def tools_as_openai(tools: Sequence[Any] | None, profile: ServerProfile) -> list[dict[str, Any]]:
    """Tools of any LangChain kind as `bind_tools` would send them to this server."""
    if not tools:
        return []
    if profile.tool_calling:
        return format_tools(tools, profile)
    return [convert_to_openai_tool(tool) for tool in tools]


# ------------------------------------------------------------------ pure: estimates, plans


def estimate_text(text: str) -> int:
    """langchain-core's approximate count of a text (4 characters a token)."""
    return math.ceil(len(text) / _CHARS_PER_TOKEN)


def estimate_prompt(prompt: Prompt) -> int:
    """langchain-core's approximate count of a prompt (messages, and tools as JSON)."""
    if prompt.text is not None:
        return estimate_text(prompt.text)
    tools = sum(estimate_text(json.dumps(tool)) for tool in prompt.tools)
    return count_tokens_approximately(list(prompt.messages)) + tools


def _prompt_plan(counter: TokenCounter, prompt: Prompt) -> Plan:
    if prompt.text is not None:
        return counter.text(prompt.model, prompt.text, special=True)
    body = prompt.chat_body or {"messages": messages_to_openai(prompt.messages)}
    return counter.chat(prompt.model, body)


# Servers that count the end-of-generation token (or a stop sequence's last token) the
# model sampled among the completion tokens: measured on llama.cpp's llama-server (the
# answer re-tokenizes to one token less than its completion_tokens); vLLM keeps it in the
# output's token ids. llama-cpp-python stops before appending it.
_COUNTS_END_TOKEN = frozenset({"llamacpp", "vllm"})


def _completion(piece: Piece, prompt: Prompt, counted: int, kind: str | None) -> int:
    finish = piece.metadata.get("finish_reason")
    # A cut at max_tokens is exactly max_tokens generated, whatever the text re-tokenizes to.
    if finish == "length" and prompt.max_tokens is not None:
        return prompt.max_tokens
    if finish in ("stop", "tool_calls") and kind in _COUNTS_END_TOKEN:
        return counted + 1
    return counted


def _usage(prompt_tokens: int, completion_tokens: int) -> TokenUsage:
    return TokenUsage(prompt_tokens, completion_tokens, prompt_tokens + completion_tokens)


def _estimated(assembler: Assembler, piece: Piece, prompt: Prompt) -> Piece:
    completion = _completion(piece, prompt, estimate_text(assembler.generated_text), None)
    return assembler.add_usage(piece, _usage(estimate_prompt(prompt), completion), "estimated")


def _tokenized(
    counter: TokenCounter,
    assembler: Assembler,
    piece: Piece,
    prompt: Prompt,
    counts: tuple[Count, Count],
) -> Piece:
    asked, generated = counts
    completion = _completion(piece, prompt, generated.tokens, counter.kind)
    # Counted by the server's tokenizer, as the issue asks of every server that has one; on
    # llama-cpp-python (no template endpoint) the prompt is rendered as ChatML first, which
    # is its own template for ChatML models such as SmolLM2 (docs/cost.md says so).
    return assembler.add_usage(piece, _usage(asked.tokens, completion), "tokenized")


def _counter_for_usage(runtime: Runtime, prompt: Prompt) -> TokenCounter | None:
    return TokenCounter.of(runtime) if prompt.missing_usage == "tokenize" else None


def _fallback(what: str, error: Exception) -> None:
    # Counting is a courtesy: the answer is what matters, so a failure is only noted.
    logger.debug("Token counting failed (%s), estimated instead: %r", what, error)


# ------------------------------------------------------------------ missing usage


def fill_usage(
    runtime: Runtime, prompt: Prompt | None, assembler: Assembler, piece: Piece
) -> Piece:
    """The final piece, with usage counted if the server sent none (never raises)."""
    if piece.usage is not None or prompt is None or prompt.missing_usage == "none":
        return piece
    counter = _counter_for_usage(runtime, prompt)
    if counter is not None:
        try:
            asked = counter.run(_prompt_plan(counter, prompt))
            generated = counter.run(
                counter.text(prompt.model, assembler.generated_text, special=False)
            )
            return _tokenized(counter, assembler, piece, prompt, (asked, generated))
        except Exception as error:  # any failure: see _fallback
            _fallback("usage", error)
    return _estimated(assembler, piece, prompt)


async def afill_usage(
    runtime: Runtime, prompt: Prompt | None, assembler: Assembler, piece: Piece
) -> Piece:
    """Async twin of `fill_usage`."""
    if piece.usage is not None or prompt is None or prompt.missing_usage == "none":
        return piece
    counter = _counter_for_usage(runtime, prompt)
    if counter is not None:
        try:
            asked = await counter.arun(_prompt_plan(counter, prompt))
            generated = await counter.arun(
                counter.text(prompt.model, assembler.generated_text, special=False)
            )
            return _tokenized(counter, assembler, piece, prompt, (asked, generated))
        except Exception as error:  # any failure: see _fallback
            _fallback("usage", error)
    return _estimated(assembler, piece, prompt)


# ------------------------------------------------------------------ prompts too long


def _refuse_if_too_long(runtime: Runtime, prompt: Prompt, count: Count) -> None:
    window = runtime.profile.context_window
    if window is None:
        return
    wanted = prompt.max_tokens or 0
    # The server needs room for at least one generated token.
    if count.tokens + max(wanted, 1) <= window:
        return
    how = "counted by the server's tokenizer" if count.exact else "estimated"
    asked = f" plus max_tokens={wanted}" if wanted else ""
    raise ContextLengthExceededError(
        f"The prompt is {count.tokens} tokens ({how}){asked}, which does not fit the "
        f"server's context window of {window} tokens (server_profile {runtime.profile.name!r}, "
        "context_window) -- shorten the prompt (trim_messages(messages, token_counter=llm, "
        f"max_tokens=...)), lower max_tokens, or set check_context_window=False to send it anyway",
        partial_text="",
    )


def check_fits(runtime: Runtime, prompt: Prompt | None) -> None:
    """Refuse, before sending, a prompt too long for the context window (if asked to).

    Raises:
        ContextLengthExceededError: Saying the sizes and what to do.
    """
    if prompt is None or not prompt.check_context or runtime.profile.context_window is None:
        return
    counter = TokenCounter.of(runtime)
    count = None
    if counter is not None:
        try:
            count = counter.run(_prompt_plan(counter, prompt))
        except Exception as error:  # any failure: see _fallback
            _fallback("context check", error)
    _refuse_if_too_long(runtime, prompt, count or Count(estimate_prompt(prompt), exact=False))


async def acheck_fits(runtime: Runtime, prompt: Prompt | None) -> None:
    """Async twin of `check_fits`."""
    if prompt is None or not prompt.check_context or runtime.profile.context_window is None:
        return
    counter = TokenCounter.of(runtime)
    count = None
    if counter is not None:
        try:
            count = await counter.arun(_prompt_plan(counter, prompt))
        except Exception as error:  # any failure: see _fallback
            _fallback("context check", error)
    _refuse_if_too_long(runtime, prompt, count or Count(estimate_prompt(prompt), exact=False))


# ------------------------------------------------------------------ get_num_tokens*

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def _warn_once(runtime: Runtime, reason: str) -> None:
    key = (runtime.client.base_url, reason)
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(
        f"Token counts for {runtime.client.base_url} are estimates: {reason}",
        UserWarning,
        stacklevel=5,  # the caller of get_num_tokens*
    )


def _no_tokenizer(runtime: Runtime) -> str:
    return (
        f"server_profile {runtime.profile.name!r} names no tokenizer endpoint, so "
        "langchain-core's approximate count (4 characters a token) is used. For exact counts, "
        "use the profile of your server ('llamacpp' for llama.cpp's llama-server, 'vllm', "
        "'llama-cpp-python'), or server_profile={'base': ..., 'tokenizer': ...}"
    )


def _failed(runtime: Runtime, error: Exception) -> str:
    return (
        f"its tokenizer ({runtime.profile.tokenizer}) could not be asked ({type(error).__name__}: "
        f"{error}), so langchain-core's approximate count is used"
    )


_CHATML_NOTE = (
    "llama-cpp-python's server has no chat-template endpoint, so messages are counted "
    "with its tokenizer as ChatML, which may differ from the model's own template by a "
    "few tokens"
)


def _chat_prompt(
    runtime: Runtime, model: str, messages: Sequence[BaseMessage], tools: Sequence[Any] | None
) -> Prompt:
    openai_tools = tools_as_openai(tools, runtime.profile)
    body: dict[str, Any] = {"messages": messages_to_openai(messages)}
    if openai_tools:
        body["tools"] = openai_tools
    return Prompt(model=model, messages=messages, chat_body=body, tools=openai_tools)


def _settle(runtime: Runtime, count: Count | None, error: Exception | None, estimate: int) -> int:
    if count is not None:
        if not count.exact:
            _warn_once(runtime, _CHATML_NOTE)
        return count.tokens
    _warn_once(runtime, _failed(runtime, error) if error is not None else _no_tokenizer(runtime))
    return estimate


def count_text(runtime: Runtime, model: str, text: str, *, special: bool) -> int:
    """Tokens in a text by the server's tokenizer, else estimated (with a one-time warning)."""
    counter, count, error = TokenCounter.of(runtime), None, None
    if counter is not None:
        try:
            count = counter.run(counter.text(model, text, special=special))
        except Exception as exc:  # an estimate, with a warning why
            error = exc
    return _settle(runtime, count, error, estimate_text(text))


async def acount_text(runtime: Runtime, model: str, text: str, *, special: bool) -> int:
    """Async twin of `count_text`."""
    counter, count, error = TokenCounter.of(runtime), None, None
    if counter is not None:
        try:
            count = await counter.arun(counter.text(model, text, special=special))
        except Exception as exc:  # an estimate, with a warning why
            error = exc
    return _settle(runtime, count, error, estimate_text(text))


def count_messages(
    runtime: Runtime, model: str, messages: Sequence[BaseMessage], tools: Sequence[Any] | None
) -> int:
    """Prompt tokens of messages (and tools) as the server's template renders them."""
    prompt = _chat_prompt(runtime, model, messages, tools)
    counter, count, error = TokenCounter.of(runtime), None, None
    if counter is not None:
        try:
            count = counter.run(_prompt_plan(counter, prompt))
        except Exception as exc:  # an estimate, with a warning why
            error = exc
    return _settle(runtime, count, error, estimate_prompt(prompt))


async def acount_messages(
    runtime: Runtime, model: str, messages: Sequence[BaseMessage], tools: Sequence[Any] | None
) -> int:
    """Async twin of `count_messages`."""
    prompt = _chat_prompt(runtime, model, messages, tools)
    counter, count, error = TokenCounter.of(runtime), None, None
    if counter is not None:
        try:
            count = await counter.arun(_prompt_plan(counter, prompt))
        except Exception as exc:  # an estimate, with a warning why
            error = exc
    return _settle(runtime, count, error, estimate_prompt(prompt))
