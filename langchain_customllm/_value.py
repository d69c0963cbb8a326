"""A model is a value: what a call uses is what its settings say, after any change.

`ModelValue` is the pydantic base of the model classes. It owns the one `Runtime` their
settings build (pools, TLS context, headers, wire format, profile, prices) and keeps it in
step with them:

- reassigning a setting (``llm.base_url = ...``) validates it as the constructor would and
  rebuilds the runtime; so does ``model_copy(update=...)``;
- ``copy.copy``, ``copy.deepcopy``, ``model_copy`` and pickling never carry the runtime
  over: the copy builds its own on first use (pools and TLS contexts are process state);
  clients the user passed in (``http_client``) are shared by copies, and refuse pickling
  with a message that says what to do instead;
- the runtime is built once, under a lock, even when a fresh model's first calls race;
- ``close()`` / ``aclose()`` and ``with`` / ``async with`` close its pools; an async pool
  also closes with its event loop.

Every validation failure is a `ConfigurationError` naming the setting, never pydantic's
``ValidationError`` (whose text would quote secret inputs).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, PrivateAttr, ValidationError, model_validator
from typing_extensions import Self

from langchain_customllm._exceptions import ConfigurationError
from langchain_customllm._runtime import Runtime, RuntimeSettings
from langchain_customllm._settings import located, settings_error

__all__ = ["ModelValue"]

# Reentrant: a change validates under it, and its validators may read the runtime.
_BUILD_LOCK = threading.RLock()
# The runtime while a change is being applied: validators do not build one, calls wait.
_DEFERRED: Any = object()


class ModelValue(BaseModel):
    """The value semantics of the model classes (see the module docstring)."""

    _runtime_state: Runtime | None = PrivateAttr(default=None)

    # Settings validated on assignment; those a runtime is built from (a change rebuilds it);
    # user objects shared by copies, never pickled.
    _settings: ClassVar[frozenset[str]] = frozenset()
    _runtime_settings: ClassVar[frozenset[str]] = frozenset(RuntimeSettings.__annotations__)
    _user_objects: ClassVar[tuple[str, ...]] = ("http_client", "http_async_client")

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise settings_error(exc, type(self).model_fields) from None

    @model_validator(mode="after")
    def _build_runtime(self) -> Self:
        # A bad wire format, profile, price table or TLS file fails here, when the model is
        # built or a setting reassigned, not on its first call. Another validator may have
        # built it already in this validation (langchain-core's profile): keep that one.
        private = self.__pydantic_private__
        if private is not None and private.get("_runtime_state") is None:
            private["_runtime_state"] = Runtime.build(self)  # type: ignore[arg-type]
        return self

    def _runtime(self) -> Runtime:
        """The runtime of the current settings, built on first use after a copy or unpickle."""
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        runtime: Runtime | None = private["_runtime_state"]
        if runtime is None or runtime is _DEFERRED:
            with _BUILD_LOCK:  # waits out a change in progress on another thread
                runtime = private["_runtime_state"]
                if runtime is None:
                    runtime = private["_runtime_state"] = Runtime.build(self)  # type: ignore[arg-type]
                elif runtime is _DEFERRED:  # asked by this thread's own change: not kept
                    runtime = Runtime.build(self)  # type: ignore[arg-type]
        return runtime

    # ----------------------------------------------------------------- detection

    def _ready(self) -> Runtime:
        """The runtime, the server family detected first where that is still to do (sync).

        Called by each call path before it builds its request, never at construction: see
        `_detect` for why there.
        """
        runtime = self._runtime()
        runtime.detect()
        self._follow_detection(runtime)
        return runtime

    async def _aready(self) -> Runtime:
        """Async twin of `_ready` (the GET does not block the event loop)."""
        runtime = self._runtime()
        await runtime.adetect()
        self._follow_detection(runtime)
        return runtime

    def _follow_detection(self, runtime: Runtime) -> None:
        # langchain-core's `profile` was derived before the server was known: it follows
        # the detected profile (max_input_tokens included), unless the user set their own.
        detector = runtime.detector
        if detector is None or detector.followed or detector.known() is None:
            return
        detector.followed = True
        if "profile" not in self.__dict__:  # a model class without one (CustomLLM)
            return
        if self.__dict__["profile"] == self._derived_profile(runtime.configured):
            self.__dict__["profile"] = self._derived_profile()

    # ----------------------------------------------------------------- changes

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self._settings:
            super().__setattr__(name, value)
            return
        self._change({name: value})

    def _change(self, changes: Mapping[str, Any]) -> None:
        """Apply changes as the constructor validates settings; all or nothing.

        The runtime is rebuilt once, after every change is in, and only if a setting it is
        built from changed (``llm.temperature = 0`` keeps the warm pools), so settings that
        are checked together (``verify`` and ``cert``) may change in any order.
        """
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        # Under the build lock: a call starting meanwhile waits for the new runtime instead
        # of building one from the settings being replaced.
        with _BUILD_LOCK:
            profile_was_derived = self._profile_is_derived()
            runtime = private["_runtime_state"]
            before = dict(self.__dict__), set(self.__pydantic_fields_set__)
            private["_runtime_state"] = _DEFERRED  # the validators leave it to us
            try:
                for name, value in changes.items():
                    if name in self._settings:
                        self.__pydantic_validator__.validate_assignment(self, name, value)
                    else:
                        super().__setattr__(name, value)
                rebuild = not self._runtime_settings.isdisjoint(changes)
                private["_runtime_state"] = Runtime.build(self) if rebuild else runtime  # type: ignore[arg-type]
            except (ValidationError, ConfigurationError) as exc:
                # Put back what changed, so a refused change changes nothing.
                for key, old in before[0].items():
                    if self.__dict__.get(key) is not old:
                        self.__dict__[key] = old
                self.__pydantic_fields_set__.intersection_update(before[1])
                private["_runtime_state"] = runtime
                if isinstance(exc, ValidationError):
                    raise settings_error(exc, type(self).model_fields) from None
                raise located(exc) from None
            if profile_was_derived:
                self.__dict__["profile"] = self._derived_profile()

    def _derived_profile(self, profile: Any = None) -> Any:
        """langchain-core's model profile for a server profile (the runtime's by default)."""
        return None

    def _profile_is_derived(self) -> bool:
        # langchain-core's `profile` follows the settings unless the user set one of their own.
        return "profile" in self.__dict__ and self.__dict__["profile"] == self._derived_profile()

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with its own runtime; ``update`` is validated as one reassignment."""
        copied = super().model_copy(deep=deep)
        if update:
            copied._change(update)
        return copied

    def __copy__(self) -> Self:
        copied = super().__copy__()
        if copied.__pydantic_private__ is not None:
            copied.__pydantic_private__["_runtime_state"] = None
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        memo = {} if memo is None else memo
        memo[id(self.__pydantic_private__.get("_runtime_state"))] = None  # type: ignore[union-attr]
        for name in self._user_objects:
            user = self.__dict__.get(name)
            if user is not None:
                memo[id(user)] = user  # the user's client, shared: it is theirs to manage
        return super().__deepcopy__(memo)

    def __getstate__(self) -> dict[Any, Any]:
        given = [name for name in self._user_objects if self.__dict__.get(name) is not None]
        if given:
            raise TypeError(
                f"{type(self).__name__} with {' and '.join(given)} cannot be pickled: an httpx "
                "client holds sockets and TLS state. Give the settings instead (timeout, "
                "verify, cert, default_headers; proxies through HTTPS_PROXY) so each process "
                "builds its own clients"
            )
        state = super().__getstate__()
        state["__pydantic_private__"] = {
            **(state.get("__pydantic_private__") or {}),
            "_runtime_state": None,
        }
        return state

    # ----------------------------------------------------------------- closing

    def close(self) -> None:
        """Close the model's pooled sync connections (clients the user passed in stay open).

        The model stays usable: a later call opens new connections.
        """
        runtime = (self.__pydantic_private__ or {}).get("_runtime_state")
        if runtime is not None:
            runtime.close()

    async def aclose(self) -> None:
        """Close the pooled connections of the running event loop, and the sync ones."""
        runtime = (self.__pydantic_private__ or {}).get("_runtime_state")
        if runtime is not None:
            runtime.close()
            await runtime.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
