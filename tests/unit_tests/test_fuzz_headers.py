"""Fuzzing the response headers, as test_fuzz.py fuzzes the bodies.

Random headers -- Retry-After as seconds, huge numbers and absurd HTTP dates,
retry-after-ms, x-should-retry, content-type, x-request-id, and any other name with any
bytes -- on error and success statuses, through the real client on an httpx.MockTransport,
on all four call paths of both model classes. Whatever comes back, the only error that may
leave the package is a `CustomLLMError`; a call that succeeds gives the whole answer.
"""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from langchain_customllm import CustomLLMError, ResponseError
from tests._calls import STREAM_PATHS, call, text_of
from tests.unit_tests.fakes import FakeServer, chat_body, chat_chunks, completion_chunks, sse

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STATUSES = [200, 201, 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 529]
ANSWER = "Paris."

# Header values as a server may send them: any bytes but the line breaks that end a header.
raw_values = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
texts = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
numbers = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e400", "-1e400", "inf", "nan", "0x10", "1_000", " 7 ", "+3", "-0"]),
)
http_dates = st.builds(
    "{}, {:02d} {} {} {:02d}:{:02d}:{:02d} {}".format,
    st.sampled_from(["Mon", "Tue", "Xyz", ""]),
    st.integers(0, 99),
    st.sampled_from(["Jan", "Feb", "Dec", "Foo"]),
    st.one_of(st.integers(-5, 10**25), st.sampled_from([0, 1, 69, 1970, 9999, 10000, 99999])),
    st.integers(0, 99),
    st.integers(0, 99),
    st.integers(0, 99),
    st.sampled_from(["GMT", "UTC", "+0000", "+9999", "-9999", "+99999999999", "EST", ""]),
)
header_names = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"),
    min_size=1,
    max_size=20,
)
known = st.fixed_dictionaries(
    {},
    optional={
        "retry-after": st.one_of(numbers, http_dates, texts),
        "retry-after-ms": st.one_of(numbers, texts),
        "llm_provider-retry-after": st.one_of(numbers, http_dates),
        "x-should-retry": st.one_of(st.sampled_from(["true", "false", "TRUE", "1", ""]), texts),
        "content-type": st.one_of(
            st.sampled_from(
                [
                    "application/json",
                    "text/event-stream",
                    "application/x-ndjson",
                    "text/plain",
                    "text/html; charset=utf-8",
                    "application/json; charset=latin-1",
                    "application/problem+json",
                    "",
                ]
            ),
            texts,
        ),
        "x-request-id": st.one_of(texts, raw_values.map(lambda b: b.decode("latin-1"))),
    },
)
others = st.lists(st.tuples(header_names, raw_values), max_size=4)


def body_for(kind: str, path: str, status: int) -> bytes:
    """A correct answer for a success status, an error body otherwise."""
    if status >= 400:
        return json.dumps({"error": {"message": f"simulated {status}"}}).encode()
    if path in STREAM_PATHS:
        chunks = chat_chunks([ANSWER]) if kind == "chat" else completion_chunks([ANSWER])
        return sse(*chunks)
    if kind == "chat":
        return json.dumps(chat_body(ANSWER)).encode()
    choice = {"index": 0, "text": ANSWER, "finish_reason": "stop"}
    return json.dumps({"id": "cmpl-1", "object": "text_completion", "choices": [choice]}).encode()


ABSURD_DATE = {"retry-after": "Tue, 01 Jan 100000000000000000000 00:00:00 GMT"}


@pytest.mark.parametrize("kind", ["chat", "text"])
@pytest.mark.parametrize("path", ["invoke", "ainvoke", "stream", "astream"])
@SETTINGS
@example(status=429, named=ABSURD_DATE, extra=[], retries=2)
@example(status=503, named={"retry-after": "Mon, 01 Jan 99999 00:00:00 GMT"}, extra=[], retries=1)
@given(
    status=st.sampled_from(STATUSES),
    named=known,
    extra=others,
    retries=st.integers(0, 2),
)
def test_any_response_headers_give_only_typed_errors(
    kind: str,
    path: str,
    status: int,
    named: dict[str, str],
    extra: list[tuple[str, bytes]],
    retries: int,
) -> None:
    headers: list[tuple[bytes, bytes]] = [
        (k.encode(), v.encode("latin-1")) for k, v in named.items()
    ]
    headers += [(k.encode(), v) for k, v in extra]
    content = body_for(kind, path, status)
    server = FakeServer()

    def answer(request: httpx.Request) -> httpx.Response:
        server.answers.append(answer)  # the same answer to every retry
        return httpx.Response(status, headers=headers, content=content)

    server.add(answer)
    model = (server.chat if kind == "chat" else server.llm)(max_retries=retries)
    try:
        result = call(model, path, "q")
    except CustomLLMError:
        assert 1 <= len(server.requests) <= retries + 1
        return
    assert status < 400, f"a {status} answer was taken for a success"
    assert text_of(result) == ANSWER


def test_non_ascii_cookie_on_a_retry_is_typed(kind: str, path: str) -> None:
    server = FakeServer()

    def answer(request: httpx.Request) -> httpx.Response:
        server.answers.append(answer)
        headers = [(b"set-cookie", b"lb=\x80node")]
        return httpx.Response(429, headers=headers, content=body_for(kind, path, 429))

    server.add(answer)
    model = (server.chat if kind == "chat" else server.llm)(max_retries=1)
    with pytest.raises(ResponseError, match=r"a header value is not ASCII.*Set-Cookie"):
        call(model, path, "q")
    assert len(server.requests) == 1  # the retry could not be sent, and is not tried again
