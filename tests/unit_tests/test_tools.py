"""Tool calling, structured output, JSON mode, images and logprobs, on both twins."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import HumanMessage
from pydantic import BaseModel, Field

from langchain_customllm import ChatCustomLLM, ConfigurationError
from tests._calls import merge, run_invoke, run_stream
from tests.unit_tests.fakes import FakeServer, chat_body, sse


class GetWeather(BaseModel):
    """Get the weather for a city."""

    city: str = Field(description="The city")


class Person(BaseModel):
    """A person."""

    name: str
    age: int


def tool_call_body(args: str, name: str = "GetWeather") -> dict[str, Any]:
    body = chat_body(None, finish="tool_calls")
    body["choices"][0]["message"]["tool_calls"] = [
        {"id": "call_1", "type": "function", "function": {"name": name, "arguments": args}}
    ]
    return body


def tool_stream(fragments: list[str], *, repeat: bool) -> bytes:
    """A streamed forced tool call: llama.cpp repeats id/type/name in every chunk (repeat),
    vLLM sends them in the first only."""
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "smollm2"}
    events: list[dict[str, Any]] = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
    ]
    for i, fragment in enumerate(fragments):
        call: dict[str, Any] = {"index": 0, "function": {"arguments": fragment}}
        if repeat or i == 0:
            call.update(id="call_1", type="function")
            call["function"]["name"] = "GetWeather"
        events.append(
            {
                **base,
                "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}],
            }
        )
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    return sse(*events)


# ---------------------------------------------------------------- binding


def test_bind_tools_request(server: FakeServer, mode: str) -> None:
    server.json(tool_call_body('{"city": "Paris"}'))
    llm = server.chat().bind_tools([GetWeather], tool_choice="any")
    result = run_invoke(llm, "Weather in Paris?", mode)
    body = server.bodies[0]
    assert body["tools"][0]["function"]["name"] == "GetWeather"
    assert body["tools"][0]["function"]["parameters"]["required"] == ["city"]
    assert body["tool_choice"] == "required"
    assert result.tool_calls == [
        {"name": "GetWeather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}
    ]
    assert result.response_metadata["finish_reason"] == "tool_calls"


def test_llamacpp_profile_names_the_single_tool(server: FakeServer) -> None:
    server.json(tool_call_body('{"city": "Paris"}'))
    llm = server.chat(server_profile="llama-cpp-python").bind_tools([GetWeather], tool_choice="any")
    llm.invoke("q")
    assert server.bodies[0]["tool_choice"] == {
        "type": "function",
        "function": {"name": "GetWeather"},
    }


def test_impossible_tool_choice_fails_at_bind_time() -> None:
    llm = ChatCustomLLM(model="m", server_profile="llama-cpp-python")
    with pytest.raises(ConfigurationError, match="cannot force 'some tool'"):
        llm.bind_tools([GetWeather, Person], tool_choice="required")


def test_strict_tools_for_vllm(server: FakeServer) -> None:
    server.json(tool_call_body('{"city": "Paris"}'))
    server.chat(server_profile="vllm").bind_tools([GetWeather]).invoke("q")
    assert server.bodies[0]["tools"][0]["function"]["strict"] is True


def test_invalid_arguments_become_invalid_tool_calls(server: FakeServer, mode: str) -> None:
    server.json(tool_call_body('{"city": "Par'))
    result = run_invoke(server.chat().bind_tools([GetWeather]), "q", mode)
    assert result.tool_calls == []
    assert result.invalid_tool_calls[0]["name"] == "GetWeather"
    assert result.invalid_tool_calls[0]["args"] == '{"city": "Par'


@pytest.mark.parametrize("repeat", [True, False], ids=["llamacpp-repeats", "vllm-once"])
def test_streamed_tool_call_assembles(server: FakeServer, mode: str, repeat: bool) -> None:
    server.stream(tool_stream(['{"ci', 'ty": "Pa', 'ris"}'], repeat=repeat))
    llm = server.chat().bind_tools([GetWeather], tool_choice="GetWeather")
    full = merge(run_stream(llm, "q", mode))
    assert full.tool_calls == [
        {"name": "GetWeather", "args": {"city": "Paris"}, "id": "call_1", "type": "tool_call"}
    ]
    assert full.response_metadata["finish_reason"] == "tool_calls"


def test_llamacpp_auto_tools_stream_as_one_whole_answer(server: FakeServer, mode: str) -> None:
    # llama.cpp streams an empty body when `auto` picks a tool: ask for a whole answer.
    server.json(tool_call_body('{"city": "Paris"}'))
    llm = server.chat(server_profile="llama-cpp-python").bind_tools([GetWeather])
    chunks = run_stream(llm, "q", mode)
    assert "stream" not in server.bodies[0]
    assert len(chunks) == 1
    assert merge(chunks).tool_calls[0]["args"] == {"city": "Paris"}


def test_tool_history_round_trips(server: FakeServer) -> None:
    server.json(tool_call_body('{"city": "Paris"}'))
    server.json(chat_body("It is sunny in Paris."))
    llm = server.chat().bind_tools([GetWeather])
    first = llm.invoke("Weather in Paris?")
    from langchain_core.messages import ToolMessage

    answer = llm.invoke(
        [HumanMessage("Weather in Paris?"), first, ToolMessage("sunny", tool_call_id="call_1")]
    )
    assert answer.content == "It is sunny in Paris."
    messages = server.bodies[1]["messages"]
    assert messages[1]["content"] == ""
    assert json.loads(messages[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


# ---------------------------------------------------------------- structured output


@pytest.mark.parametrize(
    ("profile", "expected_type"),
    [(None, "json_schema"), ("llama-cpp-python", "json_object")],
)
def test_json_schema_method(
    server: FakeServer, mode: str, profile: str | None, expected_type: str
) -> None:
    server.json(chat_body('{"name": "Ann", "age": 3}'))
    llm = server.chat(server_profile=profile).with_structured_output(Person)
    assert run_invoke(llm, "Ann, 3", mode) == Person(name="Ann", age=3)
    response_format = server.bodies[0]["response_format"]
    assert response_format["type"] == expected_type
    schema = (
        response_format["json_schema"]["schema"]
        if expected_type == "json_schema"
        else response_format["schema"]
    )
    assert schema["required"] == ["name", "age"]


def test_function_calling_method(server: FakeServer, mode: str) -> None:
    server.json(tool_call_body('{"name": "Ann", "age": 3}', name="Person"))
    llm = server.chat().with_structured_output(Person, method="function_calling")
    assert run_invoke(llm, "Ann, 3", mode) == Person(name="Ann", age=3)
    assert server.bodies[0]["tool_choice"] == {"type": "function", "function": {"name": "Person"}}


def test_json_mode_with_a_dict_schema(server: FakeServer) -> None:
    server.json(chat_body('{"answer": 4}'))
    schema = {"title": "Answer", "type": "object", "properties": {"answer": {"type": "integer"}}}
    llm = server.chat().with_structured_output(schema, method="json_mode")
    assert llm.invoke("2+2 as JSON") == {"answer": 4}
    assert server.bodies[0]["response_format"] == {"type": "json_object"}


def test_include_raw_keeps_the_parse_error(server: FakeServer) -> None:
    server.json(chat_body("not json"))
    result = server.chat().with_structured_output(Person, include_raw=True).invoke("q")
    assert result["parsed"] is None
    assert result["parsing_error"] is not None
    assert result["raw"].content == "not json"


def test_unknown_method_and_arguments() -> None:
    llm = ChatCustomLLM(model="m")
    with pytest.raises(ConfigurationError, match="Unknown structured output method"):
        llm.with_structured_output(Person, method="xml")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="Unexpected arguments"):
        llm.with_structured_output(Person, metod="json_mode")


# ---------------------------------------------------------------- images, logprobs, profile

IMAGE = HumanMessage(
    content=[
        {"type": "text", "text": "What is this?"},
        {"type": "image", "base64": "iVBORw0KGgo=", "mime_type": "image/png"},
    ]
)


def test_images_are_sent_where_the_server_reads_them(server: FakeServer) -> None:
    server.json(chat_body("A pixel."))
    server.chat().invoke([IMAGE])
    parts = server.bodies[0]["messages"][0]["content"]
    assert parts[1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
    }


def test_images_are_refused_not_dropped_where_the_server_ignores_them(server: FakeServer) -> None:
    with pytest.raises(ConfigurationError, match="ignores images"):
        server.chat(server_profile="llama-cpp-python").invoke([IMAGE])
    assert server.requests == []
    server.json(chat_body("A pixel."))
    vision = server.chat(server_profile={"base": "llama-cpp-python", "image_inputs": True})
    assert vision.invoke([IMAGE]).content == "A pixel."


def test_logprobs(server: FakeServer) -> None:
    body = chat_body("Hi")
    logprobs = {"content": [{"token": "Hi", "logprob": -0.1, "top_logprobs": []}]}
    body["choices"][0]["logprobs"] = logprobs
    server.json(body)
    result = server.chat(logprobs=True, top_logprobs=2).invoke("q")
    assert server.bodies[0]["logprobs"] is True
    assert server.bodies[0]["top_logprobs"] == 2
    assert result.response_metadata["logprobs"] == logprobs


def test_model_profile_reflects_the_server() -> None:
    expected = {
        "text_inputs": True,
        "text_outputs": True,
        "image_inputs": False,
        "image_url_inputs": False,
        "tool_calling": True,
        "tool_choice": True,
        "tool_call_streaming": True,
    }
    # Only the keys this langchain-core knows (1.4 has no tool_call_streaming).
    known = ModelProfile.__annotations__
    assert ChatCustomLLM(model="m", server_profile="llama-cpp-python").profile == {
        k: v for k, v in expected.items() if k in known
    }


@pytest.mark.parametrize("wire_format", ["tgi", "ollama"])
def test_formats_without_tools_refuse_them(wire_format: str) -> None:
    # A scripted server with no answers: the refusals must come before any request
    # (Ollama's context question to /api/show aside, which the fake answers apart).
    llm = FakeServer().chat(model="m", base_url="http://fake.test", wire_format=wire_format)
    with pytest.raises(ConfigurationError, match="cannot send tools"):
        llm.bind_tools([GetWeather])
    with pytest.raises(ConfigurationError, match="cannot ask for JSON output"):
        llm.with_structured_output(Person)
    with pytest.raises(ConfigurationError, match="cannot send tools"):
        llm.with_structured_output(Person, method="function_calling")
    with pytest.raises(ConfigurationError, match="cannot send tools"):
        llm.invoke("q", tools=[{"type": "function", "function": {"name": "f"}}])
