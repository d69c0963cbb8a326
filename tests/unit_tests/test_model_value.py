"""A model is a value: after copies, pickling and reassignment, a call uses what its settings say.

Each case runs on both model classes and the four call paths, after a first call (the old
bug: the first call's client, key, profile and price stayed cached on the object and were
shared by its copies).
"""

from __future__ import annotations

import asyncio
import copy
import pickle
import threading
from typing import Any

import httpx
import pytest
from langchain_core.runnables import ConfigurableField

from langchain_customllm import ChatCustomLLM, ConfigurationError, CustomLLM
from langchain_customllm._runtime import Runtime
from tests.unit_tests.wire import METHODS, Wire, call, tool_call_answer, wire

__all__ = ["wire"]  # the fixture, imported for pytest

CLASSES = [ChatCustomLLM, CustomLLM]
KEY = "sk-value-0123456789abcdef"
OTHER_KEY = "sk-value-fedcba9876543210"
PRICE = {"input": 1.0, "output": 2.0}


def used(cls: type, **settings: Any) -> Any:
    """A model that has already made one call (so its runtime is built and used)."""
    model = cls(model="m", base_url="https://one.test/v1", api_key=KEY, **settings)
    call(model, "invoke")
    return model


# ------------------------------------------------------------------ copies and reassignment

CHANGES = {
    "model_copy": lambda m, **u: m.model_copy(update=u),
    "model_copy_deep": lambda m, **u: m.model_copy(update=u, deep=True),
    "reassign": lambda m, **u: [setattr(m, k, v) for k, v in u.items()] and m,
}


