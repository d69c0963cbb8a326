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
  them itself around its own transport (`_h1.H1Transport`).
- Our own async client's requests skip httpx's client layer when nothing of it applies
  (`_Direct`: no cookie to send back, no proxy for the URL): the request goes straight to
  its transport, with the client's headers and timeout, and the answer is httpx's own
  ``Response``. On the 2-core bench machine that layer (request building, auth and redirect
  generators, the body's wrappers) cost ~60 µs of CPU per request, 5-6% of what the gateway
  adds; a user's client always goes through its own ``send``.
- The default TLS context (system CAs) is built once per process (40-80 ms) and shared; a
  CA bundle or a client certificate gets a context of its own, built from those settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import weakref
from collections.abc import AsyncGenerator
from typing import Any, TypeVar

import httpx

from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._h1 import H1Transport

__all__ = ["HttpPools", "http_url", "tls_context"]

_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64)

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


_HTTPX_LOG = logging.getLogger("httpx")
# Methods httpx gives "Content-Length: 0" when they carry no body (others get no header).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _Direct:
    """What sending straight to our async client's transport needs, read once per client.

    The client's headers (names keep their case; a request's own override them, whatever
    their case), its timeouts, and which origins its environment proxies leave to its own
    transport (httpx's private ``_transport_for_url`` decides; without it, none are).
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.transport = client._transport
        self.headers = {name.lower(): (name, value) for name, value in client.headers.items()}
        self.raw = [
            (name.encode("ascii"), value.encode("ascii")) for name, value in self.headers.values()
        ]
        self.timeout = client.timeout.as_dict()
        self._routes: dict[tuple[bytes, bytes, int | None], bool] = {}

    def applies(self, url: httpx.URL) -> bool:
        """Whether a request to ``url`` can skip the client (no cookies, no proxy)."""
        client = self.client
        if client.is_closed or client.cookies.jar:
            return False  # httpx says what a closed client means; cookies go back as sent
        origin = (url.raw_scheme, url.raw_host, url.port)
        direct = self._routes.get(origin)
        if direct is None:
            route = getattr(client, "_transport_for_url", None)
            direct = self._routes[origin] = route is not None and route(url) is self.transport
        return direct

    async def send(
        self, method: str, url: httpx.URL, content: bytes, options: dict[str, Any], stream: bool
    ) -> httpx.Response:
        extra = options.get("headers")
        named = self.headers
        pairs: list[Any] = self.raw
        if extra:
            named = dict(self.headers)
            named.update((name.lower(), (name, value)) for name, value in extra.items())
            pairs = list(named.values())
        timeout = options.get("timeout")
        # A dict per request: a stream's reads are bounded later by changing its own copy.
        timeouts = dict(self.timeout) if timeout is None else httpx.Timeout(timeout).as_dict()
        # The headers httpx would add (Host first, Content-Length last, as httpx sets them),
        # given up front unless set already: a request built from a stream skips httpx's
        # encoding step (~12 µs of 18).
        headers = pairs if "host" in named else [(b"Host", url.netloc), *pairs]
        if (content or method in _BODY_METHODS) and "content-length" not in named:
            headers = [*headers, (b"Content-Length", b"%d" % len(content))]
        request = httpx.Request(
            method, url, headers=headers, stream=httpx.ByteStream(content),
            extensions={"timeout": timeouts},
        )  # fmt: skip
        request.read()
        try:
            response = await self.transport.handle_async_request(request)
        except httpx.RequestError as exc:
            exc.request = request  # as httpx's send sets it
            raise
        response.request = request
        if _HTTPX_LOG.isEnabledFor(logging.INFO):  # the line httpx's own send would log
            _HTTPX_LOG.info(
                'HTTP Request: %s %s "%s %d %s"', method, url, response.http_version,
                response.status_code, response.reason_phrase,
            )  # fmt: skip
        if "set-cookie" in response.headers:
            self.client.cookies.extract_cookies(response)
        if not stream:
            await _read(response)
        return response


async def _read(response: httpx.Response) -> None:
    """Read a whole answer's body into ``response.content`` and close it."""
    try:
        if "content-encoding" in response.headers:
            await response.aread()  # httpx's decoders (gzip, br, zstd)
        else:
            # Unencoded: the body as it came, without httpx's chain of async iterators
            # (decoder, chunker, stream wrapper), which cost ~30 µs per answer here.
            try:
                parts = [part async for part in response.stream]  # type: ignore[union-attr]
            except httpx.RequestError as exc:
                exc.request = response.request
                raise
            response._content = b"".join(parts)
    finally:
        await response.aclose()


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
            asyncio.AbstractEventLoop,
            tuple[httpx.AsyncClient, AsyncGenerator[None, None], _Direct | None],
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
        return self._async_entry()[0]

    async def asend(
        self,
        method: str,
        url: httpx.URL,
        content: bytes,
        options: dict[str, Any],
        *,
        stream: bool = False,
    ) -> httpx.Response:
        """Send on the running loop's async client; the body is read unless ``stream``.

        ``options`` are `build_request`'s (``headers``, ``timeout``).
        """
        if self.user_async_client is not None:
            client = self.user_async_client
        else:
            client, _, direct = self._async_entry()
            if direct is not None and direct.applies(url):
                return await direct.send(method, url, content, options, stream)
        request = client.build_request(method, url, content=content, **options)
        return await client.send(request, stream=stream)

    def _async_entry(
        self,
    ) -> tuple[httpx.AsyncClient, AsyncGenerator[None, None], _Direct | None]:
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
                            transport=H1Transport(
                                verify=verify, max_connections=256, max_keepalive=64
                            ),
                            mounts=_environment_mounts(verify),
                        )
                    )
                    direct = _Direct(client) if isinstance(client._transport, H1Transport) else None
                    entry = self._async[loop] = (client, _tie_to_loop(client), direct)
        return entry

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
