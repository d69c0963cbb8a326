"""The TGI wire format (`wire_format="tgi"`): requests and whole answers."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_customllm import (
    ChatCustomLLM,
    ResponseError,
)
from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm.formats.base import get_format
from langchain_customllm.formats.prompt import ChatTemplate
from langchain_customllm.formats.tgi import TGIFormat, tgi_parameters
from tests._calls import run_invoke, run_stream
from tests.unit_tests._tgi_helpers import (
    CHATML,
    LLAMA_WHOLE,
    LLAMA_WHOLE_V3,
    OPEA_STREAM,
    OVERLOADED,
    URL,
    chat,
    params,
)
from tests.unit_tests.fakes import FakeServer

# ------------------------------------------------------------------ requests (pure)


def test_registered_by_name() -> None:
    assert isinstance(get_format("tgi"), TGIFormat)
    assert ChatCustomLLM(model="m", base_url=URL, wire_format="tgi")._runtime().wire.name == "tgi"


def test_chat_request_renders_chatml_into_inputs() -> None:
    request = TGIFormat().chat_request(
        [SystemMessage("Be brief."), HumanMessage("Capital of France?")],
        params(temperature=0.2, max_tokens=7, top_p=0.9, seed=3, stop=("END",)),
        stream=False,
    )
    assert request.path == "/generate"
    assert request.method == "POST"
    assert request.body == {
        "inputs": CHATML,
        "parameters": {
            "max_new_tokens": 7,
            "do_sample": True,
            "temperature": 0.2,
            "top_p": 0.9,
            "seed": 3,
            "stop": ["END"],
            "details": True,
            "return_full_text": False,
            "decoder_input_details": True,
        },
    }


def test_stream_request_goes_to_generate_stream_without_prefill_details() -> None:
    request = TGIFormat().completion_request("Hello", params(), stream=True)
    assert request.path == "/generate_stream"
    # validation.rs PrefillDetailsStream: decoder_input_details on a stream is a 422.
    assert request.body == {
        "inputs": "Hello",
        "parameters": {"do_sample": False, "details": True, "return_full_text": False},
    }


@pytest.mark.parametrize(
    ("temperature", "top_p", "expected"),
    [
        # Greedy: temperature 0 is a 422 in TGI, and top_p < 1 would re-enable sampling.
        (0.0, None, {"do_sample": False}),
        (0.0, 0.9, {"do_sample": False}),
        # None: TGI's own default is greedy, unless a top_p makes it sample.
        (None, None, {"do_sample": False}),
        (None, 0.9, {"do_sample": True, "top_p": 0.9}),
        (0.7, None, {"do_sample": True, "temperature": 0.7}),
        # top_p 1.0 means "no nucleus filtering" but TGI rejects it: sent by omission.
        (0.7, 1.0, {"do_sample": True, "temperature": 0.7}),
        # Invalid values reach the server, which answers with a clear 422.
        (-1.0, None, {"do_sample": True, "temperature": -1.0}),
    ],
)
def test_sampling_mapping(
    temperature: float | None, top_p: float | None, expected: dict[str, Any]
) -> None:
    sent = tgi_parameters(params(temperature=temperature, top_p=top_p), stream=True)
    sampling = {k: v for k, v in sent.items() if k in ("do_sample", "temperature", "top_p")}
    assert sampling == expected


def test_extra_body_goes_into_parameters_and_wins() -> None:
    extra = {"repetition_penalty": 1.1, "top_k": 50, "watermark": True, "details": False}
    request = TGIFormat().completion_request("x", params(extra_body=extra), stream=False)
    assert set(request.body) == {"inputs", "parameters"}  # GenerateRequest has nothing else
    parameters = request.body["parameters"]
    assert parameters["repetition_penalty"] == 1.1
    assert parameters["top_k"] == 50
    assert parameters["watermark"] is True
    assert parameters["details"] is False


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain", "User: hi\nAssistant:"),
        ({"default": "[{role}] {content}\n", "generation_prompt": "[assistant] "}, None),
        (ChatTemplate(default="<{role}>{content}", generation_prompt="<assistant>"), None),
    ],
)
def test_chat_template_choices(template: Any, expected: str | None) -> None:
    fmt = TGIFormat(chat_template=template)
    inputs = fmt.chat_request([HumanMessage("hi")], params(), stream=False).body["inputs"]
    if expected is not None:
        assert inputs == expected
    assert "hi" in inputs


def test_options_from_a_mapping_spec() -> None:
    # wire_format={"kind": "tgi", ...} (e.g. from a YAML model file) passes the options on.
    fmt = get_format({"kind": "tgi", "chat_template": "plain"})
    assert isinstance(fmt, TGIFormat)
    assert fmt.chat_template.generation_prompt == "Assistant:"
    with pytest.raises(ConfigurationError, match="bad options"):
        get_format({"kind": "tgi", "template": "plain"})


def test_unknown_chat_template_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="Unknown chat template"):
        TGIFormat(chat_template="vicuna-9000")


# ------------------------------------------------------------------ requests over HTTP


def test_http_requests(server: FakeServer, mode: str) -> None:
    server.json(LLAMA_WHOLE)
    server.stream(OPEA_STREAM)
    llm = chat(server, temperature=0, max_tokens=20)
    run_invoke(llm, "What is Deep Learning?", mode)
    run_stream(llm, "What is Deep Learning?", mode)
    whole, streamed = server.requests
    assert whole.url == f"{URL}/generate"
    assert streamed.url == f"{URL}/generate_stream"
    assert streamed.headers["accept"].startswith("text/event-stream")
    prompt = "<|im_start|>user\nWhat is Deep Learning?<|im_end|>\n<|im_start|>assistant\n"
    assert server.bodies[0] == {
        "inputs": prompt,
        "parameters": {
            "max_new_tokens": 20,
            "do_sample": False,
            "details": True,
            "return_full_text": False,
            "decoder_input_details": True,
        },
    }
    assert server.bodies[1]["inputs"] == prompt
    assert "decoder_input_details" not in server.bodies[1]["parameters"]


def test_per_call_kwargs_become_parameters(server: FakeServer, mode: str) -> None:
    server.json(LLAMA_WHOLE)
    run_invoke(chat(server), "q", mode, top_k=10, extra_body={"typical_p": 0.9})
    parameters = server.bodies[0]["parameters"]
    assert parameters["top_k"] == 10
    assert parameters["typical_p"] == 0.9
    assert "top_k" not in server.bodies[0]


# ------------------------------------------------------------------ whole answers


def test_invoke_reads_text_finish_and_prefill_usage(server: FakeServer, mode: str) -> None:
    server.json(LLAMA_WHOLE)
    result = run_invoke(chat(server), "Test request", mode)
    assert isinstance(result, AIMessage)
    assert result.content == " for /api/v1/projects/1"
    assert result.response_metadata["finish_reason"] == "length"
    # One prefill entry per prompt token (BOS included), as TGI's own /v1 routes count.
    assert result.usage_metadata == {"input_tokens": 3, "output_tokens": 10, "total_tokens": 13}


def test_invoke_with_empty_prefill_reports_no_usage(server: FakeServer, mode: str) -> None:
    # TGI 3.x returns prefill: [] (issue #2973): the input count is unknown, not zero.
    server.json(LLAMA_WHOLE_V3)
    result = run_invoke(chat(server, missing_usage="none"), "Test request", mode)
    assert result.content == " for /api/v1/projects/1"
    assert result.usage_metadata is None
    assert result.response_metadata["finish_reason"] == "length"
    assert result.response_metadata["seed"] == 9305067545921572115


def test_parse_response_shapes() -> None:
    fmt = TGIFormat()
    # compat_generate (POST /) wraps the answer in a one-element list.
    parsed = fmt.parse_response([LLAMA_WHOLE], chat=True)
    assert parsed.text == " for /api/v1/projects/1"
    assert parsed.usage is not None
    assert parsed.usage.input_tokens == 3
    # details left out (details: false): text only, nothing invented.
    bare = fmt.parse_response({"generated_text": "hi"}, chat=False)
    assert (bare.text, bare.finish_reason, bare.usage) == ("hi", None, None)
    # LoRAX (a TGI fork) reports Details.prompt_tokens directly.
    lorax = {
        "generated_text": "x",
        "details": {"finish_reason": "eos_token", "prompt_tokens": 9, "generated_tokens": 2},
    }
    parsed = fmt.parse_response(lorax, chat=True)
    assert parsed.finish_reason == "stop"
    assert parsed.usage is not None
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens) == (9, 2)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("x" * 1000, "tgi: expected a JSON object"),
        ([1, 2], "tgi: expected a JSON object"),
        ([], "tgi: expected a JSON object"),
        ({"outputs": "hi"}, "no `generated_text`"),
        ({"generated_text": None, "details": None}, "no `generated_text`"),
        (OVERLOADED, "Model is overloaded"),
    ],
)
def test_parse_response_rejects_what_is_not_an_answer(body: Any, match: str) -> None:
    with pytest.raises(ResponseError, match=match) as info:
        TGIFormat().parse_response(body, chat=True)
    assert len(info.value.message) < 400  # a short excerpt, never the whole body


def test_non_tgi_200_is_a_typed_error(server: FakeServer, mode: str) -> None:
    server.json({"choices": [{"message": {"content": "hi"}}]})  # an OpenAI answer
    with pytest.raises(ResponseError, match="tgi: the answer has no `generated_text`"):
        run_invoke(chat(server), "q", mode)
