"""Token counts and counted usage against the real llama.cpp ``llama-server`` (C++).

What the package counts with the server's ``/apply-template`` and ``/tokenize`` must equal
what the server itself reports as usage for the same request: the prompt, the completion,
``get_num_tokens_from_messages``, and so what ``trim_messages`` keeps. The tests skip on a
server without ``/apply-template`` (llama-cpp-python's), which has no template endpoint.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.messages.utils import trim_messages

from langchain_customllm import ChatCustomLLM, ContextLengthExceededError, CustomLLM
from langchain_customllm._request import server_root
from tests._calls import merge, run_invoke, run_stream
from tests.integration_tests.conftest import MODEL

# The C++ server's tokenizer, and no usage asked in streams: the package counts it.
PROFILE = {"base": "llamacpp", "tokenizer": "llamacpp", "stream_usage": False}
BRIEF = [SystemMessage("Be brief."), HumanMessage("Name three colors.")]
HISTORY: list[BaseMessage] = [
    SystemMessage("You are a helpful assistant."),
    HumanMessage("What is the capital of France?"),
    AIMessage("The capital of France is Paris."),
    HumanMessage("And of Italy?"),
    AIMessage("Rome is the capital of Italy."),
    HumanMessage("Which of the two is larger?"),
]


@pytest.fixture(scope="module")
def cpp_url(base_url: str) -> str:
    """``base_url``, if the server there is llama.cpp's C++ server (else the tests skip)."""
    try:
        answer = httpx.post(
            server_root(base_url) + "/apply-template",
            json={"messages": [{"role": "user", "content": "hi"}]},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        pytest.skip(f"no server at {base_url}: {exc}")
    if answer.status_code != 200 or "prompt" not in answer.json():
        pytest.skip(
            f"the server at {base_url} is not llama.cpp's llama-server (no /apply-template)"
        )
    return base_url


def chat(url: str, **kwargs: Any) -> ChatCustomLLM:
    settings: dict[str, Any] = {
        "base_url": url,
        "model": MODEL,
        "temperature": 0,
        "seed": 7,
        "server_profile": PROFILE,
        "stream_usage": False,
        "pricing": {"input": 1.0, "output": 2.0},
        **kwargs,
    }
    return ChatCustomLLM(**settings)


@pytest.mark.parametrize("max_tokens", [12, 60], ids=["length", "stop"])
def test_tokenized_stream_usage_equals_the_servers(
    cpp_url: str, mode: str, max_tokens: int
) -> None:
    llm = chat(cpp_url, max_tokens=max_tokens)
    whole = run_invoke(llm, BRIEF, mode)
    streamed = merge(run_stream(llm, BRIEF, mode))
    assert streamed.content == whole.content  # the same answer: the counts must agree
    assert whole.response_metadata["usage_source"] == "server"
    assert streamed.response_metadata["usage_source"] == "tokenized"
    assert whole.usage_metadata is not None
    assert streamed.usage_metadata is not None
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        assert streamed.usage_metadata[key] == whole.usage_metadata[key], key
    assert streamed.response_metadata["cost"]["total_cost"] == pytest.approx(
        whole.response_metadata["cost"]["total_cost"]
    )


@pytest.mark.parametrize(
    "messages", [BRIEF, HISTORY, HISTORY[1:2]], ids=["brief", "history", "one"]
)
def test_num_tokens_from_messages_equals_prompt_tokens(
    cpp_url: str, messages: list[BaseMessage]
) -> None:
    llm = chat(cpp_url, max_tokens=1)
    answer = llm.invoke(messages)
    assert answer.usage_metadata is not None
    assert llm.get_num_tokens_from_messages(messages) == answer.usage_metadata["input_tokens"]


def test_trim_messages_keeps_what_fits_exactly(cpp_url: str) -> None:
    llm = chat(cpp_url, max_tokens=1)
    turns = HISTORY[1:]  # human, ai, human, ai, human
    full = llm.get_num_tokens_from_messages(turns)
    kept = trim_messages(turns, max_tokens=full - 1, token_counter=llm, start_on="human")
    assert kept == turns[-3:]  # the oldest exchange goes, and no more
    counted = llm.get_num_tokens_from_messages(kept)
    assert counted <= full - 1
    answer = llm.invoke(kept)
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == counted  # what the server counts


def test_trim_messages_with_a_system_message_fits(cpp_url: str) -> None:
    # langchain-core counts the system message apart from the rest, so the template's fixed
    # part (the assistant turn it opens) is counted twice: the result fits, with room left.
    llm = chat(cpp_url, max_tokens=1)
    budget = llm.get_num_tokens_from_messages(HISTORY) - 5
    kept = trim_messages(
        HISTORY, max_tokens=budget, token_counter=llm, include_system=True, start_on="human"
    )
    assert kept[0] == HISTORY[0]
    assert kept[-1] == HISTORY[-1]
    counted = llm.get_num_tokens_from_messages(kept)
    assert counted <= budget
    answer = llm.invoke(kept)
    assert answer.usage_metadata is not None
    assert answer.usage_metadata["input_tokens"] == counted


def test_tools_are_counted_as_the_server_renders_them(cpp_url: str) -> None:
    def weather(city: str) -> str:
        """The weather in a city."""
        return city

    llm = chat(cpp_url, max_tokens=1)
    answer = llm.bind_tools([weather]).invoke(BRIEF)
    assert answer.usage_metadata is not None
    counted = llm.get_num_tokens_from_messages(BRIEF, tools=[weather])
    assert counted == answer.usage_metadata["input_tokens"]


def test_text_prompt_counts_equal_the_servers(cpp_url: str) -> None:
    llm = CustomLLM(base_url=cpp_url, model=MODEL, max_tokens=4, server_profile=PROFILE)
    prompt = "The capital of France is"
    result = llm.generate([prompt])
    usage = (result.llm_output or {})["token_usage"]
    assert llm.get_num_tokens(prompt) == usage["prompt_tokens"]


def test_a_prompt_too_long_is_refused_before_sending(cpp_url: str) -> None:
    profile = {**PROFILE, "context_window": 1024}  # llama-server -c 4096 -np 4: 1024 a slot
    llm = chat(cpp_url, max_tokens=64, server_profile=profile, check_context_window=True)
    long = [HumanMessage("Paris is the capital of France. " * 150)]
    counted = llm.get_num_tokens_from_messages(long)
    assert counted > 1024
    with pytest.raises(ContextLengthExceededError, match=f"The prompt is {counted} tokens"):
        llm.invoke(long)
