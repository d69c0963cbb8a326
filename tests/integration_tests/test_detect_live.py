"""Server detection against the session's real server: no profile set, the right one used.

The expected family is told apart without the package: llama.cpp's ``llama-server`` answers
``/props`` (with the context of one slot), llama-cpp-python's server does not.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
from pydantic import BaseModel

from langchain_customllm import ChatCustomLLM, CustomLLM
from langchain_customllm._detect import clear_cache
from langchain_customllm._request import server_root
from tests.integration_tests.conftest import MODEL


class City(BaseModel):
    city: str


def _expected(base_url: str) -> tuple[str, int | None]:
    props = httpx.get(f"{server_root(base_url)}/props", timeout=10)
    if props.status_code == 200 and "default_generation_settings" in props.json():
        return "llamacpp", int(props.json()["default_generation_settings"]["n_ctx"])
    return "llama-cpp-python", None


@pytest.fixture(autouse=True)
def _fresh() -> None:
    clear_cache()


def test_the_real_server_is_detected_at_the_first_call(
    base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    family, window = _expected(base_url)
    caplog.set_level(logging.DEBUG, logger="langchain_customllm")
    llm = ChatCustomLLM(base_url=base_url, model=MODEL, max_tokens=8, temperature=0)
    assert llm._runtime().profile.name == "generic"  # nothing asked yet
    assert llm.invoke("Say hi.").content
    profile = llm._runtime().profile
    assert (profile.name, profile.context_window) == (family, window)
    if window is not None:
        assert llm.profile is not None
        assert llm.profile["max_input_tokens"] == window
    assert sum("detected as" in r.getMessage() for r in caplog.records) == 1


def test_async_detection_and_structured_output_bound_before_it(base_url: str) -> None:
    family, _ = _expected(base_url)
    llm = CustomLLM(base_url=base_url, model=MODEL, max_tokens=4, temperature=0)
    chat = ChatCustomLLM(base_url=base_url, model=MODEL, max_tokens=24, temperature=0)
    structured = chat.with_structured_output(City)  # spelled for the server per request

    async def main() -> tuple[str, City]:
        try:
            text = await llm.ainvoke("The capital of France is")
            city = await structured.ainvoke("Which city is the capital of France? JSON.")
            return text, city  # type: ignore[return-value]
        finally:
            await llm.aclose()
            await chat.aclose()

    text, city = asyncio.run(main())
    assert isinstance(text, str)
    assert isinstance(city, City)
    assert llm._runtime().profile.name == family
    assert chat._runtime().profile.name == family


def test_ollamas_native_format_learns_the_context_and_refuses_what_would_be_cut(
    base_url: str,
) -> None:
    # Ollama cuts an over-long prompt to num_ctx without an error; /api/show says num_ctx.
    from langchain_customllm import ContextLengthExceededError
    from tests.servers import ollama
    from tests.servers.base import Backend

    backend = Backend(base_url, MODEL)
    with ollama.serve(backend) as server:
        chat = ChatCustomLLM(
            model=MODEL,
            base_url=server.url,
            wire_format="ollama",
            max_tokens=8,
            temperature=0,
            check_context_window=True,
        )
        assert chat.invoke("Say hi.").content
        assert chat.profile is not None
        assert chat.profile["max_input_tokens"] == backend.context()
        with pytest.raises(ContextLengthExceededError, match="context window"):
            chat.invoke("word " * 3000)
        paths = [r["path"] for r in server.requests]
        assert paths == ["/api/show", "/api/chat"]  # asked once; the long prompt never sent
