"""The httpx clients of one model configuration: built lazily, once, under a lock; closed.

- One pooled ``httpx.Client``; async clients one per event loop, because an
  ``httpx.AsyncClient`` is bound to the loop that opened its connections (``asyncio.run``
  twice must work). Clients the user passes in are used as they are and never closed by us.
- Building is locked: a fresh model's ``batch(16)`` builds one client, not sixteen.
- An async client closes with its event loop: it is tied to the loop as an async generator,
  which ``asyncio.run`` (and every runner that calls ``shutdown_asyncgens``) closes, and which
  the loop closes too when the client is dropped. No ``ResourceWarning`` is left behind.
- Environment proxies (``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) apply to both, as in
  httpx's defaults: httpx ignores them when given a transport, so the async client mounts
  them itself around its sharded transport.
- The default TLS context (system CAs) is built once per process (40-80 ms) and shared; a
  CA bundle or a client certificate gets a context of its own, built from those settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import weakref
from collections.abc import AsyncGenerator
from typing import TypeVar

import httpx

from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._pool import ShardedAsyncTransport

__all__ = ["HttpPools", "http_url", "tls_context"]

_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64)
# Async: the same totals as 16 pools of 16/4, because one big httpcore pool spends more CPU on
# bookkeeping than on HTTP at high concurrency (see _pool.py; 4-5x the requests/s measured).
_SHARDS = 16
_PER_SHARD = 4
_SHARD_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=4)

_BUILD_LOCK = threading.Lock()
_default_tls: ssl.SSLContext | None = None


def http_url(value: str) -> httpx.URL | None:
    """The http(s) URL with a host that ``value`` spells, or None (any other text)."""
    try:
        parsed = httpx.URL(value)
    except httpx.InvalidURL:
        return None
    return parsed if parsed.scheme in ("http", "https") and parsed.host else None


def _default_ssl_context() -> ssl.SSLContext:
    global _default_tls
    if _default_tls is None:
        with _BUILD_LOCK:
            if _default_tls is None:
                _default_tls = httpx.create_ssl_context()
    return _default_tls


def tls_context(verify: bool | str, cert: str | tuple[str, str] | None) -> ssl.SSLContext | None:
    """The TLS context for a CA bundle or a client certificate; None for the defaults.

    Raises:
        ConfigurationError: If the files cannot be loaded, or mTLS is asked without
            verification.
    """
    if verify is False:
        if cert is not None:
            raise ConfigurationError("cert (mTLS) needs TLS verification: leave verify on")
        return None
    if verify is True and cert is None:
        return None
    try:
        context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
        if cert is not None:
            certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
            context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"Cannot load the TLS files (verify/cert): {exc}") from None
    return context


class _QuietCookies(httpx.Cookies):
    """A cookie jar that parses a response only when it sets cookies.

    httpx hands every response to ``http.cookiejar`` (building urllib request and response
    adapters), which costs ~25-60 µs a call here even when there is no ``Set-Cookie``.
    Cookies that are set are kept and sent back exactly as before (sticky load balancers).
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


_C = TypeVar("_C", httpx.Client, httpx.AsyncClient)


def _quiet_cookies(client: _C) -> _C:
    """Give a client we own the `_QuietCookies` jar (left as is if httpx changes inside)."""
    if type(getattr(client, "_cookies", None)) is httpx.Cookies:
        client._cookies = _QuietCookies()
    return client


async def _open_until_closed(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.aclose()


def _tie_to_loop(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """An async generator, started in the running loop, that closes ``client`` when closed.

    Starting it registers it with the loop's async-generator hooks, so the loop closes it
    at ``shutdown_asyncgens`` (end of ``asyncio.run``) or when it is garbage-collected.
    It has nothing to wait for before its ``yield``, so it is started without awaiting.
    """
    closer = _open_until_closed(client)
    with contextlib.suppress(StopIteration):  # it reached its `yield`: started
        closer.asend(None).send(None)
    return closer


def _environment_mounts(
    verify: ssl.SSLContext | bool,
) -> dict[str, httpx.AsyncBaseTransport | None]:
    # The patterns httpx itself reads from the environment when it builds its own transport;
    # a pattern mapped to None (NO_PROXY) falls back to the client's own transport.
    from httpx._utils import get_environment_proxies

    return {
        pattern: None if proxy is None else httpx.AsyncHTTPTransport(proxy=proxy, verify=verify)
        for pattern, proxy in get_environment_proxies().items()
    }


def _close_all(clients: list[httpx.Client]) -> None:
    for client in clients:
        client.close()


class HttpPools:
    """The clients of one configuration (see the module docstring).

    Args:
        headers: Headers every request carries (set on the clients we own).
        timeout: The timeouts of every request.
        tls: A TLS context from `tls_context`, or None for the defaults.
        verify: Whether to verify TLS at all (False turns it off).
        http_client: A user's own sync client, used as is.
        http_async_client: A user's own async client, used as is.
    """

    def __init__(
        self,
        *,
        headers: dict[str, str],
        timeout: httpx.Timeout,
        tls: ssl.SSLContext | None,
        verify: bool,
        http_client: httpx.Client | None,
        http_async_client: httpx.AsyncClient | None,
    ) -> None:
        self._headers = headers
        self._timeout = timeout
        self._tls = tls
        self._verify = verify
        self.user_client = http_client
        self.user_async_client = http_async_client
        self._sync: httpx.Client | None = None
        # One finalizer for the pools' life: it closes whatever sync client they hold then
        # (pools dropped with their model, or left at exit).
        self._held: list[httpx.Client] = []
        weakref.finalize(self, _close_all, self._held)
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _ssl(self) -> ssl.SSLContext | bool:
        if self._tls is not None:
            return self._tls
        return _default_ssl_context() if self._verify else False

    def sync(self) -> httpx.Client:
        """The sync client, built on first use."""
        if self.user_client is not None:
            return self.user_client
        client = self._sync
        if client is None:
            with self._lock:
                if self._sync is None:
                    # Our headers and timeout live on the clients we own, so requests carry
                    # only their own extras (httpx merges them on every call otherwise).
                    self._sync = _quiet_cookies(
                        httpx.Client(
                            headers=self._headers,
                            timeout=self._timeout,
                            limits=_LIMITS,
                            verify=self._ssl(),
                        )
                    )
                    self._held[:] = [self._sync]
                client = self._sync
        return client

    def async_(self) -> httpx.AsyncClient:
        """The async client of the running event loop, built on first use there."""
        if self.user_async_client is not None:
            return self.user_async_client
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is None:
            with self._lock:
                entry = self._async.get(loop)
                if entry is None:
                    verify = self._ssl()
                    client = _quiet_cookies(
                        httpx.AsyncClient(
                            headers=self._headers,
                            timeout=self._timeout,
                            verify=verify,
                            transport=ShardedAsyncTransport(
                                _SHARDS, _PER_SHARD, _SHARD_LIMITS, verify=verify
                            ),
                            mounts=_environment_mounts(verify),
                        )
                    )
                    entry = self._async[loop] = (client, _tie_to_loop(client))
        return entry[0]

    def close(self) -> None:
        """Close the pooled sync client (a user-provided one is left open)."""
        with self._lock:
            client, self._sync = self._sync, None
            self._held.clear()
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close the running loop's pooled async client (user-provided ones stay open)."""
        with self._lock:
            entry = self._async.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[1].aclose()
