"""Usage counted with the server's tokenizer, exact token counts, prompts too long.

A fake server on ``httpx.MockTransport`` answers the chat and text endpoints (streams
without usage, whole answers with it) and the tokenizer endpoints of llama.cpp
(``/tokenize``, ``/apply-template``), vLLM (``/tokenize``) and llama-cpp-python
(``/extras/tokenize``), with a word tokenizer: a text is as many tokens as it has words.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, trim_messages

from langchain_customllm import ChatCustomLLM, ContextLengthExceededError, CustomLLM, track_usage
from langchain_customllm._tokens import clear_cache
from tests._calls import STREAM_PATHS, call, merge
from tests.unit_tests.fakes import KEY, chat_body, chat_chunks, completion_chunks, sse

LLAMACPP = {"base": "generic", "tokenizer": "llamacpp", "stream_usage": False}
VLLM = {"base": "generic", "tokenizer": "vllm", "stream_usage": False}
LCP = {"base": "generic", "tokenizer": "llama-cpp-python", "stream_usage": False}
PRICE = {"input": 1.0, "output": 2.0}  # USD per million tokens
SERVER_USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
ANSWER = ["The capital ", "is Paris."]  # 4 words
TOOL = {
    "type": "function",
    "function": {"name": "weather", "description": "Weather", "parameters": {"type": "object"}},
}


def words(text: str) -> int:
    return len(text.split())


def rendered(body: dict[str, Any]) -> str:
    """The fake chat template: each message as ``<role> content``, tools as ``TOOL name``."""
    parts = [f"TOOL {t['function']['name']}" for t in body.get("tools") or []]
    parts += [f"<{m['role']}> {m['content']}" for m in body["messages"]]
    return " ".join([*parts, "<assistant>"])


@dataclass
class Fake:
    """The server: what it was sent, and switches for what it answers."""

    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    stream_usage: bool = False
    finish: str = "stop"
    tokenizer: Callable[[str, dict[str, Any]], httpx.Response] | None = None

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else {}
        path = request.url.path
        self.requests.append((path, body))
        if path.endswith("/completions"):
            return self._answer(path, body)
        if self.tokenizer is not None:
            return self.tokenizer(path, body)
        if path == "/apply-template":
            return httpx.Response(200, json={"prompt": rendered(body)})
        if path == "/tokenize" and "messages" in body:  # vLLM's chat form
            return httpx.Response(200, json={"count": words(rendered(body)), "tokens": []})
        if path == "/tokenize" and "prompt" in body:  # vLLM's text form
            bos = 1 if body.get("add_special_tokens", True) else 0
            return httpx.Response(200, json={"count": words(body["prompt"]) + bos})
        if path == "/tokenize":  # llama.cpp
            bos = 1 if body.get("add_special") else 0
            return httpx.Response(200, json={"tokens": [0] * (words(body["content"]) + bos)})
        if path == "/extras/tokenize":  # llama-cpp-python: always a BOS
            return httpx.Response(200, json={"tokens": [0] * (words(body["input"]) + 1)})
        return httpx.Response(404, json={"error": "no such endpoint"})

    def _answer(self, path: str, body: dict[str, Any]) -> httpx.Response:
        chat = path.endswith("/chat/completions")
        usage = SERVER_USAGE if self.stream_usage else None
        if body.get("stream"):
            if chat:
                events = chat_chunks(ANSWER, finish=self.finish, usage=usage)
            else:
                events = completion_chunks(ANSWER, finish=self.finish)
                if usage:
                    events.append({"choices": [], "usage": usage})
            return httpx.Response(
                200, content=sse(*events), headers={"content-type": "text/event-stream"}
            )
        if chat:
            return httpx.Response(200, json=chat_body("".join(ANSWER), finish=self.finish))
        text = {"index": 0, "text": "".join(ANSWER), "finish_reason": self.finish}
        return httpx.Response(
            200, json={"model": "smollm2", "choices": [text], "usage": SERVER_USAGE}
        )

    def model(self, cls: type, **kwargs: Any) -> Any:
        transport = httpx.MockTransport(self.handle)
        settings: dict[str, Any] = {
            "model": "smollm2",
            "base_url": "http://fake.test/v1",
            "api_key": KEY,
            "http_client": httpx.Client(transport=transport),
            "http_async_client": httpx.AsyncClient(transport=transport),
            "pricing": PRICE,
            **kwargs,
        }
        return cls(**settings)


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    clear_cache()


@pytest.fixture
def fake() -> Fake:
    return Fake()


def final_meta(result: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(usage_metadata, response_metadata) of a chat answer or merged stream."""
    message = merge(result) if isinstance(result, list) else result
    return message.usage_metadata, message.response_metadata


