"""CustomImageGenerator on real sockets against the loopback OpenAI images emulator.

`tests.servers.images` answers as OpenAI's ``/v1/images/generations`` does (DALL-E style
``url`` or ``b64_json`` answers with revised prompts; GPT-image style base64 with usage)
and draws real PNGs: image ``i`` of a prompt is ``colour_of(prompt, i)``, ``size`` pixels,
so each test checks the very bytes that came back. Its in-house variant is described in
YAML, as a user would, and served through `load_models`.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.prompts import ChatPromptTemplate

from langchain_customllm import (
    AuthenticationError,
    BadRequestError,
    CustomImageGenerator,
    NotFoundError,
    Pricing,
    RateLimitError,
    ResponseError,
    load_models,
    track_usage,
)
from tests.integration_tests.test_langsmith import (  # noqa: F401 (the collector fixture)
    SECRET,
    _assert_no_secret,
    _flush,
    _llm_runs,
    _only,
    collector,
)
from tests.servers.base import LoopbackServer
from tests.servers.images import (
    DALLE,
    GPT_IMAGE,
    KEY,
    ImagesServer,
    colour_of,
    read_png,
    serve_images,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[ImagesServer]:
    with serve_images() as running:
        yield running


def _generator(server: ImagesServer, model: str = DALLE, **kwargs: Any) -> CustomImageGenerator:
    return CustomImageGenerator(model=model, base_url=server.url + "/v1", api_key=KEY, **kwargs)


def _run(generator: CustomImageGenerator, mode: str, prompt: Any, **kwargs: Any) -> AIMessage:
    if mode == "sync":
        return generator.invoke(prompt, **kwargs)
    return asyncio.run(generator.ainvoke(prompt, **kwargs))


def _pixels(block: dict[str, Any]) -> tuple[int, int, tuple[int, int, int]]:
    if "base64" in block:
        return read_png(base64.b64decode(block["base64"]))
    response = httpx.get(block["url"], timeout=10)
    assert response.headers["content-type"] == "image/png"
    return read_png(response.content)


# ----------------------------------------------------------------- both response formats


@pytest.mark.parametrize("response_format", ["b64_json", "url"])
def test_n_images_in_either_format(server: ImagesServer, mode: str, response_format: str) -> None:
    generator = _generator(server, size="48x48", response_format=response_format)
    message = _run(generator, mode, "a green parrot", n=3)
    assert len(message.content) == 3
    for index, block in enumerate(message.content):
        assert isinstance(block, dict)
        assert ("base64" in block) == (response_format == "b64_json")
        assert _pixels(block) == (48, 48, colour_of("a green parrot", index))
    assert (
        message.response_metadata["revised_prompts"] == ["A detailed picture of a green parrot"] * 3
    )


def test_the_url_default_of_dalle_models(server: ImagesServer) -> None:
    block = _generator(server).invoke("a boat").content[0]
    assert isinstance(block, dict)
    assert block["url"].startswith(server.url + "/images/")
    assert _pixels(block) == (32, 32, colour_of("a boat"))


def test_a_gpt_image_model_reports_usage_and_is_priced(server: ImagesServer, mode: str) -> None:
    generator = _generator(server, GPT_IMAGE, pricing=Pricing(input=5, output=40, per_image=0.01))
    with track_usage() as usage:
        message = _run(generator, mode, "three small words", n=2, size="64x32")
    assert [b["mime_type"] for b in message.content] == ["image/png"] * 2  # type: ignore[index]
    output = 2 * 64 * 32 // 16
    assert message.usage_metadata is not None
    assert message.usage_metadata["input_tokens"] == 3
    assert message.usage_metadata["output_tokens"] == output
    cost = message.response_metadata["cost"]
    assert cost["image_cost"] == pytest.approx(0.02)
    assert cost["total_cost"] == pytest.approx((3 * 5 + output * 40) / 1e6 + 0.02)
    assert message.response_metadata["size"] == "64x32"
    assert usage.by_model[GPT_IMAGE].requests == 1
    assert usage.total.cost == pytest.approx(cost["total_cost"])
    assert usage.total.output_tokens == output


def test_the_gateway_api_answers_openais_shape(server: ImagesServer) -> None:
    generator = _generator(server, GPT_IMAGE, pricing=Pricing(input=0, output=0, per_image=0.25))
    request = {"prompt": "a lamp", "n": 2, "size": "16x16", "quality": "low"}
    result = asyncio.run(generator.agenerate_images(request.pop("prompt"), **request))
    answer = result.to_openai()
    assert set(answer) == {
        "created",
        "data",
        "usage",
        "size",
        "quality",
        "output_format",
        "background",
    }
    assert [read_png(base64.b64decode(d["b64_json"]))[2] for d in answer["data"]] == [
        colour_of("a lamp", 0),
        colour_of("a lamp", 1),
    ]
    assert answer["usage"]["total_tokens"] == 2 + 2 * 16
    assert result.cost is not None
    assert result.cost.total_cost == pytest.approx(0.5)


# ----------------------------------------------------------------- errors, with retries


def test_429_is_retried_after_its_retry_after(server: ImagesServer, mode: str) -> None:
    server.faults.extend(["429", "500"])
    message = _run(_generator(server, max_retries=2), mode, "a cloud")
    assert _pixels(message.content[0]) == (32, 32, colour_of("a cloud"))  # type: ignore[arg-type]
    assert len(server.requests) == 3


def test_retries_run_out(server: ImagesServer) -> None:
    server.faults.extend(["429", "429"])
    with pytest.raises(RateLimitError, match="Rate limit reached"):
        _generator(server, max_retries=1).invoke("x")


@pytest.mark.parametrize(
    ("settings", "call", "error", "problem"),
    [
        ({}, {"size": "1024x1024"}, BadRequestError, r"'1024x1024' is not one of \['16x16'"),
        ({}, {"n": 11}, BadRequestError, r"Invalid 'n'"),
        ({"model": "dall-e-9"}, {}, NotFoundError, r"'dall-e-9' does not exist"),
        ({"model": GPT_IMAGE}, {"response_format": "url"}, BadRequestError, r"Unknown parameter"),
        ({"api_key": "sk-wrong-key-2468"}, {}, AuthenticationError, r"Incorrect API key"),
    ],
)
def test_server_refusals_are_typed_and_not_retried(
    server: ImagesServer, settings: dict[str, Any], call: dict[str, Any], error: type, problem: str
) -> None:
    params = {"model": DALLE, "base_url": server.url + "/v1", "api_key": KEY, **settings}
    with pytest.raises(error, match=problem) as info:
        CustomImageGenerator(**params).invoke("x", **call)
    assert len(server.requests) == 1
    assert KEY not in str(info.value)
    assert "sk-wrong-key-2468" not in str(info.value)


@pytest.mark.parametrize(
    ("fault", "problem"),
    [
        ("count", r"returned 1 image for n=2"),
        ("garbage", r"not a PNG, JPEG, WEBP or GIF image .*'<html><body>'"),
        ("not_base64", r"is text that is not base64"),
        ("no_data", r"no `data` list of images"),
    ],
)
def test_bad_answers_are_response_errors(server: ImagesServer, fault: str, problem: str) -> None:
    server.faults.append(fault)
    with pytest.raises(ResponseError, match=problem):
        _generator(server, response_format="b64_json", max_retries=0).invoke("x", n=2)


# ----------------------------------------------------------------- in chains and agents


def test_a_prompt_template_feeds_it(server: ImagesServer) -> None:
    prompt = ChatPromptTemplate.from_messages([("system", "Flat colours."), ("human", "{subject}")])
    message = (prompt | _generator(server, response_format="b64_json")).invoke({"subject": "a bee"})
    assert _pixels(message.content[0]) == (32, 32, colour_of("Flat colours.\n\na bee"))  # type: ignore[arg-type]


def test_as_tool_in_an_agent_like_step(server: ImagesServer) -> None:
    tool = _generator(server, GPT_IMAGE, size="16x16").as_tool()
    # What an agent executor does with a model's tool call: invoke the tool with it.
    call = {
        "type": "tool_call",
        "id": "call_7",
        "name": tool.name,
        "args": {"prompt": "a red kite"},
    }
    answer = tool.invoke(call)
    assert isinstance(answer, ToolMessage)
    assert answer.tool_call_id == "call_7"
    (block,) = answer.content
    assert isinstance(block, dict)
    assert block["type"] == "image"
    assert _pixels(block) == (16, 16, colour_of("a red kite"))
    assert isinstance(answer.artifact, AIMessage)
    assert answer.artifact.usage_metadata is not None
    assert asyncio.run(tool.ainvoke({"prompt": "a red kite"}))[0]["base64"] == block["base64"]


# ----------------------------------------------------------------- an in-house API, in YAML

MODELS_YAML = """
formats:
  render:
    kind: custom
    image:
      path: /inhouse/render
      request: {text: "{prompt}", width: "{width}", height: "{height}", count: "{n}",
                encoding: base64}
      images: job.outputs
      base64: png
      url: link
      revised_prompt: prompt_used
      input_tokens: meta.tokens_in
      output_tokens: meta.tokens_out
    error: {message: fault.reason}
