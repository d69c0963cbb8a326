"""`customllm probe`: the judges, the profile scoring, the rendering and the command line.

The servers here are simulations served through ``httpx.MockTransport`` (no sockets). Their
answers copy what the real servers sent (see ../shared/notes/*.md and docs/compatibility.md):
llama.cpp 0.3.36 plain and with ``chatml-function-calling``, vLLM 0.32 and the LiteLLM proxy.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pathlib
import re
import runpy
import sys
import zlib
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest

from langchain_customllm import ChatCustomLLM, probe
from langchain_customllm.probe import (
    EXIT_CHAT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Exchange,
    ProbeReport,
    ProfileMatch,
    Row,
    image_data_url,
    judge_errors,
    judge_image,
    judge_json_schema,
    judge_max_tokens,
    judge_seed,
    judge_stop,
    judge_stream,
    judge_tools,
    main,
    parse_sse,
    pick_stop,
    recommend,
    render_json,
    render_profiles,
    render_text,
    run_probe,
    score_profiles,
    tiny_png,
)
from langchain_customllm.profiles import PROFILES, ServerProfile, get_profile

ROOT = pathlib.Path(__file__).resolve().parents[2]
URL = "http://llm.test/v1"
SECRET = "sk-probe-secret-123"  # a test key


# --------------------------------------------------------------------------- a simulated server


@dataclass
class Sim:
    """An OpenAI-compatible server whose quirks are switches (defaults: llama.cpp plain)."""

    answer: str = "The capital of France is Paris."
    owned_by: str = "me"
    stream_usage: bool = False
    usage_shift: int = 0  # streamed usage differs from the real count (a gateway's estimate)
    stop_included: bool = False
    honour_stop: bool = True
    honour_max_tokens: bool = True
    seed: bool = True
    n: bool = False
    logprobs: bool = True
    json_mode: bool = True
    json_schema: str = "json_object_schema"  # native | json_object_schema | none
    tools: str = "grammar"  # grammar (named only) | fc (auto picks) | parser (vLLM) | none
    required: str = "ignore"  # call | ignore | 500
    stream_auto_empty: bool = True
    repeat_id_name: bool = True
    string_args: bool = False  # vLLM without strict: arguments are a JSON string of JSON
    content_parts: str = "500"  # ok | 500 | repr
    image: str = "refuse"  # refuse | read | text | drop
    unknown_model_status: int = 200
    malformed_status: int = 500
    api_key: str | None = None
    wrong_key_status: int = 401
    no_key_status: int = 401
    echo_auth: bool = False  # error bodies repeat the Authorization header (a careless proxy)
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    dead_after: int | None = None  # connection refused after this many requests
    last_auth: str | None = None

    # -- helpers

    def _json(self, status: int, body: Any) -> httpx.Response:
        return httpx.Response(status, json=body, headers=self.headers)

    def _completion(
        self, body: dict[str, Any], message: dict[str, Any], finish: str, prompt: int, used: int
    ) -> dict[str, Any]:
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": finish,
        }
        if body.get("logprobs") and self.logprobs:
            choice["logprobs"] = {
                "content": [
                    {
                        "token": "The",
                        "logprob": -0.6,
                        "bytes": None,
                        "top_logprobs": [
                            {"token": "The", "logprob": -0.6, "bytes": None},
                            {"token": "Paris", "logprob": -1.9, "bytes": None},
                        ],
                    }
                ]
            }
        choices = [choice]
        if self.n and int(body.get("n", 1)) > 1:
            choices = [{**choice, "index": i} for i in range(int(body["n"]))]
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": body.get("model"),
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": used,
                "total_tokens": prompt + used,
            },
        }

    def _prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        total = 10
        for message in messages:
            content = message.get("content")
            if isinstance(content, str):
                total += len(content.split())
            elif isinstance(content, list):
                text = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
                total += len(text.split())
                if self.content_parts == "repr":
                    total += 49
                for part in content:
                    if part.get("type") == "image_url":
                        url = part["image_url"]["url"]
                        total += {"text": len(url), "read": 600}.get(self.image, 0)
        return total

    def _text_for(self, body: dict[str, Any]) -> str:
        messages = body.get("messages") or []
        question = messages[-1].get("content") if messages else ""
        if body.get("temperature", 0) > 0:
            seed = body.get("seed") if self.seed else len(self.requests)
            return f"The sea, seed {seed}, is wide and deep."
        if isinstance(question, list):
            has_image = any(p.get("type") == "image_url" for p in question)
            if has_image and self.image == "read":
                return "Red."
            return "This is a list of tuples." if self.content_parts == "repr" else "Blue."
        if question == probe.IMAGE_PROMPT:
            return "Blue."
        rf = body.get("response_format") or {}
        if rf.get("type") == "json_schema" and self.json_schema == "native":
            return '{"city": "Paris"}'
        if rf.get("type") == "json_object":
            if "schema" in rf and self.json_schema == "json_object_schema":
                return '{ "city": "Paris" }'
            if self.json_mode:
                return '{"name": "Paris", "population": 1}'
        return self.answer

    def _tool_call(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The tool call this server makes for the request, if any."""
        if not body.get("tools") or self.tools == "none":
            return None
        choice = body.get("tool_choice", "auto")
        call = isinstance(choice, dict) or (choice == "required" and self.required == "call")
        call = call or (choice == "auto" and self.tools == "fc")
        if not call:
            return None
        strict = bool(body["tools"][0]["function"].get("strict"))
        args = json.dumps({"city": "Paris"})
        if self.string_args and not strict:
            args = json.dumps(args)
        return {
            "id": "call_0",
            "type": "function",
            "function": {"name": "get_weather", "arguments": args},
        }

    def _sse(self, events: list[dict[str, Any]]) -> httpx.Response:
        text = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        return httpx.Response(
            200,
            content=text.encode(),
            headers={**self.headers, "content-type": "text/event-stream; charset=utf-8"},
        )

    @staticmethod
    def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    # -- routing

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.dead_after is not None and len(self.requests) >= self.dead_after:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        raw = request.content
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            self.requests.append({"malformed": True})
            return httpx.Response(
                self.malformed_status,
                content=b"Internal Server Error",
                headers={"content-type": "text/plain; charset=utf-8"},
            )
        self.requests.append(body)
        auth = request.headers.get("authorization")
        self.last_auth = auth
        if self.api_key is not None and auth != f"Bearer {self.api_key}":
            status = self.no_key_status if auth is None else self.wrong_key_status
            message = f"Invalid API key: {auth}" if self.echo_auth else "Invalid API key"
            return self._json(status, {"detail": message})
        path = request.url.path
        if path.endswith("/models"):
            return self._json(
                200,
                {
                    "object": "list",
                    "data": [{"id": "smollm2", "object": "model", "owned_by": self.owned_by}],
                },
            )
        if path.endswith("/completions") and "chat" not in path:
            return self._json(
                200,
                {
                    "object": "text_completion",
                    "choices": [{"text": " Paris. -", "index": 0, "finish_reason": "length"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
                },
            )
        return self._chat(body)

    def _chat(self, body: dict[str, Any]) -> httpx.Response:
        if body.get("model") != "smollm2" and self.unknown_model_status != 200:
            return self._json(
                self.unknown_model_status,
                {
                    "error": {
                        "message": f"The model `{body.get('model')}` does not exist."
                        + (f" (request auth: {self.last_auth})" if self.echo_auth else "")
                    }
                },
            )
        rf = body.get("response_format") or {}
        if rf.get("type") == "json_schema" and self.json_schema != "native":
            return self._json(
                500,
                {
                    "error": {
                        "message": "1 validation error: Input should be 'text' or 'json_object'",
                        "type": "internal_server_error",
                    }
                },
            )
        messages = body.get("messages") or []
        if any(isinstance(m.get("content"), list) for m in messages):
            if self.content_parts == "500":
                return self._json(
                    500,
                    {"error": {"message": 'can only concatenate str (not "list") to str'}},
                )
            has_image = any(p.get("type") == "image_url" for m in messages for p in m["content"])
            if has_image and self.image == "refuse":
                return self._json(400, {"error": {"message": "image input is not supported"}})
        if body.get("tools"):
            if self.tools == "none":
                return self._json(400, {"error": {"message": "tools need --tool-call-parser"}})
            if body.get("tool_choice") == "required" and self.required == "500":
                return self._json(500, {"error": {"message": "", "type": "internal_server_error"}})
        prompt = self._prompt_tokens(messages)
        call = self._tool_call(body)
        if body.get("stream"):
            return self._stream(body, call, prompt)
        if call is not None:
            message = {"role": "assistant", "content": None, "tool_calls": [call]}
            return self._json(200, self._completion(body, message, "tool_calls", prompt, 9))
        text, finish = self._text_for(body), "stop"
        stop = (body.get("stop") or [None])[0]
        if stop and self.honour_stop and stop in text:
            cut = text.index(stop) + (len(stop) if self.stop_included else 0)
            text = text[:cut]
        words = text.split(" ")
        limit = body.get("max_tokens")
        if self.honour_max_tokens and limit is not None and len(words) > limit:
            text, finish = " ".join(words[:limit]), "length"
        used = len(text.split(" "))
        message = {"role": "assistant", "content": text}
        return self._json(200, self._completion(body, message, finish, prompt, used))

    def _stream(
        self, body: dict[str, Any], call: dict[str, Any] | None, prompt: int
    ) -> httpx.Response:
        if call is not None and body.get("tool_choice") == "auto" and self.stream_auto_empty:
            return httpx.Response(
                200, content=b"", headers={"content-type": "text/event-stream; charset=utf-8"}
            )
        events = [self._chunk({"role": "assistant"})]
        if call is not None:
            args = call["function"]["arguments"]
            pieces = [args[:1], args[1:8], args[8:]]
            for i, piece in enumerate(pieces):
                part: dict[str, Any] = {"index": 0, "function": {"arguments": piece}}
                if self.repeat_id_name or i == 0:
                    part.update(id="call_0", type="function")
                    part["function"]["name"] = "get_weather"
                events.append(self._chunk({"tool_calls": [part]}))
            events.append(self._chunk({}, "tool_calls"))
        else:
            text = self._text_for(body)
            for word in re.findall(r"\S+\s*", text):
                events.append(self._chunk({"content": word}))
            events.append(self._chunk({}, "stop"))
            include = (body.get("stream_options") or {}).get("include_usage")
            if include and self.stream_usage:
                used = len(text.split(" "))
                events.append(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion.chunk",
                        "choices": [],
                        "usage": {
                            "prompt_tokens": prompt - self.usage_shift,
                            "completion_tokens": used,
                            "total_tokens": prompt - self.usage_shift + used,
                        },
                    }
                )
        return self._sse(events)


LLAMACPP_PLAIN = Sim()
LLAMACPP_FC = Sim(tools="fc", required="500", content_parts="repr", image="text", seed=False)
VLLM = Sim(
    owned_by="vllm",
    stream_usage=True,
    n=True,
    json_schema="native",
    tools="parser",
    required="call",
    stream_auto_empty=False,
    repeat_id_name=False,
    string_args=True,
    content_parts="ok",
    image="refuse",
    unknown_model_status=404,
    malformed_status=400,
)
LITELLM = Sim(
    owned_by="openai",
    stream_usage=True,
    usage_shift=2,
    n=True,
    json_schema="native",
    tools="parser",
    required="call",
    stream_auto_empty=False,
    repeat_id_name=False,
    content_parts="ok",
    image="read",
    unknown_model_status=400,
    malformed_status=400,
    api_key=SECRET,
    wrong_key_status=400,
    no_key_status=500,
    headers={"x-litellm-call-id": "abc"},
)


def probe_sim(sim: Sim, **kwargs: Any) -> ProbeReport:
    server = replace(sim, requests=[])
    return run_probe(
        URL, kwargs.pop("model", "smollm2"), transport=httpx.MockTransport(server), **kwargs
    )


def rows_by_key(report: ProbeReport) -> dict[str, Row]:
    return {row.key: row for row in report.rows}


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
    assert report.best.name == "llamacpp"
    assert report.best.differences == {}
    assert report.server_hint == "llamacpp"
    assert report.recommendation() == (
        'ChatCustomLLM(base_url="http://llm.test/v1", model="smollm2", server_profile="llamacpp")'
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
    assert report.best.name == "llamacpp"
    assert report.best.differences == {}
    assert any("heuristic" in note or "weak vision" in note for note in report.notes)


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


# --------------------------------------------------------------------------- command line


def run_main(
    sim: Sim | None, *argv: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    transport = httpx.MockTransport(replace(sim, requests=[])) if sim is not None else None
    code = main(list(argv), stdout=out, stderr=err, environ=env or {}, transport=transport)
    return code, out.getvalue(), err.getvalue()


def test_text_output_has_table_profile_and_recommendation() -> None:
    code, out, _ = run_main(LLAMACPP_PLAIN, "probe", "--base-url", URL, "--model", "smollm2")
    assert code == EXIT_OK
    assert "capability" in out
    assert "+ chat completions" in out
    assert "- stream usage (include_usage)" in out
    assert "Best matching profile: llamacpp" in out
    assert 'server_profile="llamacpp"' in out


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
    assert data["project"]["scripts"]["customllm"] == "langchain_customllm.probe:main"


def test_docs_profiles_table_is_current() -> None:
    docs = (ROOT / "docs" / "compatibility.md").read_text()
    assert render_profiles(markdown=True) in docs, (
        "docs/compatibility.md is stale: paste `customllm profiles --markdown`"
    )


# --------------------------------------------------------------------------- pure parts


def ex(status: int | None = 200, body: Any = None, text: str | None = None, **kw: Any) -> Exchange:
    content = text if text is not None else json.dumps(body) if body is not None else ""
    return Exchange("POST", "/chat/completions", None, status=status, text=content, **kw)


def answer(
    content: str | None, finish: str = "stop", usage: tuple[int, int] | None = (10, 5)
) -> Exchange:
    body: dict[str, Any] = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ]
    }
    if usage:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1]}
    return ex(200, body)