def text_info(model: Any, path: str) -> dict[str, Any]:
    """generation_info of a text model's answer on one path (generate runs the stream)."""
    if path in STREAM_PATHS:
        model = model.model_copy(update={"streaming": True})
    if path.startswith("a"):
        result = asyncio.run(model.agenerate(["What is the capital of France?"]))
    else:
        result = model.generate(["What is the capital of France?"])
    return result.generations[0][0].generation_info or {}


# ------------------------------------------------------------------ usage_source


def test_chat_usage_is_the_servers_or_tokenized(fake: Fake, path: str) -> None:
    llm = fake.model(ChatCustomLLM, server_profile=LLAMACPP)
    usage, meta = final_meta(call(llm, path, "What is the capital of France?"))
    assert usage is not None
    if path in STREAM_PATHS:
        # "<user> What is the capital of France? <assistant>": 8 words and a BOS; the
        # answer's 4 words plus the end-of-generation token llama.cpp counts.
        assert meta["usage_source"] == "tokenized"
        assert (usage["input_tokens"], usage["output_tokens"]) == (9, 5)
        assert meta["cost"]["total_cost"] == pytest.approx((9 * 1.0 + 5 * 2.0) / 1e6)
        assert "usage_estimated" not in meta
        assert fake.paths()[1:] == ["/apply-template", "/tokenize", "/tokenize"]
    else:
        assert meta["usage_source"] == "server"
        assert usage["input_tokens"] == 11
        assert fake.paths() == ["/v1/chat/completions"]


def test_text_usage_is_the_servers_or_tokenized(fake: Fake, path: str) -> None:
    llm = fake.model(CustomLLM, server_profile=LLAMACPP)
    info = text_info(llm, path)
    if path in STREAM_PATHS:
        assert info["usage_source"] == "tokenized"
        # The prompt with its special tokens (a BOS here), as the server counts a prompt.
        assert info["token_usage"]["prompt_tokens"] == words("What is the capital of France?") + 1
        assert info["token_usage"]["completion_tokens"] == 5
        assert info["cost"]["total_cost"] > 0
        prompt_count = fake.requests[1][1]
        assert prompt_count == {"content": "What is the capital of France?", "add_special": True}
    else:
        assert info["usage_source"] == "server"


def test_server_stream_usage_is_the_servers(fake: Fake, path: str, kind: str) -> None:
    fake.stream_usage = True
    llm = fake.model(ChatCustomLLM if kind == "chat" else CustomLLM, server_profile=LLAMACPP)
    if kind == "chat":
        _, meta = final_meta(call(llm, path, "q"))
    else:
        meta = text_info(llm, path)
    assert meta["usage_source"] == "server"
    assert not [p for p in fake.paths() if "tokenize" in p or "template" in p]


def test_length_cut_counts_max_tokens(fake: Fake, mode: str) -> None:
    fake.finish = "length"
    llm = fake.model(ChatCustomLLM, server_profile=LLAMACPP, max_tokens=7)
    usage, meta = final_meta(call(llm, "stream" if mode == "sync" else "astream", "q"))
    assert usage is not None
    assert usage["output_tokens"] == 7  # what the server generated, not what re-tokenizes
    assert meta["usage_source"] == "tokenized"


