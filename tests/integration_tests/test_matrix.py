"""The behavioural contract on four real servers: two llama.cpp families, vLLM, LiteLLM.

- ``llamacpp``: llama.cpp's C++ ``llama-server`` (the session's own, ``scripts/local_server.py``,
  with our tool-capable chat template);
- ``llama-cpp-python``: llama-cpp-python 0.3.36's server with ``--chat_format
  chatml-function-calling`` (``scripts/llama_cpp_python_server.py``);
- ``vllm``: vLLM 0.32 (CPU build) with the same model converted from the GGUF
  (``scripts/vllm_server.py``), requiring a key;
- ``litellm``: the LiteLLM proxy 1.106.2 with a master key and no database, in front of its
  own ``llama-server`` (``scripts/litellm_server.py``).

All serve SmolLM2-135M-Instruct as ``smollm2``. Each test runs on every server it applies to;
what a server genuinely does differently is a strict xfail with the measured reason, so a
server that starts to behave is noticed. Every server is configured the way
``customllm probe`` recommends for it (docs/compatibility.md). Marked ``matrix``:
``make matrix`` runs these (and the standard suites in test_matrix_standard.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from _pytest.mark.structures import ParameterSet
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.outputs import LLMResult
from pydantic import BaseModel, Field

from langchain_customllm import (
    AuthenticationError,
    ChatCustomLLM,
    NotFoundError,
    RateLimitError,
)
from langchain_customllm._detect import declared_prefix
from tests._calls import merge, run_invoke, run_stream, whole_and_streamed
from tests.integration_tests._gaps import LLAMA_NO_KEY, PROXY_HIDES_PREFIX
from tests.integration_tests.conftest import (
    LITELLM_KEY,
    LLAMACPP_PROFILE,
    MODEL,
    ROOT,
    VLLM_KEY,
)

pytestmark = pytest.mark.matrix

QUESTION = [("system", "Be brief."), ("human", "What is the capital of France?")]
WRONG_KEY = "sk-matrix-wrong-key-0123456789"

# The proxy in front of llama-server, as `customllm probe` recommends: the backend's limits
# plus the proxy's own estimated stream usage.
LITELLM_PROFILE = {"base": LLAMACPP_PROFILE, "stream_usage": True, "usage_estimated": True}

GAPS: dict[str, dict[str, str]] = {
    "llamacpp": {
        "unknown_model": "llama-server serves one model and answers any model name with 200",
        "wrong_key": LLAMA_NO_KEY,
        "missing_key": LLAMA_NO_KEY,
    },
    "llama-cpp-python": {
        "unknown_model": "llama.cpp serves one model and answers any model name with 200",
        "wrong_key": LLAMA_NO_KEY,
        "missing_key": LLAMA_NO_KEY,
    },
    "vllm": {},
    "litellm": {
        "stream_usage_exact": (
            "the proxy counts stream usage itself (19 prompt tokens where llama.cpp counts 42 "
            "for the same request); the answer says so with usage_estimated: True"
        ),
        "missing_key": (
            "LiteLLM 1.106.2 without a database answers a request with no key at all with "
            "500 text/plain 'Internal Server Error': nothing in it says it is about the key"
        ),
        "tools": PROXY_HIDES_PREFIX,
        "structured_tools": PROXY_HIDES_PREFIX,
    },
}
SERVERS = tuple(GAPS)
# Greedy answers that depend on the CPU's kernels, not on the server: llama-cpp-python's
# build for a CPU without AVX-512 answers QUESTION with "La femme de France, ..." (a near tie
# on the first token), where AVX-512 builds answer "The capital of France is Paris."; these
# cells are xfail but not strict, since either answer is right for its build.
CPU_DEPENDENT: dict[tuple[str, str], str] = {
    ("llama-cpp-python", check): (
        "llama-cpp-python's greedy answer to QUESTION depends on the CPU's kernels: without "
        "AVX-512 it does not name Paris (measured on this machine's AVX2 build)"
    )
    for check in ("invoke", "stop")
}
# Where each server's stream usage comes from (response_metadata["usage_source"]).
USAGE_SOURCES = {
    "llamacpp": "server",
    "llama-cpp-python": "tokenized",
    "vllm": "server",
    "litellm": "estimated",
}


@dataclass
class Target:
    """One server as a user would configure `ChatCustomLLM` for it."""

    name: str
    base_url: str
    settings: dict[str, Any] = field(default_factory=dict)
    estimated_usage: bool = False

    def chat(self, **kwargs: Any) -> ChatCustomLLM:
        params: dict[str, Any] = {
            "base_url": self.base_url,
            "model": MODEL,
            "temperature": 0,
            "seed": 7,
            "max_tokens": 16,
            "max_retries": 0,
        }
        return ChatCustomLLM(**{**params, **self.settings, **kwargs})


def on(check: str, servers: Sequence[str] = SERVERS) -> list[ParameterSet]:
    """Parameters for a check: one per server, a strict xfail where that server has a gap."""
    params = []
    for name in servers:
        reason = GAPS[name].get(check)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        if (name, check) in CPU_DEPENDENT:
            marks = [pytest.mark.xfail(strict=False, reason=CPU_DEPENDENT[name, check])]
        params.append(pytest.param(name, id=name, marks=marks))
    return params


# Each server: (the fixture giving its URL, its settings, whether its stream usage is an
# estimate). The one place a server's configuration is written.
# No server_profile anywhere: each model detects its server at the first call, which is
# what a user with default settings gets (test_detect_live.py checks the family picked).
TARGETS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "llamacpp": ("base_url", {}, False),
    "llama-cpp-python": ("llama_cpp_python_base_url", {}, False),
    "vllm": ("vllm_base_url", {"api_key": VLLM_KEY}, False),
    "litellm": ("litellm_base_url", {"api_key": LITELLM_KEY}, True),
}


@pytest.fixture
def target(request: pytest.FixtureRequest) -> Target:
    name = str(request.param)
    fixture, settings, estimated = TARGETS[name]
    return Target(name, request.getfixturevalue(fixture), dict(settings), estimated)


# ------------------------------------------------------------------ answers and streams


@pytest.mark.parametrize("target", on("invoke"), indirect=True)
def test_invoke(target: Target, mode: str) -> None:
    result = run_invoke(target.chat(), QUESTION, mode)
    assert isinstance(result, AIMessage)
    assert "Paris" in result.content
    assert result.usage_metadata is not None
    assert result.usage_metadata["input_tokens"] > 5
    assert result.usage_metadata["output_tokens"] > 0
    assert result.response_metadata["finish_reason"] == "stop"
    assert result.response_metadata["model_name"] == MODEL
    assert "usage_estimated" not in result.response_metadata  # a whole answer's is the model's


@pytest.mark.parametrize("target", on("stream"), indirect=True)
def test_stream_equals_invoke(target: Target, mode: str) -> None:
    _, chunks, full = whole_and_streamed(target.chat(), QUESTION, mode)
    assert len(chunks) > 2
    if full.usage_metadata is not None:
        assert full.response_metadata.get("usage_estimated", False) is target.estimated_usage


@pytest.mark.parametrize("target", on("stream_usage"), indirect=True)
def test_stream_usage_on_exactly_one_chunk(target: Target) -> None:
    chunks = list(target.chat().stream(QUESTION))
    with_usage = [c for c in chunks if c.usage_metadata]
    assert len(with_usage) == 1
    assert with_usage[0].usage_metadata is not None
    assert with_usage[0].usage_metadata["output_tokens"] > 0
    estimated = with_usage[0].response_metadata.get("usage_estimated", False)
    assert estimated is target.estimated_usage
    # llama-cpp-python sends none: counted with its own tokenizer (/extras/tokenize), the
    # prompt rendered as ChatML (SmolLM2's template).
    assert with_usage[0].response_metadata["usage_source"] == USAGE_SOURCES[target.name]


@pytest.mark.parametrize("target", on("stream_usage_exact"), indirect=True)
def test_stream_usage_equals_invoke_usage(target: Target) -> None:
    model = target.chat()
    whole = model.invoke(QUESTION)
    full = merge(list(model.stream(QUESTION)))
    assert full.usage_metadata == whole.usage_metadata


@pytest.mark.parametrize("target", on("max_tokens"), indirect=True)
def test_max_tokens_gives_length(target: Target, mode: str) -> None:
    result = run_invoke(target.chat(max_tokens=3), "Write a long story about a dragon.", mode)
    assert result.response_metadata["finish_reason"] == "length"
    assert result.usage_metadata is not None
    assert result.usage_metadata["output_tokens"] == 3


# "capital of" spans several tokens, so several stream chunks; with include_stop_sequence the
# stop is not sent to the server and is found by our client alone, across chunks.
@pytest.mark.parametrize("target", on("stop"), indirect=True)
@pytest.mark.parametrize("stop", ["Paris", "capital of"])
@pytest.mark.parametrize("include", [False, True], ids=["server", "client"])
def test_stop_across_chunks(target: Target, mode: str, stop: str, include: bool) -> None:
    model = target.chat(include_stop_sequence=include)
    whole, _, _ = whole_and_streamed(model, QUESTION, mode, stop=[stop])
    assert whole.response_metadata["finish_reason"] == "stop"
    if include:
        assert whole.content.endswith(stop)
        assert whole.content.count(stop) == 1
    else:
        assert stop not in whole.content
        assert whole.content  # stopped inside the answer, not before it


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.ends: list[LLMResult] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.ends.append(response)


@pytest.mark.parametrize("target", on("callbacks"), indirect=True)
def test_callbacks(target: Target) -> None:
    handler = Recorder()
    chunks = list(target.chat().stream(QUESTION, config={"callbacks": [handler]}))
    assert handler.tokens == [c.content for c in chunks]
    assert len(handler.ends) == 1
    message = handler.ends[0].generations[0][0].message  # type: ignore[attr-defined]
    assert message.content == "".join(handler.tokens)


# --------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("target", on("unknown_model"), indirect=True)
def test_unknown_model_is_not_found(target: Target, mode: str) -> None:
    with pytest.raises(NotFoundError) as info:
        run_invoke(target.chat(model="no-such-model"), QUESTION, mode)
    # LiteLLM says it with a 400 ("Invalid model name passed in model=..."): same class,
    # its own status kept.
    assert info.value.status_code == (400 if target.name == "litellm" else 404)
    assert "no-such-model" in info.value.message


@pytest.mark.parametrize("target", on("wrong_key"), indirect=True)
def test_wrong_key_is_an_authentication_error(target: Target, mode: str) -> None:
    with pytest.raises(AuthenticationError) as info:
        run_invoke(target.chat(api_key=WRONG_KEY, max_retries=2), QUESTION, mode)
    err = info.value
    assert WRONG_KEY not in str(err)
    assert WRONG_KEY not in repr(err.body)
    assert err.status_code in (400, 401)
    assert not err.is_retryable
    if target.name == "litellm":
        assert "No connected db." in err.message  # the gateway's own words


@pytest.mark.parametrize("target", on("missing_key"), indirect=True)
def test_missing_key_is_an_authentication_error(target: Target) -> None:
    with pytest.raises(AuthenticationError):
        target.chat(api_key=None).invoke(QUESTION)


@pytest.mark.parametrize("style", ["bearer", "x-litellm-api-key"])
def test_gateway_key_styles(litellm_base_url: str, style: str) -> None:
    header = {"api_key_header": "x-litellm-api-key", "api_key_scheme": None}
    settings = header if style == "x-litellm-api-key" else {}
    target = Target("litellm", litellm_base_url, {"server_profile": LITELLM_PROFILE})
    assert "Paris" in target.chat(api_key=LITELLM_KEY, **settings).invoke(QUESTION).content
    with pytest.raises(AuthenticationError, match="No connected db"):
        target.chat(api_key=WRONG_KEY, **settings).invoke(QUESTION)


def test_gateway_rate_limit_hint(litellm_base_url: str) -> None:
    # `smollm2-limited` allows 1 request a minute; the proxy's 429 carries its retry hint only
    # in llm_provider-retry-after (no Retry-After). 60 s is within MAX_RETRY_AFTER, so a
    # client with retries would wait it out; with none the hint is on the error.
    model = Target("litellm", litellm_base_url, {"api_key": LITELLM_KEY}).chat(
        model="smollm2-limited", max_tokens=2
    )
    errors = []
    for _ in range(3):
        try:
            model.invoke(QUESTION)
        except RateLimitError as exc:
            errors.append(exc)
            break
    assert errors, "three requests within a minute were all served"
    assert errors[0].status_code == 429
    assert errors[0].retry_after == 60.0
    assert errors[0].is_retryable


def test_gateway_rate_limit_is_retried(litellm_base_url: str) -> None:
    # LiteLLM's mock RateLimitError: a real 429 every time, without a hint (so backoff).
    model = Target("litellm", litellm_base_url, {"api_key": LITELLM_KEY}).chat(
        model="rate-limited", max_retries=1
    )
    with pytest.raises(RateLimitError, match="mock rate limit") as info:
        model.invoke(QUESTION)
    assert info.value.status_code == 429
    assert info.value.retry_after is None


# -------------------------------------------------------------- tools, structured output


class GetWeather(BaseModel):
    """Get the current weather in a city."""

    city: str = Field(description="The city name")


@pytest.mark.parametrize("target", on("tools"), indirect=True)
@pytest.mark.parametrize("choice", ["GetWeather", "any"])
def test_forced_tool_call(target: Target, choice: str) -> None:
    # vLLM writes the hermes wrapper `<tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>`
    # (about 55 tokens here) and parses it at the end: a cut wrapper is text, not a call.
    model = target.chat(max_tokens=64).bind_tools([GetWeather], tool_choice=choice)
    prompt = "What is the weather in Paris?"
    # Both twins, one each: a call takes ~6 s on vLLM here.
    whole = run_invoke(model, prompt, "sync")
    streamed = merge(run_stream(model, prompt, "async"))
    for message in (whole, streamed):
        assert len(message.tool_calls) == 1, message
        call = message.tool_calls[0]
        assert call["name"] == "GetWeather"
        assert isinstance(call["args"], dict)
        assert isinstance(call["args"].get("city"), str)
        assert call["id"]
        assert message.invalid_tool_calls == []
    assert whole.tool_calls[0]["args"] == streamed.tool_calls[0]["args"]


class City(BaseModel):
    """A city."""

    city: str


def _with_method(check: str, method: str) -> list[ParameterSet]:
    # The function_calling method is a forced tool call: it has the tool gaps.
    return [
        pytest.param(*p.values, method, marks=p.marks, id=f"{method}-{p.id}") for p in on(check)
    ]


@pytest.mark.parametrize(
    ("target", "method"),
    _with_method("structured", "json_schema")
    + _with_method("structured_tools", "function_calling"),
    indirect=["target"],
)
def test_structured_output(target: Target, mode: str, method: str) -> None:
    model = target.chat(max_tokens=64).with_structured_output(City, method=method)
    result = run_invoke(model, "Give the capital of France as JSON with the key city.", mode)
    assert isinstance(result, City)
    assert result.city


def test_gateway_tools_with_the_backends_prefix_set_by_hand(litellm_base_url: str) -> None:
    # The proxy hides llama-server's /props (PROXY_HIDES_PREFIX), so detection cannot learn
    # the template's tool-call prefix; given by hand in the profile (docs/compatibility.md),
    # it travels in the messages and forced calls work through the proxy.
    template = (ROOT / "scripts" / "templates" / "smollm2-tools.jinja").read_text()
    profile = {"base": "llamacpp", "tool_call_prefix": declared_prefix({"chat_template": template})}
    target = Target(
        "litellm", litellm_base_url, {"api_key": LITELLM_KEY, "server_profile": profile}
    )
    model = target.chat(max_tokens=64)
    tools = model.bind_tools([GetWeather], tool_choice="GetWeather")
    prompt = "What is the weather in Paris?"
    for message in (run_invoke(tools, prompt, "sync"), merge(run_stream(tools, prompt, "async"))):
        assert [call["name"] for call in message.tool_calls] == ["GetWeather"], message
    city = model.with_structured_output(City, method="function_calling").invoke(
        "Give the capital of France as JSON with the key city."
    )
    assert isinstance(city, City)
    assert city.city
