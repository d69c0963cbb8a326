"""Replicas under every failure kind, on real loopback sockets, on all four call paths.

Two scripted servers are the replicas of one model (``base_url=[bad, good]``, round-robin,
so the first request goes to ``bad``). For each failure kind before any output, the call
must succeed on ``good`` at once (no backoff), ``bad`` must rest, and the next call must
not reach it. A stream cut after output began is never re-sent: it raises
`StreamInterruptedError` with the text so far. When both fail, one
`ReplicasUnavailableError` names each one's failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from langchain_customllm import (
    APIConnectionError,
    ReplicasUnavailableError,
    StreamError,
    StreamInterruptedError,
)
from tests._calls import STREAM_PATHS, call, text_of
from tests.fault_tests._helpers import KEY, METHODS, PARTIAL, PROMPT, TEXT, Recorder, build_model
from tests.fault_tests._matrix import err, ok, partial_stream
from tests.servers.faulty import (
    OPENAI_CHAT,
    FaultyServer,
    close_before_answer,
    hang,
    refused_url,
    reset_before_answer,
)

D = OPENAI_CHAT
Kind = Callable[[], Any]

# Each failure a replica can show before any output, and how long it then rests.
BEFORE_OUTPUT: dict[str, tuple[Kind, float]] = {
    "close-before-answer": (close_before_answer, 5.0),
    "reset-before-answer": (reset_before_answer, 5.0),
    "timeout": (hang, 5.0),
    "500": (lambda: err(D, 500), 5.0),
    "502": (lambda: err(D, 502), 5.0),
    "503": (lambda: err(D, 503), 5.0),
    "408": (lambda: err(D, 408), 5.0),
    "429-retry-after-30": (lambda: err(D, 429, retry_after=30), 30.0),
    "429-retry-after-600": (lambda: err(D, 429, retry_after=600), 600.0),
}


@pytest.fixture
def pair() -> Iterator[tuple[FaultyServer, FaultyServer]]:
    with FaultyServer() as bad, FaultyServer() as good:
        yield bad, good
    for srv in (bad, good):
        assert not srv.handler_errors, srv.handler_errors


def _kind(method: str) -> str:
    return "stream" if method in STREAM_PATHS else "whole"


def _model(urls: list[str], recorder: Recorder, **overrides: Any) -> Any:
    return build_model(
        _chat(), D, urls[0], recorder, base_url=urls, routing="round_robin", **overrides
    )


def _chat() -> type:
    from langchain_customllm import ChatCustomLLM

    return ChatCustomLLM


def _urls(*roots: str) -> list[str]:
    # round_robin's first turn is the second in the list: put the faulty one there.
    return [D.base_url(roots[1]), D.base_url(roots[0])]


def _run(model: Any, method: str) -> Any:
    return call(model, method, PROMPT, aclose=model.aclose)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("fault", BEFORE_OUTPUT)
def test_a_failure_before_output_goes_to_the_other_replica(
    pair: tuple[FaultyServer, FaultyServer], fault: str, method: str
) -> None:
    bad, good = pair
    make, rest = BEFORE_OUTPUT[fault]
    kind = _kind(method)
    bad.script(make())
    good.script(ok(D, kind), ok(D, kind))
    recorder = Recorder()
    model = _model(_urls(bad.url, good.url), recorder)
    assert text_of(_run(model, method)) == TEXT
    assert (bad.attempts, good.attempts) == (1, 1)
    assert set(recorder.delays) <= {0.0}  # failed over at once, no backoff
    stats = {s.base_url: s for s in model.replica_stats()}
    hurt = stats[D.base_url(bad.url)]
    assert hurt.errors == 1
    assert not hurt.available
    assert hurt.cooling_for == pytest.approx(rest, abs=1.0)
    assert all(s.in_flight == 0 for s in stats.values())
    # While it rests, nothing new reaches it.
    assert text_of(_run(model, method)) == TEXT
    assert (bad.attempts, good.attempts) == (1, 2)


@pytest.mark.parametrize("method", METHODS)
def test_a_refused_replica_is_failed_over(method: str) -> None:
    with FaultyServer() as good:
        good.script(ok(D, _kind(method)))
        recorder = Recorder()
        down = refused_url()
        model = _model([D.base_url(good.url), D.base_url(down)], recorder)
        assert text_of(_run(model, method)) == TEXT
        assert good.attempts == 1
        assert set(recorder.delays) <= {0.0}
        down_stats = model.replica_stats()[1]
        assert down_stats.errors == 1
        assert "ConnectError" in (down_stats.last_error or "")


@pytest.mark.parametrize("method", sorted(STREAM_PATHS))
@pytest.mark.parametrize("end", ["close", "reset"])
def test_a_stream_cut_after_output_is_never_re_sent(
    pair: tuple[FaultyServer, FaultyServer], method: str, end: str
) -> None:
    bad, good = pair
    bad.script(partial_stream(D, end=end))
    model = _model(_urls(bad.url, good.url), Recorder())
    seen: list[Any] = []
    with pytest.raises(StreamInterruptedError) as caught:
        call(model, method, PROMPT, seen=seen, aclose=model.aclose)
    error = caught.value
    assert isinstance(error, StreamError)
    assert isinstance(error, APIConnectionError)
    assert error.partial_text == PARTIAL
    assert text_of(seen) == PARTIAL
    assert (bad.attempts, good.attempts) == (1, 0)
    assert not model.replica_stats()[1].available
    assert KEY not in str(error)


@pytest.mark.parametrize("method", METHODS)
def test_when_both_fail_one_error_names_each(
    pair: tuple[FaultyServer, FaultyServer], method: str
) -> None:
    bad, worse = pair
    bad.script(err(D, 503, "first is overloaded"))
    worse.script(reset_before_answer())
    recorder = Recorder()
    model = _model(_urls(bad.url, worse.url), recorder, max_retries=5)
    with pytest.raises(ReplicasUnavailableError) as caught:
        _run(model, method)
    error = caught.value
    assert (bad.attempts, worse.attempts) == (1, 1)  # each tried once; no third attempt
    assert "first is overloaded" in error.failures[D.base_url(bad.url)]
    assert "APIConnectionError" in error.failures[D.base_url(worse.url)]
    assert error.retry_after == pytest.approx(5.0, abs=1.0)
    assert KEY not in str(error)
    assert KEY not in repr(error.failures)
