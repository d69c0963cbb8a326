"""Issue 14: secrets in any header, serialization, bad input refused up front, silent failures.

Each case runs on both model classes (where it applies) and the four call paths.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.load import dumpd, dumps, loads
from pydantic import SecretStr

from langchain_customllm import (
    AuthenticationError,
    BadRequestError,
    ChatCustomLLM,
    ConfigurationError,
    ContextLengthExceededError,
    CustomLLM,
    InternalServerError,
    ResponseError,
    StreamError,
    load_models,
)
from tests.unit_tests.fakes import FakeServer, chat_body, chat_chunks, sse
from tests.unit_tests.wire import METHODS, Wire, call, tool_call_answer, wire

__all__ = ["wire"]  # the fixture, imported for pytest

CLASSES = [ChatCustomLLM, CustomLLM]
GATEWAY_KEY = "gw-key-0123456789abcdef"
COOKIE = "session=0123456789abcdef0123"
TENANT = "tenant-pass-9876543210"


def _echo_headers(request: httpx.Request) -> httpx.Response:
    # A careless gateway that puts the request, headers included, into its error body.
    echoed = {k: v for k, v in request.headers.items()}
    return httpx.Response(
        401, json={"error": {"message": f"bad credentials: {echoed}", "headers": echoed}}
    )


SECRET_HEADERS = {
    "x-api-key": GATEWAY_KEY,
    "Cookie": COOKIE,
    "x-tenant": TENANT,  # not credential-looking by name: named in secret_headers
    "x-team": "blue",
}


def _make(server: FakeServer, cls: type, **settings: Any) -> Any:
    """A model of ``cls`` on the fake server."""
    return (server.chat if cls is ChatCustomLLM else server.llm)(**settings)


def _model(server: FakeServer, cls: type, **settings: Any) -> Any:
    return _make(
        server,
        cls,
        api_key=None,
        default_headers=SECRET_HEADERS,
        secret_headers=["x-tenant"],
        **settings,
    )


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls", CLASSES)
def test_secrets_in_default_headers_never_reach_an_error(
    server: FakeServer, cls: type, method: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.add(_echo_headers)
    with pytest.raises(AuthenticationError) as info:
        call(_model(server, cls), method)
    err = info.value
    texts = (str(err), repr(err), err.message, json.dumps(err.body), repr(err.args), caplog.text)
    for secret in (GATEWAY_KEY, COOKIE, TENANT):
        for text in texts:
            assert secret not in text
    assert "blue" in json.dumps(err.body)  # only the secrets are masked
    assert server.requests[0].headers["x-api-key"] == GATEWAY_KEY  # and still sent


def _traced_params(model: Any) -> Any:
    # What langchain-core hands callbacks and LangSmith as the run's invocation params.
    if isinstance(model, ChatCustomLLM):
        return model._get_invocation_params()
    return model.asdict() if hasattr(model, "asdict") else model.dict()


@pytest.mark.parametrize("cls", CLASSES)
def test_secret_headers_are_masked_in_repr_dumps_and_tracing(server: FakeServer, cls: type) -> None:
    model = _model(server, cls)
    texts = [
        repr(model),
        str(model.model_dump()),
        json.dumps(dumpd(model)),
        str(_traced_params(model)),
        str(model._get_ls_params()),
        str(model._identifying_params),
    ]
    for secret in (GATEWAY_KEY, COOKIE, TENANT):
        for text in texts:
            assert secret not in text
    assert model.model_dump()["default_headers"]["x-team"] == "blue"
    assert model.model_dump()["default_headers"]["x-tenant"] == "**********"


EVERY_FIELD: dict[str, Any] = {
    "model": "smollm2",
    "base_url": "https://llm.test/v1",
    "api_key": SecretStr("sk-serde-0123456789"),
    "api_key_header": "x-api-key",
    "api_key_scheme": None,
    "provider": "vllm",
    "wire_format": "openai",
    "temperature": 0.3,
    "max_tokens": 64,
    "top_p": 0.9,
    "seed": 7,
    "stop": ["\n\n"],
    "include_stop_sequence": True,
    "timeout": 12.5,
    "max_retries": 5,
    "default_headers": {"Authorization": "Basic dXNlcjpwYXNzd29yZA==", "x-team": "blue"},
    "secret_headers": ["x-other"],
    "extra_body": {"repetition_penalty": 1.1},
    "stream_usage": False,
    "pricing": {"input": 1.0, "output": 2.0},
    "streaming": True,
    "logprobs": True,
    "top_logprobs": 2,
    "server_profile": "vllm",
    "stream_chunk_timeout": 3.0,
    "verify": True,
}
SECRETS = {
    "CUSTOMLLM_API_KEY": "sk-serde-0123456789",
    "CUSTOMLLM_HEADER_AUTHORIZATION": "Basic dXNlcjpwYXNzd29yZA==",
}


@pytest.mark.parametrize("cls", CLASSES)
def test_every_field_survives_dumps_and_loads(cls: type) -> None:
    model = cls(**EVERY_FIELD)
    text = dumps(model)
    for secret in SECRETS.values():
        assert secret not in text
    back = loads(
        text, secrets_map=SECRETS, valid_namespaces=["langchain_customllm"], allowed_objects=[cls]
    )
    assert type(back) is cls
    for name, value in EVERY_FIELD.items():
        got = getattr(back, name)
        if isinstance(value, SecretStr):
            assert got.get_secret_value() == value.get_secret_value()
        elif name == "pricing":
            assert back._runtime().pricing == model._runtime().pricing
        else:
            assert got == value, name


@pytest.mark.parametrize("cls", CLASSES)
def test_loads_without_a_header_secret_says_which(cls: type) -> None:
    text = dumps(cls(model="m", default_headers={"x-api-key": GATEWAY_KEY}))
    with pytest.raises(
        ConfigurationError, match=r"secrets_map=\{.CUSTOMLLM_HEADER_X_API_KEY.: ...\}"
    ):
        loads(text, valid_namespaces=["langchain_customllm"], allowed_objects=[cls])


# ------------------------------------------------------------------ bad settings, up front

BAD_SETTINGS = [
    ({"timeout": -1}, r"timeout: Input should be greater than 0 \(got -1\)"),
    ({"timeout": 0}, r"timeout: Input should be greater than 0"),
    ({"base_url": "http://"}, r"base_url: base_url must be an http:// or https:// URL with a host"),
    ({"base_url": "localhost:8000"}, r"base_url must be an http"),
    ({"max_tokens": 0}, r"max_tokens: Input should be greater than or equal to 1 \(got 0\)"),
    ({"max_tokens": -1}, r"max_tokens: Input should be greater than or equal to 1"),
    ({"temperature": "hot"}, r"temperature: Input should be a valid number.*\(got 'hot'\)"),
    ({"top_p": 1.5}, r"top_p: Input should be less than or equal to 1"),
    ({"max_retries": -1}, r"max_retries: Input should be greater than or equal to 0"),
    ({"server_profile": {"base": 123}}, r"server_profile base must be a profile name"),
    (
        {"server_profile": {"context_window": "abc"}},
        r"server_profile: context_window: Input should be a valid integer",
    ),
    ({"temprature": 1}, r"temprature: unknown setting \(did you mean 'temperature'\?\)"),
]


@pytest.mark.parametrize(("settings", "match"), BAD_SETTINGS)
@pytest.mark.parametrize("cls", CLASSES)
def test_bad_settings_fail_at_construction(cls: type, settings: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        cls(model="m", **settings)


@pytest.mark.parametrize(("settings", "match"), BAD_SETTINGS[:-1])
def test_the_same_error_from_a_config_file(
    tmp_path: Path, settings: dict[str, Any], match: str
) -> None:
    path = tmp_path / "models.yaml"
    entry = "\n".join(f"    {k}: {json.dumps(v)}" for k, v in settings.items())
    path.write_text(f"models:\n  local:\n    model: m\n{entry}\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=match) as info:
        load_models(path)
    assert str(info.value).startswith(f"{path}:4: model 'local': ")  # the line of the setting


UNSENDABLE = [
    ({"default_headers": {"x-team": "café"}}, r"default_headers 'x-team' has a value HTTP"),
    ({"default_headers": {"x-api-key": f"{GATEWAY_KEY}\n"}}, r"'x-api-key' has a value HTTP"),
    ({"default_headers": {"bad header": "v"}}, r"not a valid HTTP header name"),
    ({"api_key": f"{GATEWAY_KEY}\n"}, r"api_key has characters .* ends with a newline"),
    ({"api_key_scheme": "Bear er"}, r"api_key_scheme 'Bear er' is not a valid"),
    ({"base_url": f"https://user:{GATEWAY_KEY}@llm.test/v1"}, r"base_url holds credentials"),
    (
        {"wire_format": {"kind": "custom", "chat_path": "/x", "request": {"q": "{prompt}"},
                         "response": {"text": "out"}, "headers": {"x-api-key": GATEWAY_KEY}}},
        r"'x-api-key' looks like a credential: put it in the model's default_headers",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("settings", "match"), UNSENDABLE)
@pytest.mark.parametrize("cls", CLASSES)
def test_what_http_cannot_carry_is_refused_without_quoting_it(
    cls: type, settings: dict[str, Any], match: str
) -> None:
    # httpx/h11 would fail at call time with the header value, a secret, in the message.
    with pytest.raises(ConfigurationError, match=match) as info:
        cls(model="m", **settings)
    assert GATEWAY_KEY not in str(info.value)


def test_secret_inputs_are_never_quoted_in_errors() -> None:
    with pytest.raises(ConfigurationError) as info:
        ChatCustomLLM(model="m", default_headers={"x-api-key": 123456789012})
    assert "123456789012" not in str(info.value)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"temperature": "hot"}, r"temperature: Input should be a valid number"),
        ({"max_tokens": 0}, r"max_tokens: Input should be greater than or equal to 1"),
        ({"top_p": -0.1}, r"top_p: Input should be greater than or equal to 0"),
        ({"extra_body": "x"}, r"extra_body: Input should be a valid dictionary"),
    ],
)
def test_bad_per_call_values_are_refused_before_sending(
    server: FakeServer, cls: type, method: str, kwargs: dict[str, Any], match: str
) -> None:
    model = _make(server, cls)
    with pytest.raises(ConfigurationError, match=match):
        call(model, method, **kwargs)
    assert server.requests == []


@pytest.mark.parametrize("method", METHODS)
def test_the_text_endpoints_legacy_logprobs_count_is_validated(wire: Wire, method: str) -> None:
    model = CustomLLM(model="m", base_url="https://x.test/v1")
    call(model, method, logprobs=2)  # OpenAI's legacy count of alternatives per token
    assert wire.sent[-1].body["logprobs"] == 2
    with pytest.raises(ConfigurationError, match="logprobs"):
        call(model, method, logprobs=-1)
    assert len(wire.sent) == 1


@pytest.mark.parametrize("method", METHODS)
def test_an_empty_message_list_is_refused(server: FakeServer, method: str) -> None:
    with pytest.raises(ConfigurationError, match="No messages to send"):
        call(server.chat(), method, [])
    assert server.requests == []


LLAMA_CPP_PY_500 = {
    "error": {
        "message": "1 validation error for CreateChatCompletionRequest\ntemperature\n  Input "
        "should be a valid number [type=float_parsing]",
        "type": "internal_server_error",
    }
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls", CLASSES)
def test_a_500_that_is_a_validation_error_is_a_bad_request(
    server: FakeServer, cls: type, method: str
) -> None:
    server.json(LLAMA_CPP_PY_500, status=500)
    model = _make(server, cls)
    with pytest.raises(BadRequestError, match="refused the request as invalid") as info:
        call(model, method)
    assert not isinstance(info.value, InternalServerError)
    assert len(server.requests) == 1  # not retried


# ------------------------------------------------------------------ silent failures


@pytest.mark.parametrize(
    ("profile", "prompt", "error", "match"),
    [
        # The context is unknown: the error says what an empty stream usually means.
        (None, "q", StreamError, "prompt is too long for the model's context"),
        # The profile knows it, and the request is larger: the error is the context's.
        ({"context_window": 100}, "word " * 200, ContextLengthExceededError, "context of 100"),
    ],
)
@pytest.mark.parametrize("method", ["stream", "astream"])
@pytest.mark.parametrize("cls", CLASSES)
def test_an_empty_stream_is_explained(
    server: FakeServer,
    cls: type,
    method: str,
    profile: dict[str, Any] | None,
    prompt: str,
    error: type[Exception],
    match: str,
) -> None:
    server.stream(b"")
    with pytest.raises(error, match=match) as info:
        call(_make(server, cls, server_profile=profile), method, prompt)
    assert getattr(info.value, "partial_text", None) == ""


@pytest.mark.parametrize("method", METHODS)
def test_a_forced_tool_choice_answered_with_text_raises(server: FakeServer, method: str) -> None:
    if method.endswith("stream"):
        server.stream(sse(*chat_chunks(["I would call f."])))
    else:
        server.json(chat_body("I would call f."))
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    model = server.chat().bind_tools([tool], tool_choice="any")
    with pytest.raises(ResponseError, match=r"forced a tool call.*customllm probe"):
        call(model, method)


@pytest.mark.parametrize("method", METHODS)
def test_a_forced_tool_choice_with_a_call_is_fine(wire: Wire, method: str) -> None:
    wire.answer = tool_call_answer
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    model = ChatCustomLLM(model="m", base_url="https://x.test/v1").bind_tools(
        [tool], tool_choice="f"
    )
    result = call(model, method)
    chunks = result if isinstance(result, list) else [result]
    assert any(getattr(c, "tool_call_chunks", None) or c.tool_calls for c in chunks)


def test_the_model_profile_claims_only_what_the_format_carries() -> None:
    custom = {"kind": "custom", "chat_path": "/x", "request": {"q": "{prompt}"},
              "response": {"text": "out"}}  # fmt: skip
    model = ChatCustomLLM(model="m", wire_format=custom)
    assert model.profile is not None
    assert model.profile["tool_calling"] is False
    assert model.profile["image_inputs"] is False
    assert ChatCustomLLM(model="m").profile["tool_calling"] is True  # type: ignore[index]


def test_config_errors_name_file_line_and_near_misses(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n  a:\n    model: m\n  b:\n    model: n\n    type: chatt\n", encoding="utf-8"
    )
    with pytest.raises(ConfigurationError, match=r":6: model 'b': unknown type 'chatt' \(did you"):
        load_models(path)
    path.write_text("models:\n  a:\n    model: m\n    wire_format: custm\n", encoding="utf-8")
    with pytest.raises(
        ConfigurationError, match=r":4: model 'a': .*'custm'.*did you mean 'custom'"
    ):
        load_models(path)
    path.write_text(f"models:\n  a:\n    api_key: {GATEWAY_KEY}: x\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r":3: not valid YAML") as info:
        load_models(path)
    assert GATEWAY_KEY not in str(info.value)  # the parser's own text quotes the line
    path.write_text("models:\n  a:\n    model: m\n    type: llm\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r":4: model 'a' is of type 'llm', not a Chat"):
        ChatCustomLLM.from_config(path)
    assert CustomLLM.from_config(path).model == "m"
    with pytest.raises(ConfigurationError) as info:
        ChatCustomLLM.from_config(path, name="aa")
    assert "did you mean 'a'" in str(info.value)
    assert "Value error" not in str(info.value)
