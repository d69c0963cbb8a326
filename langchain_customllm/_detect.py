"""Which server family answers at a ``base_url``: asked once, at a model's first call.

A model on the OpenAI wire format without a ``server_profile`` sends one ``GET /models``
(beside the chat endpoint, through its own client: same headers, key, TLS and proxies; a
short timeout, no retries) before its first request, and uses the profile of the family the
answer names:

- llama.cpp's ``llama-server``: ``owned_by: "llamacpp"`` and ``meta.n_ctx``, the context of
  one slot (what one request gets: ``-c 4096 -np 4`` gives 1024, as ``/props`` says);
- llama-cpp-python's server: ``owned_by: "me"``;
- vLLM: ``owned_by: "vllm"`` and ``max_model_len``;
- Ollama's ``/v1``: ``owned_by: "library"``;
- the LiteLLM proxy: ``x-litellm-*`` response headers, or every listed model ``created``
  at its constant 1677610602 (its ``owned_by`` is the backend's provider, e.g. ``openai``);
- llama.cpp again: its ``server: llama.cpp`` header, when ``/models`` says nothing.

On llama.cpp a second GET, ``/props``, reads the chat template the server runs: a template
that declares how its tool calls start (a ``customllm-tool-call-prefix: "<json string>"``
line, as ours in ``scripts/templates`` does) gets that ``tool_call_prefix`` in the profile,
so forced tool calls work on it by default (see `profiles.prefill_tool_call`).

A model on Ollama's native format (``wire_format="ollama"``) has no ``/models`` to ask; its
context size is what matters there (Ollama cuts an over-long prompt silently). Without a
``num_ctx`` in its settings, it sends one ``POST /api/show`` for its model at the first
call (`formats.ollama.context_from_show`), cached per base_url and model, with the generic
profile and that ``context_window``; an explicit ``server_profile`` turns this off too.

Anything else, and any failure, stays ``generic``: detection never fails a call. The
decision (`read_answer`: an answer to a `Detection`) is pure; `Detector` holds one
runtime's state; answers are cached per ``base_url`` for the process (bounded, locked), so
copies, unpickled models and other models of the same server ask no more. An explicit
``server_profile`` (``"generic"`` included) turns detection off.

Why at the first call and not earlier: building a model does no I/O, and an async call
must not block its loop on a sync request, so each call path asks in its own way (sync or
async) before it builds its request. Tools and structured output bound before that call
are adapted to the profile when each request is built (`profiles.adapt_tools`,
``adapt_tool_choice``, ``adapt_response_format``), so they are spelled for the detected
server too.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from langchain_customllm._exceptions import CustomLLMError
from langchain_customllm.formats.base import WireRequest
from langchain_customllm.formats.ollama import context_from_show, show_request
from langchain_customllm.profiles import PROFILES, ServerProfile

if TYPE_CHECKING:
    from langchain_customllm._client import Answer, ProviderClient

__all__ = ["Detection", "Detector", "clear_cache", "family_of", "read_answer", "read_show"]

logger = logging.getLogger("langchain_customllm")

MODELS_REQUEST = WireRequest("/models", {}, method="GET")
PROPS_REQUEST = WireRequest("/props", {}, method="GET", root=True)
_PREFIX_MARK = re.compile(r'customllm-tool-call-prefix:\s*("(?:[^"\\]|\\.)*")')
# Long enough for a busy server on a slow machine, short enough not to stall a first call
# for long when nothing answers (the real request then reports why).
# At 5 s, detection gave up in a standard-suite run on 2 cores busy with generation, and the
# forced tool calls of the next 30 s went out on the generic profile (without the prefix).
TIMEOUT_S = 15.0
# After no answer at all, ask again on a later call, but not on every one.
RETRY_AFTER_S = 30.0
_MAX_CACHED = 256
_STRIPES = 16

# ``owned_by`` of ``/models`` entries, per family.
_OWNERS = {"llamacpp": "llamacpp", "vllm": "vllm", "me": "llama-cpp-python", "library": "ollama"}
_LITELLM_CREATED = 1677610602


@dataclass(frozen=True)
class Detection:
    """What one answer to ``GET /models`` tells about a server.

    Attributes:
        family: The `PROFILES` name of the server's family, or None (unknown: generic).
        reason: What gave the family away (for the log line).
        contexts: Context size in tokens per model id, where the answer gives one.
        tool_call_prefix: The tool-call prefix the server's chat template declares.
    """

    family: str | None
    reason: str
    contexts: Mapping[str, int] = field(default_factory=dict)
    tool_call_prefix: str | None = None

    def context_window(self, model: str) -> int | None:
        """The context size for ``model``: its own entry's, or the only one listed."""
        if model in self.contexts:
            return self.contexts[model]
        if len(self.contexts) == 1:  # llama.cpp serves one model under any name
            return next(iter(self.contexts.values()))
        return None

    def profile(self, model: str) -> ServerProfile:
        """The profile to use for ``model`` on this server."""
        base = PROFILES[self.family or "generic"]
        window = self.context_window(model)
        if window is not None:
            base = replace(base, context_window=window)
        if self.tool_call_prefix is not None:
            base = replace(base, tool_call_prefix=self.tool_call_prefix)
        return base


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _entry_context(entry: Mapping[str, Any]) -> int | None:
    # vLLM: max_model_len. llama.cpp: meta.n_ctx, per slot (a request never gets more than
    # one); its n_ctx_train is what the model was trained for, no promise of the server's.
    found = _positive_int(entry.get("max_model_len"))
    meta = entry.get("meta")
    if found is None and isinstance(meta, Mapping):
        found = _positive_int(meta.get("n_ctx"))
    return found


