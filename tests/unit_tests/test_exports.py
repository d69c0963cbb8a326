"""The public names: every one in an ``__all__`` imports, and the lazy ones load on use."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import langchain_customllm
from langchain_customllm import formats

PACKAGES = ("langchain_customllm", "langchain_customllm.formats", "langchain_customllm.probe")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_name_in_all_imports(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        assert value is not None, name
        # `from package import name` is what users write; it goes through the same hook.
        namespace: dict[str, object] = {}
        exec(f"from {package} import {name}", namespace)
        assert namespace[name] is value
    assert sorted(module.__all__) == [n for n in dir(module) if n in module.__all__]


def test_names_users_meet_in_signatures_are_exported() -> None:
    from langchain_customllm._framing import SSEEvent
    from langchain_customllm.profiles import ServerProfile

    assert langchain_customllm.StreamEvent is SSEEvent  # the old name stays an alias
    assert langchain_customllm.ServerProfile is ServerProfile
    assert {"StreamEvent", "ServerProfile"} <= set(langchain_customllm.__all__)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = langchain_customllm.Nope
    with pytest.raises(AttributeError, match=r"langchain_customllm\.formats"):
        _ = formats.Nope


def test_import_loads_no_model_module() -> None:
    # A fresh interpreter: the package itself must not pull in the models or the formats.
    code = (
        "import sys, langchain_customllm; "
        "print(sorted(m for m in sys.modules if m.startswith('langchain_customllm.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert "chat_models" not in out
    assert "formats" not in out
