"""Every fault x invoke/ainvoke/stream/astream x ChatCustomLLM/CustomLLM x wire format.

Each cell scripts the faulty server, makes one call under a watchdog, and asserts exactly
one of two outcomes:

1. `Ok` -- recovered: the server saw exactly the attempts the retry policy allows, the
   recorded retry delays are within the policy's bounds (backoff ``0.5 * 2**n * (0.75..1]``,
   ``Retry-After`` honoured exactly, over 120 s: no retry), and the text is the full answer.
2. `Fails` -- a typed `CustomLLMError` subclass with the right ``status_code``, a message that
   says what happened, the request id the server sent, and for a stream cut after output
   began, ``partial_text`` equal to the text received so far; never a truncated "success".

Stream-only faults run ``invoke``/``ainvoke`` with ``streaming=True`` (the streaming endpoint
behind ``invoke``); faults in a whole answer run ``invoke``/``ainvoke`` only.

This module holds the faults before and around an answer (statuses, unreadable 200s,
the connection) and the calls nobody answers; faults within a stream are in
test_fault_streams.py, the shared machinery in _matrix.py.
"""

from __future__ import annotations

import json

import pytest

from langchain_customllm import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    ContextLengthExceededError,
    CustomLLMError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTimeoutError,
    ResponseError,
)
from tests.fault_tests._helpers import (
    KEY,
    METHODS,
    MODEL_CLASSES,
    TEXT,
    Recorder,
    build_model,
    call,
)
from tests.fault_tests._matrix import (
    ALL_FAMILIES,
    BACKOFF,
    WHOLE,
    Build,
    Expect,
    Fails,
    Fault,
    Ok,
    check_delays,
    check_error,
    err,
    exactly,
    fault_registry,
    fault_test,
    ok,
)
from tests.servers.faulty import (
    DIALECTS,
    HTML_PAGE,
    Behaviour,
    Dialect,
    NeverAccept,
    answer,
    close_before_answer,
    context_length_error,
    cut_body,
    hang,
    json_answer,
    refused_url,
    reset_before_answer,
    status_error,
    truncated_json,
)

FAULTS: list[Fault] = []
fault = fault_registry(FAULTS)


# ------------------------------------------------------------------ retryable statuses


@fault("429-backoff-then-ok")
def _429_backoff(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 429), err(d, 429), ok(d, k)], Ok(attempts=3, delays=BACKOFF)


@fault("429-exhausted")
def _429_exhausted(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(
        RateLimitError, 3, BACKOFF, 429, says=("rate limit",), request_id=True, max_elapsed=3
    )
    return [err(d, 429)] * 3, expect


@fault("429-retry-after-seconds")
def _429_ra_seconds(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    scripts = [err(d, 429, retry_after=2), err(d, 429, retry_after=2), ok(d, k)]
    return scripts, Ok(attempts=3, delays=(exactly(2.0), exactly(2.0)))


@fault("429-retry-after-http-date")
def _429_ra_date(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    # An HTTP date has whole seconds: 4 s ahead reads as a little over 3 to 4 s.
    return [err(d, 429, retry_after_date_in=4), ok(d, k)], Ok(attempts=2, delays=((2.5, 4.0),))


@fault("429-retry-after-ms")
def _429_ra_ms(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 429, retry_after_ms=1500), ok(d, k)], Ok(attempts=2, delays=(exactly(1.5),))


@fault("429-retry-after-ms-wins")
def _429_ra_ms_wins(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    scripts = [err(d, 429, retry_after_ms=250, retry_after=7), ok(d, k)]
    return scripts, Ok(attempts=2, delays=(exactly(0.25),))


@fault("429-retry-after-120-boundary")
def _429_ra_120(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 429, retry_after=120), ok(d, k)], Ok(attempts=2, delays=(exactly(120.0),))


@fault("429-retry-after-0-backs-off")
def _429_ra_0(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 429, retry_after=0), ok(d, k)], Ok(attempts=2, delays=BACKOFF[:1])


@fault("429-retry-after-300-no-retry")
def _429_ra_300(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(RateLimitError, 1, (), 429, request_id=True, retry_after=300.0)
    return [err(d, 429, retry_after=300)], expect


@fault("429-retry-after-date-1h-no-retry")
def _429_ra_far_date(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 429, retry_after_date_in=3600)], Fails(RateLimitError, 1, (), 429)


@fault("408-then-ok")
def _408_ok(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 408), ok(d, k)], Ok(attempts=2, delays=BACKOFF[:1])


