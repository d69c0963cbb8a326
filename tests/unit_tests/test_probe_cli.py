"""`customllm probe` command line: output, exit codes, hints, entry points, docs table."""

from __future__ import annotations

import io
import json
import runpy
import sys
from dataclasses import replace

import httpx
import pytest

from langchain_customllm import probe
from langchain_customllm.probe import (
    EXIT_CHAT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    main,
    render_profiles,
)
from langchain_customllm.profiles import PROFILES
from tests.unit_tests._probe_helpers import (
    LLAMACPP_PLAIN,
    ROOT,
    SECRET,
    URL,
    run_main,
)

# --------------------------------------------------------------------------- command line


def test_text_output_has_table_profile_and_recommendation() -> None:
    code, out, _ = run_main(LLAMACPP_PLAIN, "probe", "--base-url", URL, "--model", "smollm2")
    assert code == EXIT_OK
    assert "capability" in out
    assert "+ chat completions" in out
    assert "- stream usage (include_usage)" in out
    assert "Best matching profile: llama-cpp-python" in out
    assert 'server_profile="llama-cpp-python"' in out


def test_unreachable_server_exits_3() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["probe", "--base-url", URL, "--model", "m"],
        stdout=out,
        stderr=err,
        environ={},
        transport=httpx.MockTransport(refuse),
    )
    assert code == EXIT_UNREACHABLE
    assert "Cannot reach" in err.getvalue()
    assert out.getvalue() == ""


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["probe"],
        ["probe", "--base-url", "not a url"],
        ["probe", "--base-url", "ftp://x/v1"],
        ["probe", "--base-url", URL, "--timeout", "0"],
        ["probe", "--base-url", URL, "--api-key-env", "MISSING_KEY"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run_main(LLAMACPP_PLAIN, *argv)
    assert code == EXIT_USAGE


def test_no_model_listed_is_a_usage_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "Not Found"})

    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["probe", "--base-url", URL],
        stdout=out,
        stderr=err,
        environ={},
        transport=httpx.MockTransport(handler),
    )
    assert code == EXIT_USAGE
    assert "--model" in err.getvalue()


def test_chat_refused_exits_1_with_a_hint() -> None:
    sim = replace(LLAMACPP_PLAIN, api_key=SECRET)
    code, out, _ = run_main(sim, "probe", "--base-url", URL, "--model", "smollm2")
    assert code == EXIT_CHAT_FAILED
    assert "--api-key-env" in out
    assert "Best matching profile: none" in out


def test_key_refused_on_models_says_so_and_how_to_pass_one() -> None:
    # No --model: the probe asks /models, which answers 401 to a request without a key.
    sim = replace(LLAMACPP_PLAIN, api_key=SECRET)
    code, out, err = run_main(sim, "probe", "--base-url", URL)
    assert code == EXIT_USAGE
    assert "lists no model" not in err
    assert "wants an API key" in err
    assert "--api-key-env VAR" in err
    assert out == ""


def test_wrong_key_names_the_variable_it_came_from() -> None:
    sim = replace(LLAMACPP_PLAIN, api_key=SECRET)
    env = {"MY_KEY": "sk-not-the-right-one"}
    argv = ["probe", "--base-url", URL, "--api-key-env", "MY_KEY"]
    code, out, err = run_main(sim, *argv, "--model", "smollm2", env=env)
    assert code == EXIT_CHAT_FAILED
    assert "refused the API key given via --api-key-env MY_KEY" in out
    assert "--api-key-env VAR" not in out
    assert env["MY_KEY"] not in out + err
    # Without --model the refusal comes from /models, and says the same.
    code, out, err = run_main(sim, *argv, env=env)
    assert code == EXIT_USAGE
    assert "refused the API key given via --api-key-env MY_KEY" in err
    assert env["MY_KEY"] not in out + err


def test_json_failures_print_an_error_object() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    out, err = io.StringIO(), io.StringIO()
    argv = ["probe", "--base-url", URL, "--model", "m", "--json"]
    code = main(argv, stdout=out, stderr=err, environ={}, transport=httpx.MockTransport(refuse))
    assert code == EXIT_UNREACHABLE
    error = json.loads(out.getvalue())["error"]
    assert error["kind"] == "unreachable"
    assert error["exit_code"] == EXIT_UNREACHABLE
    assert "Cannot reach" in error["message"]
    assert "Cannot reach" in err.getvalue()
    # A usage error and a refused key answer the same way.
    code, out_text, _ = run_main(LLAMACPP_PLAIN, *argv[:-1], "--timeout", "0", "--json")
    assert code == EXIT_USAGE
    assert json.loads(out_text)["error"] == {
        "kind": "usage",
        "message": "--timeout must be positive",
        "exit_code": EXIT_USAGE,
    }
    sim = replace(LLAMACPP_PLAIN, api_key=SECRET)
    code, out_text, _ = run_main(sim, "probe", "--base-url", URL, "--json")
    assert code == EXIT_USAGE
    assert json.loads(out_text)["error"]["kind"] == "api_key_refused"


def test_profiles_command() -> None:
    code, out, _ = run_main(None, "profiles")
    assert code == EXIT_OK
    assert all(name in out for name in PROFILES)
    code, markdown, _ = run_main(None, "profiles", "--markdown")
    assert markdown.count("\n") == len(probe.PROFILE_FIELDS) + 2
    assert markdown.splitlines()[0] == "| field | " + " | ".join(PROFILES) + " |"


def test_python_dash_m_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["customllm", "profiles"])
    monkeypatch.delitem(sys.modules, "langchain_customllm.__main__", raising=False)
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("langchain_customllm", run_name="__main__")
    assert exc.value.code == 0


def test_console_script_declared() -> None:
    tomllib = pytest.importorskip("tomllib")
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["scripts"]["customllm"] == "langchain_customllm.cli:main"


def test_docs_profiles_table_is_current() -> None:
    docs = (ROOT / "docs" / "compatibility.md").read_text()
    assert render_profiles(markdown=True) in docs, (
        "docs/compatibility.md is stale: paste `customllm profiles --markdown`"
    )
