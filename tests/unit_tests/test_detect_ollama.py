"""Ollama's native format learns its model's context: from num_ctx, else POST /api/show."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from langchain_customllm import ChatCustomLLM, CustomLLM
from langchain_customllm._detect import read_show
from langchain_customllm._exceptions import ContextLengthExceededError
from langchain_customllm.formats.ollama import (
    OLLAMA_DEFAULT_CONTEXT,
    configured_context,
    context_from_show,
)
from tests.unit_tests._ollama_helpers import ROOT, answer, chat_line, done_line, final, line, ndjson
from tests.unit_tests.fakes import FakeServer
from tests.unit_tests.wire import call

# Abridged from a real answer's shape (server/routes.go ShowHandler): Modelfile parameters
# as text lines, model_info keyed by architecture.
SHOW_WITH_NUM_CTX = {
    "parameters": 'num_ctx                        8192\nstop                    "<|im_end|>"',
    "model_info": {"general.architecture": "llama", "llama.context_length": 8192},
}
SHOW_TRAINED_ONLY = {
    "parameters": 'stop                           "<|im_end|>"',
    "model_info": {"general.architecture": "llama", "llama.context_length": 131072},
}


def test_num_ctx_in_the_parameters_is_the_context() -> None:
    assert context_from_show(SHOW_WITH_NUM_CTX) == (8192, "num_ctx in the model's parameters")


def test_without_num_ctx_ollamas_default_capped_by_training() -> None:
    window, why = context_from_show(SHOW_TRAINED_ONLY)
    assert window == OLLAMA_DEFAULT_CONTEXT
    assert "OLLAMA_CONTEXT_LENGTH" in why
    assert "131072" in why
    small = {"model_info": {"general.architecture": "qwen2", "qwen2.context_length": 2048}}
    assert context_from_show(small)[0] == 2048


@pytest.mark.parametrize(
    "body",
    [None, [], {}, {"parameters": "num_ctx 0"}, {"model_info": {"llama.context_length": True}}],
)
def test_answers_without_a_context_give_none(body: Any) -> None:
    assert context_from_show(body)[0] is None


def test_show_answers_settle_or_not() -> None:
    assert read_show(200, SHOW_WITH_NUM_CTX, "m").context_window("m") == 8192  # type: ignore[union-attr]
    missing = read_show(404, {"error": "model 'm' not found"}, "m")
    assert missing is not None
    assert missing.context_window("m") is None
    assert read_show(500, None, "m") is None  # failing: asked again later
    assert read_show(401, None, "m") is None


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (None, None),
        ({"num_ctx": 2048}, 2048),
        ({"options": {"num_ctx": 3000}}, 3000),
        ({"num_ctx": True}, None),
        ({"num_ctx": "2048"}, None),
    ],
)
def test_configured_num_ctx(extra: Any, expected: int | None) -> None:
    assert configured_context(extra) == expected


def _ollama(server: FakeServer, cls: type = ChatCustomLLM, **kwargs: Any) -> Any:
    maker = server.chat if cls is ChatCustomLLM else server.llm
    return maker(base_url=ROOT, wire_format="ollama", **kwargs)


def _answer(server: FakeServer, method: str = "invoke") -> None:
    if "stream" in method:
        ndjson(server, [chat_line("Paris."), done_line()])
    else:
        server.add(answer(line(final("Paris."))))


@pytest.mark.parametrize("method", ["invoke", "ainvoke", "stream", "astream"])
def test_the_first_call_asks_once_and_the_profile_knows(method: str) -> None:
    server = FakeServer(show=httpx.Response(200, json=SHOW_WITH_NUM_CTX))
    model = _ollama(server)
    assert "max_input_tokens" not in (model.profile or {})
    for _ in range(2):
        _answer(server, method)
        call(model, method)
    shows = [r for r in server.detections if r.url.path == "/api/show"]
    assert len(shows) == 1
    assert shows[0].read() == b'{"model":"smollm2"}'
    assert model.profile["max_input_tokens"] == 8192
    assert [r.url.path for r in server.requests] == ["/api/chat", "/api/chat"]


def test_num_ctx_in_the_settings_needs_no_request() -> None:
    server = FakeServer(show=httpx.Response(200, json=SHOW_WITH_NUM_CTX))
    model = _ollama(server, extra_body={"num_ctx": 2048})
    _answer(server)
    call(model, "invoke")
    assert server.detections == []
    assert model.profile["max_input_tokens"] == 2048
    assert server.bodies[0]["options"]["num_ctx"] == 2048


def test_each_model_of_one_server_is_asked_for_its_own() -> None:
    server = FakeServer(show=lambda r: httpx.Response(200, json=SHOW_WITH_NUM_CTX))
    for name in ("smollm2", "qwen", "smollm2"):
        _answer(server)
        call(_ollama(server, model=name), "invoke")
    asked = [r.read() for r in server.detections]
    assert asked == [b'{"model":"smollm2"}', b'{"model":"qwen"}']


@pytest.mark.parametrize("cls", [ChatCustomLLM, CustomLLM])
def test_an_over_long_prompt_is_refused_instead_of_cut_silently(cls: type) -> None:
    tiny = {"parameters": "num_ctx 16", "model_info": {}}
    server = FakeServer(show=httpx.Response(200, json=tiny))
    model = _ollama(server, cls, check_context_window=True, max_tokens=4)
    with pytest.raises(ContextLengthExceededError, match="context window of 16 tokens"):
        call(model, "invoke", "word " * 40)
    assert server.requests == []  # nothing sent


def test_an_unknown_model_leaves_the_context_unknown_and_the_call_goes_on() -> None:
    server = FakeServer(show=httpx.Response(404, json={"error": "model 'smollm2' not found"}))
    model = _ollama(server, check_context_window=True)
    _answer(server)
    call(model, "invoke", "word " * 40)
    assert "max_input_tokens" not in (model.profile or {})
    assert len(server.requests) == 1


def test_an_explicit_profile_asks_nothing() -> None:
    server = FakeServer(show=httpx.Response(200, json=SHOW_WITH_NUM_CTX))
    model = _ollama(server, server_profile={"base": "generic", "context_window": 512})
    _answer(server)
    call(model, "invoke")
    assert server.detections == []
    assert model.profile["max_input_tokens"] == 512
