"""Image generation on the wire: format methods, image checks, custom mappings, adapters,
and the per-image price (pure, no I/O but the MockTransport server)."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from langchain_customllm import (
    ConfigurationError,
    Pricing,
    PricingTable,
    ResponseError,
    UsageTracker,
    cost_for,
)
from langchain_customllm.formats import (
    GeneratedImage,
    GenerationParams,
    ImageParams,
    OpenAIFormat,
    ParsedImages,
    TokenUsage,
    WireRequest,
    get_format,
)
from langchain_customllm.formats.image import check_image, parse_image_usage, sniff_mime
from langchain_customllm.pricing import price_answer
from tests.servers.images import colour_of, png
from tests.unit_tests._image_helpers import ImageServer, b64_of

PNG = png(2, 2, (9, 8, 7))
SIGNATURES = {
    "image/png": PNG,
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "image/gif": b"GIF87a\x01\x00\x01\x00",
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ----------------------------------------------------------------- image checks


@pytest.mark.parametrize(("mime", "data"), SIGNATURES.items())
def test_the_mime_type_is_read_from_the_bytes(mime: str, data: bytes) -> None:
    assert sniff_mime(data) == mime
    checked = check_image(GeneratedImage(base64=b64(data), mime_type="image/bogus"), "Image 0")
    assert checked.mime_type == mime


@pytest.mark.parametrize("data", [b"", b"<svg/>", b"RIFF\x00\x00\x00\x00WAVE", b"\x89PNX"])
def test_other_bytes_are_no_image(data: bytes) -> None:
    assert sniff_mime(data) is None


def test_base64_in_lines_is_joined() -> None:
    text = b64(PNG)
    wrapped = "\n".join(text[i : i + 10] for i in range(0, len(text), 10))
    assert check_image(GeneratedImage(base64=wrapped), "Image 0").base64 == text


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (GeneratedImage(), "Image 3 has neither base64 data nor a URL"),
        (GeneratedImage(base64=""), "Image 3 has empty or non-text base64"),
        (GeneratedImage(base64="abc"), "image 3 is text that is not base64"),
        (GeneratedImage(url="ftp://host/a.png"), "not an http\\(s\\) URL with a host"),
        (GeneratedImage(url="https:///a.png"), "not an http\\(s\\) URL with a host"),
        (GeneratedImage(url="data:image/png,raw"), "data URL of image 3 is not base64"),
        (GeneratedImage(url="data:image/png;base64," + b64(b"hello")), "not a PNG"),
    ],
)
def test_bad_images_are_response_errors(image: GeneratedImage, problem: str) -> None:
    with pytest.raises(ResponseError, match=problem):
        check_image(image, "Image 3")


def test_an_http_url_is_kept_unfetched() -> None:
    image = GeneratedImage(url="https://cdn.test/a.png?sig=1", revised_prompt="r")
    assert check_image(image, "Image 0") == image


# ----------------------------------------------------------------- the OpenAI format


def test_openai_request_leaves_unset_parameters_out() -> None:
    fmt = OpenAIFormat()
    assert fmt.supports_image_generation
    request = fmt.image_request("a cat", ImageParams(model="m"))
    assert request == WireRequest(
        path="/images/generations", body={"model": "m", "prompt": "a cat"}
    )
    params = ImageParams(model="m", n=2, size="1x1", response_format="url", extra_body={"seed": 3})
    assert fmt.image_request("x", params).body == {
        "model": "m", "prompt": "x", "n": 2, "size": "1x1", "response_format": "url", "seed": 3,
    }  # fmt: skip


def test_openai_answer_is_read_whole() -> None:
    body = {
        "created": 5,
        "model": "served",
        "data": [{"b64_json": "QQ==", "revised_prompt": "r"}, {"url": "https://x/y.png"}],
        "usage": {
            "input_tokens": 3,
            "output_tokens": 9,
            "total_tokens": 12,
            "input_tokens_details": {"text_tokens": 3, "image_tokens": 0},
        },
        "size": "1024x1024",
        "output_format": "png",
        "background": None,
    }
    assert OpenAIFormat().parse_images(body) == ParsedImages(
        [GeneratedImage(base64="QQ==", revised_prompt="r"), GeneratedImage(url="https://x/y.png")],
        usage=TokenUsage(3, 9, 12),
        model="served",
        created=5,
        metadata={"size": "1024x1024", "output_format": "png"},
    )


@pytest.mark.parametrize(
    ("raw", "usage"),
    [
        (None, None),
        ({}, None),
        ({"input_tokens": 2, "output_tokens": 3}, TokenUsage(2, 3, 5)),
        ({"prompt_tokens": 4, "completion_tokens": 1, "total_tokens": 6}, TokenUsage(4, 1, 6)),
        ({"input_tokens": True, "output_tokens": "3"}, None),
    ],
)
def test_image_usage_takes_both_spellings(raw: Any, usage: TokenUsage | None) -> None:
    assert parse_image_usage(raw) == usage


def test_formats_without_images_say_which_have_them() -> None:
    for name in ("ollama", "tgi", "tei"):
        fmt = get_format(name)
        assert not fmt.supports_image_generation
        with pytest.raises(ConfigurationError, match=r"'openai'.*`image` section"):
            fmt.image_request("x", ImageParams(model="m"))


# ----------------------------------------------------------------- custom (YAML) mappings

RENDER: dict[str, Any] = {
    "kind": "custom",
    "name": "render",
    "image": {
        "path": "/render",
        "request": {
            "text": "{prompt}",
            "w": "{width}",
            "h": "{height}",
            "count": "{n}",
            "opts": {"q": "{quality}", "fmt": "{output_format}"},
        },
        "images": "job.outputs",
        "base64": "png",
        "url": "link",
        "revised_prompt": "used",
        "input_tokens": "meta.in",
        "output_tokens": "meta.out",
        "model": "job.engine",
    },
    "error": {"message": "fault.reason"},
}


def test_a_custom_format_may_describe_only_images() -> None:
    fmt = get_format(RENDER)
    assert fmt.supports_image_generation
    assert not fmt.supports_embeddings
    with pytest.raises(ConfigurationError, match="no path for this call"):
        fmt.completion_request("x", GenerationParams("m"), stream=False)


def test_custom_request_renders_size_as_width_and_height() -> None:
    fmt = get_format(RENDER)
    request = fmt.image_request("a boat", ImageParams(model="m", n=2, size="64x32", quality="hd"))
    assert request.path == "/render"
    assert request.body == {"text": "a boat", "w": 64, "h": 32, "count": 2, "opts": {"q": "hd"}}
    unset = fmt.image_request("a boat", ImageParams(model="m", size="auto"))
    assert unset.body == {"text": "a boat", "opts": {}}  # no numbers in "auto"


def test_custom_answer_is_read_by_its_paths() -> None:
    body = {
        "job": {
            "engine": "sd-3",
            "outputs": [{"png": "QQ==", "used": "r"}, {"link": "https://a/b"}],
        },
        "meta": {"in": 4, "out": 20},
    }
    assert get_format(RENDER).parse_images(body) == ParsedImages(
        [GeneratedImage(base64="QQ==", revised_prompt="r"), GeneratedImage(url="https://a/b")],
        usage=TokenUsage(4, 20, 24),
        model="sd-3",
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"job": {}}, r"`job.outputs` not found at `job`: no key 'outputs'"),
        ({"job": {"outputs": {"png": "QQ=="}}}, r"the images are not a list"),
        ({"job": {"outputs": [{"other": 1}]}}, r"image 0 has no `png` or `link`"),
        ({"job": {"outputs": [{"png": ["QQ=="]}]}}, r"image 0's base64 should be text"),
        ({"fault": {"reason": "content policy"}}, r"the server reported: content policy"),
        ({"job": {"outputs": []}, "meta": {"in": "many"}}, r"`meta.in` should be a token count"),
    ],
)
def test_custom_answers_are_checked(body: Any, problem: str) -> None:
    with pytest.raises(ResponseError, match=problem):
        get_format(RENDER).parse_images(body)


def test_bare_entries_are_urls_or_base64_by_their_start() -> None:
    spec = {
        "kind": "custom",
        "image": {"path": "/sd", "request": {"p": "{prompt}"}, "images": "images"},
    }
    body = {"images": ["QQ==", "https://x/a.png", "data:image/png;base64,QQ==", 7]}
    with pytest.raises(ResponseError, match="image 3 is not a string"):
        get_format(spec).parse_images(body)
    del body["images"][3]
    assert get_format(spec).parse_images(body).images == [
        GeneratedImage(base64="QQ=="),
        GeneratedImage(url="https://x/a.png"),
        GeneratedImage(url="data:image/png;base64,QQ=="),
    ]


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (
            {"path": "/x", "request": {"p": "{promt}"}},
            r"unknown placeholder \{promt\} in image.request.p",
        ),
        ({"path": "/x", "request": {}, "images": "a..b"}, r"image.images: Invalid response path"),
        ({"path": "x", "request": {}}, r"must start with '/'"),
        ({"path": "/x", "request": {}, "pictures": "a"}, r"pictures"),
    ],
)
def test_bad_image_sections_fail_when_built(image: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        get_format({"kind": "custom", "image": image})


def test_a_custom_format_generates_through_the_model(mode: str) -> None:
    def handler(body: dict[str, Any]) -> httpx.Response:
        outputs = [{"png": b64_of(body["text"], i)} for i in range(body["count"])]
        return httpx.Response(200, json={"job": {"outputs": outputs}, "meta": {"in": 1, "out": 2}})

    server = ImageServer(handler)
    model = server.model(base_url="http://fake.test", wire_format=RENDER, n=2, size="16x16")
    message = model.invoke("kite") if mode == "sync" else asyncio.run(model.ainvoke("kite"))
    assert server.paths == ["/render"]
    assert [b["base64"] for b in message.content] == [b64_of("kite", 0), b64_of("kite", 1)]
    assert message.usage_metadata == {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}


# ----------------------------------------------------------------- Python adapters


class SDWebUI(OpenAIFormat):
    """Stable Diffusion WebUI's txt2img, as a user would write it."""

    name = "sd-webui"

    def image_request(self, prompt: str, params: ImageParams) -> WireRequest:
        width, height = params.width_height or (512, 512)
        body = {"prompt": prompt, "width": width, "height": height, "batch_size": params.n or 1}
        return WireRequest(path="/sdapi/v1/txt2img", body=body)

    def parse_images(self, body: Any) -> ParsedImages:
        return ParsedImages([GeneratedImage(base64=image) for image in body["images"]])