def family_of(body: Any, headers: Mapping[str, str]) -> tuple[str | None, str]:
    """The server family a ``/models`` answer and response headers point to (pure).

    Args:
        body: The decoded JSON of ``GET /models`` (anything: it is checked).
        headers: Response headers (any case).

    Returns:
        The `PROFILES` name or None, and what gave it away.
    """
    if any(str(name).lower().startswith("x-litellm") for name in headers):
        return "litellm", "x-litellm-* headers"
    for entry in _entries(body):
        owner = entry.get("owned_by")
        if isinstance(owner, str) and owner in _OWNERS:
            return _OWNERS[owner], f"owned_by {owner!r}"
    # The LiteLLM proxy dates every model it lists to one constant (its
    # DEFAULT_MODEL_CREATED_AT_TIME); OpenAI's own list has many dates.
    entries = _entries(body)
    if entries and all(e.get("created") == _LITELLM_CREATED for e in entries):
        return "litellm", f"every model created {_LITELLM_CREATED} (LiteLLM's constant)"
    # llama-server names itself in every answer (its /v1/models says so as well).
    server = next((str(v) for k, v in headers.items() if str(k).lower() == "server"), "")
    if server.startswith("llama.cpp"):
        return "llamacpp", "server header 'llama.cpp'"
    return None, "no known owned_by or header"


def _entries(body: Any) -> list[Mapping[str, Any]]:
    data = body.get("data") if isinstance(body, Mapping) else None
    return [e for e in data if isinstance(e, Mapping)] if isinstance(data, list) else []


def read_answer(status: int, headers: Mapping[str, str], body: Any) -> Detection | None:
    """Decide from an answer to ``GET /models`` (pure).

    Args:
        status: The HTTP status.
        headers: The response headers.
        body: The decoded JSON body, or None when it was not JSON.

    Returns:
        A `Detection` to keep for this server (its family may be None: unknown) after a
        2xx, or a 404/405 (no such endpoint: not a server we know). None when the answer
        does not settle it: refused (401/403, or the 400 a gateway sends for a wrong key:
        the real call says why, and another key may get an answer), or failing (a server
        still loading answers 503).
    """
    if status in (404, 405):
        family, reason = family_of(None, headers)
        return Detection(family, reason if family else f"HTTP {status} to GET /models")
    if not 200 <= status < 300:
        return None
    family, reason = family_of(body, headers)
    contexts: dict[str, int] = {}
    for entry in _entries(body):
        window = _entry_context(entry)
        if window is not None and isinstance(entry.get("id"), str):
            contexts[entry["id"]] = window
    return Detection(family, reason, contexts)


