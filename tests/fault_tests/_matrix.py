"""The fault matrix's machinery, shared by test_fault_matrix.py and test_fault_streams.py.

What a cell expects (`Ok` or `Fails`), the ``@fault`` registry each module fills, the
scripted answers faults are built from, the checks, and ``fault_test``: the one test
body every cell runs. The conftest has pytest rewrite this module's asserts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from langchain_customllm import CustomLLMError
from tests._calls import text_of
from tests.fault_tests._helpers import (
    HAS_CHUNK_TIMEOUT,
    KEY,
    METHODS,
    MODEL_CLASSES,
    PIECES,
    TEXT,
    Outcome,
    Recorder,
    build_model,
    call,
)
from tests.servers.faulty import (
    DIALECTS,
    Behaviour,
    Dialect,
    FaultyServer,
    json_answer,
    status_error,
    stream,
)

Delay = tuple[float, float]
BACKOFF: tuple[Delay, ...] = ((0.375, 0.5), (0.75, 1.0))


def exactly(seconds: float) -> Delay:
    return (seconds, seconds)


@dataclass(frozen=True)
class Ok:
    """Recovered: the full text after ``attempts`` attempts and these retry delays."""

    text: str = TEXT
    attempts: int = 1
    delays: tuple[Delay, ...] = ()
    min_elapsed: float = 0.0


@dataclass(frozen=True)
class Fails:
    """A typed error; ``partial`` None means no output had begun (no partial text)."""

    error: type[CustomLLMError]
    attempts: int = 1
    delays: tuple[Delay, ...] = ()
    status: int | None = None
    says: tuple[str, ...] = ()
    says_any: tuple[str, ...] = ()
    never_says: tuple[str, ...] = ()
    request_id: bool = False
    partial: str | None = None
    exact: str | None = None
    retry_after: float | None = None
    max_elapsed: float = 8.0


Expect = Ok | Fails
Build = Callable[[Dialect, str], tuple[list[Behaviour], Expect]]

WHOLE = frozenset({"whole"})
STREAM = frozenset({"stream"})
BOTH = WHOLE | STREAM
OPENAI = ("openai",)
ALL_FAMILIES = ("openai", "ollama", "custom")


@dataclass(frozen=True)
class Fault:
    name: str
    kinds: frozenset[str]
    families: tuple[str, ...]
    build: Build
    model: dict[str, Any] = field(default_factory=dict)
    needs_chunk_timeout: bool = False


def fault_registry(faults: list[Fault]) -> Callable[..., Callable[[Build], Build]]:
    """The ``@fault(...)`` decorator of one module: it adds each ``Build`` to ``faults``."""

    def fault(
        name: str,
        kinds: frozenset[str] = BOTH,
        families: tuple[str, ...] = OPENAI,
        *,
        needs_chunk_timeout: bool = False,
        **model: Any,
    ) -> Callable[[Build], Build]:
        def register(build: Build) -> Build:
            faults.append(Fault(name, kinds, families, build, model, needs_chunk_timeout))
            return build

        return register

    return fault


def ok(d: Dialect, kind: str, text: str = TEXT, pieces: list[str] | None = None) -> Behaviour:
    """The correct answer for this dialect and kind."""
    if kind == "whole":
        return json_answer(d.whole(text))
    return stream(d.full_stream(pieces or PIECES), content_type=d.content_type)


def err(d: Dialect, status: int, message: str | None = None, **kwargs: Any) -> Behaviour:
    """An error status with this dialect's error body."""
    text = message or f"simulated {status}"
    return status_error(status, body=d.error_body(text, status), **kwargs)


def partial_stream(d: Dialect, *tail: bytes | Any, end: str = "end", **kwargs: Any) -> Behaviour:
    """A stream that delivers the first two pieces, then ``tail``, then ends as told."""
    parts = [*d.piece_events(PIECES[:2]), *tail]
    return stream(parts, end=end, content_type=d.content_type, **kwargs)


# ------------------------------------------------------------------ the matrix


def _kind(f: Fault, method: str) -> tuple[str, bool] | None:
    """(kind, streaming flag) for a method, or None if the fault does not apply to it."""
    if method in ("stream", "astream"):
        return ("stream", False) if "stream" in f.kinds else None
    if "whole" in f.kinds:
        return ("whole", False)
    return ("stream", True)


