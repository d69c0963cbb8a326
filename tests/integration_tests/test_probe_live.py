"""``customllm probe`` against the real llama.cpp server (llama-cpp-python 0.3.36).

Two servers: the session's plain one (``base_url``, the GGUF's own chat template) and one
started with ``--chat_format chatml-function-calling`` on port 8767 (reused if running,
stopped at the end only if this module started it). The facts asserted are the ones
measured by hand (../shared/notes/llama-cpp-server.md and docs/compatibility.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from langchain_customllm.probe import EXIT_UNREACHABLE, ProbeReport, run_probe
from tests.integration_tests.conftest import MODEL, ROOT, _local_server

pytestmark = pytest.mark.integration

FC_PORT = int(os.environ.get("CUSTOMLLM_TEST_FC_PORT", "8767"))
TIMEOUT = "60"


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "langchain_customllm", "probe", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def plain_cli(base_url: str) -> dict[str, Any]:
    """The subprocess run on the plain server, ``--json``."""
    done = _cli("--base-url", base_url, "--model", MODEL, "--json", "--timeout", TIMEOUT)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


@pytest.fixture(scope="module")
def plain_report(base_url: str) -> ProbeReport:
    """The in-process run on the plain server."""
    return run_probe(base_url, MODEL, timeout=float(TIMEOUT))


@pytest.fixture(scope="module")
def fc_url() -> Iterator[str]:
    """A server with ``--chat_format chatml-function-calling`` (tools auto/required)."""
    url = os.environ.get("CUSTOMLLM_TEST_FC_BASE_URL")
    if url:
        yield url
        return
    handle = _local_server().start(port=FC_PORT, chat_format="chatml-function-calling")
    try:
        yield str(handle.base_url)
    finally:
        handle.stop()  # a no-op unless this module started it


@pytest.fixture(scope="module")
def fc_report(fc_url: str) -> ProbeReport:
    """The in-process run on the function-calling server."""
    return run_probe(fc_url, MODEL, timeout=float(TIMEOUT))


# Facts llama.cpp 0.3.36 shows whatever the chat format.
COMMON = {
    "chat": True,
    "completions": True,
    "streaming": True,
    "stream_usage": False,  # include_usage accepted and ignored
    "stop_honoured": True,
    "stop_included": False,
    "max_tokens_honoured": True,
    "logprobs": True,
    "n": False,  # ignored: one choice
    "json_mode": True,
    "json_schema": "json_object_schema",  # OpenAI's json_schema is a 500
    "json_schema_native": False,
    "json_object_schema": True,
    "tool_calling": True,
    "tool_choice_named": True,
    "tool_choice_required": False,
    "tool_stream_repeats_id_name": True,
    "content_parts": False,
    "image_inputs": False,
    "unknown_model_status": 200,  # the model name is not checked
    "malformed_json_status": 500,
    "wrong_key_status": None,
}


def _check_common(facts: dict[str, Any]) -> None:
    wrong = {k: (v, facts.get(k)) for k, v in COMMON.items() if facts.get(k) != v}
    assert not wrong, f"expected vs measured: {wrong}"


def _rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in rows}


def test_cli_json_on_plain_server(plain_cli: dict[str, Any], base_url: str) -> None:
    facts = plain_cli["facts"]
    _check_common(facts)
    assert facts["seed_deterministic"] is True
    # The GGUF's template answers "required" and auto with text (tools ignored) and
    # refuses content as a list of parts with a 500.
    assert facts["tool_choice_auto_called"] is False
    assert facts["tool_stream_auto"] is None
    rows = _rows(plain_cli["rows"])
    assert rows["json_schema"]["result"] == "no (500)"
    assert rows["tools_required"]["result"] == "no tool call"
    assert rows["image"]["result"] == "refused (500)"
    assert rows["content_parts"]["result"] == "refused"
    assert rows["error_malformed_json"]["result"] == "500"
    assert plain_cli["best_profile"] == "llama-cpp-python"
    assert plain_cli["overrides"] == {}
    assert plain_cli["server_hint"] == "llama-cpp-python"
    assert plain_cli["recommendation"] == (
        f'ChatCustomLLM(base_url="{base_url}", model="{MODEL}", server_profile="llama-cpp-python")'
    )


def test_in_process_agrees_with_cli(plain_report: ProbeReport, plain_cli: dict[str, Any]) -> None:
    _check_common(plain_report.facts)
    assert plain_report.best is not None
    assert plain_report.best.name == "llama-cpp-python"
    # Temperature 0 and a fixed seed: a second run measures the same facts.
    assert plain_report.facts == plain_cli["facts"]


def test_function_calling_server(fc_report: ProbeReport) -> None:
    facts = fc_report.facts
    _check_common(facts)
    assert facts["tool_choice_auto_called"] is True
    assert facts["tool_stream_auto"] is False  # 200 with an empty body
    # The chatml-function-calling handler does not pass `seed` on to sampling.
    assert facts["seed_deterministic"] is not True
    rows = {row.key: row for row in fc_report.rows}
    assert rows["tools_required"].result == "error (500)"
    assert rows["tools_stream_auto"].result == "empty body"
    assert rows["content_parts"].result == "garbled"  # the list's repr lands in the prompt
    assert fc_report.best is not None
    assert fc_report.best.name == "llama-cpp-python"
    assert fc_report.best.differences == {}


def test_probe_takes_well_under_a_minute_of_requests(plain_report: ProbeReport) -> None:
    assert plain_report.requests <= 30
    # A loose bound: the 2-core machine is shared with other test runs.
    assert plain_report.duration_s < 180


def test_unreachable_exits_3() -> None:
    done = _cli(
        "--base-url", "http://127.0.0.1:9/v1", "--model", MODEL, "--timeout", "5", timeout=60
    )
    assert done.returncode == EXIT_UNREACHABLE
    assert "Cannot reach" in done.stderr
