"""Fields and helpers shared by `ChatCustomLLM` and `CustomLLM`, declared once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal

import httpx
from langchain_core.language_models import LangSmithParams
from langchain_core.load.serializable import SerializedConstructor, SerializedNotImplemented
from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)
from typing_extensions import Self

from langchain_customllm._auth import check_header, check_key, mask_headers
from langchain_customllm._counting import MissingUsage
from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._params import CALL_KEYS, check_call_values
from langchain_customllm._runtime import Runtime
from langchain_customllm._serde import HEADER_SECRETS, fold_header_secrets, write_kwargs
from langchain_customllm._settings import construct, read_config, select_entry
from langchain_customllm._value import ModelValue
from langchain_customllm.formats.base import GenerationParams, WireFormat
from langchain_customllm.pricing import Pricing, PricingTable
from langchain_customllm.profiles import (
    ServerProfile,
    adapt_response_format,
    adapt_tools_and_choice,
)

__all__ = ["DEFAULT_BASE_URL", "CustomLLMFields"]

DEFAULT_BASE_URL = "http://127.0.0.1:8765/v1"
"""The embedded default: the local llama.cpp server that ``make demo`` starts."""


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


class CustomLLMFields(ModelValue):
    """Connection and generation settings common to the chat and the text model.

    Every setting is validated when the model is built, when it is reassigned
    (``llm.base_url = ...``) and in ``model_copy(update=...)``; per-call overrides of the
    generation settings go through the same validators. A failure is a
    `ConfigurationError` naming the setting and what it accepts.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    # The ``type`` values of a models.yaml entry this class builds.
    _config_types: ClassVar[tuple[str, ...]] = ()

    model: str = Field(alias="model_name")
    """Model name sent to the server (``--model_alias`` / ``--served-model-name``)."""

    base_url: str = Field(
        default_factory=from_env("CUSTOMLLM_BASE_URL", default=DEFAULT_BASE_URL),
        validate_default=True,
    )
    """API root: the ``/v1`` root for OpenAI-compatible servers. Env ``CUSTOMLLM_BASE_URL``;
    defaults to the local server that ``make demo`` starts (``http://127.0.0.1:8765/v1``)."""

    api_key: SecretStr | None = Field(
        default_factory=secret_from_env("CUSTOMLLM_API_KEY", default=None)
    )
    """Key for servers that need one. Env ``CUSTOMLLM_API_KEY``. Never shown or logged."""

    api_key_header: str = "Authorization"
    """Header that carries the key, e.g. ``x-api-key`` or ``x-litellm-api-key``."""

    api_key_scheme: str | None = "Bearer"
    """Prefix before the key in that header; None sends the bare key."""

    provider: str = "customllm"
    """Provider name reported to tracing (LangSmith ``ls_provider``), e.g. ``"vllm"``."""

    wire_format: str | WireFormat | dict[str, Any] = "openai"
    """How the server spells requests and answers: a registered name (``"openai"``,
    ``"ollama"``, ``"tgi"``), a `WireFormat` instance, or a mapping such as a ``kind: custom``
    description of your own API (validated when the model is built)."""

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

    timeout: float | None = Field(default=120.0, alias="request_timeout", gt=0)
    """Seconds (more than 0) to wait for connect, each read, write and a pooled connection;
    None: forever."""

    max_retries: int = Field(default=2, ge=0)
    """Retries after the first attempt on 408/409/429/5xx and connection errors."""

    default_headers: dict[str, str] | None = Field(default=None, repr=False)
    """Extra headers sent with every request. Hidden from repr; credential-looking ones
    (``Authorization``, ``x-api-key``, ``Cookie``, any name with auth/key/token/secret, and
    those in ``secret_headers``) are masked in dumps, tracing and errors, and serialized by
    ``dumps`` as secrets (``CUSTOMLLM_HEADER_<NAME>``)."""

    secret_headers: list[str] = Field(default_factory=list)
    """More header names whose values are secret (masked and serialized like the key),
    for credentials whose header name does not look like one."""

    extra_body: dict[str, Any] | None = None
    """Vendor parameters merged verbatim into the top level of the JSON body
    (e.g. vLLM's ``repetition_penalty``)."""

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

    pricing: Pricing | PricingTable | dict[str, Any] | str | None = Field(
        default=None, union_mode="left_to_right"
    )
    """Price of the model, in USD, to put each answer's cost in ``usage_metadata``
    (``input_cost``, ``output_cost``, ``total_cost``) and ``response_metadata["cost"]``:
    a `Pricing`; a `PricingTable` (the entry is found by model name); a path to a YAML/JSON
    table file; or a mapping: one price if all its keys are `Pricing` fields
    (``{"input": 0.15, "output": 0.6}``, per million tokens), else a table. None: no cost."""

    streaming: bool = False
    """Use the streaming endpoint even for ``invoke`` (tokens reach callbacks as they come)."""

    logprobs: bool | Annotated[int, Field(ge=0)] | None = None
    """Ask for token log-probabilities (in ``response_metadata["logprobs"]``): True; for the
    text endpoint (``CustomLLM``), OpenAI's legacy count of alternatives per token
    (``logprobs=2``) is accepted too."""

    top_logprobs: int | None = Field(default=None, ge=0)
    """How many alternatives per token to return with ``logprobs`` (0 or more)."""

    server_profile: str | ServerProfile | dict[str, Any] | None = None
    """What the server can do: ``"llamacpp"`` (llama.cpp's ``llama-server``),
    ``"llama-cpp-python"``, ``"vllm"``, ``"litellm"``, ``"ollama"``, ``"generic"``, a
    `ServerProfile`, or overrides ``{"base": "llamacpp", "image_inputs": True}``. Requests
    are adapted to it (tool choice, JSON schema, streaming with tools). None (the default)
    detects the server family at the first call (one ``GET /models``, cached per
    ``base_url``; an unknown server is ``generic``); any explicit value, ``"generic"``
    included, turns detection off. ``customllm probe`` tells which fits a server."""

    stream_chunk_timeout: float | None = Field(default=None, gt=0)
    """Seconds a stream may go without a new event before `StreamTimeoutError` (carrying
    the text so far) is raised, instead of waiting on a server that stopped mid-answer.
    It bounds the stream's body only, not the wait for the first byte; None: only
    ``timeout`` applies to each read."""

    verify: bool | str = True
    """TLS verification: True (system CAs), False (not recommended), or a CA bundle path."""

    cert: str | tuple[str, str] | None = None
    """Client certificate for mTLS: a PEM file with the key, or ``(cert_file, key_file)``."""

    http_client: httpx.Client | None = Field(default=None, exclude=True, repr=False)
    """Your own ``httpx.Client`` (proxies, TLS, transports); not closed by us."""

    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True, repr=False)
    """Your own ``httpx.AsyncClient``; not closed by us."""

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        url = value.rstrip("/")
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigurationError(
                "base_url must be an http:// or https:// URL with a host "
                "(e.g. http://127.0.0.1:8000/v1)"
            )
        if parsed.userinfo:
            # It would be quoted in every error, log line and trace: not a place for secrets.
            raise ConfigurationError(
                "base_url holds credentials (user:password@); pass them as api_key or in "
                "default_headers, which are kept secret"
            )
        return url

    @model_validator(mode="before")
    @classmethod
    def _fold_header_secrets(cls, data: Any) -> Any:
        return fold_header_secrets(data)

    @field_validator("default_headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        # Refused here, not by httpx at call time with the value (a secret) in its message.
        for name, text in (value or {}).items():
            check_header(name, text, "default_headers")
        return value

    @model_validator(mode="after")
    def _check_key(self) -> Self:
        check_key(self.api_key, self.api_key_header, self.api_key_scheme)
        return self

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """Serializable with `dumpd`: the key is written as a reference to its env variable."""
        return True

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Tell LangChain's serializer which values are secrets (and their env variables).

        Besides ``api_key``, credential-looking ``default_headers`` (gateway keys are often
        passed that way) are written as secret references too (see `_serde`).
        """
        return {"api_key": "CUSTOMLLM_API_KEY", HEADER_SECRETS: "CUSTOMLLM_HEADER_*"}

    @field_serializer("default_headers")
    def _mask_headers(self, headers: dict[str, str] | None) -> dict[str, str] | None:
        return mask_headers(headers, self.secret_headers)

    def to_json(self) -> SerializedConstructor | SerializedNotImplemented:
        """Serialize for ``dumps``; a price object is written as the data it was built from."""
        # Serializable (langchain-core) comes after this class in the models' MRO.
        data: SerializedConstructor | SerializedNotImplemented = super().to_json()  # type: ignore[misc]
        kwargs = data.get("kwargs")
        if isinstance(kwargs, dict):
            write_kwargs(kwargs, self.secret_headers)
        return data

    @classmethod
    def from_config(
        cls, source: str | os.PathLike[str] | Mapping[str, Any], name: str | None = None
    ) -> Self:
        """Build this model from a YAML/JSON file or mapping (see `langchain_customllm.config`).

        Args:
            source: A file path or a mapping: either one model's settings, or a file with
                ``models:`` (and optional shared ``formats:``).
            name: Which entry of ``models:`` to build; optional if there is only one.
        """
        config = read_config(source)
        name, spec, keys = select_entry(config, name)
        if not isinstance(spec, Mapping):
            raise ConfigurationError(f"{config.where(*keys)}expected a mapping of settings")
        kind = spec.get("type")
        if kind is not None and kind not in cls._config_types:
            raise ConfigurationError(
                f"{config.where(*keys, 'type')}model {name!r} is of type {kind!r}, not a "
                f"{cls.__name__}: build it with load_models() or the other class"
            )
        settings = {k: v for k, v in spec.items() if k != "type"}
        return construct(cls, name or cls.__name__, settings, config, keys)

    # ------------------------------------------------------------------ helpers

    def _resolve_stop(self, stop: list[str] | None) -> list[str] | None:
        return stop if stop is not None else self.stop

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
