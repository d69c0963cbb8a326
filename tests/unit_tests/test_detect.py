"""Server detection: the pure decision on recorded answers, then through the model's own pools.

A model without ``server_profile`` sends one ``GET /v1/models`` at its first call (never
when it is built), picks the profile of the family the answer names, keeps the server's
context size, and shares the answer process-wide per base_url. Failures stay generic and
never fail the call.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import pathlib
import pickle
import threading
import time
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from langchain_customllm import ChatCustomLLM, CustomLLM
from langchain_customllm._detect import (
    _MAX_CACHED,
    TIMEOUT_S,
    Detection,
    _keep,
    cached,
    declared_prefix,
    family_of,
    read_answer,
)
from langchain_customllm._exceptions import ContextLengthExceededError
from langchain_customllm.profiles import PROFILES
from tests.unit_tests._detect_helpers import (
    LLAMA_CPP_PYTHON,
    LLAMA_SERVER,
    LLAMA_SERVER_HEADERS,
    RECORDED,
    VLLM,
    answering,
)
from tests.unit_tests.fakes import FakeServer, sse
from tests.unit_tests.wire import METHODS, Wire, call, tool_call_answer, wire

__all__ = ["wire"]  # the fixture, imported for pytest

URL = "https://llm.test/v1"
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
OTHER = {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}}
ROOT = pathlib.Path(__file__).resolve().parents[2]


class City(BaseModel):
    city: str


def _models(wire: Wire) -> list[str]:
    # Only the /models GETs: on llama.cpp a /props GET follows (see the prefix tests).
    return [sent.url for sent in wire.detections if sent.url.endswith("/models")]


def _calls(wire: Wire) -> list[Any]:
    # The model's requests, without the /tokenize ones that count a stream's usage.
    return [sent for sent in wire.sent if sent.url.endswith("completions")]


# --------------------------------------------------------------------------- the decision


@pytest.mark.parametrize("server", sorted(RECORDED))
def test_each_servers_answer_names_its_family(server: str) -> None:
    body, headers, family, window = RECORDED[server]
    detection = read_answer(200, headers, body)
    assert detection is not None
    assert detection.family == family
    assert detection.context_window("smollm2") == window
    profile = detection.profile("smollm2")
    assert profile.name == (family or "generic")
    assert profile.context_window == window
    assert profile.tokenizer == PROFILES[family or "generic"].tokenizer


@pytest.mark.parametrize("status", [400, 401, 403, 408, 429, 500, 503])
def test_refusals_and_failures_settle_nothing(status: int) -> None:
    # 401/403 (and a gateway's 400 for a wrong key): the real call reports it; 5xx: a
    # server still loading (llama-server answers 503 "Loading model" with its header).
    assert read_answer(status, LLAMA_SERVER_HEADERS, {"error": {"message": "no"}}) is None


def test_no_models_endpoint_is_an_unknown_server() -> None:
    detection = read_answer(404, {}, None)
    assert detection == Detection(None, "HTTP 404 to GET /models")
    assert detection.profile("m") is PROFILES["generic"]


@pytest.mark.parametrize(
    ("body", "headers", "family"),
    [
        (None, {"X-LiteLLM-Call-Id": "1"}, "litellm"),
        (None, {"Server": "llama.cpp"}, "llamacpp"),
        ({"data": "nonsense"}, {}, None),
        ([1, 2], {}, None),
        ({"data": [{"owned_by": 3}, "x"]}, {}, None),
    ],
)
def test_family_from_headers_and_odd_bodies(
    body: Any, headers: dict[str, str], family: Any
) -> None:
    assert family_of(body, headers)[0] == family


def test_context_window_per_model() -> None:
    two = {
        "data": [
            {"id": "a", "owned_by": "vllm", "max_model_len": 100},
            {"id": "b", "owned_by": "vllm", "max_model_len": 200},
            {"id": "c", "owned_by": "vllm", "max_model_len": True},  # not a number
        ]
    }
    detection = read_answer(200, {}, two)
    assert detection is not None
    assert (detection.context_window("b"), detection.context_window("zzz")) == (200, None)
    # llama.cpp serves its one model under any name: its context applies to any.
    one = read_answer(200, LLAMA_SERVER_HEADERS, LLAMA_SERVER)
    assert one is not None
    assert one.context_window("anything") == 1024


def test_the_cache_is_bounded() -> None:
    for i in range(_MAX_CACHED + 10):
        _keep(f"http://h{i}.test/v1", Detection(None, "x"))
    assert cached("http://h0.test/v1") is None  # the oldest went first
    assert cached(f"http://h{_MAX_CACHED + 9}.test/v1") is not None


# --------------------------------------------------------------------------- on every path


def _model(kind: str, **kwargs: Any) -> Any:
    cls = ChatCustomLLM if kind == "chat" else CustomLLM
    settings = {"model": "smollm2", "base_url": URL, "api_key": "sk-detect-1", **kwargs}
    return cls(**settings)


@pytest.mark.parametrize("kind", ["chat", "text"])
@pytest.mark.parametrize("method", METHODS)
def test_detected_at_the_first_call_on_every_path(wire: Wire, kind: str, method: str) -> None:
    wire.models = answering(LLAMA_SERVER, LLAMA_SERVER_HEADERS)
    model = _model(kind)
    assert wire.detections == []  # building a model does no I/O
    assert model._runtime().profile.name == "generic"
    call(model, method)
    call(model, method)
    assert _models(wire) == [f"{URL}/models"]  # once, before the first request
    sent = wire.detections[0]
    assert sent.headers["authorization"] == "Bearer sk-detect-1"  # the model's own headers
    assert sent.timeout["read"] == TIMEOUT_S  # short, whatever the model's timeout
    assert len(_calls(wire)) == 2
    profile = model._runtime().profile
    assert (profile.name, profile.context_window) == ("llamacpp", 1024)
    assert ("profile" in model.__dict__) is (kind == "chat")  # no stray field on CustomLLM


@pytest.mark.parametrize("method", METHODS)
def test_tools_bound_before_the_first_call_are_spelled_for_the_detected_server(
    wire: Wire, method: str
) -> None:

    wire.answer = tool_call_answer
    wire.models = answering(LLAMA_CPP_PYTHON)
    llm = _model("chat")
    bound = llm.bind_tools([TOOL], tool_choice="any")  # before the server is known
    call(bound, method)
    # llama-cpp-python cannot take "required": with one tool, it is named.
    assert _calls(wire)[-1].body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert "strict" not in _calls(wire)[-1].body["tools"][0]["function"]


@pytest.mark.parametrize("method", METHODS)
def test_structured_output_bound_before_the_first_call_follows_the_server(
    wire: Wire, method: str
) -> None:
    wire.answer = lambda request: _city_answer(request)
    wire.models = answering(LLAMA_CPP_PYTHON)
    structured = _model("chat").with_structured_output(City)
    result = call(structured, method)
    assert result == City(city="Paris") or result[-1] == City(city="Paris")
    sent = _calls(wire)[-1].body["response_format"]
    assert sent["type"] == "json_object"  # llama-cpp-python's spelling of json_schema
    assert sent["schema"]["properties"]["city"]["type"] == "string"


def _city_answer(request: httpx.Request) -> httpx.Response:
    import json

    from tests.unit_tests.fakes import chat_body, chat_chunks

    if json.loads(request.content).get("stream"):
        events = chat_chunks(['{"city": ', '"Paris"}'])
        return httpx.Response(
            200, content=sse(*events), headers={"content-type": "text/event-stream"}
        )
    return httpx.Response(200, json=chat_body('{"city": "Paris"}'))


def test_vllm_detected_gets_strict_tools(wire: Wire) -> None:

    wire.answer = tool_call_answer
    wire.models = answering(VLLM)
    call(_model("chat").bind_tools([TOOL], tool_choice="f"), "invoke")
    assert _calls(wire)[-1].body["tools"][0]["function"]["strict"] is True


@pytest.mark.parametrize("profile", ["generic", "vllm", {"base": "generic", "n": False}])
def test_an_explicit_profile_is_never_second_guessed(wire: Wire, profile: Any) -> None:
    wire.models = answering(LLAMA_SERVER, LLAMA_SERVER_HEADERS)
    model = _model("chat", server_profile=profile)
    call(model, "invoke")
    assert wire.detections == []
    assert model._runtime().profile.name != "llamacpp"


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "answer",
    [  # made afresh for each request: a response is read once
        lambda: httpx.Response(401, json={"detail": "Invalid API key"}),
        lambda: httpx.Response(500, text="Internal Server Error"),
        lambda: httpx.Response(200, text="<html>not json</html>"),
        lambda: httpx.ConnectError("refused"),
        lambda: httpx.ReadTimeout("slow"),
    ],
    ids=["401", "500", "not-json", "connect-error", "timeout"],
)
def test_a_failed_detection_stays_generic_and_never_fails_the_call(
    wire: Wire, method: str, answer: Any
) -> None:
    def models(request: httpx.Request) -> httpx.Response:
        made = answer()
        if isinstance(made, Exception):
            raise made
        return made  # type: ignore[no-any-return]

    wire.models = models
    model = _model("chat")
    assert call(model, method)  # the call itself succeeds
    call(model, method)
    assert model._runtime().profile.name == "generic"
    # Not asked again on every call: a refusal not with this runtime, no answer not soon.
    assert len(_models(wire)) == 1


def test_a_refused_detection_is_not_cached_and_a_new_key_asks_again(wire: Wire) -> None:
    keys: list[str | None] = []

    def models(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/props":  # asked after /models names llama.cpp
            return httpx.Response(404)
        keys.append(request.headers.get("authorization"))
        if request.headers.get("authorization") != "Bearer good":
            return httpx.Response(401, json={"detail": "Invalid API key"})
        return httpx.Response(200, json=LLAMA_SERVER)

    wire.models = models
    model = _model("chat", api_key="bad")
    call(model, "invoke")
    assert model._runtime().profile.name == "generic"
    model.api_key = "good"  # a new runtime: it asks again
    call(model, "invoke")
    assert model._runtime().profile.name == "llamacpp"
    assert keys == ["Bearer bad", "Bearer good"]


def test_no_answer_is_asked_again_later(wire: Wire, monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[Any] = [httpx.ConnectError("refused"), httpx.Response(200, json=VLLM)]

    def models(request: httpx.Request) -> httpx.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    wire.models = models
    model = _model("chat")
    call(model, "invoke")
    now = time.monotonic() + 31  # past RETRY_AFTER_S
    monkeypatch.setattr("langchain_customllm._detect.time.monotonic", lambda: now)
    call(model, "invoke")
    assert model._runtime().profile.name == "vllm"


# --------------------------------------------------------------------------- runtime state


def test_copies_and_unpickled_models_reuse_the_answer(wire: Wire) -> None:
    wire.models = answering(LLAMA_SERVER, LLAMA_SERVER_HEADERS)
    model = _model("chat")
    call(model, "invoke")
    clones = [
        copy.copy(model),
        copy.deepcopy(model),
        model.model_copy(),
        model.model_copy(update={"temperature": 0.5}),
        pickle.loads(pickle.dumps(model)),
    ]
    for clone in clones:
        call(clone, "invoke")
        assert clone._runtime().profile.context_window == 1024
        assert clone._runtime() is not model._runtime()
    assert len(_models(wire)) == 1
    # Another server: asked anew.
    model.base_url = "https://other.test/v1"
    call(model, "invoke")
    assert _models(wire)[-1] == "https://other.test/v1/models"


def test_a_model_built_after_detection_knows_without_asking(wire: Wire) -> None:
    wire.models = answering(VLLM)
    call(_model("chat"), "invoke")
    later = _model("chat")
    assert later.profile is not None
    assert later.profile["max_input_tokens"] == 2048
    assert later._runtime().profile.name == "vllm"
    assert len(_models(wire)) == 1


def test_concurrent_first_calls_send_one_get(wire: Wire) -> None:
    gate = threading.Event()

    def models(request: httpx.Request) -> httpx.Response:
        gate.wait(2)  # hold the first GET until every thread is waiting
        return httpx.Response(200, json=LLAMA_SERVER)

    wire.models = models
    model = _model("chat")
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(model.invoke("q"))) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in threads:
        thread.join()
    assert len(results) == 6
    assert len(_models(wire)) == 1


def test_concurrent_async_first_calls_send_one_get(wire: Wire) -> None:
    wire.models = answering(LLAMA_SERVER, LLAMA_SERVER_HEADERS)
    model = _model("text")

    async def main() -> list[str]:
        try:
            return list(await asyncio.gather(*(model.ainvoke("q") for _ in range(5))))
        finally:
            await model.aclose()

    assert len(asyncio.run(main())) == 5
    assert len(_models(wire)) == 1
    assert model._runtime().profile.name == "llamacpp"


def test_logged_once_at_debug(wire: Wire, caplog: pytest.LogCaptureFixture) -> None:
    wire.models = answering(LLAMA_SERVER, LLAMA_SERVER_HEADERS)
    caplog.set_level(logging.DEBUG, logger="langchain_customllm")
    model = _model("chat")
    for _ in range(3):
        call(model, "invoke")
    call(_model("text"), "invoke")
    lines = [r for r in caplog.records if "detected as" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.DEBUG
    assert "'llamacpp'" in lines[0].getMessage()
    assert "1024" in lines[0].getMessage()
    assert "sk-detect-1" not in caplog.text


# --------------------------------------------------------------------------- context size


def test_the_model_profile_gets_max_input_tokens_once_known(wire: Wire) -> None:
    wire.models = answering(LLAMA_SERVER, LLAMA_SERVER_HEADERS)
    model = _model("chat")
    assert model.profile is not None
    assert "max_input_tokens" not in model.profile
    call(model, "invoke")
    assert model.profile["max_input_tokens"] == 1024
    assert model.profile["image_inputs"] is False  # the llamacpp profile's
    # A profile the user set is theirs.
    own = _model("chat", profile={"max_input_tokens": 7})
    call(own, "invoke")
    assert own.profile == {"max_input_tokens": 7}


@pytest.mark.parametrize("method", ["stream", "astream"])
def test_an_empty_stream_is_explained_with_the_detected_context(
    server: FakeServer, method: str
) -> None:
    small = {"data": [{"id": "smollm2", "owned_by": "llamacpp", "meta": {"n_ctx": 50}}]}
    server.models = httpx.Response(200, json=small)
    server.stream(b"")
    with pytest.raises(ContextLengthExceededError, match="context of 50"):
        call(server.chat(), method, "word " * 200)
    assert len([r for r in server.detections if r.url.path.endswith("/models")]) == 1


# --------------------------------------------------------------- a template's tool-call prefix

TEMPLATE = (ROOT / "scripts" / "templates" / "smollm2-tools.jinja").read_text()


def test_our_template_declares_its_tool_call_prefix() -> None:
    assert declared_prefix({"chat_template": TEMPLATE}) == "<tool_call>\n"


@pytest.mark.parametrize(
    "props",
    [
        None,
        [],
        {"chat_template": 3},
        {"chat_template": "{{ messages }}"},  # a template that declares nothing
        {"chat_template": 'customllm-tool-call-prefix: "unterminated'},
        {"chat_template": 'customllm-tool-call-prefix: ""'},
    ],
)
def test_no_prefix_unless_a_template_declares_a_usable_one(props: Any) -> None:
    assert declared_prefix(props) is None


def _props(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/props":  # beside /v1, not under it
        return httpx.Response(200, json={"chat_template": TEMPLATE})
    return httpx.Response(200, json=LLAMA_SERVER, headers=LLAMA_SERVER_HEADERS)


@pytest.mark.parametrize("method", METHODS)
def test_a_forced_tool_on_llama_server_continues_the_templates_call_marker(
    wire: Wire, method: str
) -> None:
    wire.models = _props
    wire.answer = tool_call_answer
    model = _model("chat").bind_tools([TOOL, OTHER], tool_choice="f")
    call(model, method)
    assert [sent.url for sent in wire.detections] == [f"{URL}/models", "https://llm.test/props"]
    body = _calls(wire)[-1].body
    # A named choice is read as "auto" by llama-server: that tool alone, with "required".
    assert [t["function"]["name"] for t in body["tools"]] == ["f"]
    assert body["tool_choice"] == "required"
    assert body["messages"][-1] == {"role": "assistant", "content": "<tool_call>\n"}
    assert body["parallel_tool_calls"] is False


def test_tool_choice_auto_is_never_prefilled(wire: Wire) -> None:
    # llama-server answers a prefilled "auto" with a 500 (the lazy grammar never starts).
    wire.models = _props
    model = _model("chat").bind_tools([TOOL, OTHER])
    call(model, "invoke")
    body = _calls(wire)[-1].body
    assert body["messages"][-1]["role"] == "user"
    assert "parallel_tool_calls" not in body
    assert len(body["tools"]) == 2
