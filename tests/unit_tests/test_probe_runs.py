"""`customllm probe` end to end on simulated servers: facts, overrides, keys, progress."""

from __future__ import annotations

import io
import json
import os
from dataclasses import replace

import httpx
import pytest

from langchain_customllm import ChatCustomLLM, probe
from langchain_customllm.probe import (
    EXIT_OK,
    main,
    run_probe,
)
from langchain_customllm.profiles import get_profile
from tests.unit_tests._probe_helpers import (
    LITELLM,
    LLAMA_SERVER,
    LLAMACPP_FC,
    LLAMACPP_PLAIN,
    SECRET,
    URL,
    VLLM,
    Sim,
    probe_sim,
    rows_by_key,
    run_main,
)

# --------------------------------------------------------------------------- whole probes


def test_llamacpp_plain_server_is_recognised() -> None:
    report = probe_sim(LLAMACPP_PLAIN)
    facts = report.facts
    assert facts["chat"] is True
    assert facts["completions"] is True
    assert facts["streaming"] is True
    assert facts["stream_usage"] is False
    assert facts["usage_estimated"] is None
    assert (facts["stop_honoured"], facts["stop_included"]) == (True, False)
    assert facts["max_tokens_honoured"] is True
    assert facts["seed_deterministic"] is True
    assert facts["logprobs"] is True
    assert facts["n"] is False
    assert facts["json_mode"] is True
    assert facts["json_schema"] == "json_object_schema"
    assert facts["tool_calling"] is True  # forced by name works through the grammar
    assert facts["tool_choice_named"] is True
    assert facts["tool_choice_required"] is False  # ignored: a text answer
    assert facts["tool_stream_auto"] is None  # auto picked no tool: not measured
    assert facts["tool_stream_repeats_id_name"] is True
    assert facts["content_parts"] is False
    assert facts["image_inputs"] is False
    assert facts["unknown_model_status"] == 200
    assert facts["malformed_json_status"] == 500
    assert report.best is not None
    assert report.best.name == "llama-cpp-python"
    assert report.best.differences == {}
    assert report.server_hint == "llama-cpp-python"
    assert report.recommendation() == (
        'ChatCustomLLM(base_url="http://llm.test/v1", model="smollm2", '
        'server_profile="llama-cpp-python")'
    )
    rows = rows_by_key(report)
    assert rows["stop"].result == "honoured, stop text excluded"
    assert rows["n"].result == "ignored"
    assert rows["json_schema"].result == "no (500)"
    assert rows["tools_required"].result == "no tool call"
    assert rows["tools_stream_auto"].supported is None
    assert rows["image"].result == "refused (500)"
    assert "text-only parts fail too" in rows["image"].evidence
    assert rows["error_wrong_key"].result == "not tested"


def test_llamacpp_function_calling_server() -> None:
    report = probe_sim(LLAMACPP_FC)
    facts = report.facts
    assert facts["tool_choice_auto_called"] is True
    assert facts["tool_stream_auto"] is False  # 200 with an empty body
    assert facts["tool_choice_required"] is False
    assert facts["seed_deterministic"] is False
    assert facts["content_parts"] is False
    assert facts["image_verdict"] == "as_text"
    rows = rows_by_key(report)
    assert rows["tools_stream_auto"].result == "empty body"
    assert rows["tools_required"].result == "error (500)"
    assert "empty error message" in rows["tools_required"].evidence
    assert rows["content_parts"].result == "garbled"
    assert "heuristic" in rows["image"].result
    assert report.best is not None
    assert report.best.name == "llama-cpp-python"
    assert report.best.differences == {}
    assert any("heuristic" in note or "weak vision" in note for note in report.notes)


def test_llama_server_cpp_is_recognised_as_llamacpp() -> None:
    # llama.cpp's own C++ server, with SmolLM2's template (no tools in it), as measured.
    report = probe_sim(LLAMA_SERVER)
    facts = report.facts
    assert facts["stream_usage"] is True
    assert facts["usage_estimated"] is False
    assert facts["n"] is True
    assert facts["json_schema"] == "native"
    assert facts["tool_calling"] is False  # plain text: the template declares no tools
    assert facts["image_inputs"] is False  # 500 without --mmproj
    assert report.server_hint == "llamacpp"
    assert report.best is not None
    assert report.best.name == "llamacpp"
    # The only differences: the tools this chat template cannot express.
    assert set(report.best.differences) == {"tool_calling", "tool_choice_required"}
    assert report.recommendation().startswith(
        'ChatCustomLLM(base_url="http://llm.test/v1", model="smollm2", '
        'server_profile={"base": "llamacpp", "tool_calling": False'
    )
    # llama-cpp-python's profile (the one once called llamacpp) fits it far less.
    scores = {m.name: m.score for m in report.matches}
    assert scores["llama-cpp-python"] < scores["generic"] < scores["llamacpp"]


