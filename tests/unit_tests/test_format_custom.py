"""The config-declared wire format, selectors, chat templates and config files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from langchain_customllm import (
    ChatCustomLLM,
    ConfigurationError,
    CustomLLM,
    NotFoundError,
    ResponseError,
    StreamError,
    load_models,
)
from langchain_customllm._framing import SSEEvent
from langchain_customllm.formats import CustomFormat, GenerationParams, get_format
from langchain_customllm.formats.prompt import get_chat_template
from langchain_customllm.formats.selectors import MISSING, compile_selector
from tests._calls import run_invoke, run_stream
from tests.unit_tests.fakes import FakeServer

TORCHSERVE: dict[str, Any] = {
    "kind": "custom",
    "name": "torchserve",
    "chat_path": "/predictions/my-model",
    "request": {
        "inputs": "{prompt}",
        "parameters": {"max_new_tokens": "{max_tokens}", "stop": "{stop}", "stream": "{stream}"},
    },
    "response": {
        "text": "outputs[0].text",
        "finish_reason": "outputs[0].finish_reason",
        "input_tokens": "usage.in",
        "output_tokens": "usage.out",
    },
    "stream": {"framing": "ndjson", "text": "token.text", "done": "done"},
    "error": {"message": "error.message"},
}


def ndjson(*objs: dict[str, Any]) -> bytes:
    return "".join(json.dumps(o) + "\n" for o in objs).encode()


def answer(text: str, finish: str = "stop") -> dict[str, Any]:
    return {"outputs": [{"text": text, "finish_reason": finish}], "usage": {"in": 9, "out": 3}}


def token_stream(*pieces: str, usage: bool = True) -> bytes:
    lines: list[dict[str, Any]] = [{"token": {"text": p}, "done": False} for p in pieces]
    final: dict[str, Any] = {"done": True}
    if usage:
        final["usage"] = {"in": 9, "out": len(pieces)}
    return ndjson(*lines, final)


def params(**kwargs: Any) -> GenerationParams:
    return GenerationParams(model="m", **kwargs)


# ---------------------------------------------------------------- selectors


@pytest.mark.parametrize(
    ("path", "data", "value"),
    [
        ("outputs[0].text", {"outputs": [{"text": "hi"}]}, "hi"),
        ("choices[-1].delta", {"choices": [{"delta": 1}, {"delta": 2}]}, 2),
        ('meta."x.y"', {"meta": {"x.y": 5}}, 5),
        ('a["b c"]', {"a": {"b c": 1}}, 1),
        ("[0].generated_text", [{"generated_text": "t"}], "t"),
        ("a.b-c.$d", {"a": {"b-c": {"$d": None}}}, None),
    ],
)
def test_selector_finds(path: str, data: Any, value: Any) -> None:
    assert compile_selector(path).find(data) == value


@pytest.mark.parametrize(
    ("path", "data", "reason"),
    [
        ("outputs[0].text", {"outputs": []}, "index 0 out of range (list of 0)"),
        ("outputs[0].text", {"result": 1}, "no key 'outputs' (keys: result)"),
        ("outputs.text", {"outputs": [1]}, "expected an object, got a list of 1"),
        ("a[0]", {"a": "str"}, 'expected a list, got a string ("str")'),
    ],
)
def test_selector_explains_misses(path: str, data: Any, reason: str) -> None:
    selector = compile_selector(path)
    assert selector.find(data) is MISSING
    assert reason in str(selector.explain(data))


@pytest.mark.parametrize("bad", ["", "a..b", "a.", ".a", "a[", "a[x]", 'a."b', "a b", "a[0]b"])
def test_selector_syntax_errors(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="response path"):
        compile_selector(bad)


# ---------------------------------------------------------------- chat templates


def test_chatml_rendering() -> None:
    prompt = get_chat_template("chatml").render(
        [SystemMessage("Be brief."), HumanMessage("Hi"), AIMessage("Hello"), HumanMessage("Bye")]
    )
    assert prompt == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\nHello<|im_end|>\n"
        "<|im_start|>user\nBye<|im_end|>\n"
        "<|im_start|>assistant\n"
    )


def test_user_template_from_mapping() -> None:
    template = get_chat_template(
        {"roles": {"user": "Q: {content}\n"}, "default": "", "generation_prompt": "A:"}
    )
    assert template.render([SystemMessage("ignored"), HumanMessage("2+2?")]) == "Q: 2+2?\nA:"


@pytest.mark.parametrize(
    ("spec", "match"),
    [("nope", "Unknown chat template"), ({"rolez": {}}, "unknown keys"), (3, "must be a name")],
)
def test_bad_chat_templates(spec: Any, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        get_chat_template(spec)


# ---------------------------------------------------------------- requests


def test_chat_request_renders_template_and_drops_unset() -> None:
    fmt = CustomFormat(TORCHSERVE)
    req = fmt.chat_request([HumanMessage("Hi")], params(), stream=False)
    assert req.path == "/predictions/my-model"
    assert req.body == {
        "inputs": "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
        "parameters": {"stream": False},  # max_tokens and stop unset: dropped, not null
    }


def test_typed_values_and_text_interpolation() -> None:
    fmt = CustomFormat(
        {
            **TORCHSERVE,
            "request": {
                "n": "{max_tokens}",
                "stop": "{stop}",
                "label": "model={model} t={temperature} {{literal}}",
                "msgs": "{messages}",
                "list": ["{seed}", "{top_p}", "x"],
            },
        }
    )
    req = fmt.chat_request(
        [HumanMessage("Hi")], params(max_tokens=5, stop=("\n",), temperature=0.5), stream=True
    )
    assert req.body == {
        "n": 5,
        "stop": ["\n"],
        "label": "model=m t=0.5 {literal}",
        "msgs": [{"role": "user", "content": "Hi"}],
        "list": ["x"],
    }


def test_extra_body_and_headers() -> None:
    fmt = CustomFormat({**TORCHSERVE, "headers": {"x-tenant": "blue"}})
    req = fmt.completion_request("p", params(extra_body={"priority": 1}), stream=False)
    assert req.body["priority"] == 1
    assert req.headers == {"x-tenant": "blue"}


def test_stream_paths() -> None:
    fmt = CustomFormat(
        {**TORCHSERVE, "completion_path": "/gen", "stream_completion_path": "/gen/stream"}
    )
    assert fmt.completion_request("p", params(), stream=False).path == "/gen"
    assert fmt.completion_request("p", params(), stream=True).path == "/gen/stream"
    assert fmt.chat_request([HumanMessage("x")], params(), stream=True).path == (
        "/predictions/my-model"
    )


# ---------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"response": {"txt": "a"}}, r"response\.text: Field required"),
        ({"request": {"x": "{prompts}"}}, r"unknown placeholder \{prompts\} in request\.x"),
        ({"response": {"text": "a..b"}}, r"response\.text.*empty name"),
        ({"chat_path": "predict"}, "must start with '/'"),
        ({"stream": {"framing": "xml", "text": "t"}}, r"stream\.framing"),
        ({"chat_path": None}, "set chat_path and/or completion_path"),
        ({"colour": "red"}, r"colour: unknown field"),
    ],
)
def test_invalid_config_fails_at_construction(change: dict[str, Any], match: str) -> None:
    # pydantic reports our ConfigurationError as a ValidationError (both are ValueErrors).
    with pytest.raises(ValueError, match=match):
        ChatCustomLLM(model="m", wire_format={**TORCHSERVE, **change})


def test_custom_without_description_is_explained() -> None:
    # An embeddings-only format needs no request/response: the paths are what is missing.
    with pytest.raises(ValueError, match="set chat_path and/or completion_path"):
        ChatCustomLLM(model="m", wire_format="custom")


def test_generation_paths_need_request_and_response() -> None:
    with pytest.raises(ValueError, match=r"need `request` .* and `response`"):
        ChatCustomLLM(model="m", wire_format={"kind": "custom", "chat_path": "/p"})


def test_mapping_needs_kind() -> None:
    with pytest.raises(ConfigurationError, match="needs `kind`"):
        get_format({"chat_path": "/x"})


# ---------------------------------------------------------------- behaviour, both twins


def test_invoke(server: FakeServer, mode: str) -> None:
    server.json(answer("Paris."))
    llm = server.chat(base_url="http://fake.test", wire_format=TORCHSERVE, max_tokens=8)
    result = run_invoke(llm, "Capital of France?", mode)
    assert result.content == "Paris."
    assert result.usage_metadata == {"input_tokens": 9, "output_tokens": 3, "total_tokens": 12}
    assert result.response_metadata["finish_reason"] == "stop"
    assert server.requests[0].url.path == "/predictions/my-model"
    assert server.bodies[0]["parameters"]["max_new_tokens"] == 8


def test_stream_with_usage_once_and_stop_across_lines(server: FakeServer, mode: str) -> None:
    body = token_stream("one ", "two\n", "\nthree")
    server.stream([body[i : i + 7] for i in range(0, len(body), 7)])
    llm = server.chat(base_url="http://fake.test", wire_format=TORCHSERVE)
    chunks = run_stream(llm, "count", mode, stop=["\n\n"])
    assert "".join(c.content for c in chunks) == "one two"
    assert [c.usage_metadata is not None for c in chunks].count(True) == 1
    assert chunks[-1].response_metadata["finish_reason"] == "stop"


def test_cumulative_stream(server: FakeServer, mode: str) -> None:
    cfg = {
        **TORCHSERVE,
        "stream": {"framing": "sse", "text": "text", "cumulative": True, "done_data": "[DONE]"},
    }
    events = [{"text": "Par"}, {"text": "Paris"}, {"text": "Paris."}]
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
    server.stream(body.encode())
    llm = server.chat(base_url="http://fake.test", wire_format=cfg)
    assert [c.content for c in run_stream(llm, "q", mode)] == ["Par", "is", ".", ""]


def test_plain_text_stream(server: FakeServer, mode: str) -> None:
    cfg = {**TORCHSERVE, "stream": {"framing": "text", "text": "-"}}
    server.stream([b"Caf", "\u00e9 au".encode()[:2], "\u00e9 au".encode()[2:]])
    llm = server.llm(base_url="http://fake.test", wire_format=cfg)
    # Plain text has no end marker: a stream cut short would look complete, so the
    # absence of a finish marker is an error unless the server says it is done.
    with pytest.raises(StreamError, match="ended before") as info:
        run_stream(llm, "q", mode)
    assert info.value.partial_text == "Caf\u00e9 au"


def test_no_stream_section_means_one_whole_chunk(server: FakeServer, mode: str) -> None:
    cfg = {k: v for k, v in TORCHSERVE.items() if k != "stream"}
    server.json(answer("whole"))
    chunks = run_stream(server.chat(base_url="http://fake.test", wire_format=cfg), "q", mode)
    assert [c.content for c in chunks] == ["whole"]
    assert chunks[0].usage_metadata is not None


def test_text_completion(server: FakeServer, mode: str) -> None:
    server.json(answer(" blue"))
    llm = server.llm(base_url="http://fake.test", wire_format=TORCHSERVE)
    assert run_invoke(llm, "The sky is", mode) == " blue"
    assert server.bodies[0]["inputs"] == "The sky is"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"outputs": []}, r"`outputs\[0\]\.text` not found at `outputs`: index 0 out of range"),
        ({"outputs": [{"text": 5}]}, r"should be text, got int"),
        ({"outputs": [{"text": None}]}, r"is null"),
        ({"outputs": [{"text": "x"}], "usage": {"in": "many"}}, "should be a token count"),
        ({"error": {"message": "model is loading"}}, "the server reported: model is loading"),
    ],
)
def test_bad_answers_are_typed_and_name_the_path(
    server: FakeServer, mode: str, body: dict[str, Any], match: str
) -> None:
    server.json(body)
    with pytest.raises(ResponseError, match=match) as info:
        run_invoke(server.chat(base_url="http://fake.test", wire_format=TORCHSERVE), "q", mode)
    assert "torchserve" in str(info.value)


def test_bad_stream_line_is_typed(server: FakeServer, mode: str) -> None:
    server.stream(b'{"token": {"text": "a"}, "done": false}\nnot json at all\n')
    llm = server.chat(base_url="http://fake.test", wire_format=TORCHSERVE)
    with pytest.raises(ResponseError, match="not JSON: not json at all") as info:
        run_stream(llm, "q", mode)
    assert info.value.partial_text == "a"


def test_error_event_mid_stream(server: FakeServer, mode: str) -> None:
    server.stream(ndjson({"token": {"text": "a"}, "done": False}, {"error": {"message": "OOM"}}))
    llm = server.chat(base_url="http://fake.test", wire_format=TORCHSERVE)
    with pytest.raises(StreamError, match="OOM") as info:
        run_stream(llm, "q", mode)
    assert info.value.partial_text == "a"


def test_http_error_message_uses_declared_path(server: FakeServer) -> None:
    cfg = {**TORCHSERVE, "error": {"message": "problem.text"}}
    server.json({"problem": {"text": "no such model"}}, status=404)
    with pytest.raises(NotFoundError, match="no such model"):
        server.chat(base_url="http://fake.test", wire_format=cfg).invoke("q")


def test_retry_applies_to_custom_formats(server: FakeServer) -> None:
    server.add(httpx.Response(503, text="overloaded"))
    server.json(answer("ok"))
    assert (
        server.chat(base_url="http://fake.test", wire_format=TORCHSERVE).invoke("q").content == "ok"
    )
    assert len(server.requests) == 2


def test_stream_event_without_text_is_an_error() -> None:
    fmt = CustomFormat(TORCHSERVE)
    with pytest.raises(ResponseError, match="no key 'token'"):
        fmt.parse_event(SSEEvent(data='{"tokn": {"text": "x"}, "done": false}'), chat=True)
    final = fmt.parse_event(SSEEvent(data='{"done": true}'), chat=True)
    assert final is not None
    assert final.done


# ---------------------------------------------------------------- config files


def test_load_models_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INHOUSE_KEY", "sk-from-env")
    monkeypatch.setenv("INHOUSE_URL", "http://inhouse.test:9000")
    path = tmp_path / "models.yaml"
    path.write_text(
        """