def test_tiny_png_is_a_valid_png() -> None:
    data = tiny_png(4, (255, 0, 0))
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    idat_at = data.index(b"IDAT")
    length = int.from_bytes(data[idat_at - 4 : idat_at], "big")
    raw = zlib.decompress(data[idat_at + 4 : idat_at + 4 + length])
    assert raw == (b"\x00" + b"\xff\x00\x00" * 4) * 4
    assert image_data_url().startswith("data:image/png;base64,")
    assert base64.b64decode(image_data_url().split(",", 1)[1]) == tiny_png()


@pytest.mark.parametrize(
    ("text", "stop"),
    [
        ("The capital of France is Paris.", "France"),
        ("L'Étoile, la Cité, le Poulet (The", "Poulet"),
        ("Paris", None),
        ("", None),
        ("a b", None),
    ],
)
def test_pick_stop(text: str, stop: str | None) -> None:
    assert pick_stop(text) == stop


@pytest.mark.parametrize(
    ("got", "finish", "result", "included"),
    [
        ("The capital of ", "stop", "honoured, stop text excluded", False),
        ("The capital of", "stop", "honoured, stop text excluded", False),
        ("The capital of France", "stop", "honoured, stop text included", True),
        ("The capital of France is Paris.", "stop", "ignored", None),
        ("Something else", "stop", "honoured?, stop text excluded", False),
    ],
)
def test_judge_stop(got: str, finish: str, result: str, included: bool | None) -> None:
    rows, facts = judge_stop("The capital of France is Paris.", "France", answer(got, finish))
    assert rows[0].result == result
    assert facts["stop_included"] is included


