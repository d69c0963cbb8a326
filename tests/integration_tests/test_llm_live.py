"""CustomLLM (text completion) against the real llama.cpp server."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from langchain_customllm import CustomLLM
from tests.integration_tests.conftest import MODEL

PROMPT = "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture
def llm() -> CustomLLM:
    return CustomLLM(model=MODEL, temperature=0, seed=7, max_tokens=24)


def test_invoke(llm: CustomLLM) -> None:
    assert "Paris" in llm.invoke(PROMPT)


async def test_ainvoke(llm: CustomLLM) -> None:
    assert "Paris" in await llm.ainvoke(PROMPT)


def test_batch(llm: CustomLLM) -> None:
    outs = llm.batch([PROMPT, PROMPT])
    assert len(outs) == 2
    assert all("Paris" in out for out in outs)


async def test_abatch(llm: CustomLLM) -> None:
    outs = await llm.abatch([PROMPT, PROMPT])
    assert len(outs) == 2
    assert all("Paris" in out for out in outs)


def test_stream_equals_invoke(llm: CustomLLM) -> None:
    chunks = list(llm.stream(PROMPT))
    assert len(chunks) > 2
    assert "".join(chunks) == llm.invoke(PROMPT)


async def test_astream_equals_ainvoke(llm: CustomLLM) -> None:
    chunks = [chunk async for chunk in llm.astream(PROMPT)]
    assert len(chunks) > 2
    assert "".join(chunks) == await llm.ainvoke(PROMPT)


def test_generate_has_usage_and_model(llm: CustomLLM) -> None:
    result = llm.generate([PROMPT])
    assert result.llm_output is not None
    usage = result.llm_output["token_usage"]
    assert usage["prompt_tokens"] > 5
    assert 0 < usage["completion_tokens"] <= 24
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert result.llm_output["model_name"] == MODEL
    info = result.generations[0][0].generation_info
    assert info is not None
    assert info["finish_reason"] in ("stop", "length")


def test_max_tokens_is_honoured(llm: CustomLLM) -> None:
    result = llm.generate(["Count from one to one hundred: one, two,"], max_tokens=5)
    info = result.generations[0][0].generation_info
    assert info is not None
    assert info["finish_reason"] == "length"
    assert info["token_usage"]["completion_tokens"] == 5


def test_stop_is_the_same_streamed_and_whole(llm: CustomLLM) -> None:
    prompt = "Count from one to ten: one, two, three,"
    whole = llm.invoke(prompt, stop=["six"], max_tokens=40)
    streamed = "".join(llm.stream(prompt, stop=["six"], max_tokens=40))
    assert whole == streamed
    assert "six" not in whole
    assert "five" in whole


async def test_astream_events_show_llm_stream(llm: CustomLLM) -> None:
    kinds: list[str] = []
    tokens: list[str] = []
    async for event in llm.astream_events(PROMPT, version="v2"):
        kinds.append(event["event"])
        if event["event"] == "on_llm_stream":
            tokens.append(event["data"]["chunk"])  # LLM stream events carry the text
    assert kinds[0] == "on_llm_start"
    assert kinds[-1] == "on_llm_end"
    assert kinds.count("on_llm_stream") > 2
    assert "Paris" in "".join(tokens)


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.log: list[str] = []
        self.end: LLMResult | None = None

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.log.append(f"token:{token}")

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.end = response


def test_token_callback_before_each_chunk(llm: CustomLLM) -> None:
    recorder = Recorder()
    for chunk in llm.stream(PROMPT, config={"callbacks": [recorder]}):
        recorder.log.append(f"yield:{chunk}")
    tokens = recorder.log[0::2]
    yields = recorder.log[1::2]
    assert len(tokens) == len(yields) > 2
    assert [t.removeprefix("token:") for t in tokens] == [y.removeprefix("yield:") for y in yields]
    assert recorder.end is not None
    assert "Paris" in recorder.end.generations[0][0].text
