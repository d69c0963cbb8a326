"""Lazy public names for a package's ``__init__`` (PEP 562 module ``__getattr__``).

The package and `langchain_customllm.formats` name many things but import each module only
when one of its names is first used, so ``import langchain_customllm`` stays cheap (as
langchain-core's own packages do).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any


def lazy_exports(
    package: str,
    modules: Mapping[str, str],
    namespace: MutableMapping[str, Any],
    public: Sequence[str],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package whose names load on first use.

    Args:
        package: The package's ``__name__``.
        modules: Public name to the submodule (relative to ``package``) it lives in.
        namespace: The package's ``globals()``: a loaded name is stored there, so later
            lookups no longer reach ``__getattr__``.
        public: The package's ``__all__``, which ``dir()`` lists.

    Returns:
        ``(__getattr__, __dir__)`` to assign at the package's top level.
    """

    def getattr_(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(public)

    return getattr_, dir_
