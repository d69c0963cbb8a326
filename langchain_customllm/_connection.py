"""Connection settings shared by every model kind: chat, text and embeddings.

`ConnectionFields` declares, once, how to reach a server and speak to it: the URL, the key
and headers, TLS, timeouts and retries, the wire format, the server profile and the prices.
The chat and text models add their generation settings on top (`_common.CustomLLMFields`);
the embeddings model adds its batching settings (`embeddings.CustomLLMEmbeddings`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import httpx
from langchain_core.load.serializable import SerializedConstructor, SerializedNotImplemented
from langchain_core.utils import from_env, secret_from_env
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_serializer,
    field_validator,
    model_validator,
)
from typing_extensions import Self

from langchain_customllm._auth import check_header, check_key, mask_headers
from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._health import acheck, check
from langchain_customllm._http import http_url
from langchain_customllm._replicas import ReplicaStats
from langchain_customllm._serde import (
    ENDPOINT_SECRETS,
    HEADER_SECRETS,
    fold_header_secrets,
    write_kwargs,
)
from langchain_customllm._settings import construct, read_config, select_entry
from langchain_customllm._value import ModelValue
from langchain_customllm.formats.base import WireFormat
from langchain_customllm.pricing import Pricing, PricingTable
from langchain_customllm.profiles import ServerProfile

__all__ = ["DEFAULT_BASE_URL", "ConnectionFields", "Endpoint"]

DEFAULT_BASE_URL = "http://127.0.0.1:8765/v1"
"""The embedded default: the local llama.cpp server that ``make demo`` starts."""


def _check_url(value: str, setting: str = "base_url") -> str:
    url = value.rstrip("/")
    parsed = http_url(url)
    if parsed is None:
        raise ConfigurationError(
            f"{setting} must be an http:// or https:// URL with a host "
            "(e.g. http://127.0.0.1:8000/v1)"
        )
    if parsed.userinfo:
        # It would be quoted in every error, log line and trace: not a place for secrets.
        raise ConfigurationError(
            f"{setting} holds credentials (user:password@); pass them as api_key or in "
            "default_headers, which are kept secret"
        )
    return url


def _distinct(urls: list[str], setting: str) -> list[str]:
    seen = {u for u in urls if urls.count(u) > 1}
    if seen:
        raise ConfigurationError(
            f"{setting} names {sorted(seen)[0]} twice: list each replica once (give it a "
            "higher weight in endpoints to send it more)"
        )
    return urls


class Endpoint(BaseModel):
    """One replica of a model with settings of its own (an item of ``endpoints``)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str
    """The replica's API root, as ``base_url``."""

    api_key: SecretStr | None = None
    """Its own key; None uses the model's ``api_key``. Never shown or logged."""

    weight: float = Field(default=1.0, gt=0)
    """Its share of the requests (more than 0): relative to the others' weights."""

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        return _check_url(value, "endpoints base_url")


