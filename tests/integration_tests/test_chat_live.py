"""ChatCustomLLM behaviour beyond the standard suite, against the real llama.cpp server."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.prompts import ChatPromptTemplate

from langchain_customllm import (
    APIConnectionError,
    ChatCustomLLM,
    ContextLengthExceededError,
    NotFoundError,
)
from tests._calls import merge
from tests.integration_tests.conftest import MODEL


@pytest.fixture
def chat() -> ChatCustomLLM:
    return ChatCustomLLM(model=MODEL, temperature=0, seed=7, max_tokens=40)


def test_prompt_chain_streams(chat: ChatCustomLLM) -> None:
    chain = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")]) | chat
    chunks = list(chain.stream({"q": "What is the capital of France?"}))
    assert len(chunks) > 2
    assert "Paris" in merge(chunks).content


def test_invoke_usage_and_metadata(chat: ChatCustomLLM) -> None:
    result = chat.invoke("What is the capital of France?")
    assert result.usage_metadata is not None
    assert result.usage_metadata["input_tokens"] > 5
    assert result.usage_metadata["output_tokens"] > 0
    assert result.response_metadata["model_name"] == MODEL
    assert result.response_metadata["finish_reason"] in ("stop", "length")
    assert str(result.response_metadata["id"]).startswith("chatcmpl")


def test_max_tokens_sent_as_max_tokens(chat: ChatCustomLLM) -> None:
    result = chat.invoke("Write a long story about a dragon.", max_tokens=4)
    assert result.response_metadata["finish_reason"] == "length"
    assert result.usage_metadata is not None
    assert result.usage_metadata["output_tokens"] == 4


@pytest.mark.parametrize("stop", [["Paris"], ["capital"], [" is"]])
def test_stop_same_streamed_and_whole(chat: ChatCustomLLM, stop: list[str]) -> None:
    question = "What is the capital of France? Answer in one sentence."
    whole = chat.invoke(question, stop=stop)
    streamed = merge(list(chat.stream(question, stop=stop)))
    assert streamed.content == whole.content
    assert stop[0] not in whole.content
    assert whole.response_metadata["finish_reason"] == "stop"
    assert streamed.response_metadata["finish_reason"] == "stop"


def test_include_stop_sequence(chat: ChatCustomLLM) -> None:
    question = "What is the capital of France? Answer in one sentence."
    plain = chat.invoke(question, stop=["Paris"])
    kept = chat.invoke(question, stop=["Paris"], include_stop_sequence=True)
    # llama.cpp cuts the stop itself; we put it back only when asked.
    assert kept.content == plain.content + "Paris"


def test_async_across_event_loops(chat: ChatCustomLLM) -> None:
    first = asyncio.run(chat.ainvoke("Say hi."))
    second = asyncio.run(chat.ainvoke("Say hi."))
    assert first.content == second.content  # same seed, temperature 0


def test_context_overflow_is_typed(chat: ChatCustomLLM) -> None:
    with pytest.raises(ContextLengthExceededError) as info:
        chat.invoke("word " * 5000)
    assert info.value.status_code == 400


def test_wrong_path_is_not_found(base_url: str) -> None:
    wrong = ChatCustomLLM(model=MODEL, base_url=base_url.removesuffix("/v1") + "/nope")
    with pytest.raises(NotFoundError, match="base_url"):
        wrong.invoke("hi")


def test_nothing_listening_is_a_connection_error() -> None:
    dead = ChatCustomLLM(model=MODEL, base_url="http://127.0.0.1:9/v1", max_retries=1)
    with pytest.raises(APIConnectionError, match="is the server running"):
        dead.invoke("hi")