def test_no_tokenizer_is_estimated(fake: Fake, path: str, kind: str) -> None:
    cls = ChatCustomLLM if kind == "chat" else CustomLLM
    llm = fake.model(cls, server_profile={"base": "generic", "stream_usage": False})
    if kind == "chat":
        usage, meta = final_meta(call(llm, path, "q"))
        assert usage is not None
    else:
        meta = text_info(llm, path)
    expected = "estimated" if path in STREAM_PATHS else "server"
    assert meta["usage_source"] == expected
    assert meta.get("usage_estimated", False) is (expected == "estimated")
    assert len(fake.requests) == 1  # nothing but the answer


@pytest.mark.parametrize("setting", ["estimate", "none"])
def test_the_setting_turns_the_request_off(fake: Fake, path: str, setting: str) -> None:
    llm = fake.model(ChatCustomLLM, server_profile=LLAMACPP, missing_usage=setting)
    usage, meta = final_meta(call(llm, path, "q"))
    assert fake.paths() == ["/v1/chat/completions"]
    if path in STREAM_PATHS and setting == "none":
        assert usage is None
        assert "usage_source" not in meta
    elif path in STREAM_PATHS:
        assert meta["usage_source"] == "estimated"
        assert meta["cost"]["total_cost"] > 0  # an estimate is priced too, and marked


