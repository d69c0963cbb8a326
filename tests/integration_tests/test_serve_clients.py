"""Clients no one here wrote, besides the ``openai`` SDK: LiteLLM's SDK and curl.

LiteLLM's SDK pins an ``openai`` major below the one in the project's venv, so installing it
there would downgrade the SDK the other tests use; it runs instead in the venv the matrix
already installs it into (scripts/litellm_server.py, in the user cache), as a subprocess
calling ``litellm.completion(model="openai/<name>", api_base=<gateway>)``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.integration_tests._serve_fixtures import GATEWAY_KEY

pytestmark = pytest.mark.integration

_LITELLM_CLIENT = textwrap.dedent(
    """
    import json, sys
    import litellm

    base, key = sys.argv[1], sys.argv[2]
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    common = {"api_base": base, "api_key": key, "max_tokens": 8, "temperature": 0}
    out = {}
    answer = litellm.completion(model="openai/smollm2", messages=messages, **common)
    out["text"] = answer.choices[0].message.content
    out["total_tokens"] = answer.usage.total_tokens
    stream = litellm.completion(model="openai/smollm2", messages=messages, stream=True, **common)
    out["streamed"] = "".join(c.choices[0].delta.content or "" for c in stream)
    vectors = litellm.embedding(
        model="openai/smollm2-embed", input=["hello", "world"], api_base=base, api_key=key
    )
    out["widths"] = [len(item["embedding"]) for item in vectors.data]
    try:
        litellm.completion(model="openai/no-such-model", messages=messages, **common)
    except litellm.NotFoundError as exc:
        out["not_found"] = exc.status_code
    try:
        litellm.completion(
            model="openai/smollm2", messages=messages, api_base=base, api_key="sk-wrong"
        )
    except litellm.AuthenticationError as exc:
        out["refused"] = exc.status_code
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def litellm_python() -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from scripts import litellm_server

    return litellm_server.install(verbose=False) / "bin" / "python"


def _run(command: list[str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_TELEMETRY="False")
    return subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


def test_litellm_sdk_as_a_client(litellm_python: Path, gateway_url: str) -> None:
    done = _run([str(litellm_python), "-c", _LITELLM_CLIENT, gateway_url, GATEWAY_KEY])
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["text"]
    assert out["total_tokens"] > 0
    assert out["streamed"].strip()
    assert len(out["widths"]) == 2
    assert out["widths"][0] == out["widths"][1] > 0
    assert out["not_found"] == 404
    assert out["refused"] == 401


def test_curl(gateway_url: str) -> None:
    body = json.dumps(
        {
            "model": "smollm2",
            "messages": [{"role": "user", "content": "Say hi."}],
            "max_tokens": 6,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    done = _run(
        [
            "curl", "-sS", "-N", "--fail-with-body", f"{gateway_url}/chat/completions",
            "-H", f"Authorization: Bearer {GATEWAY_KEY}",
            "-H", "Content-Type: application/json",
            "-H", "x-request-id: curl-1",
            "-D", "-",
            "-d", body,
        ]
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    head, _, stream = done.stdout.partition("\n\n")  # text mode reads CRLF as LF
    assert "x-request-id: curl-1" in head.lower()
    assert "text/event-stream" in head.lower()
    events = [line[len("data: ") :] for line in stream.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["usage"]["completion_tokens"] > 0
    refused = _run(["curl", "-sS", f"{gateway_url}/models", "-w", "%{http_code}"])
    assert refused.stdout.endswith("401")
    assert json.loads(refused.stdout[: -len("401")])["error"]["code"] == "invalid_api_key"
