"""The thin provider client: send a `WireRequest`, get JSON or stream events back.

Only I/O lives here, in twins that differ only by ``await``: `send` / `asend` and
`stream` / `astream`. What they lean on is pure or built elsewhere: the clients and pools
(`_http.HttpPools`), the headers and the masking of secrets (`_auth`), the retry decisions
(`_retry`), which replica gets each attempt (`_replicas.ReplicaSet`), the reading of a
stream body (`_reader.EventReader`) and the error mapping (`_exceptions`).

Retries (tenacity) cover connecting and the HTTP status; once a stream's body is being
read, errors are raised, never retried, so no output is ever produced twice. With several
replicas, an attempt that failed because of its replica goes to another one at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any, NoReturn, TypeVar

import httpx

from langchain_customllm._auth import Redactor
from langchain_customllm._exceptions import (
    CustomLLMError,
    error_from_response,
    request_id_of,
)
from langchain_customllm._framing import Framing, StreamEvent
from langchain_customllm._health import apick, pick
from langchain_customllm._http import HttpPools
from langchain_customllm._json import loads
from langchain_customllm._reader import EventReader, is_not_a_stream
from langchain_customllm._replicas import Replica, ReplicaSet
from langchain_customllm._request import (
    body_read_error,
    decode_json,
    not_a_stream_error,
    send_error,
)
from langchain_customllm._retry import aagain, again, apolicy, can_retry, policy
from langchain_customllm.formats.base import WireRequest

# A stream as opened: the response, its replica, its URL, the seconds it took to open.
Opened = tuple[httpx.Response, Replica, str, float]

__all__ = ["Answer", "ProviderClient"]

# A wire format's hook to find the server's message in an error body.
Describe = Callable[[Any], str | None] | None
# A single answer, whatever its status: status, headers, JSON body (None if not JSON).
Answer = tuple[int, httpx.Headers, Any]

_T = TypeVar("_T")


def _json_or_none(content: bytes) -> Any:
    try:
        return loads(content) if content else None
    except ValueError:
        return None


def _with_id(error: CustomLLMError, request_id: str | None) -> CustomLLMError:
    if error.request_id is None:
        error.request_id = request_id
    return error


class ProviderClient:
    """Sends requests for one model configuration; sync and async.

    Args:
        replicas: The server or servers to send to (their encoders: URLs, headers).
        pools: The httpx clients to send through.
        redact: Masks this configuration's secrets in errors.
        max_retries: Retries after the first attempt.
        stream_chunk_timeout: Seconds a stream may go without an event before
            `StreamTimeoutError`; None leaves only ``timeout``'s per-read limit.
    """

    def __init__(
        self,
        *,
        replicas: ReplicaSet,
        pools: HttpPools,
        redact: Redactor,
        max_retries: int,
        stream_chunk_timeout: float | None,
    ) -> None:
        self.replicas = replicas
        # The first replica answers the questions asked once (detection, token counts).
        self.encoder = replicas.primary.encoder
        self.base_url = self.encoder.base_url
        self.pools = pools
        self.redact = redact
        self.max_retries = max_retries
        self.stream_chunk_timeout = stream_chunk_timeout
        # Injectable so unit tests can count retries without real sleeps.
        self.sleep: Callable[[float], None] = time.sleep
        self.asleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def __repr__(self) -> str:
        # Never show headers: they hold the key.
        return f"ProviderClient(base_url={self.base_url!r}, max_retries={self.max_retries})"

    # ----------------------------------------------------------------- answers

    def _check(self, response: httpx.Response, content: bytes, describe: Describe) -> None:
        if response.status_code >= 400:
            raise self.redact(
                error_from_response(response.status_code, response.headers, content, describe)
            )

    def _opened(
        self, response: httpx.Response, replica: Replica, info: dict[str, Any] | None
    ) -> str | None:
        """The stream is open: bound each further read, note the request id and replica."""
        # httpcore reads the request's timeout extension when the body is first read, so
        # changing it now bounds the body only, not the time to the first byte (a long
        # prefill is not a stalled stream).
        if self.stream_chunk_timeout is not None:
            timeouts = response.request.extensions.get("timeout")
            if isinstance(timeouts, dict):
                timeouts["read"] = self.stream_chunk_timeout
        request_id = request_id_of(response.headers)
        if info is not None:
            info["request_id"] = request_id
            self._note(replica, info)
        return request_id

    def _note(self, replica: Replica, info: dict[str, Any] | None) -> None:
        if info is not None and self.replicas.many:
            info["replica"] = replica.base_url

    def _target(
        self, replica: Replica, request: WireRequest, *, stream: bool, user: bool
    ) -> tuple[httpx.URL, str, dict[str, Any]]:
        encoder = replica.encoder
        target, url = encoder.target(request)
        return target, url, encoder.options(request, stream=stream, user=user)

    def _read_error(self, exc: httpx.HTTPError, url: str) -> CustomLLMError:
        limit = self.stream_chunk_timeout or self.encoder.timeout.read
        return body_read_error(exc, url, limit)

    # ----------------------------------------------------------------- retries

    def _should_retry(self, error: CustomLLMError) -> bool:
        return self.max_retries > 0 and (can_retry(error) or self.replicas.can_fail_over(error))

    def _fail(self, error: CustomLLMError) -> NoReturn:
        """End the call with ``error``, or with every replica's failures when all rest.

        The replicas' error names ``error`` as its cause; ``error`` itself keeps its own.
        """
        final = self.replicas.explain(error)
        raise final from (error.__cause__ if final is error else error)

    def _target_name(self) -> str:
        extra = len(self.replicas.replicas) - 1
        return f"{self.base_url} (+{extra} replicas)" if extra else self.base_url

    def _failover(self) -> Callable[[BaseException], bool] | None:
        return self.replicas.can_fail_over if self.replicas.many else None

    def _again(self, failed: CustomLLMError, attempt_once: Callable[[], _T]) -> _T:
        retrying = policy(
            self._target_name(), self.max_retries, self.sleep, failover=self._failover()
        )
        try:
            return again(failed, attempt_once, retrying)
        except CustomLLMError as error:
            self._fail(error)

    async def _aagain(
        self, failed: CustomLLMError, attempt_once: Callable[[], Awaitable[_T]]
    ) -> _T:
        retrying = apolicy(
            self._target_name(), self.max_retries, self.asleep, failover=self._failover()
        )
        try:
            return await aagain(failed, attempt_once, retrying)
        except CustomLLMError as error:
            self._fail(error)

    # ----------------------------------------------------------------- I/O twins

    def send(
        self, request: WireRequest, describe: Describe = None, info: dict[str, Any] | None = None
    ) -> Any:
        """POST a request and return the decoded JSON answer, retrying per policy.

        ``info``, if given, receives the replica that answered (with several).
        """
        user = self.pools.user_client is not None
        content = self.encoder.content(request)
        replicas = self.replicas

        def attempt_once() -> Any:
            replica = pick(self, request)
            target, url, options = self._target(replica, request, stream=False, user=user)
            started = time.monotonic()
            try:
                try:
                    # The client of this attempt: close() may have replaced it since the last.
                    client = self.pools.sync()
                    response = client.request(request.method, target, content=content, **options)
                except (httpx.HTTPError, UnicodeEncodeError, RuntimeError) as exc:
                    raise send_error(exc, url) from exc
                self._check(response, response.content, describe)
                answer = decode_json(response.content, url)
            except CustomLLMError as error:
                replicas.end(replica, error)
                raise
            except BaseException:
                replicas.release(replica)
                raise
            replicas.end(replica, latency=time.monotonic() - started)
            self._note(replica, info)
            return answer

        try:
            return attempt_once()
        except CustomLLMError as error:
            if not self._should_retry(error):
                self._fail(error)
            return self._again(error, attempt_once)

    async def asend(
        self, request: WireRequest, describe: Describe = None, info: dict[str, Any] | None = None
    ) -> Any:
        """Async twin of `send`."""
        user = self.pools.user_async_client is not None
        content = self.encoder.content(request)
        replicas = self.replicas

        async def attempt_once() -> Any:
            replica = await apick(self, request)
            target, url, options = self._target(replica, request, stream=False, user=user)
            started = time.monotonic()
            try:
                try:
                    response = await self.pools.asend(request.method, target, content, options)
                except (httpx.HTTPError, UnicodeEncodeError, RuntimeError) as exc:
                    raise send_error(exc, url) from exc
                self._check(response, response.content, describe)
                answer = decode_json(response.content, url)
            except CustomLLMError as error:
                replicas.end(replica, error)
                raise
            except BaseException:
                replicas.release(replica)
                raise
            replicas.end(replica, latency=time.monotonic() - started)
            self._note(replica, info)
            return answer

        try:
            return await attempt_once()
        except CustomLLMError as error:
            if not self._should_retry(error):
                self._fail(error)
            return await self._aagain(error, attempt_once)

    def _once_options(
        self, replica: Replica, request: WireRequest, timeout: float, *, user: bool
    ) -> tuple[httpx.URL, str, bytes, dict[str, Any]]:
        target, url, options = self._target(replica, request, stream=False, user=user)
        options["timeout"] = httpx.Timeout(timeout)
        return target, url, replica.encoder.content(request), options

    def _once(self, replica: Replica, request: WireRequest, timeout: float) -> Answer:
        user = self.pools.user_client is not None
        target, url, content, options = self._once_options(replica, request, timeout, user=user)
        try:
            response = self.pools.sync().request(request.method, target, content=content, **options)
        except (httpx.HTTPError, UnicodeEncodeError, RuntimeError) as exc:
            raise send_error(exc, url) from exc
        return response.status_code, response.headers, _json_or_none(response.content)

    async def _aonce(self, replica: Replica, request: WireRequest, timeout: float) -> Answer:
        user = self.pools.user_async_client is not None
        target, url, content, options = self._once_options(replica, request, timeout, user=user)
        try:
            response = await self.pools.asend(request.method, target, content, options)
        except (httpx.HTTPError, UnicodeEncodeError, RuntimeError) as exc:
            raise send_error(exc, url) from exc
        return response.status_code, response.headers, _json_or_none(response.content)

    def once(self, request: WireRequest, timeout: float) -> Answer:
        """Send a request once to the first replica (no retries, ``timeout`` seconds).

        For questions whose failure must not fail the caller (server detection): an error
        status is returned, not raised; only not getting an answer raises.

        Raises:
            CustomLLMError: When no answer came (connection refused, timeout, ...).
        """
        return self._once(self.replicas.primary, request, timeout)

    async def aonce(self, request: WireRequest, timeout: float) -> Answer:
        """Async twin of `once`."""
        return await self._aonce(self.replicas.primary, request, timeout)

    def stream(
        self,
        request: WireRequest,
        framing: Framing,
        describe: Describe = None,
        info: dict[str, Any] | None = None,
    ) -> Generator[StreamEvent, None, None]:
        """POST a request and yield its decoded stream events.

        Opening the stream (connect + status) is retried; reading it is not. Closing the
        generator (``break``, garbage collection) closes the response and frees the
        connection. ``info``, if given, receives the ``request_id`` (and, with several, the
        replica) once the stream opens, so errors raised later can name it.
        """
        user = self.pools.user_client is not None
        content = self.encoder.content(request)
        replicas = self.replicas

        def open_once() -> Opened:
            replica = pick(self, request)
            target, url, options = self._target(replica, request, stream=True, user=user)
            started = time.monotonic()
            try:
                try:
                    client = self.pools.sync()
                    response = client.send(
                        client.build_request(request.method, target, content=content, **options),
                        stream=True,
                    )
                except (httpx.HTTPError, UnicodeEncodeError, RuntimeError) as exc:
                    raise send_error(exc, url) from exc
                if response.status_code >= 400:
                    try:
                        body = response.read()
                    except httpx.HTTPError:
                        body = b""
                    finally:
                        response.close()
                    self._check(response, body, describe)
            except CustomLLMError as error:
                replicas.end(replica, error)
                raise
            except BaseException:
                replicas.release(replica)
                raise
            return response, replica, url, time.monotonic() - started

        try:
            response, replica, url, latency = open_once()
        except CustomLLMError as error:
            if not self._should_retry(error):
                self._fail(error)
            response, replica, url, latency = self._again(error, open_once)
        request_id = self._opened(response, replica, info)
        reader = EventReader(framing, self.stream_chunk_timeout)
        broken: CustomLLMError | None = None
        try:
            if is_not_a_stream(response.headers, framing):
                raise self.redact(not_a_stream_error(response.headers, response.read(), url))
            for raw in response.iter_bytes():
                yield from reader.feed(raw)
            yield from reader.finish()
            if reader.unreadable:
                raise self.redact(not_a_stream_error(response.headers, reader.first_bytes, url))
        except httpx.HTTPError as exc:
            broken = self._read_error(exc, url)
            raise _with_id(broken, request_id) from exc
        except CustomLLMError as error:
            raise _with_id(error, request_id) from error.__cause__
        finally:
            response.close()
            replicas.end(replica, broken, latency)

    async def astream(
        self,
        request: WireRequest,
        framing: Framing,
        describe: Describe = None,
        info: dict[str, Any] | None = None,
    ) -> AsyncGenerator[StreamEvent, None]:
        """Async twin of `stream`."""
        user = self.pools.user_async_client is not None
        content = self.encoder.content(request)
        replicas = self.replicas

        async def open_once() -> Opened:
            replica = await apick(self, request)
            target, url, options = self._target(replica, request, stream=True, user=user)
            started = time.monotonic()
            try:
                try:
                    response = await self.pools.asend(
                        request.method, target, content, options, stream=True
                    )
                except (httpx.HTTPError, UnicodeEncodeError, RuntimeError) as exc:
                    raise send_error(exc, url) from exc
                if response.status_code >= 400:
                    try:
                        body = await response.aread()
                    except httpx.HTTPError:
                        body = b""
                    finally:
                        await response.aclose()
                    self._check(response, body, describe)
            except CustomLLMError as error:
                replicas.end(replica, error)
                raise
            except BaseException:
                replicas.release(replica)
                raise
            return response, replica, url, time.monotonic() - started

        try:
            response, replica, url, latency = await open_once()
        except CustomLLMError as error:
            if not self._should_retry(error):
                self._fail(error)
            response, replica, url, latency = await self._aagain(error, open_once)
        request_id = self._opened(response, replica, info)
        reader = EventReader(framing, self.stream_chunk_timeout)
        broken: CustomLLMError | None = None
        try:
            if is_not_a_stream(response.headers, framing):
                raise self.redact(not_a_stream_error(response.headers, await response.aread(), url))
            async for raw in response.aiter_bytes():
                for event in reader.feed(raw):
                    yield event
            for event in reader.finish():
                yield event
            if reader.unreadable:
                raise self.redact(not_a_stream_error(response.headers, reader.first_bytes, url))
        except httpx.HTTPError as exc:
            broken = self._read_error(exc, url)
            raise _with_id(broken, request_id) from exc
        except CustomLLMError as error:
            raise _with_id(error, request_id) from error.__cause__
        finally:
            await response.aclose()
            replicas.end(replica, broken, latency)
