"""Image fault cells on real sockets: the images emulator misbehaves on cue.

Each cell queues one fault (`tests.servers.images`) and checks what the caller gets, on
three wires (OpenAI's base64 and URL answers, and an in-house API described as a custom
format) and both twins: cut answers, wrong counts, bytes that are no image, bad base64,
bad URLs, 429 and 500; the key never appears in an error or a log line.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from langchain_customllm import (
    APIConnectionError,
    AuthenticationError,
    CustomImageGenerator,
    ResponseError,
)
from tests._waits import no_waits
from tests.servers.images import (
    DALLE,
    GPT_IMAGE,
    KEY,
    ImagesServer,
    colour_of,
    read_png,
    serve_images,
)

INHOUSE = {
    "kind": "custom",
    "name": "render",
    "image": {
        "path": "/inhouse/render",
        "request": {"text": "{prompt}", "count": "{n}", "width": "{width}", "height": "{height}"},
        "images": "job.outputs",
        "base64": "png",
    },
    "error": {"message": "fault.reason"},
}
# Each wire: the generator's settings besides base_url (the server root for the in-house API).
WIRES: dict[str, dict[str, Any]] = {
    "openai-b64": {"model": GPT_IMAGE, "api_key": KEY, "path": "/v1"},
    "openai-url": {"model": DALLE, "api_key": KEY, "path": "/v1", "response_format": "url"},
    "inhouse": {
        "model": "render",
        "api_key": KEY,
        "path": "",
        "api_key_header": "x-api-key",
        "api_key_scheme": None,
        "wire_format": INHOUSE,
    },
}


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    """Both twins: invoke and ainvoke."""
    return str(request.param)


@pytest.fixture(params=sorted(WIRES))
def wire(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server() -> Iterator[ImagesServer]:
    with serve_images() as running:
        yield running


def _model(server: ImagesServer, wire: str, **kwargs: Any) -> CustomImageGenerator:
    settings = dict(WIRES[wire])
    base_url = server.url + settings.pop("path")
    return no_waits(CustomImageGenerator(base_url=base_url, size="16x16", **settings, **kwargs))


def _generate(model: CustomImageGenerator, mode: str, n: int = 2) -> AIMessage:
    if mode == "sync":
        return model.invoke("a fox", n=n)
    return asyncio.run(model.ainvoke("a fox", n=n))


def _check(message: AIMessage, n: int = 2) -> None:
    assert len(message.content) == n
    for index, block in enumerate(message.content):
        assert isinstance(block, dict)
        if "url" in block:
            assert block["url"].startswith("http://127.0.0.1:")
        else:
            data = base64.b64decode(block["base64"])
            assert read_png(data) == (16, 16, colour_of("a fox", index))


def test_clean_answer(server: ImagesServer, wire: str, mode: str) -> None:
    with _model(server, wire) as model:
        _check(_generate(model, mode))


def test_cut_answer_is_a_connection_error(server: ImagesServer, wire: str, mode: str) -> None:
    server.faults.append("cut")
    with _model(server, wire, max_retries=0) as model, pytest.raises(APIConnectionError):
        _generate(model, mode)


def test_cut_answer_is_retried(server: ImagesServer, wire: str, mode: str) -> None:
    server.faults.append("cut")
    with _model(server, wire) as model:
        _check(_generate(model, mode))
    assert len(server.requests) == 2


@pytest.mark.parametrize("fault", ["429", "500"])
def test_overload_is_retried(server: ImagesServer, wire: str, mode: str, fault: str) -> None:
    server.faults.append(fault)
    with _model(server, wire) as model:
        _check(_generate(model, mode))
    assert len(server.requests) == 2


def test_a_missing_image_is_named(server: ImagesServer, wire: str, mode: str) -> None:
    server.faults.append("count")
    with _model(server, wire) as model, pytest.raises(ResponseError, match="1 image for n=2"):
        _generate(model, mode)


@pytest.mark.parametrize(
    ("wire", "fault", "problem"),
    [
        ("openai-b64", "garbage", r"image 0 decodes to \d+ bytes that are not a PNG"),
        ("openai-b64", "not_base64", r"image 0 is text that is not base64"),
        ("openai-url", "ftp_url", r"URL of image 0 is not an http\(s\) URL"),
        ("openai-b64", "no_data", r"no `data` list of images"),
        ("openai-url", "no_data", r"no `data` list of images"),
    ],
)
def test_bad_answers_are_response_errors(
    server: ImagesServer, wire: str, fault: str, problem: str, mode: str
) -> None:
    server.faults.append(fault)
    with _model(server, wire) as model, pytest.raises(ResponseError, match=problem):
        _generate(model, mode)
    assert len(server.requests) == 1  # a bad answer is not retried


def test_key_never_shown(server: ImagesServer, wire: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server.faults.extend(["429", "429"])  # retried twice, then the key is refused
    other = "sk-other-key-97531"
    with _model(server, wire) as model, pytest.raises(AuthenticationError) as caught:
        model.model_copy(update={"api_key": other}).invoke("x")
    shown = [str(caught.value), repr(caught.value), repr(model), caplog.text]
    assert not [text for text in shown if KEY in text or other in text]
    assert "Retrying" in caplog.text
