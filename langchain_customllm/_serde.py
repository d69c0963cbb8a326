"""How a model is written by ``dumps`` and read back by ``loads``, secrets included.

The key is a top-level secret (``CUSTOMLLM_API_KEY``); so is each replica's own key in
``endpoints`` (``CUSTOMLLM_ENDPOINT_<i>_API_KEY``). Secret headers are too, one
reference each (``CUSTOMLLM_HEADER_X_API_KEY``): langchain-core escapes secret markers
nested inside an ordinary setting such as ``default_headers`` (they would come back as
plain dicts), so they travel under a key of their own that is declared secret, and are
folded back into ``default_headers`` when the model is built again. A secret that
``loads`` was not given is a `ConfigurationError` that names its variable.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from langchain_customllm._auth import is_secret_header
from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm.pricing import Pricing, PricingTable

__all__ = [
    "ENDPOINT_SECRETS",
    "HEADER_SECRETS",
    "endpoint_env",
    "fold_header_secrets",
    "header_env",
    "write_kwargs",
]

HEADER_SECRETS = "secret_header_values"
"""The serialized kwarg that carries secret headers as secret references."""

ENDPOINT_SECRETS = "secret_endpoint_keys"
"""The serialized kwarg that carries replicas' own keys (``endpoints``) as references."""


def endpoint_env(index: int) -> str:
    """The environment variable the key of ``endpoints[index]`` is serialized as."""
    return f"CUSTOMLLM_ENDPOINT_{index}_API_KEY"


def _secret(env: str) -> dict[str, Any]:
    return {"lc": 1, "type": "secret", "id": [env]}


def header_env(name: str) -> str:
    """The environment variable a secret header is serialized as a reference to."""
    return "CUSTOMLLM_HEADER_" + "".join(c if c.isalnum() else "_" for c in name).upper()


def write_kwargs(kwargs: dict[str, Any], secret_headers: Collection[str]) -> None:
    """Rewrite serialized kwargs in place: secret headers as references, prices as data."""
    headers = kwargs.get("default_headers")
    if isinstance(headers, Mapping):
        secret = [name for name in headers if is_secret_header(name, secret_headers)]
        if secret:
            kwargs["default_headers"] = {k: v for k, v in headers.items() if k not in secret}
            kwargs[HEADER_SECRETS] = {name: _secret(header_env(name)) for name in secret}
    endpoints = kwargs.get("endpoints")
    if isinstance(endpoints, list):
        _write_endpoints(kwargs, endpoints)
    pricing = kwargs.get("pricing")
    if isinstance(pricing, (Pricing, PricingTable)):
        kwargs["pricing"] = (
            pricing.model_dump() if isinstance(pricing, Pricing) else pricing.to_dict()
        )


def _write_endpoints(kwargs: dict[str, Any], endpoints: list[Any]) -> None:
    """Replicas as plain data, their own keys as secret references (never the values)."""
    plain: list[dict[str, Any]] = []
    keys: dict[str, Any] = {}
    for index, endpoint in enumerate(endpoints):
        data = dict(endpoint) if isinstance(endpoint, Mapping) else endpoint.model_dump()
        if data.pop("api_key", None) is not None:
            keys[str(index)] = _secret(endpoint_env(index))
        plain.append(data)
    kwargs["endpoints"] = plain
    kwargs.pop("base_url", None)  # the replicas are the endpoints (one or the other)
    if keys:
        kwargs[ENDPOINT_SECRETS] = keys


def _fold_endpoint_keys(data: dict[str, Any]) -> None:
    keys = data.pop(ENDPOINT_SECRETS) or {}
    missing = sorted(endpoint_env(int(i)) for i, value in keys.items() if value is None)
    if missing:
        raise ConfigurationError(
            f"endpoints hold keys that were not supplied: pass loads(..., secrets_map="
            f"{{{', '.join(repr(env) + ': ...' for env in missing)}}}), or set those "
            "environment variables and pass secrets_from_env=True"
        )
    endpoints = [dict(e) for e in data.get("endpoints") or []]
    for index, key in keys.items():
        endpoints[int(index)]["api_key"] = key
    data["endpoints"] = endpoints


def fold_header_secrets(data: Any) -> Any:
    """Constructor input with revived secret headers put back into ``default_headers``.

    Raises:
        ConfigurationError: For a secret header ``loads`` was not given.
    """
    if not isinstance(data, dict):
        return data
    if ENDPOINT_SECRETS in data:
        data = dict(data)
        _fold_endpoint_keys(data)
    if HEADER_SECRETS not in data:
        return data
    data = dict(data)
    secrets = data.pop(HEADER_SECRETS) or {}
    missing = sorted(header_env(name) for name, value in secrets.items() if value is None)
    if missing:
        raise ConfigurationError(
            f"default_headers hold secrets that were not supplied: pass loads(..., "
            f"secrets_map={{{', '.join(repr(env) + ': ...' for env in missing)}}}), or set "
            "those environment variables and pass secrets_from_env=True"
        )
    data["default_headers"] = {**(data.get("default_headers") or {}), **secrets}
    return data
