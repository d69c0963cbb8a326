"""What each real server genuinely cannot do, declared once per server.

langchain-tests' integration suite runs against llama.cpp's C++ llama-server, llama-cpp-python's
server, vLLM and the LiteLLM proxy. Each server's known gaps are one mixin here
(`LlamaServerGaps`, `LlamaCppPythonGaps`, `VllmGaps`, `LitellmGaps`): a mapping from the
suite's test name to the measured reason. Every class that runs the suite against that server
mixes it into `StandardSuite`, which turns each entry into a strict xfail -- so a server that
starts to behave is noticed, and no class repeats another's overrides. The reasons are
also what test_matrix.py quotes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests

from langchain_customllm import ChatCustomLLM

LLAMA_NO_KEY = (
    "our llama.cpp test servers run without an API key (local_server.py and "
    "llama_cpp_python_server.py have no key option), so they accept any key or none"
)
TINY_MODEL = (
    "SmolLM2-135M is too small for this: the server's grammar forces a well-formed call, "
    "but the model picks the wrong argument values or does not follow the conversation"
)
TINY_ARGS = (
    "SmolLM2-135M fills in the wrong value: the server's grammar forces a well-formed call to "
    "magic_function, but with input 10 where the question says 3"
)
TINY_JSON = (
    "SmolLM2-135M in JSON mode: the server enforces JSON, the shape is left to the prompt, and "
    "the model does not write the Joke's two strings (vLLM: nested 'setup' objects; llama.cpp "
    "behind the proxy: keys such as 'punchline_1')"
)
PROXY_HIDES_PREFIX = (
    "behind the proxy the model cannot read llama-server's /props, so it does not learn the "
    "tool-call prefix our template declares; llama-server's grammar for 'required' lets "
    "SmolLM2-135M write text before the call, and it does (measured: text, no tool call)"
)
NO_AUTO = (
    "SmolLM2-135M does not pick a tool by itself under tool_choice='auto' (customllm probe: "
    "'tools: auto' answers with text on this server), so the agent loop never starts"
)


class LlamaServerGaps:
    """llama.cpp's C++ llama-server serving SmolLM2-135M with our tool-capable template."""

    gaps: ClassVar[Mapping[str, str]] = {
        "test_json_mode": TINY_JSON,
        "test_agent_loop": NO_AUTO,
    }


class ChatOpenAIOnLlamaServerGaps:
    """langchain-openai's ChatOpenAI on llama-server, straight or through ``customllm serve``.

    The llama-server gaps, and two of ChatOpenAI's own ways to ask for structured output
    that SmolLM2-135M does not meet (measured the same with ChatOpenAI straight to
    llama-server, so the gateway adds none).
    """

    gaps: ClassVar[Mapping[str, str]] = {
        **LlamaServerGaps.gaps,
        "test_structured_output_optional_param": (
            "ChatOpenAI's strict json_schema makes the optional field required and nullable; "
            "under llama-server's grammar for it SmolLM2-135M writes past max_tokens=80 "
            "(LengthFinishReasonError), also with ChatOpenAI straight to llama-server"
        ),
        "test_structured_output_pydantic_2_v1": (
            "ChatOpenAI turns a pydantic v1 schema into a forced tool call "
            "(function_calling), and SmolLM2-135M's call does not parse into the Joke "
            "(None), also with ChatOpenAI straight to llama-server"
        ),
    }


class LlamaCppPythonGaps:
    """llama-cpp-python 0.3.36's server with ``--chat_format chatml-function-calling``."""

    gaps: ClassVar[Mapping[str, str]] = {
        "test_tool_calling": TINY_MODEL,
        "test_tool_calling_async": TINY_MODEL,
        "test_tool_choice": (
            "llama.cpp answers 500 to tool_choice='required'; with two tools bound there is no "
            "equivalent, so we raise ConfigurationError instead of silently sending 'auto'"
        ),
        "test_json_mode": TINY_MODEL + " (json_mode leaves the shape to the prompt)",
        "test_agent_loop": TINY_MODEL,
        "test_unicode_tool_call_integration": TINY_MODEL + " (it does not copy the Japanese text)",
    }