def test_llama_server_cpp_with_tools_fits_llamacpp_exactly() -> None:
    # With a chat template that declares tools, llama-server calls them like OpenAI, except
    # that it reads a named tool_choice as "auto" (forced instead by sending that tool alone).
    sim = replace(LLAMA_SERVER, tools="parser", required="call")
    report = probe_sim(sim)
    assert report.best is not None
    assert (report.best.name, report.best.differences) == ("llamacpp", {})
    assert report.recommendation().endswith('server_profile="llamacpp")')


def test_llama_server_with_our_template_is_probed_as_a_model_would_call_it() -> None:
    # Our template declares "<tool_call>\n": "required" calls only when continued from it
    # (as measured: SmolLM2 writes text first otherwise), and the probe forces it that way.
    sim = replace(
        LLAMA_SERVER,
        tools="parser",
        required="prefix",
        tool_call_prefix="<tool_call>\n",
        requests=[],
    )
    report = run_probe(URL, "smollm2", transport=httpx.MockTransport(sim))
    assert report.facts["tool_choice_required"] is True
    assert report.best is not None
    assert (report.best.name, report.best.differences) == ("llamacpp", {})
    forced = [r for r in sim.requests if r.get("tool_choice") == "required"]
    assert forced[0]["messages"][-1] == {"role": "assistant", "content": "<tool_call>\n"}
    assert forced[0]["parallel_tool_calls"] is False


def test_vllm_like_server_needs_strict_tools_and_gets_overrides() -> None:
    sim = replace(VLLM, requests=[])
    report = run_probe(URL, "smollm2", transport=httpx.MockTransport(sim))
    facts = report.facts
    assert facts["n"] is True
    assert facts["stream_usage"] is True
    assert facts["usage_estimated"] is False
    assert facts["json_schema"] == "native"
    assert facts["tool_choice_required"] is True
    assert facts["strict_tools"] is True  # arguments were a JSON string until strict
    assert facts["tool_stream_repeats_id_name"] is False
    assert facts["image_inputs"] is False  # refused with 400
    strict_requests = [
        r for r in sim.requests if r.get("tools") and r["tools"][0]["function"].get("strict")
    ]
    assert len(strict_requests) == 1
    assert report.best is not None
    assert report.best.name == "vllm"
    assert report.best.differences == {"image_inputs": (True, False)}
    assert report.overrides() == {"image_inputs": False}
    assert report.recommendation() == (
        'ChatCustomLLM(base_url="http://llm.test/v1", model="smollm2", '
        'server_profile={"base": "vllm", "image_inputs": False})'
    )
    rows = rows_by_key(report)
    assert rows["tools_strict"].supported is True
    assert rows["tools_stream_named"].result == "yes, id/name once"
    assert rows["error_unknown_model"].supported is True
    assert rows["error_malformed_json"].result == "400"


def test_gateway_with_key_estimated_usage_and_no_leak() -> None:
    sim = replace(LITELLM, requests=[], echo_auth=True)
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["probe", "--base-url", URL, "--model", "smollm2", "--api-key-env", "GW_KEY", "--json"],
        stdout=out,
        stderr=err,
        environ={"GW_KEY": SECRET},
        transport=httpx.MockTransport(sim),
    )
    assert code == EXIT_OK
    assert SECRET not in out.getvalue() + err.getvalue()
    data = json.loads(out.getvalue())
    assert data["best_profile"] == "litellm"
    assert data["facts"]["usage_estimated"] is True
    assert data["facts"]["image_inputs"] is True
    assert data["facts"]["wrong_key_status"] == 400
    assert data["facts"]["no_key_status"] == 500
    assert data["server_hint"] == "litellm"
    assert 'api_key=os.environ["GW_KEY"]' in data["recommendation"]
    wrong = next(r for r in data["rows"] if r["key"] == "error_wrong_key")
    assert wrong["result"] == "400"
    assert "Bearer customllm-probe-wrong-key" in wrong["evidence"]
    unknown = next(r for r in data["rows"] if r["key"] == "error_unknown_model")
    assert "request auth: Bearer **********" in unknown["evidence"]  # echoed, then scrubbed
    # The key went out as a Bearer token on the normal requests, a wrong one on the probe.
    assert sim.requests  # sanity
    stream_usage = next(r for r in data["rows"] if r["key"] == "stream_usage")
    assert stream_usage["result"] == "yes, but estimated"