def _cells(faults: list[Fault]) -> list[Any]:
    cells = []
    for f in faults:
        for family in f.families:
            for cls_name in MODEL_CLASSES:
                for method in METHODS:
                    if _kind(f, method) is None:
                        continue
                    marks = []
                    if f.needs_chunk_timeout and not HAS_CHUNK_TIMEOUT:
                        marks.append(
                            pytest.mark.xfail(
                                strict=True, reason="stream_chunk_timeout not implemented yet"
                            )
                        )
                    cells.append(
                        pytest.param(
                            f,
                            family,
                            cls_name,
                            method,
                            id=f"{f.name}-{family}-{cls_name}-{method}",
                            marks=marks,
                        )
                    )
    return cells


def check_delays(delays: list[float], expected: tuple[Delay, ...]) -> None:
    assert len(delays) == len(expected), f"retry delays {delays}, expected {expected}"
    for got, (low, high) in zip(delays, expected, strict=True):
        assert low <= got <= high, f"retry delay {got} not within [{low}, {high}] ({delays})"


def check_error(outcome: Outcome, expect: Fails, server: FaultyServer | None, method: str) -> None:
    error = outcome.error
    assert error is not None, (
        f"expected {expect.error.__name__}, but the call 'succeeded' with {outcome.text!r}"
    )
    assert isinstance(error, expect.error), (
        f"expected {expect.error.__name__}, got {type(error).__name__}: {error}"
    )
    if expect.exact is not None:
        assert type(error).__name__ == expect.exact, f"got {type(error).__name__}: {error}"
    assert error.status_code == expect.status, f"status_code {error.status_code}: {error}"
    message = str(error).lower()
    for words in expect.says:
        assert words in message, f"the message should say {words!r}: {error}"
    if expect.says_any:
        assert any(w in message for w in expect.says_any), (
            f"the message should say one of {expect.says_any}: {error}"
        )
    for words in expect.never_says:
        assert words not in message, f"the message should not say {words!r}: {error}"
    if expect.request_id:
        assert server is not None
        last = server.requests[-1].request_id
        assert error.request_id == last, f"request_id {error.request_id!r}, sent {last!r}"
        assert last in str(error)
    if expect.retry_after is not None:
        assert getattr(error, "retry_after", None) == expect.retry_after
    if expect.partial is None:
        assert not error.partial_text, f"no output had begun, partial={error.partial_text!r}"
    else:
        assert error.partial_text == expect.partial, (
            f"partial_text {error.partial_text!r}, expected {expect.partial!r}"
        )
        if method in ("stream", "astream"):
            assert text_of(outcome.seen) == expect.partial, "the caller saw other text"
    for where in (str(error), repr(error), error.message, error.partial_text or ""):
        assert KEY not in where, "the API key leaked into the error"
    assert KEY not in json.dumps(error.body, default=str), "the API key leaked into error.body"
    assert outcome.elapsed <= expect.max_elapsed, f"took {outcome.elapsed:.2f} s"


def check_ok(outcome: Outcome, expect: Ok) -> None:
    if outcome.error is not None:
        raise AssertionError(
            f"expected the full text, got {type(outcome.error).__name__}: {outcome.error}"
        ) from outcome.error
    assert outcome.text == expect.text, (
        f"text differs: {len(outcome.text or '')} chars vs {len(expect.text)} expected; "
        f"got {(outcome.text or '')[:80]!r}"
    )
    assert outcome.elapsed >= expect.min_elapsed


def fault_test(faults: list[Fault]) -> Callable[..., None]:
    """``test_fault`` over every cell of ``faults``: one module's part of the matrix."""

    @pytest.mark.parametrize(("f", "family", "cls_name", "method"), _cells(faults))
    def test_fault(f: Fault, family: str, cls_name: str, method: str, server: FaultyServer) -> None:
        kind, streaming = _kind(f, method) or ("", False)
        dialect = DIALECTS[(family, cls_name == "chat")]
        scripts, expect = f.build(dialect, kind)
        server.script(*scripts)
        recorder = Recorder()
        overrides = dict(f.model)
        if streaming:
            overrides["streaming"] = True
        model = build_model(MODEL_CLASSES[cls_name], dialect, server.url, recorder, **overrides)

        outcome = call(model, method)

        # What reached the server: every attempt to the right path, stream flag as expected.
        for request in server.requests:
            assert request.path == dialect.path
            assert bool(request.json().get("stream")) == (kind == "stream")
        assert server.attempts == expect.attempts, (
            f"the server saw {server.attempts} attempts, expected {expect.attempts}"
            + (f"; the call ended with {outcome.error!r}" if outcome.error else "")
        )
        assert server.pending == 0
        assert server.unexpected == 0
        check_delays(recorder.delays, expect.delays)
        if isinstance(expect, Ok):
            check_ok(outcome, expect)
        else:
            check_error(outcome, expect, server, method)

    return test_fault
