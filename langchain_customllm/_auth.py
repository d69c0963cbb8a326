"""Credentials: the request headers that carry them, and their removal from what we show.

This module is the only place that reads a secret's value (``get_secret_value``). The key and
every credential-looking header (``Authorization``, ``x-api-key``, ``Cookie``, ... and any
header named in ``secret_headers``) go into the request headers and nowhere else: a
`Redactor` masks their values in errors (message, body, partial text) in case a server echoes
our request back, and `mask_headers` hides them in dumps, reprs and tracing.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Collection, Mapping
from typing import Any

import httpx
from pydantic import SecretStr

from langchain_customllm._exceptions import ConfigurationError, CustomLLMError

__all__ = [
    "MASK",
    "Redactor",
    "build_headers",
    "check_header",
    "check_key",
    "check_plain_headers",
    "is_secret_header",
    "mask_headers",
    "warn_if_cleartext",
]

logger = logging.getLogger("langchain_customllm")

MASK = "**********"
# Placeholder keys shorter than this ("ollama", "EMPTY") are not secrets, and masking them
# would garble our own wording, so they are left alone.
_MIN_SECRET = 8
_USER_AGENT = "langchain-customllm/0.1"
# Parts of header names that mark a credential; matched case-insensitively anywhere in the
# name, so x-litellm-api-key, Proxy-Authorization and X-Auth-Token are all caught.
_SECRET_PARTS = ("auth", "key", "token", "secret", "cookie", "password", "credential")


# RFC 9110 token characters: what a header name (and an auth scheme) may hold.
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _clean_value(value: str) -> bool:
    # Visible ASCII and inner spaces only: httpx would fail to encode anything else, and h11
    # refuses CR, LF and surrounding whitespace, quoting the value (a secret) as it does.
    # For ASCII, isprintable() is exactly " " to "~" (a gateway checks a header per request,
    # so this avoids a Python-level loop over each character).
    return value == value.strip() and value.isascii() and value.replace("\t", " ").isprintable()


def check_header(name: str, value: str, what: str = "header") -> None:
    """Refuse a header HTTP cannot carry, without ever quoting its value.

    Raises:
        ConfigurationError: Naming the header and what is wrong with it.
    """
    if not name or not set(name) <= _TOKEN:
        raise ConfigurationError(f"{what} name {name!r} is not a valid HTTP header name")
    if not _clean_value(value):
        raise ConfigurationError(
            f"{what} {name!r} has a value HTTP headers cannot carry (not ASCII, a line break, "
            "or spaces around it); strip it, or encode it (base64, percent-encoding)"
        )


def check_plain_headers(headers: Mapping[str, str], what: str) -> None:
    """Refuse headers HTTP cannot carry, and credentials, in a place that is not secret.

    Raises:
        ConfigurationError: Naming the header; a credential belongs in ``api_key`` or
            ``default_headers``, whose values are masked wherever they could show.
    """
    for name, value in headers.items():
        check_header(name, value, what)
        if is_secret_header(name):
            raise ConfigurationError(
                f"{name!r} looks like a credential: put it in the model's default_headers "
                "(or api_key), which are kept secret in errors, dumps and traces"
            )


def check_key(api_key: SecretStr | None, header: str, scheme: str | None) -> None:
    """Refuse a key, its header or its scheme that could not be sent (value never quoted).

    Raises:
        ConfigurationError: Saying which part is wrong; a key read from a file often ends
            with a newline.
    """
    check_header(header, "x", "api_key_header")
    if scheme is not None and (not scheme or not set(scheme) <= _TOKEN):
        raise ConfigurationError(f"api_key_scheme {scheme!r} is not a valid HTTP auth scheme")
    if api_key is not None and not _clean_value(api_key.get_secret_value()):
        raise ConfigurationError(
            "api_key has characters HTTP headers cannot carry (not ASCII, a line break, or "
            "spaces around it; a key read from a file often ends with a newline): strip it"
        )


def is_secret_header(name: str, secret_headers: Collection[str] = ()) -> bool:
    """Whether a header carries a credential: by its name, or named in ``secret_headers``."""
    lowered = name.lower()
    if any(lowered == other.lower() for other in secret_headers):
        return True
    return any(part in lowered for part in _SECRET_PARTS)


def mask_headers(
    headers: Mapping[str, str] | None, secret_headers: Collection[str] = ()
) -> dict[str, str] | None:
    """The headers with every credential's value replaced by a mask (for dumps and reprs)."""
    if headers is None:
        return None
    return {k: MASK if is_secret_header(k, secret_headers) else v for k, v in headers.items()}


def build_headers(
    api_key: SecretStr | None,
    header: str,
    scheme: str | None,
    default_headers: Mapping[str, str] | None,
) -> dict[str, str]:
    """The headers every request carries: ours, the user's, then the key (which wins)."""
    headers = {
        "accept": "application/json",
        "content-type": "application/json",
        "user-agent": _USER_AGENT,
    }
    headers.update(default_headers or {})
    if api_key is not None:
        secret = api_key.get_secret_value()
        if secret:
            headers[header] = f"{scheme} {secret}" if scheme else secret
    return headers


def _scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {_scrub(k, secrets): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets) for v in value]
    return value


class Redactor:
    """Masks the secrets of one configuration wherever an error could carry them.

    Args:
        headers: The request headers (key included); the values of credential headers are
            the secrets, with and without their scheme (``Bearer``).
        secret_headers: More header names whose values are secret.
        more: The headers of replicas with keys of their own.
    """

    __slots__ = ("secrets",)

    def __init__(
        self,
        headers: Mapping[str, str],
        secret_headers: Collection[str] = (),
        more: Collection[Mapping[str, str]] = (),
    ) -> None:
        found: set[str] = set()
        for name, value in (item for each in (headers, *more) for item in each.items()):
            if not is_secret_header(name, secret_headers):
                continue
            found.add(value)
            _, _, bare = value.partition(" ")
            found.add(bare)  # "Bearer <key>": the key alone may be echoed too
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = tuple(sorted((s for s in found if len(s) >= _MIN_SECRET), key=len)[::-1])

    def text(self, value: str) -> str:
        """The text with every secret masked."""
        return _scrub(value, self.secrets) if self.secrets else value

    def __call__(self, error: CustomLLMError) -> CustomLLMError:
        """Remove the secrets from an error (message, body, partial text), in place."""
        if self.secrets:
            error.message = self.text(error.message)
            error.args = (error.message,)
            error.body = _scrub(error.body, self.secrets)
            if error.partial_text:
                error.partial_text = self.text(error.partial_text)
        return error


def warn_if_cleartext(base_url: str, api_key: SecretStr | None) -> None:
    """Warn once per configuration when a key would travel over plain http to another host."""
    if api_key is not None and api_key.get_secret_value() and _is_cleartext_remote(base_url):
        logger.warning(
            "The API key is sent in clear text over http:// to %s; use https://",
            httpx.URL(base_url).host,
        )


def _is_cleartext_remote(base_url: str) -> bool:
    url = httpx.URL(base_url)
    if url.scheme != "http":
        return False
    host = url.host
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name other than localhost