def test_judge_max_tokens() -> None:
    assert judge_max_tokens(answer("a b c", "length", (9, 3)), 3)[1] == {
        "max_tokens_honoured": True
    }
    assert judge_max_tokens(answer("a b c d e", "stop", (9, 5)), 3)[1] == {
        "max_tokens_honoured": False
    }
    rows, facts = judge_max_tokens(ex(None, error="ReadTimeout: x", error_kind="timeout"), 3)
    assert facts == {"max_tokens_honoured": None}
    assert rows[0].supported is None


@pytest.mark.parametrize(
    ("texts", "verdict"),
    [(("a", "a", "b"), True), (("a", "b", "c"), False), (("a", "a", "a"), None)],
)
def test_judge_seed(texts: tuple[str, str, str], verdict: bool | None) -> None:
    _, facts = judge_seed(*(answer(t) for t in texts))
    assert facts["seed_deterministic"] is verdict


def test_parse_sse_and_stream_usage_comparison() -> None:
    body = (
        'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'
        ": keep-alive\n\n"
        'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
        "data: not json\n\n"
        'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
        'data: {"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":1}}\n\n'
        "data: [DONE]\n\n"
    )
    stream = parse_sse(body)
    assert (stream.text(), stream.done, stream.bad, stream.finish_reason()) == (
        "Hi",
        True,
        1,
        "stop",
    )
    streamed = ex(200, text=body, content_type="text/event-stream")
    rows, facts = judge_stream(streamed, answer("Hi", usage=(8, 1)))
    assert facts == {"streaming": True, "stream_usage": True, "usage_estimated": False}
    assert "choices []" in rows[1].evidence
    _, facts = judge_stream(streamed, answer("Hi", usage=(11, 1)))
    assert facts["usage_estimated"] is True