def read_show(status: int, body: Any, model: str) -> Detection | None:
    """Decide from an answer to Ollama's ``POST /api/show`` for ``model`` (pure).

    Returns:
        A `Detection` with no family and, where the answer gives it, the model's context;
        None when the answer does not settle it (refused, failing: asked again later).
    """
    if status in (404, 405):  # no such model (or no such endpoint): no context to know
        return Detection(None, f"HTTP {status} to POST /api/show")
    if not 200 <= status < 300:
        return None
    window, reason = context_from_show(body)
    return Detection(None, reason, {} if window is None else {model: window})


def declared_prefix(props: Any) -> str | None:
    """The tool-call prefix a llama.cpp ``/props`` answer's chat template declares (pure)."""
    template = props.get("chat_template") if isinstance(props, Mapping) else None
    found = _PREFIX_MARK.search(template) if isinstance(template, str) else None
    if found is None:
        return None
    try:
        prefix = json.loads(found.group(1))
    except ValueError:
        return None
    return prefix if isinstance(prefix, str) and prefix else None


def _with_props(detection: Detection | None, props: Answer | None) -> Detection | None:
    if detection is None or props is None or not 200 <= props[0] < 300:
        return detection
    prefix = declared_prefix(props[2])
    return detection if prefix is None else replace(detection, tool_call_prefix=prefix)


def _wants_props(detection: Detection | None) -> bool:
    return detection is not None and detection.family == "llamacpp"


# ----------------------------------------------------------------------------- the cache

_LOCK = threading.Lock()
_CACHE: OrderedDict[str, Detection] = OrderedDict()
# One lock per stripe of base_urls: concurrent first calls to a server send one GET, and
# the locks stay bounded however many servers a process talks to.
_FLIGHTS = tuple(threading.Lock() for _ in range(_STRIPES))
# Async first calls wait for one GET per server and event loop (futures are loop-bound).
_PENDING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Future[None]]]
_PENDING = weakref.WeakKeyDictionary()


def cached(base_url: str) -> Detection | None:
    """The detection kept for ``base_url``, if any (no I/O)."""
    with _LOCK:
        found = _CACHE.get(base_url)
        if found is not None:
            _CACHE.move_to_end(base_url)
        return found


def _keep(base_url: str, detection: Detection) -> None:
    with _LOCK:
        _CACHE[base_url] = detection
        _CACHE.move_to_end(base_url)
        while len(_CACHE) > _MAX_CACHED:
            _CACHE.popitem(last=False)


def clear_cache() -> None:
    """Forget every detected server (the next first call asks again)."""
    with _LOCK:
        _CACHE.clear()


# ----------------------------------------------------------------------------- one runtime


