"""The in-house APIs, served to the ``openai`` SDK by ``customllm serve``.

The torch-serve-style API (tests/servers/torchserve.py), described in models.yaml as a
custom format, and KServe's v1 protocol through the Python adapter of
``examples/kserve_adapter.py`` (loaded with ``--import``): neither speaks OpenAI, and both
answer OpenAI clients through the gateway, streamed or not, with usage, and with a stream
that breaks part-way reported as an error.
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.integration_tests._serve_fixtures import (
    GATEWAY_KEY,
    GATEWAY_PORT,
    GatewayProcess,
    write_models,
)
from tests.integration_tests.conftest import MODEL
from tests.servers import kserve, torchserve
from tests.servers.base import Backend

pytestmark = pytest.mark.integration

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def client(base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    work = tmp_path_factory.mktemp("inhouse")
    backend = Backend(base_url, MODEL)
    with torchserve.serve(backend) as torch_api, kserve.serve(backend) as kserve_api:
        described = {k: v for k, v in torchserve.TORCHSERVE_FORMAT.items() if k != "name"}
        config = write_models(
            work / "models.yaml",
            {
                "in-house": {
                    "model": "my-model",
                    "base_url": torch_api.url,
                    "wire_format": "torchserve",
                    "max_tokens": 12,
                    "temperature": 0,
                    "max_retries": 0,
                },
                "kserve": {
                    "model": "my-model",
                    "base_url": kserve_api.url,
                    "wire_format": {"kind": "kserve-v1", "model_name": kserve.MODEL},
                    "max_tokens": 12,
                    "max_retries": 0,
                },
            },
            formats={"torchserve": described},
        )
        args = (
            "--api-key-env",
            "CUSTOMLLM_TEST_GATEWAY_KEYS",
            "--import",
            "examples.kserve_adapter",
        )
        with GatewayProcess(config, GATEWAY_PORT + 2, args, log=work / "gateway.log") as gateway:
            yield openai.OpenAI(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)


@pytest.mark.parametrize("name", ["in-house", "kserve"])
def test_whole_answers_with_usage(client: openai.OpenAI, name: str) -> None:
    answer = client.chat.completions.create(model=name, messages=QUESTION)
    assert answer.choices[0].message.content
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert answer.usage is not None
    assert answer.usage.prompt_tokens > 0
    assert answer.usage.completion_tokens > 0


@pytest.mark.parametrize("name", ["in-house", "kserve"])
def test_streams(client: openai.OpenAI, name: str) -> None:
    stream = client.chat.completions.create(
        model=name, messages=QUESTION, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_a_stream_that_breaks_part_way_is_an_error(client: openai.OpenAI) -> None:
    # The in-house API fails after two tokens when the prompt says so.
    messages = [{"role": "user", "content": "crash-midstream: tell me a story"}]
    stream = client.chat.completions.create(model="in-house", messages=messages, stream=True)
    with pytest.raises(openai.APIError, match="CUDA out of memory"):
        for _ in stream:
            pass


def test_vendor_parameters_are_refused_for_a_custom_format(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="logit_bias"):
        client.chat.completions.create(model="in-house", messages=QUESTION, logit_bias={"42": 1})
