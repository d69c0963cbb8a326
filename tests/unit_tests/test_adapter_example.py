"""The Python adapter from examples/ (and the docs) works end to end, both twins."""

from __future__ import annotations

import pytest

from examples.kserve_adapter import KServeV1Format
from langchain_customllm import ResponseError
from tests._calls import run_invoke, run_stream
from tests.unit_tests.fakes import FakeServer

SPEC = {"kind": "kserve-v1", "model_name": "tiny"}


def prediction(text: str) -> dict[str, object]:
    return {
        "predictions": [
            {"generated": text, "finish_reason": "stop", "tokens": {"prompt": 7, "completion": 2}}
        ]
    }


def test_invoke_and_request_shape(server: FakeServer, mode: str) -> None:
    server.json(prediction("Paris. More text"))
    llm = server.chat(base_url="http://kserve.test", wire_format=SPEC, max_tokens=9)
    result = run_invoke(llm, "Capital of France?", mode, stop=[" More"])
    assert result.content == "Paris."
    assert result.usage_metadata == {"input_tokens": 7, "output_tokens": 2, "total_tokens": 9}
    assert server.requests[0].url.path == "/v1/models/tiny:predict"
    instance = server.bodies[0]["instances"][0]
    assert instance["max_tokens"] == 9
    assert instance["prompt"].endswith("<|im_start|>assistant\n")


def test_non_streaming_format_streams_one_whole_chunk(server: FakeServer, mode: str) -> None:
    server.json(prediction("Paris."))
    chunks = run_stream(server.chat(base_url="http://kserve.test", wire_format=SPEC), "q", mode)
    assert [c.content for c in chunks] == ["Paris."]
    assert chunks[0].usage_metadata is not None
    assert server.bodies[0].get("stream") is None


def test_adapter_bug_surfaces_typed(server: FakeServer, mode: str) -> None:
    server.json({"predictions": [{"text": "wrong key"}]})
    with pytest.raises(ResponseError, match=r"kserve-v1.*KeyError: 'generated'.*wrong key"):
        run_invoke(server.chat(base_url="http://kserve.test", wire_format=SPEC), "q", mode)


def test_instance_is_selectable_too() -> None:
    from langchain_customllm import ChatCustomLLM

    llm = ChatCustomLLM(model="m", wire_format=KServeV1Format("x"))
    assert llm._runtime().wire.name == "kserve-v1"