def test_a_python_adapter_generates_and_its_bugs_are_typed() -> None:
    def handler(body: dict[str, Any]) -> httpx.Response:
        if body["prompt"] == "broken":
            return httpx.Response(200, json={"detail": "no images"})
        images = [b64_of(body["prompt"], i) for i in range(body["batch_size"])]
        return httpx.Response(200, json={"images": images, "parameters": {}, "info": "{}"})

    server = ImageServer(handler)
    model = server.model(base_url="http://fake.test", wire_format=SDWebUI(), size="24x8")
    assert model.invoke("tree").content[0]["base64"] == b64_of("tree")
    assert server.bodies[0] == {"prompt": "tree", "width": 24, "height": 8, "batch_size": 1}
    # Its KeyError is a ResponseError naming the format and what arrived.
    with pytest.raises(
        ResponseError, match=r"'sd-webui' could not read the image answer \(KeyError"
    ):
        model.invoke("broken")


def test_an_adapter_that_lies_about_the_type_is_checked_anyway() -> None:
    class Liar(SDWebUI):
        def parse_images(self, body: Any) -> ParsedImages:
            return ParsedImages(
                [GeneratedImage(base64=b64(b"not an image"), mime_type="image/png")]
            )

    server = ImageServer(lambda body: httpx.Response(200, json={}))
    with pytest.raises(ResponseError, match="not a PNG, JPEG, WEBP or GIF"):
        server.model(wire_format=Liar()).invoke("x")


