"""Shared by the `customllm probe` tests: simulated servers and ways to run the probe.

The servers here are simulations served through ``httpx.MockTransport`` (no sockets). Their
answers copy what the real servers sent (see ../shared/notes/*.md and docs/compatibility.md):
llama-cpp-python 0.3.36 plain and with ``chatml-function-calling``, llama.cpp's C++
``llama-server`` (0.5.0-dev, SmolLM2's own template, recorded 2026-12-02), vLLM 0.32 and the
LiteLLM proxy.
"""

from __future__ import annotations

import io
import json
import pathlib
import re
from dataclasses import dataclass, field, replace
from typing import Any

import httpx

from langchain_customllm import probe
from langchain_customllm.probe import (
    ProbeReport,
    Row,
    main,
    run_probe,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
URL = "http://llm.test/v1"
SECRET = "sk-probe-secret-123"  # a test key


# --------------------------------------------------------------------------- a simulated server


@dataclass
class Sim:
    """An OpenAI-compatible server whose quirks are switches (defaults: llama-cpp-python)."""

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
    # grammar (named only) | fc (auto picks) | parser (vLLM) | text (accepted, never called:
    # llama-server whose template has no tools) | none (400)
    tools: str = "grammar"
    required: str = "ignore"  # call | ignore | 500 | prefix (calls only when prefilled)
    tool_call_prefix: str | None = None  # declared by the chat template /props shows
    named: bool = True  # a named tool_choice forces that call (llama-server reads it as auto)
    stream_auto_empty: bool = True
    repeat_id_name: bool = True
    string_args: bool = False  # vLLM without strict: arguments are a JSON string of JSON
    content_parts: str = "500"  # ok | 500 | repr
    image: str = "refuse"  # refuse | read | text | drop
    image_status: int = 400  # of a refused image
    model_meta: dict[str, Any] | None = None  # llama-server's `meta` in /models entries
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
        if not body.get("tools") or self.tools in ("none", "text"):
            return None
        choice = body.get("tool_choice", "auto")
        prefilled = body["messages"][-1] == {"role": "assistant", "content": self.tool_call_prefix}
        call = (isinstance(choice, dict) and self.named) or (
            choice == "required"
            and (self.required == "call" or (self.required == "prefix" and prefilled))
        )
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
        if path == "/props":  # llama-server's, beside /v1
            if self.owned_by != "llamacpp":
                return self._json(404, {"detail": "Not Found"})
            mark = f"customllm-tool-call-prefix: {json.dumps(self.tool_call_prefix)}"
            return self._json(200, {"chat_template": mark if self.tool_call_prefix else "{{x}}"})
        if path.endswith("/models"):
            entry: dict[str, Any] = {"id": "smollm2", "object": "model", "owned_by": self.owned_by}
            if self.model_meta is not None:
                entry["meta"] = self.model_meta
            return self._json(200, {"object": "list", "data": [entry]})
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
                message = {"error": {"message": "image input is not supported"}}
                return self._json(self.image_status, message)
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
# llama.cpp's C++ llama-server with SmolLM2's own template (no tools in it): measured on
# 2026-12-02 (../shared/notes/llama-server-cpp.md, docs/compatibility.md).
LLAMA_SERVER = Sim(
    owned_by="llamacpp",
    model_meta={"vocab_type": 2, "n_vocab": 49152, "n_ctx": 1024, "n_ctx_train": 8192},
    stream_usage=True,
    n=True,
    json_schema="native",
    tools="text",
    required="ignore",
    named=False,
    stream_auto_empty=False,
    repeat_id_name=False,
    content_parts="ok",
    image="refuse",
    image_status=500,
    headers={"server": "llama.cpp"},
)
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


def run_main(
    sim: Sim | None, *argv: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    transport = httpx.MockTransport(replace(sim, requests=[])) if sim is not None else None
    code = main(list(argv), stdout=out, stderr=err, environ=env or {}, transport=transport)
    return code, out.getvalue(), err.getvalue()
