"""What a model's settings build to make calls, in one object that belongs to those settings.

A `Runtime` is the resolved wire format, server profile and price source, the request
headers and the redaction of their secrets, and the provider client over its own pools.
Without a ``server_profile`` its profile is the one detected at the first call (see
`_detect`): that detection is runtime state too, so a copy asks again or reuses the
process-wide answer for its ``base_url``, and a reassigned ``base_url`` asks anew. A
model builds it from its fields when it is validated, again when one of its settings is
reassigned, and lazily after a copy or an unpickle: a copy never shares the original's
pools, TLS context or key, and what a call uses is always what the model's settings say
(the model docs call this "a model is a value"). Nothing here is pickled: pools and TLS
contexts are process state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import SecretStr

from langchain_customllm._auth import Redactor, build_headers, warn_if_cleartext
from langchain_customllm._client import ProviderClient
from langchain_customllm._detect import Detector
from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._http import HttpPools, tls_context
from langchain_customllm._replicas import Replica, ReplicaSet
from langchain_customllm._request import RequestEncoder
from langchain_customllm.formats.base import WireFormat, get_format
from langchain_customllm.formats.ollama import configured_context
from langchain_customllm.pricing import Pricing, PricingTable, resolve_pricing
from langchain_customllm.profiles import ServerProfile, get_profile

__all__ = ["Runtime", "RuntimeSettings"]

_T = TypeVar("_T")


class RuntimeSettings(Protocol):
    """The settings a runtime is built from (the model classes' fields of those names)."""

    model: str
    base_url: str | list[str]
    endpoints: list[Any] | None
    routing: str
    replica_cooldown: float
    health_check: str | None
    api_key: SecretStr | None
    api_key_header: str
    api_key_scheme: str | None
    default_headers: dict[str, str] | None
    secret_headers: list[str]
    timeout: float | None
    max_retries: int
    stream_chunk_timeout: float | None
    verify: bool | str
    cert: str | tuple[str, str] | None
    http_client: httpx.Client | None
    http_async_client: httpx.AsyncClient | None
    wire_format: str | WireFormat | dict[str, Any]
    server_profile: str | ServerProfile | dict[str, Any] | None
    pricing: Pricing | PricingTable | dict[str, Any] | str | None
    extra_body: dict[str, Any] | None


def _resolving(setting: str, resolve: Callable[..., _T], *values: Any) -> _T:
    """``resolve(*values)``, its `ConfigurationError` marked with the setting at fault."""
    try:
        return resolve(*values)
    except ConfigurationError as exc:
        exc.setting = exc.setting or setting
        raise


def _replicas(
    model: RuntimeSettings, headers: dict[str, str], timeout: httpx.Timeout
) -> ReplicaSet:
    """The model's server or servers, each with its URL, headers and weight."""
    if model.endpoints:
        specs = [(e.base_url, e.api_key, e.weight) for e in model.endpoints]
    else:
        urls = model.base_url if isinstance(model.base_url, list) else [model.base_url]
        specs = [(url, None, 1.0) for url in urls]
    replicas = []
    for url, key, weight in specs:
        own = headers
        if key is not None:  # its own key: sent with each of its requests, over the pool's
            own = build_headers(
                key, model.api_key_header, model.api_key_scheme, model.default_headers
            )
        warn_if_cleartext(url, key or model.api_key)
        encoder = RequestEncoder(url, own, timeout, override=own is not headers)
        replicas.append(Replica(encoder, weight))
    return ReplicaSet(replicas, model.routing, model.replica_cooldown, model.health_check)


class Runtime:
    """The call-time state built from one model's settings (see the module docstring).

    Attributes:
        wire: The resolved wire format.
        pricing: The resolved price or price table, or None.
        client: The provider client, over pools of its own.
        configured: The profile the settings resolve to (generic while one is detected).
        detector: Detects the server family at the first call; None when the settings name
            a profile (an explicit profile always wins).
    """

    __slots__ = ("client", "configured", "detector", "pricing", "wire")

    def __init__(
        self,
        wire: WireFormat,
        profile: ServerProfile,
        pricing: Pricing | PricingTable | None,
        client: ProviderClient,
        detector: Detector | None = None,
    ) -> None:
        self.wire = wire
        self.configured = profile
        self.pricing = pricing
        self.client = client
        self.detector = detector

    @property
    def profile(self) -> ServerProfile:
        """The server profile: the settings', else the detected one once known, else generic."""
        if self.detector is not None:
            return self.detector.known() or self.configured
        return self.configured

    def detect(self) -> None:
        """Detect the server family if that is still to do (one short GET; never raises)."""
        if self.detector is not None:
            self.detector.run(self.client)

    async def adetect(self) -> None:
        """Async twin of `detect`."""
        if self.detector is not None:
            await self.detector.arun(self.client)

    @classmethod
    def build(cls, model: RuntimeSettings) -> Runtime:
        """Resolve and build everything from the model's current settings.

        Raises:
            ConfigurationError: For a setting that cannot be resolved (wire format, profile,
                price table, TLS files).
        """
        wire = _resolving("wire_format", get_format, model.wire_format)
        profile = _resolving("server_profile", get_profile, model.server_profile)
        pricing = _resolving("pricing", resolve_pricing, model.pricing)
        headers = build_headers(
            model.api_key, model.api_key_header, model.api_key_scheme, model.default_headers
        )
        timeout = httpx.Timeout(model.timeout)
        replicas = _replicas(model, headers, timeout)
        base_url = replicas.primary.base_url
        pools = HttpPools(
            headers=headers,
            timeout=timeout,
            tls=_resolving("verify", tls_context, model.verify, model.cert),
            verify=model.verify is not False,
            http_client=model.http_client,
            http_async_client=model.http_async_client,
        )
        client = ProviderClient(
            replicas=replicas,
            pools=pools,
            redact=Redactor(
                headers, model.secret_headers, [r.encoder.headers for r in replicas.replicas]
            ),
            max_retries=model.max_retries,
            # Embedding models never stream, and have no such setting.
            stream_chunk_timeout=getattr(model, "stream_chunk_timeout", None),
        )
        # No I/O here (models are built, copied and unpickled without a server): the
        # detector only asks at the first call. Only OpenAI-compatible servers are asked
        # their family: the profiles describe them, and another API (TGI, Ollama's own, a
        # custom format) has no /models to ask. Ollama's own is asked its model's context,
        # unless the settings send num_ctx (then that is it). As for detection, an explicit
        # server_profile means "ask nothing": its context_window, if any, is the one.
        detector = None
        if model.server_profile is None and wire.name == "openai":
            detector = Detector(base_url, model.model, model.timeout)
        elif wire.name == "ollama" and model.server_profile is None:
            num_ctx = configured_context(model.extra_body)
            if num_ctx is not None:
                profile = replace(profile, context_window=num_ctx)
            else:
                detector = Detector(base_url, model.model, model.timeout, base=profile)
        return cls(wire, profile, pricing, client, detector)

    def close(self) -> None:
        """Close the pooled sync client (clients the user passed in stay open)."""
        self.client.pools.close()

    async def aclose(self) -> None:
        """Close the running loop's pooled async client (user clients stay open)."""
        await self.client.pools.aclose()

    def __reduce__(self) -> Any:
        # Pools and TLS contexts are process state; the model rebuilds its runtime.
        raise TypeError("A Runtime is not picklable; pickle the model, which rebuilds it")