def test_vllm_and_llama_cpp_python_stream_usage(fake: Fake, mode: str) -> None:
    stream = "stream" if mode == "sync" else "astream"
    usage, meta = final_meta(call(fake.model(ChatCustomLLM, server_profile=VLLM), stream, "q"))
    assert meta["usage_source"] == "tokenized"
    assert usage is not None
    assert usage["input_tokens"] == 3  # "<user> q <assistant>"
    sent = fake.requests[1][1]
    assert sent["messages"] == [{"role": "user", "content": "q"}]
    assert sent["add_generation_prompt"] is True
    assert "stream" not in sent
    # llama-cpp-python: no template endpoint, so the prompt is rendered as ChatML, then
    # counted by its tokenizer (/extras/tokenize).
    usage, meta = final_meta(call(fake.model(ChatCustomLLM, server_profile=LCP), stream, "q"))
    assert meta["usage_source"] == "tokenized"
    assert "usage_estimated" not in meta
    assert usage is not None
    assert usage["output_tokens"] == 4  # its own count has no end token; BOS taken away


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, json={"error": "boom"}),
        httpx.Response(404, text="not found"),
        httpx.Response(200, text="not json"),
        httpx.Response(200, json={"unexpected": True}),
        httpx.ConnectError("refused"),
    ],
    ids=["500", "404", "not-json", "no-tokens", "connect"],
)
def test_a_tokenize_failure_never_fails_the_answer(
    fake: Fake, path: str, failure: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(path: str, body: dict[str, Any]) -> httpx.Response:
        if isinstance(failure, Exception):
            raise failure
        return failure

    fake.tokenizer = fail
    llm = fake.model(ChatCustomLLM, server_profile=LLAMACPP)
    with caplog.at_level("DEBUG", logger="langchain_customllm"):
        usage, meta = final_meta(call(llm, path, "q"))
    assert usage is not None
    if path in STREAM_PATHS:
        assert meta["usage_source"] == "estimated"
        assert fake.paths().count("/apply-template") == 1  # no retries
        assert "Token counting failed" in caplog.text
        assert KEY not in caplog.text


def test_a_stale_pooled_connection_is_sent_once_more(fake: Fake, path: str) -> None:
    # llama-server closes idle keep-alive connections after 5 s: a count sent on one just
    # then breaks before any answer, and goes again on a fresh connection.
    broke: list[str] = []

    def once_stale(path: str, body: dict[str, Any]) -> httpx.Response:
        if path == "/apply-template" and not broke:
            broke.append(path)
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        fake.tokenizer = None
        return fake.handle(httpx.Request("POST", "http://fake.test" + path, json=body))

    fake.tokenizer = once_stale
    _, meta = final_meta(call(fake.model(ChatCustomLLM, server_profile=LLAMACPP), path, "q"))
    if path in STREAM_PATHS:
        assert broke == ["/apply-template"]
        assert meta["usage_source"] == "tokenized"


def test_a_missing_endpoint_is_asked_once(fake: Fake, mode: str) -> None:
    fake.tokenizer = lambda path, body: httpx.Response(404, json={"error": "Not Found"})
    llm = fake.model(ChatCustomLLM, server_profile=LLAMACPP)
    stream = "stream" if mode == "sync" else "astream"
    for question in ("q", "r"):
        _, meta = final_meta(call(llm, stream, question))
        assert meta["usage_source"] == "estimated"
    assert fake.paths().count("/apply-template") == 1


def test_track_usage_has_no_rows_without_usage(fake: Fake) -> None:
    chat = fake.model(ChatCustomLLM, server_profile=LLAMACPP)
    text = fake.model(CustomLLM, server_profile=LLAMACPP, streaming=True)
    with track_usage() as usage:
        list(chat.stream("q"))
        text.invoke("q")
    assert usage.total.requests == 2
    assert usage.total.unpriced_requests == 0
    assert usage.total.cost is not None


# ------------------------------------------------------------------ exact counts


def test_counts_are_cached_per_text(fake: Fake) -> None:
    llm = fake.model(ChatCustomLLM, server_profile=LLAMACPP)
    assert llm.get_num_tokens("one two three") == 3
    assert llm.get_num_tokens("one two three") == 3
    assert llm.get_num_tokens("four") == 1
    assert fake.paths() == ["/tokenize", "/tokenize"]
    assert fake.requests[0][1] == {"content": "one two three", "add_special": False}
    messages = [HumanMessage("What is the capital of France?")]
    assert llm.get_num_tokens_from_messages(messages) == 9
    assert llm.get_num_tokens_from_messages(messages) == 9
    assert fake.paths()[2:] == ["/apply-template", "/tokenize"]


def test_messages_with_tools_are_counted_as_rendered(fake: Fake) -> None:
    llm = fake.model(ChatCustomLLM, server_profile=LLAMACPP)
    messages = [SystemMessage("Be brief."), HumanMessage("Weather in Paris?")]

    def weather(city: str) -> str:
        """Weather in a city."""
        return city

    assert llm.get_num_tokens_from_messages(messages, tools=[weather]) == 11
    sent = fake.requests[0][1]
    assert sent["tools"][0]["function"]["name"] == "weather"
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]


def test_async_counts(fake: Fake) -> None:
    chat = fake.model(ChatCustomLLM, server_profile=VLLM)
    text = fake.model(CustomLLM, server_profile=VLLM)

    async def run() -> tuple[int, int, int]:
        return (
            await chat.aget_num_tokens("a b"),
            await chat.aget_num_tokens_from_messages([HumanMessage("a b")]),
            await text.aget_num_tokens("a b"),
        )

    assert asyncio.run(run()) == (2, 4, 3)  # text with its BOS as a prompt


def test_sync_counts_inside_a_running_loop(fake: Fake) -> None:
    llm = fake.model(ChatCustomLLM, server_profile=LLAMACPP)

    async def inside() -> int:
        return llm.get_num_tokens_from_messages([HumanMessage("a b c")])

    assert asyncio.run(asyncio.wait_for(inside(), timeout=10)) == 6


