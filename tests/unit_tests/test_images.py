"""CustomImageGenerator over the OpenAI format: requests, answer checks, runs, tools, values."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any
from uuid import UUID

import httpx
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.load import dumpd, dumps
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from pydantic import BaseModel, Field

from langchain_customllm import (
    AuthenticationError,
    ConfigurationError,
    ImageResult,
    Pricing,
    RateLimitError,
    ResponseError,
    track_usage,
)
from tests.servers.images import colour_of, read_png
from tests.unit_tests._image_helpers import KEY, ImageServer, b64_of, generate, openai_answer

# ----------------------------------------------------------------- requests


def test_request_sends_the_set_parameters_only(mode: str) -> None:
    server = ImageServer()
    message = generate(server.model(), mode, "a red fox")
    assert server.paths == ["/v1/images/generations"]
    assert server.bodies == [{"model": "painter", "prompt": "a red fox"}]
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"
    assert message.content == [
        {"type": "image", "id": message.content[0]["id"], "base64": b64_of("a red fox"),
         "mime_type": "image/png"}
    ]  # fmt: skip


def test_settings_and_per_call_options_reach_the_body() -> None:
    server = ImageServer()
    model = server.model(
        n=2, size="64x64", quality="high", style="vivid", output_format="png",
        background="opaque", user="u-1", extra_body={"moderation": "low"},
    )  # fmt: skip
    model.invoke("cat", size="32x32", partial_images=0, quality=None)
    assert server.bodies[0] == {
        "model": "painter", "prompt": "cat", "n": 2, "size": "32x32", "quality": "high",
        "style": "vivid", "output_format": "png", "background": "opaque", "user": "u-1",
        "moderation": "low", "partial_images": 0,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("setting", "value", "problem"),
    [
        ("size", "big", "WIDTHxHEIGHT"),
        ("n", 0, "greater than or equal to 1"),
        ("response_format", "png", "'b64_json' or 'url'"),
        ("output_format", "bmp", "'png', 'jpeg', 'webp' or 'gif'"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_sent(
    setting: str, value: Any, problem: str
) -> None:
    server = ImageServer()
    with pytest.raises(ConfigurationError, match=problem):
        server.model(**{setting: value})
    with pytest.raises(ConfigurationError, match=f"{setting}.*{problem}"):
        server.model().invoke("cat", **{setting: value})
    assert server.bodies == []


def test_a_format_without_images_is_refused_before_anything_is_sent() -> None:
    server = ImageServer()
    with pytest.raises(ConfigurationError, match="'tgi' has no image-generation endpoint"):
        server.model(wire_format="tgi").invoke("cat")
    assert server.bodies == []


# ----------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    ("given", "prompt"),
    [
        ("a cat", "a cat"),
        (PromptTemplate.from_template("a {animal}").invoke({"animal": "dog"}), "a dog"),
        ([HumanMessage("a cow")], "a cow"),
        ([("system", "In watercolour."), ("human", "a barn")], "In watercolour.\n\na barn"),
        (
            ChatPromptTemplate.from_messages([("system", "Pixel art."), ("human", "{x}")]).invoke(
                {"x": "a ship"}
            ),
            "Pixel art.\n\na ship",
        ),
    ],
)
def test_the_prompt_is_the_inputs_text(given: Any, prompt: str) -> None:
    server = ImageServer()
    server.model().invoke(given)
    assert server.bodies[0]["prompt"] == prompt


def test_a_prompt_template_pipes_into_the_generator(mode: str) -> None:
    server = ImageServer()
    chain = PromptTemplate.from_template("a {animal} in the snow") | server.model()
    message = (
        chain.invoke({"animal": "fox"})
        if mode == "sync"
        else asyncio.run(chain.ainvoke({"animal": "fox"}))
    )
    assert message.content[0]["base64"] == b64_of("a fox in the snow")


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ("   ", "prompt is empty"),
        ([], "prompt is empty"),
        (42, "not int"),
        ([HumanMessage([{"type": "image", "url": "https://x/y.png"}])], "'image' block"),
        ([{"nope": 1}], "not a list of messages"),
    ],
)
def test_bad_inputs_are_typed_errors(given: Any, problem: str, mode: str) -> None:
    server = ImageServer()
    with pytest.raises(ConfigurationError, match=problem):
        generate(server.model(), mode, given)
    assert server.bodies == []


# ----------------------------------------------------------------- answers


def test_n_images_come_back_in_order_as_blocks(mode: str) -> None:
    server = ImageServer()
    message = generate(server.model(n=3), mode, "dots")
    assert [read_png(base64.b64decode(b["base64"]))[2] for b in message.content] == [
        colour_of("dots", i) for i in range(3)
    ]
    assert message.content_blocks == message.content  # standard v1 blocks, as they are


def test_url_images_are_url_blocks() -> None:
    server = ImageServer()
    message = server.model(response_format="url", n=2).invoke("x")
    assert [b["url"] for b in message.content] == [
        "https://img.test/0.png",
        "https://img.test/1.png",
    ]
    assert all("base64" not in b and "mime_type" not in b for b in message.content)


def test_a_data_url_becomes_base64_with_its_sniffed_type() -> None:
    gif = b"GIF89a" + b"\x00" * 20
    answer = {"data": [{"url": "data:image/png;base64," + base64.b64encode(gif).decode()}]}
    server = ImageServer(lambda body: httpx.Response(200, json=answer))
    block = server.model().invoke("x").content[0]
    assert block["mime_type"] == "image/gif"  # the bytes say GIF, whatever the URL said
    assert base64.b64decode(block["base64"]) == gif


def test_metadata_revised_prompts_and_usage() -> None:
    def handler(body: dict[str, Any]) -> httpx.Response:
        answer = openai_answer(body, size="4x4", quality="low", output_format="png")
        answer["data"][0]["revised_prompt"] = "A fox, revised"
        answer["usage"] = {"input_tokens": 7, "output_tokens": 100, "total_tokens": 107}
        return httpx.Response(200, json=answer)

    message = ImageServer(handler).model(n=2).invoke("fox")
    meta = message.response_metadata
    assert meta["model_name"] == "painter"
    assert meta["created"] == 1700000000
    assert (meta["size"], meta["quality"], meta["output_format"]) == ("4x4", "low", "png")
    assert meta["revised_prompts"] == ["A fox, revised", None]
    assert message.content[0]["extras"] == {"revised_prompt": "A fox, revised"}
    assert "extras" not in message.content[1]
    assert message.usage_metadata == {"input_tokens": 7, "output_tokens": 100, "total_tokens": 107}
    assert "cost" not in meta  # no pricing: no cost, never a zero


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"data": []}, r"returned 0 images for n=2"),
        ({"data": [{"b64_json": b64_of("x")}] * 3}, r"returned 3 images for n=2"),
        ({"created": 1}, r"no `data` list"),
        ({"data": [{"revised_prompt": "r"}, {}]}, r"Image 0 .* neither `b64_json` nor `url`"),
        ({"data": [{"b64_json": "@@@"}] * 2}, r"image 0 is text that is not base64"),
        (
            {
                "data": [
                    {"b64_json": b64_of("x")},
                    {"b64_json": base64.b64encode(b"%PDF-1.7").decode()},
                ]
            },
            r"image 1 decodes to 8 bytes that are not a PNG, JPEG, WEBP or GIF .*'%PDF-1.7'",
        ),
        ({"data": [{"url": "file:///etc/passwd"}] * 2}, r"image 0 is not an http\(s\) URL"),
        ({"data": [{"b64_json": 5}] * 2}, r"Image 0's `b64_json` should be text"),
        ({"error": {"message": "safety system"}}, r"returned an error: safety system"),
    ],
)
def test_every_answer_is_checked(answer: dict[str, Any], problem: str, mode: str) -> None:
    server = ImageServer(lambda body: httpx.Response(200, json=answer))
    with pytest.raises(ResponseError, match=problem):
        generate(server.model(n=2), mode, "x")


def test_an_image_of_another_format_than_asked_is_refused() -> None:
    server = ImageServer()  # answers PNGs
    with pytest.raises(ResponseError, match="image/png, not output_format='jpeg'"):
        server.model(output_format="jpeg").invoke("x")


def test_an_answer_that_is_not_json_is_a_response_error() -> None:
    server = ImageServer(lambda body: httpx.Response(200, text="<html>oops</html>"))
    with pytest.raises(ResponseError):
        server.model().invoke("x")


# ----------------------------------------------------------------- errors and retries


def test_429_is_retried_after_retry_after(mode: str) -> None:
    answers = [
        httpx.Response(429, json={"error": {"message": "slow down"}}, headers={"retry-after": "2"}),
        None,
    ]

    def handler(body: dict[str, Any]) -> httpx.Response:
        return answers.pop(0) or httpx.Response(200, json=openai_answer(body))

    server = ImageServer(handler)
    message = generate(server.model(), mode, "x")
    assert message.content[0]["mime_type"] == "image/png"
    assert server.sleeps == [2.0]
    assert len(server.bodies) == 2


def test_retries_run_out_into_a_typed_error() -> None:
    server = ImageServer(lambda body: httpx.Response(429, json={"error": {"message": "busy"}}))
    with pytest.raises(RateLimitError, match="busy"):
        server.model(max_retries=1).invoke("x")
    assert len(server.bodies) == 2


def test_the_key_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = ImageServer(lambda body: httpx.Response(401, json={"error": {"message": "bad key"}}))
    model = server.model(default_headers={"x-tenant-token": KEY})
    with pytest.raises(AuthenticationError) as info:
        model.invoke("x")
    texts = [str(info.value), repr(info.value), caplog.text, repr(model), str(model)]
    texts += [json.dumps(dumpd(model)), dumps(model), str(model.model_dump())]
    texts.append(repr(model.as_tool()))
    assert all(KEY not in text for text in texts)


# ----------------------------------------------------------------- runs, usage, cost


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts: list[tuple[list[str], dict[str, Any]]] = []
        self.ends: list[LLMResult] = []
        self.errors: list[BaseException] = []

    def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any) -> None:
        self.starts.append((prompts, kwargs))

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        self.ends.append(response)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.errors.append(error)


def test_each_call_is_one_llm_run(mode: str) -> None:
    recorder = Recorder()
    config = {"callbacks": [recorder], "run_name": "poster", "tags": ["t"]}
    message = generate(ImageServer().model(n=2, size="4x4"), mode, "fox", config=config)
    ((prompts, info),) = recorder.starts
    assert prompts == ["fox"]
    assert info["name"] == "poster"
    assert info["invocation_params"] == {"model": "painter", "n": 2, "size": "4x4"}
    assert info["metadata"]["ls_model_type"] == "image"
    assert info["metadata"]["ls_model_name"] == "painter"
    (result,) = recorder.ends
    assert result.generations[0][0].message == message  # type: ignore[attr-defined]


def test_a_failed_call_ends_its_run_with_the_error() -> None:
    recorder = Recorder()
    server = ImageServer(lambda body: httpx.Response(200, json={"data": []}))
    with pytest.raises(ResponseError):
        server.model().invoke("x", {"callbacks": [recorder]})
    assert len(recorder.starts) == 1
    assert isinstance(recorder.errors[0], ResponseError)
    assert recorder.ends == []


def test_per_image_price_reaches_the_message_and_track_usage(mode: str) -> None:
    model = ImageServer().model(n=3, pricing={"input": 0, "output": 0, "per_image": 0.04})
    with track_usage() as usage:
        message = generate(model, mode, "x")
    cost = message.response_metadata["cost"]
    assert cost["image_cost"] == pytest.approx(0.12)
    assert cost["total_cost"] == pytest.approx(0.12)
    assert message.usage_metadata is None  # the server counted no tokens
    assert usage.total.requests == 1
    assert usage.total.cost == pytest.approx(0.12)
    assert usage.total.unpriced_requests == 0


def test_token_prices_need_the_servers_usage() -> None:
    def handler(body: dict[str, Any]) -> httpx.Response:
        usage = {"input_tokens": 1000, "output_tokens": 2000, "total_tokens": 3000}
        return httpx.Response(200, json=openai_answer(body, usage=usage))

    priced = {"models": {"painter": {"input": 5, "output": 40, "per_image": 0.01}}}
    with track_usage() as usage:
        message = ImageServer(handler).model(pricing=priced).invoke("x")
        unpriced = ImageServer().model(pricing=priced).invoke("x")  # no usage: no cost
    assert message.response_metadata["cost"]["total_cost"] == pytest.approx(0.005 + 0.08 + 0.01)
    assert message.usage_metadata["total_cost"] == pytest.approx(0.095)  # type: ignore[index,typeddict-item]
    assert "cost" not in unpriced.response_metadata
    assert usage.by_model["painter"].requests == 2
    assert usage.by_model["painter"].unpriced_requests == 1
    assert usage.total.input_tokens == 1000


def test_generate_images_gives_the_result_for_a_gateway(mode: str) -> None:
    model = ImageServer().model(pricing=Pricing(input=0, output=0, per_image=0.5))
    if mode == "sync":
        result = model.generate_images("owl", n=2, response_format="b64_json")
    else:
        result = asyncio.run(model.agenerate_images("owl", n=2, response_format="b64_json"))
    assert isinstance(result, ImageResult)
    assert [image.mime_type for image in result.images] == ["image/png", "image/png"]
    assert result.cost is not None
    assert result.cost.total_cost == 1.0
    assert result.to_openai() == {
        "created": 1700000000,
        "data": [{"b64_json": b64_of("owl", 0)}, {"b64_json": b64_of("owl", 1)}],
    }


def test_batch_and_abatch_run_each_prompt() -> None:
    server = ImageServer()
    model = server.model()
    sync = model.batch(["one", "two"])
    in_async = asyncio.run(model.abatch(["three", "four"]))
    got = [m.content[0]["base64"] for m in sync + in_async]
    assert got == [b64_of(p) for p in ("one", "two", "three", "four")]


# ----------------------------------------------------------------- as a tool


def test_as_tool_gives_image_blocks_and_the_message_as_artifact() -> None:
    tool = ImageServer().model().as_tool()
    assert tool.name == "generate_image"
    assert set(tool.args) == {"prompt"}
    blocks = tool.invoke({"prompt": "a kite"})
    assert blocks[0]["base64"] == b64_of("a kite")
    call = {"type": "tool_call", "id": "call-1", "name": tool.name, "args": {"prompt": "a kite"}}
    answer = asyncio.run(tool.ainvoke(call))
    assert isinstance(answer, ToolMessage)
    assert answer.tool_call_id == "call-1"
    assert answer.content[0]["mime_type"] == "image/png"  # type: ignore[index]
    assert isinstance(answer.artifact, AIMessage)


def test_as_tool_with_settings_in_its_schema() -> None:
    class Drawing(BaseModel):
        prompt: str = Field(description="what to draw")
        size: str = Field(description="WIDTHxHEIGHT")

    server = ImageServer()
    tool = server.model().as_tool(Drawing, name="draw", description="Draws.")
    assert (tool.name, tool.description) == ("draw", "Draws.")
    tool.invoke({"prompt": "moon", "size": "8x8"})
    by_types = server.model().as_tool(arg_types={"prompt": str, "n": int})
    by_types.invoke({"prompt": "sun", "n": 1})
    assert server.bodies == [
        {"model": "painter", "prompt": "moon", "size": "8x8"},
        {"model": "painter", "prompt": "sun", "n": 1},
    ]
    with pytest.raises(ConfigurationError, match="need a `prompt` field"):
        server.model().as_tool(arg_types={"text": str})