@fault("408-exhausted")
def _408_exhausted(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(RequestTimeoutError, 3, BACKOFF, 408, says=("timed out",), request_id=True)
    return [err(d, 408)] * 3, expect


@fault("409-then-ok")
def _409_ok(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 409), err(d, 409), ok(d, k)], Ok(attempts=3, delays=BACKOFF)


@fault("409-retry-after-1")
def _409_ra(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 409, retry_after=1), ok(d, k)], Ok(attempts=2, delays=(exactly(1.0),))


@fault("409-exhausted")
def _409_exhausted(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [err(d, 409)] * 3, Fails(ConflictError, 3, BACKOFF, 409, request_id=True)


def _5xx_ok(code: int) -> Build:
    def build(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
        return [err(d, code), err(d, code), ok(d, k)], Ok(attempts=3, delays=BACKOFF)

    return build


def _5xx_exhausted(code: int) -> Build:
    def build(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
        message = f"upstream {code}: GPU worker crashed"
        expect = Fails(
            InternalServerError,
            3,
            BACKOFF,
            code,
            says=("server error", message.lower()),
            request_id=True,
        )
        return [err(d, code, message)] * 3, expect

    return build


for _code in (500, 503):
    fault(f"{_code}-then-ok", families=ALL_FAMILIES)(_5xx_ok(_code))
    fault(f"{_code}-exhausted", families=ALL_FAMILIES)(_5xx_exhausted(_code))
for _code in (502, 504):
    fault(f"{_code}-then-ok")(_5xx_ok(_code))
    fault(f"{_code}-exhausted")(_5xx_exhausted(_code))


@fault("503-x-should-retry-false")
def _503_no_retry(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    scripts = [err(d, 503, headers={"x-should-retry": "false"})]
    return scripts, Fails(InternalServerError, 1, (), 503, request_id=True)


# ------------------------------------------------------------------ final statuses


@fault("400-context-length")
def _400_context(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(
        ContextLengthExceededError,
        1,
        (),
        400,
        says=("maximum context length is 2048", "shorten the prompt"),
        request_id=True,
    )
    return [context_length_error()], expect


@fault("401-echoes-key")
def _401(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    # Some gateways echo the key they refused; it must not reach the error.
    body = {"error": {"message": f"Incorrect API key provided: {KEY}", "type": "auth_error"}}
    expect = Fails(AuthenticationError, 1, (), 401, says=("incorrect api key",), request_id=True)
    return [status_error(401, body=body)], expect


@fault("403")
def _403(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(PermissionDeniedError, 1, (), 403, says=("not allowed",), request_id=True)
    return [err(d, 403, "model access denied")], expect


@fault("404")
def _404(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(NotFoundError, 1, (), 404, says=("base_url",), request_id=True)
    return [err(d, 404, "model 'm' not found")], expect


@fault("502-html-page-exhausted")
def _html_502(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(InternalServerError, 3, BACKOFF, 502, says=("html",), request_id=True)
    return [answer(502, HTML_PAGE, content_type="text/html")] * 3, expect


@fault("404-html-page")
def _html_404(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(NotFoundError, 1, (), 404, says=("html", "base_url"), request_id=True)
    return [answer(404, HTML_PAGE, content_type="text/html")], expect


# ------------------------------------------------------------------ 200s we cannot read


@fault("200-html-page")
def _200_html(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    # A wrong base_url that lands on a web UI: the message must say an HTML page came back.
    expect = Fails(ResponseError if k == "whole" else CustomLLMError, 1, says=("html",))
    return [answer(200, HTML_PAGE, content_type="text/html")], expect


@fault("200-non-json")
def _200_text(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    body = "upstream hiccup, please retry"
    expect = Fails(
        ResponseError if k == "whole" else CustomLLMError,
        1,
        says_any=("upstream hiccup", "text/plain"),
    )
    return [answer(200, body, content_type="text/plain")], expect


@fault("200-truncated-json", WHOLE, ALL_FAMILIES)
def _200_truncated(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [truncated_json(d.whole(TEXT))], Fails(ResponseError, 1, says=("not json",))


@fault("200-empty-body", WHOLE)
def _200_empty(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [answer(200, b"")], Fails(ResponseError, 1)


@fault("200-wrong-shape", WHOLE)
def _200_shape(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [json_answer({"result": TEXT})], Fails(ResponseError, 1, says=("choices",))


@fault("200-error-object", WHOLE, ALL_FAMILIES)
def _200_error_object(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    body = d.error_body("model is loading")
    return [json_answer(body)], Fails(ResponseError, 1, says=("model is loading",))


@fault("200-invalid-utf8", WHOLE, ALL_FAMILIES)
def _200_bad_utf8(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    data = json.dumps(d.whole(TEXT), ensure_ascii=False).encode().replace(b"\xc3\xa9", b"\xe9")
    return [answer(200, data)], Fails(ResponseError, 1)


@fault("huge-answer-6mb", WHOLE, ALL_FAMILIES)
def _huge(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    text = "0123456789abcdé " * (6 * 1024 * 1024 // 16)
    return [json_answer(d.whole(text))], Ok(text=text)


# ------------------------------------------------------------------ the connection


@fault("cut-body-then-ok", WHOLE, ALL_FAMILIES)
def _cut_body_ok(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    cut = cut_body(d.whole(TEXT))
    return [cut, cut, ok(d, k)], Ok(attempts=3, delays=BACKOFF)


@fault("cut-body-exhausted", WHOLE)
def _cut_body_exhausted(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(APIConnectionError, 3, BACKOFF, says=("broke",))
    return [cut_body(d.whole(TEXT))] * 3, expect


@fault("closed-before-answer-then-ok")
def _closed_ok(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    scripts = [close_before_answer(), close_before_answer(), ok(d, k)]
    return scripts, Ok(attempts=3, delays=BACKOFF)


@fault("closed-before-answer-exhausted")
def _closed_exhausted(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [close_before_answer()] * 3, Fails(APIConnectionError, 3, BACKOFF)


@fault("reset-before-answer-then-ok", families=ALL_FAMILIES)
def _reset_ok(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    return [reset_before_answer(), ok(d, k)], Ok(attempts=2, delays=BACKOFF[:1])


@fault("reset-before-answer-exhausted")
def _reset_exhausted(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(APIConnectionError, 3, BACKOFF, says=("reset",))
    return [reset_before_answer()] * 3, expect


@fault("accept-then-hang", timeout=0.3)
def _accept_hang(d: Dialect, k: str) -> tuple[list[Behaviour], Expect]:
    expect = Fails(APITimeoutError, 3, BACKOFF, says=("timed out",), max_elapsed=3.0)
    return [hang()] * 3, expect


test_fault = fault_test(FAULTS)


# ------------------------------------------------------------------ nobody answers


UNREACHABLE = [
    pytest.param(cls_name, method, id=f"{cls_name}-{method}")
    for cls_name in MODEL_CLASSES
    for method in METHODS
]


@pytest.mark.parametrize(("cls_name", "method"), UNREACHABLE)
def test_connection_refused(cls_name: str, method: str) -> None:
    """A closed port: retried per policy (the server never sees it), then typed."""
    dialect = DIALECTS[("openai", cls_name == "chat")]
    recorder = Recorder()
    model = build_model(MODEL_CLASSES[cls_name], dialect, refused_url(), recorder)
    outcome = call(model, method)
    check_delays(recorder.delays, BACKOFF)
    check_error(
        outcome,
        Fails(APIConnectionError, says=("could not connect",), max_elapsed=3.0),
        None,
        method,
    )


@pytest.mark.parametrize(("cls_name", "method"), UNREACHABLE)
def test_never_accepted(cls_name: str, method: str) -> None:
    """A frozen server (the kernel completes the handshake, nobody answers): timed out."""
    dialect = DIALECTS[("openai", cls_name == "chat")]
    recorder = Recorder()
    with NeverAccept() as frozen:
        model = build_model(MODEL_CLASSES[cls_name], dialect, frozen.url, recorder, timeout=0.3)
        outcome = call(model, method)
    check_delays(recorder.delays, BACKOFF)
    check_error(outcome, Fails(APITimeoutError, says=("timed out",), max_elapsed=3.0), None, method)
