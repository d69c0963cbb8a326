"""Replicas through the models on every call path: failover, rests, keys, stickiness.

Each replica is a host on one `httpx.MockTransport` (no sockets) whose behaviour the test
scripts; the model is built with ``base_url=[...]`` or ``endpoints=[...]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage

from langchain_customllm import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ChatCustomLLM,
    ConfigurationError,
    CustomLLM,
    CustomLLMEmbeddings,
    InternalServerError,
    ReplicasUnavailableError,
    load_models,
)
from tests._calls import PATHS, STREAM_PATHS, call, text_of
from tests._waits import no_waits
from tests.unit_tests.fakes import PieceStream, chat_body, chat_chunks, completion_chunks, sse

A, B, C = "http://a.test/v1", "http://b.test/v1", "http://c.test/v1"
KEY = "sk-model-key-0123456789"
KEY_B = "sk-replica-b-key-9876543210"
Behaviour = Callable[[httpx.Request], httpx.Response]


def ok(request: httpx.Request) -> httpx.Response:
    if request.method == "GET":  # /health
        return httpx.Response(200, json={"status": "ok"})
    streamed = json.loads(request.content).get("stream", False)
    chat = request.url.path.endswith("/chat/completions")
    if not streamed:
        if chat:
            return httpx.Response(200, json=chat_body("Paris."))
        return httpx.Response(
            200,
            json={
                "id": "cmpl-1",
                "object": "text_completion",
                "model": "smollm2",
                "choices": [{"index": 0, "text": "Paris.", "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
            },
        )
    chunks = chat_chunks(["Par", "is."]) if chat else completion_chunks(["Par", "is."])
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse(*chunks))


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def status(code: int, **headers: str) -> Behaviour:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, json={"error": {"message": f"status {code}"}}, headers=headers)

    return answer


class Replicas:
    """Hosts a.test, b.test, c.test, each answering with its current behaviour."""

    def __init__(self, **behaviours: Behaviour) -> None:
        self.behaviours = {"a.test": ok, "b.test": ok, "c.test": ok, **behaviours}
        self.seen: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.behaviours[request.url.host](request)

    def hosts(self) -> list[str]:
        return [r.url.host for r in self.seen]

    def build(self, cls: type = ChatCustomLLM, **kwargs: Any) -> Any:
        transport = httpx.MockTransport(self.handler)
        settings: dict[str, Any] = {
            "model": "smollm2",
            "base_url": [A, B],
            "api_key": KEY,
            "server_profile": "generic",
            "http_client": httpx.Client(transport=transport),
            "http_async_client": httpx.AsyncClient(transport=transport),
        }
        settings.update(kwargs)
        if "endpoints" in settings:
            del settings["base_url"]
        return no_waits(cls(**settings), self.delays)

    delays: list[float] = []


@pytest.fixture(autouse=True)
def _fresh_delays() -> None:
    Replicas.delays = []


MODELS = {"chat": ChatCustomLLM, "text": CustomLLM}


def _metadata(result: Any, path: str) -> dict[str, Any]:
    if path in STREAM_PATHS:
        last = result[-1]
        return getattr(last, "response_metadata", None) or {}
    return getattr(result, "response_metadata", {})


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize(
    ("failure", "rest"),
    [(refused, 5.0), (status(503), 5.0), (status(429, **{"retry-after": "600"}), 600.0)],
    ids=["refused", "503", "429-retry-after-600"],
)
def test_a_failed_replica_is_failed_over_at_once(
    kind: str, path: str, failure: Any, rest: float
) -> None:
    servers = Replicas(**{"a.test": failure})
    model = servers.build(MODELS[kind], routing="round_robin", base_url=[B, A])
    # round_robin's first turn is the second replica: A.
    result = call(model, path, "Capital of France?")
    assert text_of(result) == "Paris."
    assert servers.hosts() == ["a.test", "b.test"]
    assert set(servers.delays) == {0.0}  # no backoff: another replica was ready
    stats = {s.base_url: s for s in model.replica_stats()}
    assert stats[A].errors == 1
    assert not stats[A].available
    assert stats[A].cooling_for == pytest.approx(rest, abs=1.0)
    assert stats[B].errors == 0
    assert stats[B].in_flight == 0
    assert stats[A].in_flight == 0
    if kind == "chat":
        assert _metadata(result, path)["replica"] == B
    # The rested replica gets nothing new while it rests.
    call(model, path, "Again?")
    assert servers.hosts()[2:] == ["b.test"]


@pytest.mark.parametrize("path", PATHS)
def test_when_every_replica_fails_the_error_names_each(path: str) -> None:
    servers = Replicas(**{"a.test": refused, "b.test": status(503)})
    model = servers.build(max_retries=3)
    with pytest.raises(ReplicasUnavailableError) as caught:
        call(model, path, "Hi")
    error = caught.value
    assert set(error.failures) == {A, B}
    assert "ConnectError" in error.failures[A]
    assert "503" in error.failures[B]
    assert sorted(servers.hosts()) == ["a.test", "b.test"]  # each tried once, then it stops
    assert KEY not in str(error)


@pytest.mark.parametrize("path", PATHS)
def test_a_request_error_is_not_failed_over(path: str) -> None:
    servers = Replicas(**{"a.test": status(400), "b.test": status(400)})
    model = servers.build()
    with pytest.raises(BadRequestError):
        call(model, path, "Hi")
    assert len(servers.seen) == 1
    assert all(s.available and s.errors == 0 for s in model.replica_stats())


def test_no_retries_means_no_failover() -> None:
    servers = Replicas(**{"a.test": refused})
    model = servers.build(max_retries=0, routing="round_robin", base_url=[B, A])
    with pytest.raises(APIConnectionError) as caught:
        model.invoke("Hi")
    assert not isinstance(caught.value, ReplicasUnavailableError)  # B is still up
    assert servers.hosts() == ["a.test"]


@pytest.mark.parametrize("path", sorted(STREAM_PATHS))
def test_a_stream_cut_after_output_is_not_sent_again(path: str) -> None:
    def cut(request: httpx.Request) -> httpx.Response:
        body = sse(*chat_chunks(["Par", "is"], finish=None), done=False)
        broken = httpx.RemoteProtocolError("peer closed connection")
        stream = PieceStream([body], raise_after=broken)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    servers = Replicas(**{"a.test": cut})
    model = servers.build(routing="round_robin", base_url=[B, A])
    with pytest.raises(APIConnectionError) as caught:
        call(model, path, "Hi")
    assert caught.value.partial_text == "Paris"
    assert servers.hosts() == ["a.test"]  # output had begun: never re-sent
    stats = {s.base_url: s for s in model.replica_stats()}
    assert stats[A].errors == 1
    assert not stats[A].available
    assert stats[A].in_flight == 0


@pytest.mark.parametrize("path", PATHS)
def test_each_endpoint_sends_its_own_key_and_errors_mask_both(path: str) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        said = request.headers.get("authorization", "")
        return httpx.Response(401, json={"error": {"message": f"bad key {said}"}})

    servers = Replicas(**{"a.test": echo, "b.test": echo})
    model = servers.build(
        endpoints=[{"base_url": A}, {"base_url": B, "api_key": KEY_B}],
        routing="round_robin",
    )
    seen = []
    for _ in range(2):
        with pytest.raises(AuthenticationError) as caught:
            call(model, path, "Hi")
        seen.append(str(caught.value))
    keys = {r.url.host: r.headers["authorization"] for r in servers.seen}
    assert keys == {"a.test": f"Bearer {KEY}", "b.test": f"Bearer {KEY_B}"}
    for text in seen:
        assert KEY not in text
        assert KEY_B not in text
    assert KEY_B not in repr(model)
    assert KEY_B not in str(model.model_dump())


def test_a_rested_replica_is_health_checked_before_it_rejoins() -> None:
    health = {"code": 503}

    def a_server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            return httpx.Response(health["code"])
        return refused(request) if health["code"] != 200 else ok(request)

    servers = Replicas(**{"a.test": a_server})
    model = servers.build(routing="round_robin", base_url=[B, A], health_check="/health")
    assert text_of(model.invoke("Hi")) == "Paris."  # A refused, B answered
    clock = {"now": 10_000.0}
    model._runtime().client.replicas.clock = lambda: clock["now"]
    model._runtime().client.replicas.replicas[1].cooling_until = 0.0  # its rest is over
    servers.seen.clear()
    model.invoke("Hi")
    assert [(r.url.host, r.url.path) for r in servers.seen] == [
        ("a.test", "/health"),
        ("b.test", "/v1/chat/completions"),
    ]
    health["code"] = 200
    model._runtime().client.replicas.replicas[1].cooling_until = 0.0
    servers.seen.clear()
    model.invoke("Hi")
    assert [(r.url.host, r.url.path) for r in servers.seen] == [
        ("a.test", "/health"),
        ("a.test", "/v1/chat/completions"),
    ]
    assert all(s.available for s in model.replica_stats())


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_check_replicas_rests_the_down_and_rejoins_the_up(mode: str) -> None:
    import asyncio

    up = {"a.test": False}

    def a_server(request: httpx.Request) -> httpx.Response:
        return ok(request) if up["a.test"] else refused(request)

    servers = Replicas(**{"a.test": a_server})
    model = servers.build()

    def check() -> Any:
        if mode == "sync":
            return model.check_replicas()
        return asyncio.run(model.acheck_replicas())

    stats = check()
    assert [s.available for s in stats] == [False, True]
    assert [r.url.path for r in servers.seen] == ["/health", "/health"]
    up["a.test"] = True
    assert [s.available for s in check()] == [True, True]


@pytest.mark.parametrize("path", PATHS)
def test_a_sticky_key_keeps_a_session_on_one_replica(path: str) -> None:
    servers = Replicas()
    model = servers.build(base_url=[A, B, C], sticky_key="session")
    for _ in range(4):
        call(model, path, "Hi", config={"metadata": {"session": "abc"}})
    assert len(set(servers.hosts())) == 1
    owners = {}
    for i in range(30):
        for _ in range(2):  # the same session twice: the same replica both times
            servers.seen.clear()
            call(model, path, "Hi", config={"configurable": {"session": f"user-{i}"}})
            owners.setdefault(i, set()).update(servers.hosts())
    assert all(len(hosts) == 1 for hosts in owners.values()), owners
    assert set().union(*owners.values()) == {"a.test", "b.test", "c.test"}


def test_replicas_spread_by_load_and_say_who_answered() -> None:
    servers = Replicas()
    model = servers.build(base_url=[A, B, C])
    answers = [model.invoke("Hi") for _ in range(9)]
    assert sorted(servers.hosts()) == ["a.test"] * 3 + ["b.test"] * 3 + ["c.test"] * 3
    assert isinstance(answers[0], AIMessage)
    assert {a.response_metadata["replica"] for a in answers} == {A, B, C}
    assert all(s.requests == 3 and s.latency_ms is not None for s in model.replica_stats())


def test_one_base_url_adds_no_replica_metadata() -> None:
    servers = Replicas()
    model = servers.build(base_url=A)
    assert "replica" not in model.invoke("Hi").response_metadata


def test_embeddings_spread_batches_over_replicas() -> None:
    def embed(request: httpx.Request) -> httpx.Response:
        texts = json.loads(request.content)["input"]
        data = [{"index": i, "embedding": [1.0, 0.0]} for i in range(len(texts))]
        return httpx.Response(200, json={"data": data, "usage": {"prompt_tokens": 3}})

    servers = Replicas(**{"a.test": embed, "b.test": embed})
    emb = servers.build(CustomLLMEmbeddings, chunk_size=1)
    assert len(emb.embed_documents(["x"] * 6)) == 6
    assert sorted(set(servers.hosts())) == ["a.test", "b.test"]


def test_a_copy_starts_with_fresh_replica_state() -> None:
    servers = Replicas(**{"a.test": refused})
    model = servers.build(routing="round_robin", base_url=[B, A])
    model.invoke("Hi")
    copy = model.model_copy()
    assert any(s.errors for s in model.replica_stats())
    assert not any(s.errors or s.requests for s in copy.replica_stats())


BAD = [
    ({"base_url": []}, "base_url is an empty list"),
    ({"base_url": [A, A]}, "names http://a.test/v1 twice"),
    ({"base_url": [A, "ftp://x"]}, "must be an http"),
    ({"endpoints": []}, "endpoints is an empty list"),
    ({"endpoints": [{"base_url": A, "weight": 0}]}, "weight"),
    ({"endpoints": [{"base_url": A, "wieght": 2}]}, "wieght"),
    ({"base_url": [A, B], "endpoints": [{"base_url": C}]}, "give the replicas one way"),
    ({"health_check": "health"}, "starting with '/'"),
    ({"routing": "random"}, "routing"),
    ({"replica_cooldown": 0}, "replica_cooldown"),
    ({"endpoints": [{"base_url": A, "api_key": "sk-x\n"}]}, "strip"),
]


@pytest.mark.parametrize(("settings", "says"), BAD, ids=[s for _, s in BAD])
def test_bad_replica_settings_are_refused_up_front(settings: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigurationError, match=says.replace("(", r"\(")):
        ChatCustomLLM(model="m", **settings)


def test_a_list_of_one_is_a_plain_base_url() -> None:
    assert ChatCustomLLM(model="m", base_url=[A + "/"]).base_url == A


def test_models_yaml_takes_replicas(tmp_path: Any) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n"
        "  pool:\n"
        "    model: smollm2\n"
        f"    base_url: [{A}, {B}]\n"
        "    routing: round_robin\n"
        "  keyed:\n"
        "    model: smollm2\n"
        "    endpoints:\n"
        f"      - {{base_url: {A}, weight: 3}}\n"
        f"      - {{base_url: {B}, api_key_env: NOPE}}\n"
    )
    with pytest.raises(ConfigurationError, match="api_key_env"):
        load_models(path)
    path.write_text(path.read_text().replace("api_key_env: NOPE", "api_key: sk-yaml-0123456789"))
    models = load_models(path)
    assert models["pool"].replica_urls == [A, B]
    assert [e.weight for e in models["keyed"].endpoints] == [3.0, 1.0]


@pytest.mark.parametrize("cls", [ChatCustomLLM, CustomLLM, CustomLLMEmbeddings])
def test_replica_settings_survive_dumps_and_loads_without_their_keys(cls: type) -> None:
    from langchain_core.load import dumps, loads

    model = cls(
        model="m",
        endpoints=[{"base_url": A, "weight": 2}, {"base_url": B, "api_key": KEY_B}],
        routing="weighted",
        sticky_key="session",
        replica_cooldown=2.5,
        health_check="/health",
    )
    text = dumps(model)
    assert KEY_B not in text
    with pytest.raises(ConfigurationError, match="CUSTOMLLM_ENDPOINT_1_API_KEY"):
        loads(text, valid_namespaces=["langchain_customllm"], allowed_objects=[cls])
    back = loads(
        text,
        secrets_map={"CUSTOMLLM_ENDPOINT_1_API_KEY": KEY_B},
        valid_namespaces=["langchain_customllm"],
        allowed_objects=[cls],
    )
    assert back.endpoints == model.endpoints
    assert back.endpoints[1].api_key.get_secret_value() == KEY_B
    for name in ("routing", "sticky_key", "replica_cooldown", "health_check"):
        assert getattr(back, name) == getattr(model, name)
    assert back.replica_urls == [A, B]


@pytest.mark.parametrize("path", PATHS)
def test_the_all_down_error_is_caused_by_the_last_replica_error(path: str) -> None:
    servers = Replicas(**{"a.test": refused, "b.test": status(503)})
    model = servers.build(max_retries=1, routing="round_robin", base_url=[B, A])
    with pytest.raises(ReplicasUnavailableError) as caught:
        call(model, path, "Hi")
    # A refused first (round-robin's first turn), then B's 503 ended the call.
    assert servers.hosts() == ["a.test", "b.test"]
    cause = caught.value.__cause__
    assert isinstance(cause, InternalServerError)
    assert cause.status_code == 503