def test_trim_messages_is_exact(fake: Fake) -> None:
    llm = fake.model(ChatCustomLLM, server_profile=LLAMACPP)
    history = [
        SystemMessage("You are brief."),
        HumanMessage("one two three four"),
        AIMessage("five six"),
        HumanMessage("seven eight nine"),
    ]
    kept = trim_messages(history, max_tokens=12, token_counter=llm, include_system=True)
    assert llm.get_num_tokens_from_messages(kept) <= 12
    assert kept[0] == history[0]
    assert kept[-1] == history[-1]


def test_no_tokenizer_warns_once_and_estimates(fake: Fake) -> None:
    llm = fake.model(ChatCustomLLM, base_url="http://warn-once.test/v1", server_profile="generic")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = llm.get_num_tokens("abcdefgh")
        llm.get_num_tokens_from_messages([HumanMessage("abcdefgh")])
    assert first == 2  # langchain-core's 4 characters a token
    said = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(said) == 1
    assert "names no tokenizer" in said[0]
    assert "server_profile" in said[0]
    assert fake.requests == []


def test_llama_cpp_python_counts(fake: Fake) -> None:
    text = fake.model(CustomLLM, server_profile=LCP, base_url="http://lcp.test/v1")
    assert text.get_num_tokens("a b c") == 4  # as a prompt: its BOS
    chat = fake.model(ChatCustomLLM, server_profile=LCP, base_url="http://lcp.test/v1")
    assert chat.get_num_tokens("a b c") == 3  # the text alone: the BOS of "" taken away
    with pytest.warns(UserWarning, match="ChatML"):
        assert chat.get_num_tokens_from_messages([HumanMessage("a b")]) > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chat.get_num_tokens_from_messages([HumanMessage("c d")])  # warned once only


def test_a_failed_count_is_estimated_with_a_warning(fake: Fake) -> None:
    fake.tokenizer = lambda path, body: httpx.Response(401, json={"error": "bad key"})
    llm = fake.model(ChatCustomLLM, server_profile=LLAMACPP, base_url="http://fail.test/v1")
    with pytest.warns(UserWarning, match="could not be asked") as caught:
        assert llm.get_num_tokens("abcdefgh") == 2
    assert KEY not in str(caught[0].message)


# ------------------------------------------------------------------ prompts too long

WINDOW = {**LLAMACPP, "context_window": 10}


def test_a_prompt_too_long_is_refused_before_sending(fake: Fake, path: str, kind: str) -> None:
    cls = ChatCustomLLM if kind == "chat" else CustomLLM
    llm = fake.model(cls, server_profile=WINDOW, check_context_window=True, max_tokens=4)
    with pytest.raises(ContextLengthExceededError) as caught:
        call(llm, path, "one two three four five six seven")
    message = str(caught.value)
    assert "context window of 10 tokens" in message
    assert "max_tokens=4" in message
    assert "trim_messages" in message
    assert not [p for p in fake.paths() if p.startswith("/v1/")]  # nothing sent


def test_a_prompt_that_fits_is_sent(fake: Fake, path: str) -> None:
    llm = fake.model(ChatCustomLLM, server_profile=WINDOW, check_context_window=True, max_tokens=2)
    call(llm, path, "one two")  # 5 tokens rendered, plus 2: fits in 10
    assert "/v1/chat/completions" in fake.paths()


def test_the_check_is_off_by_default(fake: Fake, path: str) -> None:
    llm = fake.model(ChatCustomLLM, server_profile=WINDOW, max_tokens=4)
    call(llm, path, "one two three four five six seven")
    assert fake.paths()[0] == "/v1/chat/completions"


def test_settings_are_validated_and_read_from_config(tmp_path: Any) -> None:
    from langchain_customllm import ConfigurationError

    with pytest.raises(ConfigurationError, match="missing_usage"):
        ChatCustomLLM(model="m", missing_usage="sometimes")
    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n  local:\n    model: smollm2\n    missing_usage: estimate\n"
        "    check_context_window: true\n"
    )
    llm = ChatCustomLLM.from_config(config, "local")
    assert (llm.missing_usage, llm.check_context_window) == ("estimate", True)