@pytest.mark.parametrize(
    ("content", "finish", "verdict", "result"),
    [
        ('{"city": "Paris"}', "stop", True, "yes"),
        ('{ "name": "Paris", "population": 1, "capital_', "length", True, "probably"),
        ("Paris is the capital.", "stop", False, "ignored"),
    ],
)
def test_judge_json_mode(content: str, finish: str, verdict: bool, result: str) -> None:
    rows, facts = probe.judge_json_mode(answer(content, finish))
    assert facts == {"json_mode": verdict}
    assert rows[0].result.startswith(result)


def test_judge_json_schema_unknown_when_no_answer() -> None:
    lost = ex(None, error="ConnectError", error_kind="connect")
    _, facts = judge_json_schema(lost, answer('{"city": "Paris"}'))
    assert facts["json_schema"] is None
    _, facts = judge_json_schema(ex(500, {"error": {"message": "no"}}), answer('{"city": "Paris"}'))
    assert facts["json_schema"] == "json_object_schema"
    _, facts = judge_json_schema(answer('{"city": "Paris"}'), answer("{}"))
    assert facts["json_schema"] == "native"
    _, facts = judge_json_schema(answer("Paris"), answer("Paris"))
    assert facts["json_schema"] == "none"


def tool_answer(arguments: str) -> Exchange:
    call = {
        "id": "c",
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }
    body = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ]
    }
    return ex(200, body)


