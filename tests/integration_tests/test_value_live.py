"""Against the real llama.cpp server: a pickled model works in another process, and no
socket is left unclosed (``python -X dev`` prints every ResourceWarning)."""

from __future__ import annotations

import multiprocessing
import pickle
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from langchain_customllm import ChatCustomLLM, CustomLLM
from tests.integration_tests.conftest import MODEL

pytestmark = pytest.mark.integration


def _answer_in_this_process(pickled: bytes) -> tuple[str, str]:
    # Runs in a fresh (spawned) process, like a multiprocessing, Ray or Dask worker.
    model = pickle.loads(pickled)
    result: Any = model.invoke("Say hello.")
    text = result if isinstance(result, str) else str(result.content)
    return text, type(model).__name__


@pytest.mark.parametrize("cls", [ChatCustomLLM, CustomLLM])
def test_a_used_model_pickled_answers_in_another_process(base_url: str, cls: type) -> None:
    model = cls(base_url=base_url, model=MODEL, max_tokens=8, temperature=0)
    model.invoke("Say hello.")  # used: its pools exist and must not travel
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        text, name = pool.apply(_answer_in_this_process, (pickle.dumps(model),))
    assert name == cls.__name__
    assert text.strip()


def test_no_unclosed_socket_after_any_call_path(base_url: str) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio
        from langchain_customllm import ChatCustomLLM, CustomLLM

        for cls in (ChatCustomLLM, CustomLLM):
            llm = cls(base_url={base_url!r}, model={MODEL!r}, max_tokens=4)
            llm.invoke("hi")
            list(llm.stream("hi"))
            asyncio.run(llm.ainvoke("hi"))

            async def stream():
                return [chunk async for chunk in llm.astream("hi")]

            asyncio.run(stream())
        print("done")
        """
    )
    run = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "done"
    assert "ResourceWarning" not in run.stderr
    assert "unclosed" not in run.stderr