# ----------------------------------------------------------------- the per-image price


def test_cost_for_adds_the_images_to_the_tokens() -> None:
    price = Pricing(input=5, output=40, per_request=0.001, per_image=0.02)
    cost = cost_for(TokenUsage(1000, 1000, 2000), price, images=3)
    assert cost.image_cost == pytest.approx(0.06)
    assert cost.total_cost == pytest.approx(0.005 + 0.04 + 0.001 + 0.06)
    assert cost.as_dict()["image_cost"] == pytest.approx(0.06)
    chat = cost_for(TokenUsage(1000, 1000, 2000), price)
    assert chat.image_cost is None
    assert "image_cost" not in chat.as_dict()


def test_images_without_usage_are_priced_only_without_token_prices() -> None:
    per_image = Pricing(input=0, output=0, per_image=0.04)
    by_tokens = Pricing(input=5, output=40, per_image=0.04)
    table = PricingTable({"dall-e-*": per_image, "gpt-image-*": by_tokens})
    assert price_answer(table, None, ["dall-e-3"], images=2).total_cost == pytest.approx(0.08)  # type: ignore[union-attr]
    assert price_answer(table, None, ["gpt-image-1"], images=2) is None  # tokens unknown
    assert price_answer(per_image, None, ["any"]) is None  # not an image answer


def test_a_per_image_price_validates_like_the_others() -> None:
    with pytest.raises(ConfigurationError, match="per_image"):
        PricingTable({"m": {"input": 0, "output": 0, "per_image": -1}})


def test_the_tracker_counts_a_cost_without_tokens() -> None:
    tracker = UsageTracker()
    message = AIMessage(content=[], response_metadata={"cost": {"total_cost": 0.08}})
    tracker.on_llm_end(
        LLMResult(generations=[[ChatGeneration(message=message)]]), run_id=uuid.uuid4()
    )
    assert tracker.total.cost == pytest.approx(0.08)
    assert tracker.total.requests == 1
    assert tracker.total.unpriced_requests == 0


def test_every_image_of_a_prompt_has_its_own_colour() -> None:
    # The fake servers rely on it: image i of a prompt is told from image j by its bytes.
    assert len({colour_of("x", i) for i in range(10)}) == 10