formats:
  torchserve:
    kind: custom
    chat_path: /predictions/my-model
    request: {inputs: "{prompt}"}
    response: {text: "outputs[0].text"}
models:
  local:
    model: smollm2
    base_url: http://127.0.0.1:8765/v1
    temperature: 0
  inhouse:
    model: my-model
    base_url_env: INHOUSE_URL
    api_key_env: INHOUSE_KEY
    wire_format: torchserve
  completer:
    type: llm
    model: smollm2
    wire_format: {kind: ollama}
""",
        encoding="utf-8",
    )
    models = load_models(path)
    assert list(models) == ["local", "inhouse", "completer"]
    assert isinstance(models["local"], ChatCustomLLM)
    assert isinstance(models["completer"], CustomLLM)
    inhouse = models["inhouse"]
    assert inhouse.base_url == "http://inhouse.test:9000"
    assert inhouse.api_key is not None
    assert inhouse.api_key.get_secret_value() == "sk-from-env"
    assert inhouse._runtime().wire.name == "torchserve"
    assert ChatCustomLLM.from_config(path, name="inhouse").model == "my-model"


def test_from_config_single_model_json(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"model": "smollm2", "max_tokens": 3}), encoding="utf-8")
    assert CustomLLM.from_config(path).max_tokens == 3


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("models: {a: {model: m, api_key_env: NOPE_NOT_SET}}", "NOPE_NOT_SET .* is not set"),
        ("models: {a: {model: m, type: robot}}", r"models.yaml:1: model 'a': unknown type 'robot'"),
        (
            "models: {a: {model: m, temprature: 1}}",
            r"model 'a': temprature: unknown setting \(did you mean 'temperature'\?\)",
        ),
        ("models: {a: {temperature: 1}}", "model 'a': model: Field required"),
        ("models: [1, 2]", "non-empty `models` mapping"),
        ("models: {a: {model: m}}\n  bad: [", "not valid YAML"),
    ],
)
def test_config_errors(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=match):
        load_models(path)


def test_from_config_needs_a_name_when_several(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("models: {a: {model: m}, b: {model: n}}", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"several models .*a, b"):
        ChatCustomLLM.from_config(path)
    with pytest.raises(ConfigurationError, match="No model 'c'"):
        ChatCustomLLM.from_config(path, name="c")