models:
  painter:
    type: image
    model: inhouse
    base_url_env: RENDER_URL
    api_key_env: RENDER_KEY
    api_key_header: x-api-key
    api_key_scheme: null
    wire_format: render
    size: 48x16
    pricing: {input: 0, output: 0, per_image: 0.5}
"""


def test_an_inhouse_api_described_in_yaml(
    server: ImagesServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    (tmp_path / "models.yaml").write_text(MODELS_YAML)
    monkeypatch.setenv("RENDER_URL", server.url)
    monkeypatch.setenv("RENDER_KEY", KEY)
    painter = load_models(tmp_path / "models.yaml")["painter"]
    assert isinstance(painter, CustomImageGenerator)
    message = _run(painter, mode, "blue whale", n=2)
    assert [_pixels(b) for b in message.content] == [  # type: ignore[arg-type]
        (48, 16, colour_of("blue whale", i)) for i in range(2)
    ]
    assert message.response_metadata["revised_prompts"] == ["BLUE WHALE", "BLUE WHALE"]
    assert message.usage_metadata == {
        "input_tokens": 2, "output_tokens": 20, "total_tokens": 22,
        "input_cost": 0.0, "output_cost": 0.0, "total_cost": 1.0,
    }  # fmt: skip
    links = painter.invoke("blue whale", extra_body={"encoding": "link"})
    assert _pixels(links.content[0]) == (48, 16, colour_of("blue whale"))  # type: ignore[arg-type]
    with pytest.raises(BadRequestError, match="width and height are 16 to 64, not 8x8"):
        painter.invoke("x", size="8x8")


# ----------------------------------------------------------------- LangSmith


def test_langsmith_gets_one_run_with_cost(collector: LoopbackServer) -> None:  # noqa: F811
    with serve_images(key=SECRET) as server:
        generator = CustomImageGenerator(
            model=GPT_IMAGE,
            base_url=server.url + "/v1",
            api_key=SECRET,
            pricing=Pricing(input=0, output=0, per_image=0.3),
        )
        generator.invoke("a tiny dot", n=2, size="16x16")
    _flush()
    run = _only(_llm_runs(collector))
    assert run["name"] == "CustomImageGenerator"
    assert run["extra"]["metadata"]["ls_model_type"] == "image"
    message = run["outputs"]["generations"][0][0]["message"]["kwargs"]
    assert message["usage_metadata"]["total_cost"] == pytest.approx(0.6)
    assert [block["mime_type"] for block in message["content"]] == ["image/png"] * 2
    _assert_no_secret(collector)
