"""The thin provider client: send a `WireRequest`, get JSON or stream events back.

Pure parts first (URL and header building, response checking, retry decisions), then I/O
twins that differ only by ``await``: `send` / `asend` and `stream` / `astream`.

- One pooled ``httpx.Client`` per model, created on first use; async clients are kept one
  per event loop, because an ``httpx.AsyncClient`` is bound to the loop that opened its
  connections (``asyncio.run`` twice must work). A client the user passes in is used as is.
- This module is the only place that reads the API key (``get_secret_value``); it goes into
  the request headers and nowhere else: not into messages, logs or reprs.
- Retries (tenacity) cover connecting and the HTTP status; once a stream's body is being
  read, errors are raised, never retried, so no output is ever produced twice.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
import ssl
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import SecretStr

from langchain_customllm._exceptions import (
    ConfigurationError,
    CustomLLMError,
    ResponseError,
    StreamTimeoutError,
    decode_body,
    error_detail,
    error_from_httpx,
    error_from_response,
    request_id_of,
)
from langchain_customllm._framing import Framing, SSEEvent, make_decoder
from langchain_customllm._json import loads
from langchain_customllm._pool import ShardedAsyncTransport
from langchain_customllm._retry import retry_delay_for
from langchain_customllm.formats.base import WireRequest

if TYPE_CHECKING:  # tenacity is imported on the first retry only (it costs ~10 ms to import)
    from tenacity import AsyncRetrying, RetryCallState, Retrying

__all__ = ["ProviderClient"]

logger = logging.getLogger("langchain_customllm")

# A wire format's hook to find the server's message in an error body.
Describe = Callable[[Any], str | None] | None

_MIN_SECRET = 8
_LIMITS = httpx.Limits(max_connections=256, max_keepalive_connections=64)
# Async: the same totals as 16 pools of 16/4, because one big httpcore pool spends more CPU on
# bookkeeping than on HTTP at high concurrency (see _pool.py; 4-5x the requests/s measured).
_SHARDS = 16
_PER_SHARD = 4
_SHARD_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=4)
_USER_AGENT = "langchain-customllm/0.1"
_STREAM_ACCEPT = "text/event-stream, application/x-ndjson, */*"
_T = TypeVar("_T")


@functools.lru_cache(maxsize=1)
def _default_ssl_context() -> ssl.SSLContext:
    # httpx builds a context (loading the whole CA bundle, 40-80 ms) for every client it
    # creates, and we create one async client per event loop: build it once, share it.
    return httpx.create_ssl_context()


def _ssl_context(verify: bool | str, cert: str | tuple[str, str] | None) -> ssl.SSLContext | bool:
    """TLS settings for our clients: system CAs by default, a CA bundle, and mTLS."""
    if verify is False:
        if cert is not None:
            raise ConfigurationError("cert (mTLS) needs TLS verification: leave verify on")
        return False
    if verify is True and cert is None:
        return _default_ssl_context()
    try:
        context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
        if cert is not None:
            certfile, keyfile = (cert, None) if isinstance(cert, str) else cert
            context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"Cannot load the TLS files (verify/cert): {exc}") from None
    return context


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


def _scrub(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return value.replace(secret, "**********")
    if isinstance(value, dict):
        return {k: _scrub(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secret) for v in value]
    return value


class _IdleWatch:
    """Raises when bytes keep coming but no event completes (a trickle or keep-alives)."""

    __slots__ = ("_last", "_limit")

    def __init__(self, limit: float | None) -> None:
        self._limit = limit
        self._last = time.monotonic()

    def check(self, got_event: bool) -> None:
        if self._limit is None:
            return
        now = time.monotonic()
        if got_event:
            self._last = now
        elif now - self._last > self._limit:
            raise StreamTimeoutError(
                f"No complete stream event for {self._limit} s (stream_chunk_timeout) although "
                "bytes keep arriving -- the text received so far is in `partial_text`"
            )


def _not_a_stream(response: httpx.Response, framing: Framing) -> bool:
    """Whether an SSE stream was asked for and an HTML page or a JSON object came back.

    A proxy's page, a wrong URL, or a server that ignored ``stream``: say so, instead of
    failing on its content as if it were a broken stream.
    """
    if framing != "sse":
        return False
    kind = str(response.headers.get("content-type", "")).lower()
    return kind.startswith(("text/html", "application/json"))


class _FirstBytes:
    """The start of a stream's body, kept to quote it if no event ever comes out of it."""

    __slots__ = ("data", "events")

    def __init__(self) -> None:
        self.data = b""
        self.events = 0

    def keep(self, raw: bytes) -> bytes:
        if not self.events and len(self.data) < 512:
            self.data += raw[: 512 - len(self.data)]
        return raw


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


