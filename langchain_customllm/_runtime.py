"""What a model's settings build to make calls, in one object that belongs to those settings.

A `Runtime` is the resolved wire format, server profile and price source, the request
headers and the redaction of their secrets, and the provider client over its own pools. A
model builds it from its fields when it is validated, again when one of its settings is
reassigned, and lazily after a copy or an unpickle: a copy never shares the original's
pools, TLS context or key, and what a call uses is always what the model's settings say
(the model docs call this "a model is a value"). Nothing here is pickled: pools and TLS
contexts are process state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import SecretStr

from langchain_customllm._auth import Redactor, build_headers, warn_if_cleartext
from langchain_customllm._client import ProviderClient
from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._http import HttpPools, tls_context
from langchain_customllm._request import RequestEncoder
from langchain_customllm.formats.base import WireFormat, get_format
from langchain_customllm.pricing import Pricing, PricingTable, resolve_pricing
from langchain_customllm.profiles import ServerProfile, get_profile

__all__ = ["Runtime", "RuntimeSettings"]

_T = TypeVar("_T")


class RuntimeSettings(Protocol):
    """The settings a runtime is built from (the model classes' fields of those names)."""

    base_url: str
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


def _resolving(setting: str, resolve: Callable[..., _T], *values: Any) -> _T:
    """``resolve(*values)``, its `ConfigurationError` marked with the setting at fault."""
    try:
        return resolve(*values)
    except ConfigurationError as exc:
        exc.setting = exc.setting or setting
        raise


class Runtime:
    """The call-time state built from one model's settings (see the module docstring).

    Attributes:
        wire: The resolved wire format.
        profile: The resolved server profile.
        pricing: The resolved price or price table, or None.
        client: The provider client, over pools of its own.
    """

    __slots__ = ("client", "pricing", "profile", "wire")

    def __init__(
        self,
        wire: WireFormat,
        profile: ServerProfile,
        pricing: Pricing | PricingTable | None,
        client: ProviderClient,
    ) -> None:
        self.wire = wire
        self.profile = profile
        self.pricing = pricing
        self.client = client

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
        warn_if_cleartext(model.base_url, model.api_key)
        timeout = httpx.Timeout(model.timeout)
        pools = HttpPools(
            headers=headers,
            timeout=timeout,
            tls=_resolving("verify", tls_context, model.verify, model.cert),
            verify=model.verify is not False,
            http_client=model.http_client,
            http_async_client=model.http_async_client,
        )
        client = ProviderClient(
            encoder=RequestEncoder(model.base_url, headers, timeout),
            pools=pools,
            redact=Redactor(headers, model.secret_headers),
            max_retries=model.max_retries,
            # Embedding models never stream, and have no such setting.
            stream_chunk_timeout=getattr(model, "stream_chunk_timeout", None),
        )
        return cls(wire, profile, pricing, client)

    def close(self) -> None:
        """Close the pooled sync client (clients the user passed in stay open)."""
        self.client.pools.close()

    async def aclose(self) -> None:
        """Close the running loop's pooled async client (user clients stay open)."""
        await self.client.pools.aclose()

    def __reduce__(self) -> Any:
        # Pools and TLS contexts are process state; the model rebuilds its runtime.
        raise TypeError("A Runtime is not picklable; pickle the model, which rebuilds it")
