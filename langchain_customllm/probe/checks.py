"""The probe's requests: `Prober` sends them and hands the answers to the judges.

`Prober.send` is the only code in the probe that does network I/O; `run_probe` is the
one-call form.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypedDict

import httpx
from typing_extensions import Unpack

from langchain_customllm._detect import declared_prefix, family_of
from langchain_customllm._request import server_root
from langchain_customllm.probe.embed_facts import embedding_exchanges, judge_embeddings
from langchain_customllm.probe.error_facts import judge_errors
from langchain_customllm.probe.errors import (
    ApiKeyRefusedError,
    ProbeUsageError,
    ServerUnreachableError,
    key_refusal,
)
from langchain_customllm.probe.facts import (
    judge_chat,
    judge_completions,
    judge_json_mode,
    judge_json_schema,
    judge_logprobs,
    judge_max_tokens,
    judge_n,
    judge_seed,
    judge_stop,
    judge_stream,
    pick_stop,
    row_rank,
    skipped_row,
)
from langchain_customllm.probe.image_facts import judge_image
from langchain_customllm.probe.payloads import (
    CHAT_MAX_TOKENS,
    CHAT_PROMPT,
    CITY_SCHEMA,
    COMPLETION_PROMPT,
    IMAGE_PROMPT,
    JSON_PROMPT,
    MALFORMED_BODY,
    NAMED_CHOICE,
    SEED,
    SEED_PROMPT,
    TOOL_MAX_TOKENS,
    TOOL_PROMPT,
    UNKNOWN_MODEL,
    WEATHER_TOOL,
    WRONG_KEY,
    image_data_url,
)
from langchain_customllm.probe.records import Exchange, Facts, Judged, Row, quote
from langchain_customllm.probe.scoring import ProbeReport, guess_family, score_profiles
from langchain_customllm.probe.tool_facts import judge_tools, string_args, tool_calls
from langchain_customllm.profiles import PROFILES, prefill_tool_call

# After this many transport failures in a row the server is taken as gone.
_MAX_CONSECUTIVE_FAILURES = 2


class ProbeOptions(TypedDict, total=False):
    """The keyword arguments of `Prober` and `run_probe` (see `Prober`)."""

    api_key: str | None
    api_key_env: str | None
    timeout: float
    transport: httpx.BaseTransport | None
    progress: Callable[[str], None] | None


class Prober:
    """Sends the probe's requests through an ``httpx.Client`` and judges the answers.

    Args:
        base_url: The API root (``.../v1``).
        model: The model name; None takes the first one ``/models`` lists.
        api_key: The key, or None.
        api_key_env: The environment variable it came from (for the recommendation).
        timeout: Seconds per request.
        transport: An httpx transport (tests pass an ``httpx.MockTransport``).
        progress: Called with each step's name (e.g. to show progress on a terminal).
    """

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._key = api_key or None
        self.api_key_env = api_key_env
        self.timeout = timeout
        self._transport = transport
        self._progress = progress or (lambda _step: None)
        self.exchanges: list[Exchange] = []
        self.skipped = 0
        self._failures = 0
        self._llamacpp = False  # llama.cpp's server: its chat template may declare a prefix

    def _headers(self, key: str | None) -> dict[str, str]:
        headers = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "user-agent": "langchain-customllm-probe/0.1",
            # A fresh connection each time: llama.cpp closes the socket after some failures
            # (malformed JSON, an empty streamed body), which breaks a reused one.
            "connection": "close",
        }
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "**********") if self._key else text

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        key: str | bool | None = True,
        root: bool = False,
    ) -> Exchange:
        """Send one request and record it (the only method that does network I/O).

        Args:
            method: HTTP method.
            path: Path below the base URL.
            body: JSON body.
            raw: Raw bytes to send instead of ``body`` (the malformed-JSON probe).
            key: True sends the configured key; False or None sends none; a string sends
                that key instead (the wrong-key probe).
            root: The path is below the server's root, beside ``/v1`` (llama.cpp's /props).

        Returns:
            The exchange; transport failures are recorded in it, not raised.
        """
        secret = self._key if key is True else key or None
        ex = Exchange(method, path, body)
        if self._failures >= _MAX_CONSECUTIVE_FAILURES:
            ex.error = "skipped: the server stopped answering"
            ex.error_kind = "skipped"
            self.skipped += 1
            return ex
        content = (
            raw if raw is not None else json.dumps(body).encode() if body is not None else None
        )
        started = time.monotonic()
        try:
            with httpx.Client(timeout=self.timeout, transport=self._transport) as client:
                response = client.request(
                    method,
                    f"{server_root(self.base_url) if root else self.base_url}{path}",
                    content=content,
                    headers=self._headers(secret if isinstance(secret, str) else None),
                )
            ex.status = response.status_code
            ex.content_type = response.headers.get("content-type", "")
            ex.text = self._scrub(response.text)
            ex.headers = {k.lower(): self._scrub(v) for k, v in response.headers.items()}
            self._failures = 0
        except httpx.HTTPError as exc:
            kind = (
                "connect"
                if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                else "timeout"
                if isinstance(exc, httpx.TimeoutException)
                else "protocol"
            )
            ex.error = self._scrub(f"{type(exc).__name__}: {exc}")
            ex.error_kind = kind
            self._failures += 1
        ex.elapsed = time.monotonic() - started
        self.exchanges.append(ex)
        return ex

    def _chat_body(self, **fields_: Any) -> dict[str, Any]:
        """A chat request body: the probe's defaults, overridden by ``fields_``."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": CHAT_PROMPT}],
            "max_tokens": CHAT_MAX_TOKENS,
            "temperature": 0,
            "seed": SEED,
        }
        body.update(fields_)
        return body

    def chat(self, **fields_: Any) -> Exchange:
        """POST ``/chat/completions`` with the probe's defaults, overridden by ``fields_``."""
        return self.send("POST", "/chat/completions", self._chat_body(**fields_))

    def _check_reachable(self, ex: Exchange) -> None:
        if ex.error_kind == "connect":
            raise ServerUnreachableError(f"Cannot reach {self.base_url}: {ex.error}")

    def run(self) -> ProbeReport:
        """Probe the server.

        Returns:
            The report.

        Raises:
            ServerUnreachableError: If nothing answers at the base URL.
            ApiKeyRefusedError: If no model was given and ``/models`` refused the key.
            ProbeUsageError: If no model was given and ``/models`` names none.
        """
        started = time.monotonic()
        step = self._progress
        step("models")
        models = self.send("GET", "/models")
        self._check_reachable(models)
        self._llamacpp = models.ok and family_of(models.json(), models.headers)[0] == "llamacpp"
        if self.model is None:
            self.model = models.first_model()
        if self.model is None:
            refused = key_refusal(models, self._key is not None, self.api_key_env)
            if refused is not None:
                raise ApiKeyRefusedError(f"{self.base_url}/models: {models.summary()}; {refused}")
            raise ProbeUsageError(
                f"{self.base_url}/models lists no model ({models.summary()}); pass --model"
            )
        rows: list[Row] = []
        facts: Facts = {}

        def take(judged: Judged) -> None:
            rows.extend(judged[0])
            facts.update(judged[1])

        step("chat")
        baseline = self.chat()
        self._check_reachable(baseline)
        take(judge_chat(baseline))
        notes: list[str] = []
        if not facts["chat"]:
            hint = key_refusal(baseline, self._key is not None, self.api_key_env) or {
                403: "the key is not allowed to use this model",
                404: "check --base-url (the /v1 root) and --model",
            }.get(baseline.status or 0)
            notes.append(
                "chat completions failed, nothing else was measured" + (f": {hint}" if hint else "")
            )
            step("embeddings")  # an embeddings-only server (TEI's /v1) still gets its rows
            take(self._probe_embeddings())
            return self._report(rows, facts, models, baseline, notes, started, chat_ok=False)

        # Grouped by prompt: llama.cpp-style servers reuse the last prompt's cache, so
        # requests that share the baseline's prompt come first, one after the other.
        unknown: list[Exchange] = []
        probes: list[tuple[str, Callable[[], Judged]]] = [
            ("streaming", lambda: judge_stream(self._stream_baseline(), baseline)),
            ("stop", lambda: self._probe_stop(baseline)),
            ("max_tokens", lambda: judge_max_tokens(self.chat(max_tokens=3), 3)),
            (
                "logprobs",
                lambda: judge_logprobs(self.chat(logprobs=True, top_logprobs=2, max_tokens=2)),
            ),
            # Sampled: vLLM refuses n > 1 under greedy decoding (400), and it means nothing.
            ("n", lambda: judge_n(self.chat(n=2, max_tokens=2, temperature=1.0))),
            ("unknown model", lambda: self._probe_unknown_model(unknown)),
            ("completions", self._probe_completions),
            ("seed", self._probe_seed),
            ("json", self._probe_json),
            ("tools", self._probe_tools),
            ("image", self._probe_image),
            ("errors", lambda: self._probe_errors(unknown[0])),
            ("embeddings", self._probe_embeddings),
        ]
        for name, probe in probes:
            step(name)
            take(probe())
        rows.sort(key=row_rank)

        if facts.get("image_verdict") in ("ignored", "as_text"):
            notes.append(
                "image input: the server took the image without error; whether the model saw it "
                "is judged only from the answer (does it say red?), so a weak vision model "
                "looks like a server that drops images"
            )
        if facts.get("tool_stream_auto") is None and facts.get("tool_calling"):
            notes.append(
                "streamed tool calls under tool_choice auto were not measured (the model "
                "picked no tool); the profile's tool_stream_auto is kept"
            )
        if self.skipped:
            notes.append(f"{self.skipped} requests skipped: the server stopped answering")
        return self._report(rows, facts, models, baseline, notes, started, chat_ok=True)

    # Each probe sends its requests and hands the answers to the matching judge.

    def _probe_completions(self) -> Judged:
        body = {
            "model": self.model,
            "prompt": COMPLETION_PROMPT,
            "max_tokens": 4,
            "temperature": 0,
            "seed": SEED,
        }
        return judge_completions(self.send("POST", "/completions", body))

    def _stream_baseline(self) -> Exchange:
        # The baseline request, streamed: its usage is compared with the baseline's.
        return self.chat(stream=True, stream_options={"include_usage": True})

    def _probe_stop(self, baseline: Exchange) -> Judged:
        text = baseline.content() or ""
        stop = pick_stop(text)
        if stop is None:
            row = skipped_row("stop", "stop sequences", f"no word to stop at in {quote(text)}")
            return [row], {"stop_honoured": None, "stop_included": None}
        return judge_stop(text, stop, self.chat(stop=[stop]))

    def _probe_seed(self) -> Judged:
        seeded: dict[str, Any] = {
            "messages": [{"role": "user", "content": SEED_PROMPT}],
            "temperature": 1.0,
            "max_tokens": 8,
        }
        return judge_seed(
            self.chat(**seeded), self.chat(**seeded), self.chat(**seeded, seed=SEED + 1)
        )

    def _probe_json(self) -> Judged:
        ask: dict[str, Any] = {
            "messages": [{"role": "user", "content": JSON_PROMPT}],
            "max_tokens": 24,
        }
        rows, facts = judge_json_mode(self.chat(**ask, response_format={"type": "json_object"}))
        native = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": CITY_SCHEMA, "strict": True},
        }
        more_rows, more_facts = judge_json_schema(
            self.chat(**ask, response_format=native),
            self.chat(**ask, response_format={"type": "json_object", "schema": CITY_SCHEMA}),
        )
        return rows + more_rows, {**facts, **more_facts}

    def _probe_tools(self) -> Judged:
        ask: dict[str, Any] = {
            "messages": [{"role": "user", "content": TOOL_PROMPT}],
            "tools": [WEATHER_TOOL],
            "max_tokens": TOOL_MAX_TOKENS,
        }
        auto = self.chat(**ask, tool_choice="auto")
        named = self.chat(**ask, tool_choice=NAMED_CHOICE)
        # Forced as a model on the detected profile forces it: continuing the tool-call
        # prefix a llama.cpp chat template declares (see `_detect`), else as it is.
        forced: dict[str, Any] = {**ask, "tool_choice": "required"}
        if self._llamacpp:
            prefix = declared_prefix(self.send("GET", "/props", root=True).json())
            prefill_tool_call(forced, replace(PROFILES["llamacpp"], tool_call_prefix=prefix))
        required = self.chat(**forced)
        stream_named = self.chat(**ask, tool_choice=NAMED_CHOICE, stream=True)
        # A streamed auto answer only says something about tool calls if auto picks one.
        stream_auto = (
            self.chat(**ask, tool_choice="auto", stream=True) if tool_calls(auto) else None
        )
        strict = None
        if string_args(named):
            tool = {"type": "function", "function": {**WEATHER_TOOL["function"], "strict": True}}
            strict = self.chat(**{**ask, "tools": [tool]}, tool_choice=NAMED_CHOICE)
        return judge_tools(auto, named, required, stream_named, stream_auto, strict)

    def _probe_image(self) -> Judged:
        data_url = image_data_url()
        text_part = {"type": "text", "text": IMAGE_PROMPT}
        image_part = {"type": "image_url", "image_url": {"url": data_url}}

        def ask(content: Any) -> Exchange:
            return self.chat(messages=[{"role": "user", "content": content}], max_tokens=8)

        return judge_image(
            ask(IMAGE_PROMPT), ask([text_part]), ask([text_part, image_part]), data_url
        )

    def _probe_unknown_model(self, keep: list[Exchange]) -> Judged:
        # Sent with the baseline's prompt (cheap on a prompt cache), judged with the errors.
        keep.append(self.chat(model=UNKNOWN_MODEL, max_tokens=1))
        return [], {}

    def _probe_errors(self, unknown: Exchange) -> Judged:
        malformed = self.send("POST", "/chat/completions", raw=MALFORMED_BODY)
        wrong_key = no_key = None
        if self._key:
            wrong_key = self._chat_with_key(WRONG_KEY)
            no_key = self._chat_with_key(None)
        return judge_errors(unknown, malformed, wrong_key, no_key)

    def _probe_embeddings(self) -> Judged:
        return judge_embeddings(*embedding_exchanges(self.send, self.model))

    def _chat_with_key(self, key: str | None) -> Exchange:
        body = self._chat_body(max_tokens=1)
        del body["seed"]  # the key probes send no seed
        return self.send("POST", "/chat/completions", body, key=key)

    def _report(
        self,
        rows: list[Row],
        facts: Facts,
        models: Exchange,
        baseline: Exchange,
        notes: list[str],
        started: float,
        *,
        chat_ok: bool,
    ) -> ProbeReport:
        hint = guess_family(models, baseline.headers)
        matches = score_profiles(facts, hint=hint) if chat_ok else []
        return ProbeReport(
            base_url=self.base_url,
            model=self.model or "",
            rows=rows,
            facts=facts,
            matches=matches,
            server_hint=hint,
            api_key_env=self.api_key_env,
            requests=len(self.exchanges),
            duration_s=time.monotonic() - started,
            chat_ok=chat_ok,
            notes=notes,
        )


def run_probe(
    base_url: str, model: str | None = None, **options: Unpack[ProbeOptions]
) -> ProbeReport:
    """Probe a server and return what it can do (`Prober` takes the same arguments).

    Raises:
        ServerUnreachableError: If nothing answers at ``base_url``.
        ApiKeyRefusedError: If no model was given and ``/models`` refused the key.
        ProbeUsageError: If no model was given and the server lists none.
    """
    return Prober(base_url, model, **options).run()
