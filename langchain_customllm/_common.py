"""Fields and helpers shared by `ChatCustomLLM` and `CustomLLM`, declared once."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal

from langchain_core.language_models import LangSmithParams
from langchain_core.runnables import ensure_config
from pydantic import Field

from langchain_customllm._connection import DEFAULT_BASE_URL, ConnectionFields
from langchain_customllm._counting import MissingUsage
from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._params import CALL_KEYS, check_call_values
from langchain_customllm._runtime import Runtime
from langchain_customllm.formats.base import GenerationParams, WireFormat
from langchain_customllm.profiles import adapt_response_format, adapt_tools_and_choice

# The keyword `stream`/`astream` pass the route key to `_stream` with (never sent).
ROUTE_KWARG = "customllm_route"

__all__ = ["DEFAULT_BASE_URL", "CustomLLMFields"]


def _check_format_can(wire: WireFormat, *, tools: bool, response_format: bool) -> None:
    """Refuse what the wire format cannot send, rather than drop it silently."""
    if tools and not wire.supports_tools:
        raise ConfigurationError(
            f"wire_format {wire.name!r} cannot send tools; use an OpenAI-compatible "
            "endpoint (wire_format='openai') for tool calling"
        )
    if response_format and not wire.supports_response_format:
        raise ConfigurationError(
            f"wire_format {wire.name!r} cannot ask for JSON output (response_format); "
            "use method='function_calling' on a server with tools, or the 'openai' format"
        )


class CustomLLMFields(ConnectionFields):
    """Generation settings common to the chat and the text model (on top of the connection's).

    Every setting is validated when the model is built, when it is reassigned
    (``llm.base_url = ...``) and in ``model_copy(update=...)``; per-call overrides of the
    generation settings go through the same validators. A failure is a
    `ConfigurationError` naming the setting and what it accepts.
    """

    temperature: float | None = Field(default=None, ge=0)
    """Sampling temperature (0 or more); None leaves the server's default."""

    max_tokens: int | None = Field(default=None, ge=1)
    """Cap on generated tokens (1 or more), sent under the format's name for it; None
    leaves the server's default."""

    top_p: float | None = Field(default=None, ge=0, le=1)
    """Nucleus sampling probability mass, 0 to 1; None leaves the server's default."""

    seed: int | None = None
    """Random seed for servers that support deterministic sampling."""

    stop: list[str] | None = Field(default=None, alias="stop_sequences")
    """Stop sequences: sent to the server and enforced client-side (also across chunks)."""

    include_stop_sequence: bool = False
    """Keep the matched stop sequence at the end of the text (also accepted per call).

    Most servers cut the stop sequence away, so with this on the stops are not sent to
    the server (unless its wire format keeps them, as TGI's does) and are enforced
    client-side only: the server generates until it ends or reaches ``max_tokens``, which
    costs tokens past the stop. Set ``max_tokens``."""

    stream_usage: bool = True
    """Ask for token usage in streams (``stream_options.include_usage``) on every server."""

    # -- token accounting (see docs/cost.md and langchain_customllm._counting) --
    missing_usage: MissingUsage = "tokenize"
    """What to do when an answer comes without usage (llama-cpp-python's streams, gateways
    that drop it, formats without counts): ``"tokenize"`` counts it with the server's own
    tokenizer where the server profile names one (one or two small requests to its
    ``/tokenize`` after the answer; ``usage_source: "tokenized"``), else estimates it;
    ``"estimate"`` sends no extra request and uses langchain-core's approximate count
    (``usage_source: "estimated"``); ``"none"`` leaves the usage out."""

    check_context_window: bool = False
    """Before sending, count the prompt (with the server's tokenizer where the profile has
    one) and raise `ContextLengthExceededError` if it, plus ``max_tokens``, does not fit the
    profile's ``context_window``. Off by default: it costs a request or two before every
    call, and llama.cpp and vLLM refuse such prompts themselves; turn it on for servers that
    fail silently (an empty stream, a truncated prompt). Needs ``context_window`` known."""

    streaming: bool = False
    """Use the streaming endpoint even for ``invoke`` (tokens reach callbacks as they come)."""

    logprobs: bool | Annotated[int, Field(ge=0)] | None = None
    """Ask for token log-probabilities (in ``response_metadata["logprobs"]``): True; for the
    text endpoint (``CustomLLM``), OpenAI's legacy count of alternatives per token
    (``logprobs=2``) is accepted too."""

    top_logprobs: int | None = Field(default=None, ge=0)
    """How many alternatives per token to return with ``logprobs`` (0 or more)."""

    stream_chunk_timeout: float | None = Field(default=None, gt=0)
    """Seconds a stream may go without a new event before `StreamTimeoutError` (carrying
    the text so far) is raised, instead of waiting on a server that stopped mid-answer.
    It bounds the stream's body only, not the wait for the first byte; None: only
    ``timeout`` applies to each read."""

    # ------------------------------------------------------------------ helpers

    def _resolve_stop(self, stop: list[str] | None) -> list[str] | None:
        return stop if stop is not None else self.stop

    def _route(self, kwargs: dict[str, Any], run_manager: Any) -> str | None:
        """This call's route key (``sticky_key`` in the run's metadata), taken out of kwargs.

        ``generate`` paths hand us the run manager, which holds the metadata; a chat
        ``stream`` does not, so `stream`/`astream` pass the key in as a keyword.
        """
        route: str | None = kwargs.pop(ROUTE_KWARG, None)
        if route is None and self.sticky_key is not None and run_manager is not None:
            value = (run_manager.metadata or {}).get(self.sticky_key)
            route = None if value is None else str(value)
        return route

    def _with_route(self, config: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.sticky_key is None:
            return kwargs
        # ensure_config copies plain ``configurable`` values into the metadata, as runs do.
        value = (ensure_config(config).get("metadata") or {}).get(self.sticky_key)
        return kwargs if value is None else {**kwargs, ROUTE_KWARG: str(value)}

    def stream(
        self, input: Any, config: Any = None, *, stop: list[str] | None = None, **kwargs: Any
    ) -> Iterator[Any]:
        """Stream an answer (see the model classes); ``sticky_key`` routing applies."""
        routed = self._with_route(config, kwargs)
        return super().stream(input, config, stop=stop, **routed)  # type: ignore[misc,no-any-return]

    def astream(
        self, input: Any, config: Any = None, *, stop: list[str] | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """Async twin of `stream`."""
        routed = self._with_route(config, kwargs)
        return super().astream(input, config, stop=stop, **routed)  # type: ignore[misc,no-any-return]

    def _params(
        self, runtime: Runtime, stop: list[str] | None, kwargs: dict[str, Any]
    ) -> tuple[GenerationParams, bool]:
        """Merge fields with per-call overrides: (request params, include_stop)."""
        extra: dict[str, Any] = dict(self.extra_body or {})
        tools: tuple[dict[str, Any], ...] = ()
        tool_choice = response_format = None
        call: dict[str, Any] = {}
        if kwargs:  # the common call has none: skip the merging
            call = check_call_values(type(self), kwargs)
            call_extra = kwargs.get("extra_body")
            if call_extra:
                extra.update(call_extra)
            for key, value in kwargs.items():
                if key in CALL_KEYS or key.startswith("ls_"):
                    continue
                extra[key] = value
            _check_format_can(
                runtime.wire,
                tools=bool(kwargs.get("tools")),
                response_format="response_format" in kwargs,
            )
            # Spelled for the profile now, not at bind time: see `_detect`.
            tools, tool_choice = adapt_tools_and_choice(
                kwargs.get("tools") or (), kwargs.get("tool_choice"), runtime.profile
            )
            response_format = kwargs.get("response_format")
            if response_format is not None:
                response_format = adapt_response_format(response_format, runtime.profile)
        stops = self._resolve_stop(stop)
        include = bool(call.get("include_stop_sequence", self.include_stop_sequence))
        # Most servers cut the stop sequence away (llama.cpp, vLLM), so it could not be put
        # back: to keep it, stops are enforced on our side only, unless the server keeps it.
        wire = runtime.wire
        send_stop = wire.sends_stop_to_server and (not include or wire.keeps_stop_text)
        params = GenerationParams(
            model=call.get("model", self.model),
            temperature=call.get("temperature", self.temperature),
            max_tokens=call.get("max_tokens", self.max_tokens),
            top_p=call.get("top_p", self.top_p),
            seed=call.get("seed", self.seed),
            stop=tuple(stops or ()) if send_stop else (),
            stream_usage=call.get("stream_usage", self.stream_usage),
            extra_body=extra,
            tools=tools,
            tool_choice=tool_choice if tools else None,
            response_format=response_format,
            logprobs=call.get("logprobs", self.logprobs),
            top_logprobs=call.get("top_logprobs", self.top_logprobs),
        )
        return params, include

    def _check_format_can(self, *, tools: bool, response_format: bool) -> None:
        """Refuse what the wire format cannot send, rather than drop it silently."""
        _check_format_can(self._runtime().wire, tools=tools, response_format=response_format)

    def _identifying(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "base_url": self.base_url,
            "provider": self.provider,
            "wire_format": self._runtime().wire.name,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            "seed": self.seed,
            "stop": self.stop,
        }

    def _ls_common(
        self, stop: list[str] | None, kwargs: dict[str, Any], model_type: Literal["chat", "llm"]
    ) -> LangSmithParams:
        out = LangSmithParams(
            ls_provider=self.provider,
            ls_model_name=kwargs.get("model") or self.model,
            ls_model_type=model_type,
        )
        temperature = kwargs.get("temperature", self.temperature)
        if temperature is not None:
            out["ls_temperature"] = temperature
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if max_tokens is not None:
            out["ls_max_tokens"] = max_tokens
        stops = self._resolve_stop(stop)
        if stops:
            out["ls_stop"] = stops
        return out


# The settings validated on reassignment (see `ModelValue`): all of this class's fields.
CustomLLMFields._settings = frozenset(CustomLLMFields.model_fields)