def _with_id(error: CustomLLMError, request_id: str | None) -> CustomLLMError:
    if error.request_id is None:
        error.request_id = request_id
    return error


def _can_retry(exc: BaseException) -> bool:
    # Jitter does not change *whether* we retry, so decide with a fixed draw.
    return retry_delay_for(exc, 0, rand=lambda: 0.0) is not None


class ProviderClient:
    """Sends requests for one model configuration; pooled, sync and async.

    Args:
        base_url: The API root (``/v1`` root for OpenAI-compatible servers).
        api_key: The secret, or None for servers without auth.
        api_key_header: Header that carries the key (``Authorization`` by default).
        api_key_scheme: Prefix before the key in that header (``Bearer``), or None for the
            bare key (e.g. ``x-api-key``-style gateways).
        default_headers: Extra headers sent with every request.
        timeout: Seconds (or an ``httpx.Timeout``) for connect/read/write/pool.
        max_retries: Retries after the first attempt.
        http_client: A user-provided sync client (not closed by us).
        http_async_client: A user-provided async client (not closed by us).
        stream_chunk_timeout: Seconds a stream may go without an event before
            `StreamTimeoutError`; None leaves only ``timeout``'s per-read limit.
        verify: TLS verification: True (system CAs), False, or a CA bundle path.
        cert: A client certificate for mTLS: a PEM path (key included) or (cert, key).

    """

    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr | None,
        api_key_header: str = "Authorization",
        api_key_scheme: str | None = "Bearer",
        default_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | None = 120.0,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
        http_async_client: httpx.AsyncClient | None = None,
        stream_chunk_timeout: float | None = None,
        verify: bool | str = True,
        cert: str | tuple[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.stream_chunk_timeout = stream_chunk_timeout
        self._ssl: ssl.SSLContext | bool = _ssl_context(verify, cert)
        self._secret = api_key.get_secret_value() if api_key is not None else ""
        if self._secret and _is_cleartext_remote(self.base_url):
            logger.warning(
                "The API key is sent in clear text over http:// to %s; use https://",
                httpx.URL(self.base_url).host,
            )
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self.max_retries = max_retries
        self._headers = self._build_headers(
            api_key, api_key_header, api_key_scheme, default_headers
        )
        self._targets: dict[str, httpx.URL] = {}
        self._user_client = http_client
        self._user_async_client = http_async_client
        self._sync_client: httpx.Client | None = None
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx.AsyncClient
        ] = weakref.WeakKeyDictionary()
        # Injectable so unit tests can count retries without real sleeps.
        self.sleep: Callable[[float], None] = time.sleep
        self.asleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def __repr__(self) -> str:
        # Never show headers: they hold the key.
        return f"ProviderClient(base_url={self.base_url!r}, max_retries={self.max_retries})"

    # ----------------------------------------------------------------- pure parts

    @staticmethod
    def _build_headers(
        api_key: SecretStr | None,
        header: str,
        scheme: str | None,
        default_headers: Mapping[str, str] | None,
    ) -> dict[str, str]:
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

    def redact(self, error: CustomLLMError) -> CustomLLMError:
        """Remove the key from an error, in case the server echoed our request back.

        Placeholder keys shorter than 8 characters (``"ollama"``, ``"EMPTY"``) are not
        secrets, and masking them would garble our own wording, so they are left alone.
        """
        if len(self._secret) >= _MIN_SECRET:
            error.message = error.message.replace(self._secret, "**********")
            error.args = (error.message,)
            error.body = _scrub(error.body, self._secret)
            if error.partial_text:
                error.partial_text = error.partial_text.replace(self._secret, "**********")
        return error

    def _url(self, request: WireRequest) -> str:
        return f"{self.base_url}{request.path}"

    def _target(self, request: WireRequest) -> httpx.URL:
        # httpx parses a string URL on every request (~20 µs); a parsed one is reused.
        target = self._targets.get(request.path)
        if target is None:
            if len(self._targets) >= 64:  # paths that embed per-call values: stay bounded
                self._targets.clear()
            target = self._targets[request.path] = httpx.URL(self._url(request))
        return target

    @staticmethod
    def _encode(request: WireRequest) -> bytes:
        try:
            return json.dumps(request.body, separators=(",", ":")).encode()
        except (TypeError, ValueError) as exc:
            raise ResponseError(
                f"The request body cannot be encoded as JSON ({exc}); check extra_body and "
                "per-call keyword arguments"
            ) from exc

    def _check(self, response: httpx.Response, content: bytes, describe: Describe) -> None:
        if response.status_code >= 400:
            raise self.redact(
                error_from_response(response.status_code, response.headers, content, describe)
            )

    @staticmethod
    def _decode_json(content: bytes, url: str) -> Any:
        try:
            return loads(content)
        except ValueError as exc:
            text = content[:300].decode("utf-8", errors="replace")
            raise ResponseError(
                f"The server at {url} answered 200 with a body that is not JSON: {text!r}",
                body=text,
            ) from exc

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        delay = retry_delay_for(exc, state.attempt_number - 1) if exc else None
        delay = delay or 0.0
        logger.info(
            "Retrying request to %s in %.2f s after %s (attempt %d of %d)",
            self.base_url,
            delay,
            type(exc).__name__,
            state.attempt_number + 1,
            self.max_retries + 1,
        )
        return delay

    def _retrying(self) -> Retrying:
        from tenacity import Retrying, retry_if_exception, stop_after_attempt

        return Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(_can_retry),
            sleep=self.sleep,
            reraise=True,
        )

    def _aretrying(self) -> AsyncRetrying:
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

        return AsyncRetrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(_can_retry),
            sleep=self.asleep,
            reraise=True,
        )

    def _opened(
        self,
        response: httpx.Response,
        framing: Framing,
        url: str,
        info: dict[str, Any] | None,
    ) -> str | None:
        """The stream is open: arm its chunk timeout and note its request id."""
        self._arm_chunk_timeout(response)
        request_id = request_id_of(response.headers)
        if info is not None:
            info["request_id"] = request_id
        return request_id

    def _wrong_answer(self, response: httpx.Response, content: bytes, url: str) -> CustomLLMError:
        kind = response.headers.get("content-type", "no content type")
        detail = error_detail(decode_body(content)) or "(empty body)"
        return self.redact(
            ResponseError(
                f"The server at {url} answered a stream request with {kind} instead of a "
                f"stream: {detail} -- is base_url right, and does this endpoint stream?",
                body=decode_body(content),
                request_id=request_id_of(response.headers),
            )
        )

    def _arm_chunk_timeout(self, response: httpx.Response) -> None:
        # The headers are in: from here on, each read of the body may wait at most
        # stream_chunk_timeout. httpcore reads the request's timeout extension when the body
        # is first read, so changing it now bounds the body only, not the time to the first
        # byte (a long prefill is not a stalled stream).
        if self.stream_chunk_timeout is None:
            return
        timeouts = response.request.extensions.get("timeout")
        if isinstance(timeouts, dict):
            timeouts["read"] = self.stream_chunk_timeout

    def _stream_error(self, exc: httpx.HTTPError, url: str) -> CustomLLMError:
        if isinstance(exc, httpx.ReadTimeout):
            limit = self.stream_chunk_timeout or self.timeout.read
            return StreamTimeoutError(
                f"The server at {url} stopped sending mid-stream (nothing for {limit} s) -- "
                "the text received so far is in `partial_text`; raise stream_chunk_timeout "
                "if the server is just slow"
            )
        return error_from_httpx(exc, url)

    # ----------------------------------------------------------------- clients

    def _client(self) -> httpx.Client:
        if self._user_client is not None:
            return self._user_client
        if self._sync_client is None:
            # Our headers and timeout live on the clients we own, so requests carry only
            # their own extras (httpx merges per-request headers and timeouts on every call).
            self._sync_client = _quiet_cookies(
                httpx.Client(
                    headers=self._headers, timeout=self.timeout, limits=_LIMITS, verify=self._ssl
                )
            )
        return self._sync_client

    def _aclient(self) -> httpx.AsyncClient:
        if self._user_async_client is not None:
            return self._user_async_client
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = _quiet_cookies(
                httpx.AsyncClient(
                    headers=self._headers,
                    timeout=self.timeout,
                    verify=self._ssl,  # for proxy transports httpx makes from the environment
                    transport=ShardedAsyncTransport(
                        _SHARDS, _PER_SHARD, _SHARD_LIMITS, verify=self._ssl
                    ),
                )
            )
            self._async_clients[loop] = client
        return client

    def _request_options(
        self, request: WireRequest, *, stream: bool, user_client: bool
    ) -> dict[str, Any]:
        """Per-request ``headers``/``timeout`` for ``build_request``: only what differs.

        A client the user passed in knows nothing of ours, so it gets all of them.
        """
        options: dict[str, Any] = {}
        if user_client:
            headers = {**self._headers, **request.headers}
            options["timeout"] = self.timeout
        elif request.headers or stream:
            headers = dict(request.headers)
        else:
            return options
        if stream:
            headers["accept"] = _STREAM_ACCEPT
        options["headers"] = headers
        return options

    def close(self) -> None:
        """Close the pooled sync client (a user-provided one is left open)."""
        if self._sync_client is not None:
            self._sync_client.close()
            self._sync_client = None

    async def aclose(self) -> None:
        """Close the pooled async client of the running loop (user-provided ones stay open)."""
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    # ----------------------------------------------------------------- retries

    def _should_retry(self, error: CustomLLMError) -> bool:
        return self.max_retries > 0 and _can_retry(error)

    def _again(self, failed: CustomLLMError, attempt_once: Callable[[], _T]) -> _T:
        """Retry after a failed first attempt, under the same tenacity policy.

        The first attempt runs without tenacity (most calls succeed, and tenacity's
        bookkeeping costs ~25 µs a call); tenacity is entered only after a retryable failure,
        which is replayed as its first attempt, so delays, logging and the attempt count are
        those of one policy.
        """
        first: CustomLLMError | None = failed
        for attempt in self._retrying():
            with attempt:
                if first is not None:
                    error, first = first, None
                    raise error
                return attempt_once()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _aagain(
        self, failed: CustomLLMError, attempt_once: Callable[[], Awaitable[_T]]
    ) -> _T:
        """Async twin of `_again`."""
        first: CustomLLMError | None = failed
        async for attempt in self._aretrying():
            with attempt:
                if first is not None:
                    error, first = first, None
                    raise error
                return await attempt_once()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    # ----------------------------------------------------------------- I/O twins

    def send(self, request: WireRequest, describe: Describe = None) -> Any:
        """POST a request and return the decoded JSON answer, retrying per policy."""
        url = self._url(request)
        target = self._target(request)
        content = self._encode(request)
        client = self._client()
        options = self._request_options(
            request, stream=False, user_client=self._user_client is not None
        )

        def attempt_once() -> Any:
            try:
                response = client.request(request.method, target, content=content, **options)
            except httpx.HTTPError as exc:
                raise error_from_httpx(exc, url) from exc
            self._check(response, response.content, describe)
            return self._decode_json(response.content, url)

        try:
            return attempt_once()
        except CustomLLMError as error:
            if not self._should_retry(error):
                raise
            return self._again(error, attempt_once)

    async def asend(self, request: WireRequest, describe: Describe = None) -> Any:
        """Async twin of `send`."""
        url = self._url(request)
        target = self._target(request)
        content = self._encode(request)
        client = self._aclient()
        options = self._request_options(
            request, stream=False, user_client=self._user_async_client is not None
        )

        async def attempt_once() -> Any:
            try:
                response = await client.request(request.method, target, content=content, **options)
            except httpx.HTTPError as exc:
                raise error_from_httpx(exc, url) from exc
            self._check(response, response.content, describe)
            return self._decode_json(response.content, url)

        try:
            return await attempt_once()
        except CustomLLMError as error:
            if not self._should_retry(error):
                raise
            return await self._aagain(error, attempt_once)

    def stream(
        self,
        request: WireRequest,
        framing: Framing,
        describe: Describe = None,
        info: dict[str, Any] | None = None,
    ) -> Generator[SSEEvent, None, None]:
        """POST a request and yield its decoded stream events.

        Opening the stream (connect + status) is retried; reading it is not. Closing the
        generator (``break``, garbage collection) closes the response and frees the
        connection. ``info``, if given, receives the ``request_id`` once the stream opens,
        so errors raised later (by the caller's parsing, too) can name it.
        """
        url = self._url(request)
        target = self._target(request)
        content = self._encode(request)
        client = self._client()
        options = self._request_options(
            request, stream=True, user_client=self._user_client is not None
        )

        def open_once() -> httpx.Response:
            try:
                response = client.send(
                    client.build_request(request.method, target, content=content, **options),
                    stream=True,
                )
            except httpx.HTTPError as exc:
                raise error_from_httpx(exc, url) from exc
            if response.status_code >= 400:
                try:
                    body = response.read()
                except httpx.HTTPError:
                    body = b""
                finally:
                    response.close()
                self._check(response, body, describe)
            return response

        try:
            response = open_once()
        except CustomLLMError as error:
            if not self._should_retry(error):
                raise
            response = self._again(error, open_once)
        request_id = self._opened(response, framing, url, info)
        decoder = make_decoder(framing)
        watch = _IdleWatch(self.stream_chunk_timeout)
        try:
            if _not_a_stream(response, framing):
                raise self._wrong_answer(response, response.read(), url)
            seen = _FirstBytes()
            for raw in response.iter_bytes():
                events = decoder.feed(seen.keep(raw))
                watch.check(bool(events))
                seen.events += len(events)
                yield from events
            tail = decoder.flush()
            if not seen.events and not tail and seen.data:
                raise self._wrong_answer(response, seen.data, url)
            yield from tail
        except httpx.HTTPError as exc:
            raise _with_id(self._stream_error(exc, url), request_id) from exc
        except CustomLLMError as error:
            raise _with_id(error, request_id) from error.__cause__
        finally:
            response.close()

    async def astream(
        self,
        request: WireRequest,
        framing: Framing,
        describe: Describe = None,
        info: dict[str, Any] | None = None,
    ) -> AsyncGenerator[SSEEvent, None]:
        """Async twin of `stream`."""
        url = self._url(request)
        target = self._target(request)
        content = self._encode(request)
        client = self._aclient()
        options = self._request_options(
            request, stream=True, user_client=self._user_async_client is not None
        )

        async def open_once() -> httpx.Response:
            try:
                response = await client.send(
                    client.build_request(request.method, target, content=content, **options),
                    stream=True,
                )
            except httpx.HTTPError as exc:
                raise error_from_httpx(exc, url) from exc
            if response.status_code >= 400:
                try:
                    body = await response.aread()
                except httpx.HTTPError:
                    body = b""
                finally:
                    await response.aclose()
                self._check(response, body, describe)
            return response

        try:
            response = await open_once()
        except CustomLLMError as error:
            if not self._should_retry(error):
                raise
            response = await self._aagain(error, open_once)
        request_id = self._opened(response, framing, url, info)
        decoder = make_decoder(framing)
        watch = _IdleWatch(self.stream_chunk_timeout)
        try:
            if _not_a_stream(response, framing):
                raise self._wrong_answer(response, await response.aread(), url)
            seen = _FirstBytes()
            async for raw in response.aiter_bytes():
                events = decoder.feed(seen.keep(raw))
                watch.check(bool(events))
                seen.events += len(events)
                for event in events:
                    yield event
            tail = decoder.flush()
            if not seen.events and not tail and seen.data:
                raise self._wrong_answer(response, seen.data, url)
            for event in tail:
                yield event
        except httpx.HTTPError as exc:
            raise _with_id(self._stream_error(exc, url), request_id) from exc
        except CustomLLMError as error:
            raise _with_id(error, request_id) from error.__cause__
        finally:
            await response.aclose()