class VllmGaps:
    """vLLM 0.32 (CPU build) serving SmolLM2-135M with the hermes tool parser."""

    gaps: ClassVar[Mapping[str, str]] = {
        "test_tool_calling_with_no_arguments": (
            "vLLM's strict schema for a tool without parameters admits whitespace, and "
            "SmolLM2 writes whitespace inside the empty `arguments` object until max_tokens, "
            "so the hermes wrapper never closes and vLLM returns the text, not a call"
        ),
        "test_json_mode": TINY_JSON,
        "test_agent_loop": NO_AUTO,
        "test_unicode_tool_call_integration": (
            "the Japanese arguments take more tokens than max_tokens=80 (kept low: ~10-20 "
            "tokens/s on this CPU) leaves; vLLM parses the hermes wrapper only once it is "
            "closed, so a cut call comes back as text"
        ),
    }


class LitellmGaps:
    """The LiteLLM proxy 1.106.2 in front of llama.cpp's C++ llama-server."""

    gaps: ClassVar[Mapping[str, str]] = {
        "test_tool_calling": TINY_ARGS,
        "test_tool_calling_async": TINY_ARGS,
        "test_tool_choice": (
            "llama.cpp behind the proxy ignores tool_choice='required' (probe: a text "
            "answer); with two tools bound there is no equivalent, so we raise "
            "ConfigurationError instead of silently sending 'auto'"
        ),
        "test_json_mode": TINY_JSON,
        "test_agent_loop": NO_AUTO,
        "test_bind_runnables_as_tools": PROXY_HIDES_PREFIX,
        "test_tool_calling_with_no_arguments": PROXY_HIDES_PREFIX,
        "test_structured_few_shot_examples": PROXY_HIDES_PREFIX,
        "test_unicode_tool_call_integration": PROXY_HIDES_PREFIX,
    }


def _expected_to_fail(test: Callable[..., Any], reason: str) -> Callable[..., Any]:
    """A copy of an inherited test, marked strict xfail; the parent's own is left alone.

    The copy keeps the parent's signature and marks (``parametrize("model", ...)``), so it
    runs exactly what the suite runs; marking the parent itself would mark every server.
    """
    if inspect.iscoroutinefunction(test):

        @functools.wraps(test)
        async def copy(*args: Any, **kwargs: Any) -> Any:
            return await test(*args, **kwargs)

    else:

        @functools.wraps(test)
        def copy(*args: Any, **kwargs: Any) -> Any:
            return test(*args, **kwargs)

    copy._server_gap = reason  # type: ignore[attr-defined]
    return pytest.mark.xfail(strict=True, reason=reason)(copy)


class StandardSuite(ChatModelIntegrationTests):
    """langchain-tests' integration suite on ChatCustomLLM, a server's gaps as strict xfails.

    Mix one ``*Gaps`` class in before this one; each of its entries must name a test of the
    suite (a typo fails at import instead of silently testing nothing).
    """

    gaps: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, reason in cls.gaps.items():
            test = getattr(cls, name, None)
            if test is None:
                raise TypeError(f"{cls.__name__}: no test {name!r} in the suite to mark")
            if getattr(test, "_server_gap", None) == reason or name in cls.__dict__:
                continue  # already marked higher up, or the class overrides it itself
            setattr(cls, name, _expected_to_fail(test, reason))

    @property
    def chat_model_class(self) -> type[ChatCustomLLM]:
        return ChatCustomLLM


class WithTools(StandardSuite):
    """The suite with tools, forced tool choice, JSON mode and usage on."""

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True


class WithoutTools(StandardSuite):
    """The suite with tools and structured output off, for a server run that has neither."""

    @property
    def has_tool_calling(self) -> bool:
        return False

    @property
    def has_structured_output(self) -> bool:
        return False