class ConnectionFields(ModelValue):
    """How to reach a server and speak to it: the settings every model kind shares.

    Every setting is validated when the model is built, when it is reassigned
    (``model.base_url = ...``) and in ``model_copy(update=...)``. A failure is a
    `ConfigurationError` naming the setting and what it accepts.
    """

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True)

    # The ``type`` values of a models.yaml entry this class builds.
    _config_types: ClassVar[tuple[str, ...]] = ()

    model: str = Field(alias="model_name")
    """Model name sent to the server (``--model_alias`` / ``--served-model-name``)."""

    base_url: str | list[str] = Field(
        default_factory=from_env("CUSTOMLLM_BASE_URL", default=DEFAULT_BASE_URL),
        validate_default=True,
    )
    """API root: the ``/v1`` root for OpenAI-compatible servers. Env ``CUSTOMLLM_BASE_URL``;
    defaults to the local server that ``make demo`` starts (``http://127.0.0.1:8765/v1``).
    A list of roots is replicas of one model, balanced by ``routing`` (docs/replicas.md)."""

    endpoints: list[Endpoint] | None = None
    """Replicas with a key or weight of their own, instead of ``base_url`` (give one or the
    other): ``[{"base_url": ..., "api_key": ..., "weight": 2}]``."""

    routing: Literal["least_busy", "round_robin", "weighted"] = "least_busy"
    """How replicas share requests: the fewest in flight per unit of weight, in turn, or in
    proportion to their weights."""

    sticky_key: str | None = None
    """A key of the run's metadata or ``configurable`` values whose value keeps calls on one
    replica while it is healthy, for the server's prefix cache."""

    replica_cooldown: float = Field(default=5.0, gt=0)
    """Seconds a replica rests after a failure (a 429's ``Retry-After`` instead), doubled each
    time the one request that then tries it fails, up to max(60, this)."""

    health_check: str | None = None
    """A path from the server root (``"/health"``, ``"/v1/models"``) asked before a rested
    replica rejoins, and by ``check_replicas()``; None lets a request try it."""

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

    pricing: Pricing | PricingTable | dict[str, Any] | str | None = Field(
        default=None, union_mode="left_to_right"
    )
    """Price of the model, in USD, to put each answer's cost in ``usage_metadata``
    (``input_cost``, ``output_cost``, ``total_cost``) and ``response_metadata["cost"]``:
    a `Pricing`; a `PricingTable` (the entry is found by model name); a path to a YAML/JSON
    table file; or a mapping: one price if all its keys are `Pricing` fields
    (``{"input": 0.15, "output": 0.6}``, per million tokens), else a table. None: no cost."""

    server_profile: str | ServerProfile | dict[str, Any] | None = None
    """What the server can do: ``"llamacpp"`` (llama.cpp's ``llama-server``),
    ``"llama-cpp-python"``, ``"vllm"``, ``"litellm"``, ``"ollama"``, ``"generic"``, a
    `ServerProfile`, or overrides ``{"base": "llamacpp", "image_inputs": True}``. Requests
    are adapted to it (tool choice, JSON schema, streaming with tools). None (the default)
    detects the server family at the first call (one ``GET /models``, cached per
    ``base_url``; an unknown server is ``generic``); any explicit value, ``"generic"``
    included, turns detection off. ``customllm probe`` tells which fits a server."""

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
    def _check_base_url(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            return _check_url(value)
        if not value:
            raise ConfigurationError("base_url is an empty list: give at least one URL")
        urls = _distinct([_check_url(url) for url in value], "base_url")
        return urls[0] if len(urls) == 1 else urls

    @field_validator("endpoints")
    @classmethod
    def _check_endpoints(cls, value: list[Endpoint] | None) -> list[Endpoint] | None:
        if value is not None:
            if not value:
                raise ConfigurationError("endpoints is an empty list: give at least one")
            _distinct([e.base_url for e in value], "endpoints")
        return value

    @field_validator("health_check")
    @classmethod
    def _check_health_path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ConfigurationError(
                f"health_check must be a path from the server root starting with '/', "
                f"such as '/health', not {value!r}"
            )
        return value

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
        for endpoint in self.endpoints or ():
            check_key(endpoint.api_key, self.api_key_header, self.api_key_scheme)
        if self.endpoints and "base_url" in self.model_fields_set:
            raise ConfigurationError(
                "base_url and endpoints are both set: give the replicas one way, either "
                "base_url=[...] or endpoints=[{'base_url': ...}, ...]"
            )
        return self

    @property
    def replica_urls(self) -> list[str]:
        """Every replica's API root, in order (one for a single ``base_url``)."""
        if self.endpoints:
            return [endpoint.base_url for endpoint in self.endpoints]
        return self.base_url if isinstance(self.base_url, list) else [self.base_url]

    def replica_stats(self) -> list[ReplicaStats]:
        """Each replica's in-flight requests, errors, latency and health, now."""
        return self._runtime().client.replicas.stats()

    def check_replicas(self) -> list[ReplicaStats]:
        """Health-check every replica now (``health_check``, else ``/health``).

        One that answers rejoins at once; one that does not rests. Returns the stats after.
        """
        check(self._runtime().client)
        return self.replica_stats()

    async def acheck_replicas(self) -> list[ReplicaStats]:
        """Async twin of `check_replicas`."""
        await acheck(self._runtime().client)
        return self.replica_stats()

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
        return {
            "api_key": "CUSTOMLLM_API_KEY",
            HEADER_SECRETS: "CUSTOMLLM_HEADER_*",
            ENDPOINT_SECRETS: "CUSTOMLLM_ENDPOINT_*_API_KEY",
        }

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
