"""One behavioural contract, every wire format, both twins.

Targets: llama.cpp's llama-server itself (``openai``; it sends usage in streams when asked),
and loopback emulators of Ollama, TGI and an in-house torch-serve-style API (``custom``,
configured as a user would in YAML), all answering with the same real model through llama.cpp.
Each test runs per target and per twin (sync/async); what a server genuinely cannot do is
declared on its target, not skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage

from langchain_customllm import (
    ChatCustomLLM,
    CustomLLM,
    CustomLLMError,
    NotFoundError,
    StreamError,
)
from tests._calls import run_invoke, run_stream, whole_and_streamed
from tests.integration_tests.conftest import MODEL
from tests.servers import ollama, tgi, torchserve
from tests.servers.base import Backend

# A system prompt keeps the 135M model's greedy answer short and on topic.
QUESTION = [("system", "Be brief."), ("human", "What is the capital of France?")]


@dataclass
class Target:
    """How to reach one server, and what it can genuinely do."""

    name: str
    base_url: str
    settings: dict[str, Any]
    stream_usage: bool = True
    crash: dict[str, Any] = field(default_factory=dict)  # settings that make it fail mid-stream
    not_found: dict[str, Any] = field(default_factory=dict)  # settings that make it 404

    def chat(self, **kwargs: Any) -> ChatCustomLLM:
        params = {"model": MODEL, "temperature": 0, "seed": 7, "max_tokens": 40}
        return ChatCustomLLM(**{"base_url": self.base_url, **params, **self.settings, **kwargs})

    def llm(self, **kwargs: Any) -> CustomLLM:
        params = {"model": MODEL, "temperature": 0, "seed": 7, "max_tokens": 24}
        return CustomLLM(**{"base_url": self.base_url, **params, **self.settings, **kwargs})


@pytest.fixture(scope="module")
def targets(base_url: str) -> Iterator[dict[str, Target]]:
    backend = Backend(base_url, MODEL)
    with (
        ollama.serve(backend) as ollama_server,
        tgi.serve(backend) as tgi_server,
        torchserve.serve(backend) as torch_server,
    ):
        yield {
            "openai": Target(
                "openai",
                base_url,
                {},
                not_found={"base_url": base_url.removesuffix("/v1") + "/no-such-api"},
            ),
            "ollama": Target(
                "ollama",
                ollama_server.url,
                {"wire_format": "ollama"},
                crash={"model": "crash-midstream"},
                not_found={"model": "missing-model"},
            ),
            "tgi": Target(
                "tgi",
                tgi_server.url,
                {"wire_format": "tgi"},
                not_found={"base_url": tgi_server.url + "/no-such-api"},
            ),
            "custom": Target(
                "custom",
                torch_server.url,
                {"wire_format": torchserve.TORCHSERVE_FORMAT},
                not_found={"base_url": torch_server.url + "/v2"},
            ),
        }


@pytest.fixture(params=["openai", "ollama", "tgi", "custom"])
def target(request: pytest.FixtureRequest, targets: dict[str, Target]) -> Target:
    return targets[str(request.param)]


def test_invoke_answers_with_usage(target: Target, mode: str) -> None:
    result = run_invoke(target.chat(), QUESTION, mode)
    assert isinstance(result, AIMessage)
    assert "Paris" in result.content
    assert result.usage_metadata is not None
    assert result.usage_metadata["input_tokens"] > 5
    assert result.usage_metadata["output_tokens"] > 0
    assert result.response_metadata["finish_reason"] in ("stop", "length")


def test_stream_equals_invoke(target: Target, mode: str) -> None:
    whole, chunks, full = whole_and_streamed(target.chat(), QUESTION, mode)
    assert len(chunks) > 2
    with_usage = [c for c in chunks if c.usage_metadata]
    if target.stream_usage:
        assert len(with_usage) == 1
        assert full.usage_metadata == whole.usage_metadata
    else:
        assert with_usage == []


def test_max_tokens_gives_length(target: Target, mode: str) -> None:
    result = run_invoke(target.chat(max_tokens=5), "Write a long story about a dragon.", mode)
    assert result.response_metadata["finish_reason"] == "length"
    assert result.usage_metadata is not None
    assert result.usage_metadata["output_tokens"] == 5


@pytest.mark.parametrize("stop", [["Paris"], [" of"]])
def test_stop_is_the_same_everywhere(target: Target, mode: str, stop: list[str]) -> None:
    whole, _, _ = whole_and_streamed(target.chat(), QUESTION, mode, stop=stop)
    assert stop[0] not in whole.content
    assert whole.response_metadata["finish_reason"] == "stop"


class Tokens(BaseCallbackHandler):
    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens.append(token)


def test_token_callbacks(target: Target) -> None:
    handler = Tokens()
    chunks = list(target.chat().stream(QUESTION, config={"callbacks": [handler]}))
    assert handler.tokens == [c.content for c in chunks]
    llm_handler = Tokens()
    texts = list(
        target.llm().stream("The capital of France is", config={"callbacks": [llm_handler]})
    )
    assert llm_handler.tokens == texts


def test_text_completion(target: Target, mode: str) -> None:
    llm = target.llm()
    whole = run_invoke(llm, "The capital of France is", mode)
    assert whole.strip()
    assert "".join(run_stream(llm, "The capital of France is", mode)) == whole


def test_not_found_is_typed(target: Target, mode: str) -> None:
    with pytest.raises(NotFoundError) as info:
        run_invoke(target.chat(**target.not_found), QUESTION, mode)
    assert info.value.status_code == 404


# The emulators fail mid-stream on demand ("crash-midstream" in the prompt or as the model);
# the real llama.cpp server cannot be made to, which the fault-injection suite covers instead.
@pytest.mark.parametrize("name", ["ollama", "tgi", "custom"])
def test_error_mid_stream_keeps_partial_text(
    targets: dict[str, Target], name: str, mode: str
) -> None:
    target = targets[name]
    with pytest.raises(CustomLLMError) as info:
        run_stream(target.chat(**target.crash), [("human", "crash-midstream"), *QUESTION], mode)
    assert isinstance(info.value, StreamError)
    assert info.value.partial_text