@pytest.mark.parametrize("how", CHANGES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls", CLASSES)
def test_a_changed_base_url_is_where_the_next_call_goes(
    wire: Wire, cls: type, method: str, how: str
) -> None:
    changed = CHANGES[how](used(cls), base_url="https://two.test/v1/")
    call(changed, method)
    assert wire.sent[-1].url.startswith("https://two.test/v1/")
    assert changed.base_url == "https://two.test/v1"  # validated like the constructor's


@pytest.mark.parametrize("how", CHANGES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls", CLASSES)
def test_a_changed_key_is_the_key_sent(wire: Wire, cls: type, method: str, how: str) -> None:
    changed = CHANGES[how](used(cls), api_key=OTHER_KEY)
    call(changed, method)
    assert wire.sent[-1].headers["authorization"] == f"Bearer {OTHER_KEY}"
    assert OTHER_KEY not in repr(changed)  # a plain str became a SecretStr


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls", CLASSES)
def test_the_original_keeps_its_own_settings_after_a_copy(
    wire: Wire, cls: type, method: str
) -> None:
    original = used(cls)
    original.model_copy(update={"base_url": "https://two.test/v1", "api_key": OTHER_KEY})
    call(original, method)
    assert wire.sent[-1].url.startswith("https://one.test/v1/")
    assert wire.sent[-1].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("method", METHODS)
def test_a_copys_server_profile_is_used_even_before_any_call(wire: Wire, method: str) -> None:
    wire.answer = tool_call_answer
    fresh = ChatCustomLLM(model="m", base_url="https://one.test/v1")
    llamacpp = fresh.model_copy(update={"server_profile": "llama-cpp-python"})
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    call(llamacpp.bind_tools([tool], tool_choice="any"), method)
    # llama.cpp refuses "required": with one tool, the profile names it instead.
    chats = [s for s in wire.sent if s.url.endswith("/chat/completions")]  # not /tokenize
    assert chats[-1].body["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    call(fresh.bind_tools([tool], tool_choice="any"), method)
    assert wire.sent[-1].body["tool_choice"] == "required"


def _cost(result: Any) -> Any:
    chunks = result if isinstance(result, list) else [result]
    costs = [c.response_metadata.get("cost") for c in chunks if c.response_metadata.get("cost")]
    return costs[-1]


@pytest.mark.parametrize("how", CHANGES)
@pytest.mark.parametrize("method", METHODS)
def test_a_changed_price_is_the_price_used(wire: Wire, method: str, how: str) -> None:
    changed = CHANGES[how](used(ChatCustomLLM, pricing=PRICE), pricing={"input": 10, "output": 20})
    cost = _cost(call(changed, method))
    # 11 prompt and 3 completion tokens at 10 and 20 USD per million.
    assert cost["total_cost"] == pytest.approx((11 * 10 + 3 * 20) / 1e6)


@pytest.mark.parametrize("cls", CLASSES)
def test_a_bad_reassignment_is_refused_and_changes_nothing(wire: Wire, cls: type) -> None:
    model = used(cls)
    with pytest.raises(ConfigurationError, match=r"timeout: Input should be greater than 0"):
        model.timeout = -1
    with pytest.raises(ConfigurationError, match=r"Unknown wire_format 'nope'"):
        model.wire_format = "nope"
    with pytest.raises(ConfigurationError, match=r"base_url must be an http"):
        model.model_copy(update={"base_url": "http://"})
    call(model, "invoke")
    assert wire.sent[-1].url.startswith("https://one.test/v1/")
    assert wire.sent[-1].timeout["read"] == 120.0


def test_a_reassigned_profile_updates_the_langchain_profile() -> None:
    model = ChatCustomLLM(model="m")
    assert model.profile is not None
    assert model.profile["image_inputs"] is True
    model.server_profile = "llama-cpp-python"
    assert model.profile["image_inputs"] is False
    mine = ChatCustomLLM(model="m", profile={"tool_calling": False})
    mine.server_profile = "vllm"
    assert mine.profile == {"tool_calling": False}  # the user's own profile is kept


@pytest.mark.parametrize("method", METHODS)
def test_configurable_fields_keep_working(wire: Wire, method: str) -> None:
    model = used(ChatCustomLLM).configurable_fields(
        temperature=ConfigurableField(id="temperature"),
        base_url=ConfigurableField(id="base_url"),
    )
    configured = model.with_config(
        configurable={"temperature": 0.3, "base_url": "https://two.test/v1"}
    )
    call(configured, method)
    assert wire.sent[-1].url.startswith("https://two.test/v1/")
    assert wire.sent[-1].body["temperature"] == 0.3


# ------------------------------------------------------------------ pickling and deep copies

PORTS = {
    "pickle": lambda m: pickle.loads(pickle.dumps(m)),
    "deepcopy": copy.deepcopy,
    "copy": copy.copy,
    "model_copy_deep": lambda m: m.model_copy(deep=True),
}


@pytest.mark.parametrize("how", PORTS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls", CLASSES)
def test_a_used_model_copies_and_pickles(wire: Wire, cls: type, method: str, how: str) -> None:
    original = used(cls, pricing=PRICE, default_headers={"x-team": "blue"})
    asyncio.run(original.ainvoke("q"))  # an async pool too, bound to a closed loop now
    clone = PORTS[how](original)
    assert clone._runtime() is not original._runtime()
    assert clone._runtime().client.pools is not original._runtime().client.pools
    call(clone, method)
    call(original, method)
    copied, first = wire.sent[-2], wire.sent[-1]
    assert copied.comparable() == first.comparable()


@pytest.mark.parametrize("cls", CLASSES)
def test_a_users_own_client_is_shared_by_copies_and_refuses_pickling(cls: type) -> None:
    mine = httpx.Client()
    model = cls(model="m", http_client=mine)
    assert copy.deepcopy(model).http_client is mine
    assert model.model_copy(deep=True).http_client is mine
    with pytest.raises(TypeError, match=r"with http_client cannot be pickled.*verify, cert"):
        pickle.dumps(model)
    mine.close()


def test_a_runtime_itself_is_never_pickled() -> None:
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(ChatCustomLLM(model="m")._runtime())


# ------------------------------------------------------------------ first use, closing


@pytest.mark.parametrize("cls", CLASSES)
def test_concurrent_first_calls_build_one_runtime_and_one_client(
    wire: Wire, cls: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    builds: list[int] = []
    clients: list[int] = []
    build, init = Runtime.build.__func__, httpx.Client.__init__  # type: ignore[attr-defined]

    def counting_build(runtime_cls: type, model: Any) -> Any:
        builds.append(1)
        return build(runtime_cls, model)

    def counting_init(self: httpx.Client, *args: Any, **kwargs: Any) -> None:
        clients.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(Runtime, "build", classmethod(counting_build))
    monkeypatch.setattr(httpx.Client, "__init__", counting_init)
    fresh = copy.copy(cls(model="m", base_url="https://one.test/v1"))  # no runtime yet
    builds.clear()
    barrier = threading.Barrier(16)

    def first_call() -> None:
        barrier.wait()
        fresh.invoke("q")

    threads = [threading.Thread(target=first_call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wire.sent) == 16
    assert (len(builds), len(clients)) == (1, 1)


@pytest.mark.parametrize("cls", CLASSES)
def test_close_and_context_managers_close_our_pools(wire: Wire, cls: type) -> None:
    with cls(model="m", base_url="https://one.test/v1") as model:
        model.invoke("q")
        client = model._runtime().client.pools._sync
    assert client is not None
    assert client.is_closed
    model.invoke("q")  # still usable: new connections

    async def run() -> httpx.AsyncClient:
        async with cls(model="m", base_url="https://one.test/v1") as amodel:
            await amodel.ainvoke("q")
            pools = amodel._runtime().client.pools
            return pools._async[asyncio.get_running_loop()][0]

    assert asyncio.run(run()).is_closed


@pytest.mark.parametrize("cls", CLASSES)
def test_an_async_pool_closes_with_its_event_loop(wire: Wire, cls: type) -> None:
    model = cls(model="m", base_url="https://one.test/v1")
    seen: list[httpx.AsyncClient] = []

    async def run() -> None:
        await model.ainvoke("q")
        seen.append(model._runtime().client.pools._async[asyncio.get_running_loop()][0])
        assert not seen[0].is_closed

    asyncio.run(run())  # asyncio.run shuts the loop's async generators down
    assert seen[0].is_closed


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cls", CLASSES)
def test_a_close_between_attempts_is_not_an_untyped_error(
    wire: Wire, cls: type, method: str
) -> None:
    # close() while a call waits to retry: the retry takes the model's new client.
    model = cls(model="m", base_url="https://one.test/v1", max_retries=1)
    answer, calls = wire.answer, []

    def busy_then_fine(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            model.close()  # the sync pool closes; the async one goes with its loop
            return httpx.Response(503, json={"error": "busy"})
        return answer(request)

    wire.answer = busy_then_fine
    model._runtime().client.sleep = lambda seconds: None

    async def no_wait(seconds: float) -> None:
        return None

    model._runtime().client.asleep = no_wait
    call(model, method)
    assert len(calls) == 2


@pytest.mark.parametrize("cls", CLASSES)
def test_a_setting_outside_the_runtime_keeps_the_warm_pools(wire: Wire, cls: type) -> None:
    model = used(cls)
    runtime = model._runtime()
    model.temperature = 0.2
    assert model._runtime() is runtime
    call(model, "invoke")
    assert wire.sent[-1].body["temperature"] == 0.2
    model.base_url = "https://two.test/v1"
    assert model._runtime() is not runtime


@pytest.mark.parametrize("order", [["verify", "cert"], ["cert", "verify"]])
def test_model_copy_applies_its_update_as_one_change(tmp_path: Any, order: list[str]) -> None:
    trustme = pytest.importorskip("trustme", reason="trustme generates throwaway certificates")
    ca = trustme.CA()
    bundle, pem = tmp_path / "ca.pem", tmp_path / "client.pem"
    ca.cert_pem.write_to_path(str(bundle))
    ca.issue_cert("client.test").private_key_and_cert_chain_pem.write_to_path(str(pem))
    mtls = ChatCustomLLM(model="m", verify=str(bundle), cert=str(pem))
    # verify=False with the old cert would be refused; together with cert=None it is fine.
    plain = mtls.model_copy(update={name: {"verify": False, "cert": None}[name] for name in order})
    assert (plain.verify, plain.cert) == (False, None)
    assert plain._runtime().client.pools._ssl() is False
