"""Image models served to the ``openai`` SDK by ``customllm serve``.

The loopback images emulator (tests/servers/images.py, written from OpenAI's images API)
behind the gateway, as ``type: image`` entries of models.yaml: the SDK's
``images.generate`` gets real PNGs back, as base64 or URLs, with usage and the cost.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.integration_tests._serve_fixtures import (
    GATEWAY_KEY,
    GATEWAY_PORT,
    GatewayProcess,
    write_models,
)
from tests.servers.images import DALLE, GPT_IMAGE, KEY, colour_of, read_png, serve_images

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    work = tmp_path_factory.mktemp("images")
    with serve_images() as images:
        entry = {"type": "image", "base_url": images.url + "/v1", "api_key": KEY, "max_retries": 0}
        config = write_models(
            work / "models.yaml",
            {
                "painter": {**entry, "model": DALLE},
                "priced-painter": {
                    **entry,
                    "model": GPT_IMAGE,
                    "pricing": {"input": 5.0, "output": 40.0, "per_image": 0.01},
                },
            },
        )
        args = ("--api-key-env", "CUSTOMLLM_TEST_GATEWAY_KEYS")
        with GatewayProcess(config, GATEWAY_PORT + 3, args, log=work / "gateway.log") as gateway:
            yield openai.OpenAI(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)


def test_base64_pngs_drawn_from_the_prompt(client: openai.OpenAI) -> None:
    answer = client.images.generate(
        model="painter", prompt="A red kite", n=2, size="16x16", response_format="b64_json"
    )
    assert answer.data is not None
    assert len(answer.data) == 2
    for index, image in enumerate(answer.data):
        assert image.b64_json is not None
        width, height, colour = read_png(base64.b64decode(image.b64_json))
        assert (width, height) == (16, 16)
        assert colour == colour_of("A red kite", index)


def test_urls_the_client_can_fetch(client: openai.OpenAI) -> None:
    answer = client.images.generate(model="painter", prompt="A kite", response_format="url")
    assert answer.data is not None
    url = answer.data[0].url
    assert url is not None
    assert url.startswith("http://127.0.0.1:")
    assert read_png(httpx.get(url, timeout=10).content)[2] == colour_of("A kite", 0)


def test_usage_and_cost_of_a_priced_model(client: openai.OpenAI) -> None:
    raw = client.images.with_raw_response.generate(model="priced-painter", prompt="A kite", n=2)
    answer = raw.parse()
    assert answer.usage is not None
    assert answer.usage.input_tokens > 0
    cost = float(raw.headers["x-customllm-cost"])
    assert cost > 0.02  # two images at 0.01, plus the tokens


def test_errors_reach_the_sdk_as_its_own(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="size"):
        client.images.generate(model="painter", prompt="A kite", size="7x7")
    with pytest.raises(openai.NotFoundError, match="painter"):
        client.images.generate(model="no-such-painter", prompt="A kite")