def test_judge_tools_string_arguments_without_strict_probe() -> None:
    double = tool_answer(json.dumps(json.dumps({"city": "Paris"})))
    empty_stream = ex(200, text="", content_type="text/event-stream")
    rows, facts = judge_tools(answer("no"), double, ex(400, {"error": "x"}), empty_stream, None)
    assert facts["strict_tools"] is True
    assert facts["tool_choice_named"] is True
    assert facts["tool_choice_required"] is False
    assert "JSON string" in rows[1].evidence


def test_judge_tools_invalid_arguments_do_not_count() -> None:
    _, facts = judge_tools(answer("no"), tool_answer("{not json"), answer("no"), answer("no"), None)
    assert facts["tool_choice_named"] is False
    assert facts["tool_calling"] is False


@pytest.mark.parametrize(
    ("image", "verdict", "supported"),
    [
        (answer("Red.", usage=(40, 2)), "read", True),
        (answer("Blue.", usage=(140, 2)), "as_text", False),
        (answer("Blue.", usage=(21, 2)), "ignored", False),
        (answer("Blue.", usage=(900, 2)), "unclear", None),
        (ex(400, {"error": {"message": "no images"}}), "refused", False),
    ],
)
def test_judge_image(image: Exchange, verdict: str, supported: bool | None) -> None:
    rows, facts = judge_image(
        answer("Blue.", usage=(20, 2)), answer("Blue.", usage=(20, 2)), image, "x" * 150
    )
    assert facts["image_verdict"] == verdict
    assert rows[-1].supported is supported
    assert facts["content_parts"] is True


def test_judge_errors_rows() -> None:
    rows, facts = judge_errors(
        ex(404, {"error": {"message": "model not found"}}),
        ex(400, {"error": {"message": "bad json"}}),
        ex(401, {"detail": "Invalid API key"}),
        ex(401, {"detail": "Missing key"}),
    )
    assert [r.supported for r in rows] == [True, True, True]
    assert facts["wrong_key_status"] == 401
    assert "no key: 401" in rows[2].evidence


def test_score_profiles_ignores_unmeasured_and_breaks_ties() -> None:
    profiles = {
        "a": ServerProfile("a", n=False),
        "b": ServerProfile("b", n=False),
        "c": ServerProfile("c"),
    }
    matches = score_profiles({"n": False, "logprobs": None, "chat": True}, profiles)
    assert [m.name for m in matches] == ["a", "b", "c"]
    assert (matches[0].agree, matches[0].compared) == (1, 1)
    assert matches[2].differences == {"n": (True, False)}
    assert score_profiles({"n": False}, profiles, hint="b")[0].name == "b"


def test_recommend_spells_python() -> None:
    best = ProfileMatch("llamacpp", 9, 10, {"n": (False, True)})
    line = recommend("http://h/v1", "m", best, "MY_KEY")
    assert line == (
        'ChatCustomLLM(base_url="http://h/v1", model="m", '
        'server_profile={"base": "llamacpp", "n": True}, api_key=os.environ["MY_KEY"])'
    )
    assert recommend("http://h/v1", "m", ProfileMatch("generic", 3, 3, {})) == (
        'ChatCustomLLM(base_url="http://h/v1", model="m")'
    )
    # The default variable is read by ChatCustomLLM itself.
    assert "api_key" not in recommend("http://h/v1", "m", None, "CUSTOMLLM_API_KEY")


def test_render_json_round_trips() -> None:
    report = probe_sim(LLAMACPP_PLAIN)
    data = json.loads(render_json(report))
    assert data["best_profile"] == "llamacpp"
    assert data["overrides"] == {}
    assert [r["key"] for r in data["rows"]] == [r.key for r in report.rows]
    assert data["profiles"][0]["score"] == 1.0
    assert len(render_text(report).splitlines()) > len(report.rows)


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
    assert steps[-1] == "errors"


@pytest.mark.parametrize("sim", [LLAMACPP_PLAIN, VLLM], ids=["llamacpp", "vllm-overrides"])
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