class Detector:
    """The detection state of one runtime: asked at most once per answer.

    Args:
        base_url: The model's API root (the cache key).
        model: The model name (picks its context size from the answer).
        timeout: The model's timeout; the GET waits at most `TIMEOUT_S` of it.
        base: The profile a detection refines: None to take the detected family's
            (OpenAI-compatible servers); the configured one for Ollama's native format,
            which only learns the model's context (asked per model, cached per both).
    """

    __slots__ = ("base", "base_url", "followed", "found", "key", "model", "retry_at", "timeout")

    def __init__(
        self,
        base_url: str,
        model: str,
        timeout: float | None,
        *,
        base: ServerProfile | None = None,
    ) -> None:
        self.base_url = base_url
        self.base = base
        # Ollama serves many models at one root, each with its own context.
        self.key = base_url if base is None else f"{base_url} {model}"
        self.model = model
        self.timeout = TIMEOUT_S if timeout is None else min(timeout, TIMEOUT_S)
        self.found: ServerProfile | None = None
        self.retry_at = 0.0
        self.followed = False  # the model's langchain-core profile follows the detection

    def known(self) -> ServerProfile | None:
        """The detected profile, from this runtime or the process cache (no I/O)."""
        if self.found is None:
            hit = cached(self.key)
            if hit is not None:
                self.found = self._profile(hit)
        return self.found

    def _profile(self, detection: Detection) -> ServerProfile:
        if self.base is None:
            return detection.profile(self.model)
        window = detection.context_window(self.model)
        return self.base if window is None else replace(self.base, context_window=window)

    def _due(self) -> bool:
        return self.known() is None and time.monotonic() >= self.retry_at

    def run(self, client: ProviderClient) -> None:
        """Ask the server, unless known or recently tried (sync)."""
        if not self._due():
            return
        with _FLIGHTS[hash(self.key) % _STRIPES]:
            if self._due():  # another thread may have asked meanwhile
                if self.base is not None:
                    answer = _try(client.once, show_request(self.model), self.timeout)
                    self._settle(answer, None if answer is None else self._show(answer))
                    return
                answer = _try(client.once, MODELS_REQUEST, self.timeout)
                detection = None if answer is None else read_answer(*answer)
                if _wants_props(detection):
                    props = _try(client.once, PROPS_REQUEST, self.timeout)
                    detection = _with_props(detection, props)
                self._settle(answer, detection)

    async def arun(self, client: ProviderClient) -> None:
        """Async twin of `run`: concurrent first calls on one loop share one GET."""
        if not self._due():
            return
        loop = asyncio.get_running_loop()
        with _LOCK:
            pending = _PENDING.setdefault(loop, {})
            flight = pending.get(self.key)
            leader = flight is None
            if flight is None:
                flight = pending[self.key] = loop.create_future()
        if not leader:
            await asyncio.wait([flight])  # then read what the leader kept, if anything
            return
        try:
            if self.base is not None:
                answer = await _atry(client.aonce, show_request(self.model), self.timeout)
                self._settle(answer, None if answer is None else self._show(answer))
                return
            answer = await _atry(client.aonce, MODELS_REQUEST, self.timeout)
            detection = None if answer is None else read_answer(*answer)
            if _wants_props(detection):
                props = await _atry(client.aonce, PROPS_REQUEST, self.timeout)
                detection = _with_props(detection, props)
            self._settle(answer, detection)
        finally:
            with _LOCK:
                pending.pop(self.key, None)
            if not flight.done():
                flight.set_result(None)

    def _show(self, answer: Answer) -> Detection | None:
        return read_show(answer[0], answer[2], self.model)

    def _settle(self, answer: Answer | None, detection: Detection | None) -> None:
        if detection is None:
            # No answer, or a server failing or busy: ask again later. Refused: not with
            # this runtime's key (a new key builds a new runtime, which asks again).
            later = answer is None or answer[0] >= 500 or answer[0] in (408, 429)
            wait = RETRY_AFTER_S if later else math.inf
            self.retry_at = time.monotonic() + wait
            what = "no answer" if answer is None else f"HTTP {answer[0]}"
            logger.debug("Server at %s not detected (%s): generic profile", self.base_url, what)
            return
        _keep(self.key, detection)
        self.found = self._profile(detection)
        logger.debug(
            "Server at %s detected as %r (%s), context window %s; set server_profile to "
            "choose another",
            self.base_url,
            self.found.name,
            detection.reason,
            self.found.context_window,
        )


def _try(once: Any, request: WireRequest, timeout: float) -> Answer | None:
    try:
        return once(request, timeout)  # type: ignore[no-any-return]
    except CustomLLMError:  # connection refused, timeout, ...: the real call will say
        return None


async def _atry(aonce: Any, request: WireRequest, timeout: float) -> Answer | None:
    try:
        return await aonce(request, timeout)  # type: ignore[no-any-return]
    except CustomLLMError:
        return None