def test_model_taken_from_models_listing() -> None:
    sim = replace(LLAMACPP_PLAIN, requests=[])
    report = run_probe(URL, None, transport=httpx.MockTransport(sim))
    assert report.model == "smollm2"
    assert all(
        r.get("model") in ("smollm2", probe.UNKNOWN_MODEL)
        for r in sim.requests[1:]
        if r and not r.get("malformed")
    )


def test_requests_are_small_and_seeded() -> None:
    sim = replace(LLAMACPP_FC, requests=[])
    run_probe(URL, "smollm2", transport=httpx.MockTransport(sim))
    chats = [r for r in sim.requests if r.get("messages")]
    assert 20 <= len(sim.requests) <= 30
    # Tool answers get room for vLLM's hermes wrapper around the call (TOOL_MAX_TOKENS).
    assert all(r["max_tokens"] <= (64 if r.get("tools") else 24) for r in chats)
    assert all(r.get("temperature") in (0, 1.0) for r in chats)
    assert all("seed" in r for r in chats if r.get("temperature") == 1.0)


def test_server_that_dies_midway_gives_unknowns_not_failures() -> None:
    report = probe_sim(replace(LLAMACPP_PLAIN, dead_after=5))
    rows = rows_by_key(report)
    assert rows["chat"].supported is True
    assert rows["logprobs"].result == "no answer"
    assert rows["logprobs"].supported is None
    assert report.facts["logprobs"] is None
    assert report.facts["tool_calling"] is None
    assert any("skipped" in note for note in report.notes)


def test_probe_text_never_contains_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    sim = replace(LLAMACPP_PLAIN, api_key=SECRET, echo_auth=True)
    code, out, err = run_main(
        sim,
        "probe",
        "--base-url",
        URL,
        "--model",
        "smollm2",
        "--api-key-env",
        "K",
        env={"K": SECRET},
    )
    assert code == EXIT_OK
    assert SECRET not in out + err
    assert "Invalid API key: Bearer customllm-probe-wrong-key" in " ".join(out.split())


def test_sends_bearer_key_and_fresh_connections() -> None:
    seen: list[httpx.Headers] = []
    sim = replace(LLAMACPP_PLAIN, requests=[])

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return sim(request)

    run_probe(URL, "smollm2", api_key=SECRET, transport=httpx.MockTransport(handler))
    assert seen[0]["authorization"] == f"Bearer {SECRET}"
    assert all(h["connection"] == "close" for h in seen)
    assert any(h.get("authorization") == f"Bearer {probe.WRONG_KEY}" for h in seen)
    assert any("authorization" not in h for h in seen)


def test_progress_callback_sees_each_step() -> None:
    steps: list[str] = []
    run_probe(
        URL,
        "smollm2",
        transport=httpx.MockTransport(replace(LLAMACPP_PLAIN, requests=[])),
        progress=steps.append,
    )
    assert steps[:3] == ["models", "chat", "streaming"]
    assert steps[-2:] == ["errors", "embeddings"]


@pytest.mark.parametrize("sim", [LLAMACPP_PLAIN, VLLM], ids=["llama-cpp-python", "vllm-overrides"])
def test_recommended_line_builds_a_model(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_KEY", SECRET)
    report = probe_sim(sim, api_key=SECRET, api_key_env="GW_KEY")
    model = eval(report.recommendation(), {"ChatCustomLLM": ChatCustomLLM, "os": os})
    assert isinstance(model, ChatCustomLLM)
    assert model.base_url == URL
    assert model.api_key is not None
    assert model.api_key.get_secret_value() == SECRET
    best = report.best
    assert best is not None
    profile = get_profile(model.server_profile)
    for key, measured in report.overrides().items():
        assert getattr(profile, key) == measured
    assert profile.name.startswith(best.name)
