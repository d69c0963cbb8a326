"""``customllm probe`` against the two real llama.cpp servers.

- the session's own: llama.cpp's C++ ``llama-server`` (``base_url``), measured by hand in
  ../shared/notes/llama-server-cpp.md;
- llama-cpp-python 0.3.36's server with ``--chat_format chatml-function-calling``
  (``llama_cpp_python_base_url``; reused if running, stopped at the end only if this session
  started it), measured in ../shared/notes/llama-cpp-server.md and docs/compatibility.md.

Each family's expected profile is the one conftest.py names for it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from langchain_customllm.probe import EXIT_UNREACHABLE, ProbeReport, run_probe
from tests.integration_tests.conftest import (
    LLAMA_CPP_PYTHON_PROFILE,
    LLAMACPP_PROFILE,
    MODEL,
    ROOT,
)

pytestmark = pytest.mark.integration

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
def server_cli(base_url: str) -> dict[str, Any]:
    """The subprocess run on llama-server, ``--json``."""
    done = _cli("--base-url", base_url, "--model", MODEL, "--json", "--timeout", TIMEOUT)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


@pytest.fixture(scope="module")
def server_report(base_url: str) -> ProbeReport:
    """The in-process run on llama-server."""
    return run_probe(base_url, MODEL, timeout=float(TIMEOUT))


@pytest.fixture(scope="module")
def fc_report(llama_cpp_python_base_url: str) -> ProbeReport:
    """The in-process run on llama-cpp-python's function-calling server."""
    return run_probe(llama_cpp_python_base_url, MODEL, timeout=float(TIMEOUT))


# llama-server's facts that do not depend on the chat template (its tool facts do: they are
# the template's tests').
LLAMA_SERVER = {
    "chat": True,
    "completions": True,
    "streaming": True,
    "stream_usage": True,  # a final chunk with choices [] when include_usage is asked
    "stop_honoured": True,
    "stop_included": False,
    "max_tokens_honoured": True,
    "logprobs": True,
    "n": True,
    "seed_deterministic": True,
    "json_mode": True,
    "json_schema": "native",
    "json_schema_native": True,
    "json_object_schema": True,
    "unknown_model_status": 200,  # the model name is not checked
    "malformed_json_status": 500,
    "wrong_key_status": None,
}

# llama-cpp-python 0.3.36's facts with chatml-function-calling.
LLAMA_CPP_PYTHON = {
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


def _check(expected: dict[str, Any], facts: dict[str, Any]) -> None:
    wrong = {k: (v, facts.get(k)) for k, v in expected.items() if facts.get(k) != v}
    assert not wrong, f"expected vs measured: {wrong}"


def _rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in rows}


def test_cli_json_on_llama_server(server_cli: dict[str, Any], base_url: str) -> None:
    _check(LLAMA_SERVER, server_cli["facts"])
    rows = _rows(server_cli["rows"])
    assert rows["json_schema"]["result"] == "yes (schema followed)"
    assert rows["stream_usage"]["result"] == "yes"
    assert rows["image"]["result"] == "refused (500)"  # no --mmproj
    assert server_cli["best_profile"] == LLAMACPP_PROFILE
    assert server_cli["recommendation"].startswith(f'ChatCustomLLM(base_url="{base_url}"')


def test_in_process_agrees_with_cli(server_report: ProbeReport, server_cli: dict[str, Any]) -> None:
    _check(LLAMA_SERVER, server_report.facts)
    assert server_report.best is not None
    assert server_report.best.name == LLAMACPP_PROFILE
    # Temperature 0 and a fixed seed: a second run measures the same facts.
    assert server_report.facts == server_cli["facts"]


def test_llama_cpp_python_function_calling_server(fc_report: ProbeReport) -> None:
    facts = fc_report.facts
    _check(LLAMA_CPP_PYTHON, facts)
    assert facts["tool_choice_auto_called"] is True
    assert facts["tool_stream_auto"] is False  # 200 with an empty body
    # The chatml-function-calling handler does not pass `seed` on to sampling.
    assert facts["seed_deterministic"] is not True
    rows = {row.key: row for row in fc_report.rows}
    assert rows["tools_required"].result == "error (500)"
    assert rows["tools_stream_auto"].result == "empty body"
    assert rows["content_parts"].result == "garbled"  # the list's repr lands in the prompt
    assert fc_report.best is not None
    assert fc_report.best.name == LLAMA_CPP_PYTHON_PROFILE
    assert fc_report.best.differences == {}


def test_probe_takes_well_under_a_minute_of_requests(server_report: ProbeReport) -> None:
    assert server_report.requests <= 30
    # A loose bound: the 2-core machine is shared with other test runs.
    assert server_report.duration_s < 180


def test_unreachable_exits_3() -> None:
    done = _cli(
        "--base-url", "http://127.0.0.1:9/v1", "--model", MODEL, "--timeout", "5", timeout=60
    )
    assert done.returncode == EXIT_UNREACHABLE
    assert "Cannot reach" in done.stderr
