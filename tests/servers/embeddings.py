"""Ollama ``/api/embed`` and TEI ``/embed`` emulators on loopback, with fault hooks.

Vectors come from an `Embedder`: the real llama.cpp server (``--embeddings``) through
`LlamaEmbedder`, or `HashEmbedder`'s deterministic vectors where no server runs (the fault
tests). What each emulator reproduces, and where each fact comes from:

Ollama (ollama/ollama ``docs/api.md`` "Generate Embeddings", ``api/types.go``
``EmbedRequest`` / ``EmbedResponse``, ``server/routes.go`` ``EmbedHandler``):

- ``POST /api/embed`` takes ``model``, ``input`` (a string or a list), ``truncate`` (default
  true), ``dimensions``, ``options``, ``keep_alive``; answers ``{"model", "embeddings",
  "total_duration", "load_duration", "prompt_eval_count"}`` (Go struct order).
- ``truncate: false`` with an input over the context: 400 ``{"error": "input exceeds
  maximum context length"}``; a missing model: 400 ``model is required``; an unknown one:
  404 ``model '<name>' not found``; an empty input list: 200 with no embeddings.
- Every vector is L2-normalized (``EmbedHandler``'s ``normalize``), after ``dimensions``
  shortens it.

TEI (huggingface/text-embeddings-inference ``router/src/http/server.rs``, ``types.rs``):

- ``POST /embed`` takes ``inputs`` (a string or a list), ``truncate`` (default false),
  ``normalize`` (default true), ``dimensions``; answers a bare list of vectors.
- Errors are ``{"error": "...", "error_type": "..."}``; a validation error is 413
  (``ErrorType::Validation => PAYLOAD_TOO_LARGE``): ``batch size N > maximum allowed batch
  size M`` (``--max-client-batch-size``, 32 by default) and ``` `inputs` must have less
  than M tokens. Given: N ```; an overloaded queue is 429 ``Model is overloaded``; an empty
  batch 400.

Fault hooks (`EmbedServer.faults`, consumed one per request): ``cut`` (half the body,
then the connection closes), ``count`` (one vector too few), ``widths`` (the last vector
one shorter), ``base64`` (Ollama only: vectors as base64 float32 strings), ``429`` (with
``Retry-After: 0``), ``413`` (TEI's batch-size error whatever the size).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any, Protocol

import httpx

from tests.servers.base import Handler, LoopbackHTTPServer, LoopbackServer

OLLAMA_MODEL = "smollm2"
MAX_TOKENS = 512  # both emulators' context (TEI's max_input_length)
TEI_MAX_BATCH = 32


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> tuple[list[list[float]], list[int]]:
        """The vectors of ``texts`` and each text's token count."""
        ...


class LlamaEmbedder:
    """Vectors from the real llama.cpp server (``--embeddings``), token counts from it too."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(timeout=120)

    def embed(self, texts: list[str]) -> tuple[list[list[float]], list[int]]:
        # Tokenized first, as the emulated servers do: a text over MAX_TOKENS is counted
        # in full (for their too-long errors) and embedded cut (as their truncate does).
        root = self.base_url.removesuffix("/v1")
        vectors: list[list[float]] = []
        counts: list[int] = []
        for text in texts:
            tokens = self._http.post(root + "/tokenize", json={"content": text}).json()["tokens"]
            if len(tokens) > MAX_TOKENS:
                cut = {"tokens": tokens[: MAX_TOKENS - 8]}
                text = self._http.post(root + "/detokenize", json=cut).json()["content"]
            answer = self._http.post(
                self.base_url + "/embeddings", json={"input": [text], "encoding_format": "float"}
            ).json()
            vectors.append(answer["data"][0]["embedding"])
            counts.append(len(tokens))
        return vectors, counts

    def close(self) -> None:
        self._http.close()


class HashEmbedder:
    """Deterministic vectors from a hash of the text; one token per word."""

    def __init__(self, width: int = 8) -> None:
        self.width = width

    def embed(self, texts: list[str]) -> tuple[list[list[float]], list[int]]:
        vectors = []
        for text in texts:
            digest = hashlib.sha256(text.encode()).digest()
            vectors.append([(digest[i % 32] - 128) / 128 for i in range(self.width)])
        return vectors, [max(1, len(t.split())) for t in texts]


def normalized(vector: list[float]) -> list[float]:
    """The vector scaled to length 1 (what TEI's ``normalize`` does)."""
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


class EmbedHTTPServer(LoopbackHTTPServer):
    """The HTTP server, holding the embedder and the queued faults."""

    def __init__(self, handler: type[Handler], embedder: Embedder) -> None:
        super().__init__(handler, None)
        self.embedder = embedder
        self.faults: deque[str] = deque()


class _EmbedHandler(Handler):
    server: EmbedHTTPServer

    def _fault(self) -> str | None:
        return self.server.faults.popleft() if self.server.faults else None

    def _answer(self, fault: str | None, obj: Any, vectors: list[list[float]]) -> None:
        if fault == "count":
            del vectors[-1]
        elif fault == "widths" and vectors:
            vectors[-1] = vectors[-1][:-1]
        if fault == "cut":
            self.send_cut(go_bytes(obj))
        else:
            self.send_json(200, obj)

    def _inputs(self, value: Any) -> list[str] | None:
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(t, str) for t in value):
            return value
        return None


class OllamaEmbedHandler(_EmbedHandler):
    def do_POST(self) -> None:
        if self.path != "/api/embed":
            self.send_json(404, {"error": "404 page not found"})
            return
        body = self.read_json()
        fault = self._fault()
        if fault == "429":
            self.send_json(429, {"error": "server busy"}, {"retry-after": "0"})
            return
        model = body.get("model")
        if not model:
            self.send_json(400, {"error": "model is required"})
            return
        if model != OLLAMA_MODEL:
            self.send_json(404, {"error": f"model '{model}' not found"})
            return
        texts = self._inputs(body.get("input", []))
        if texts is None:
            self.send_json(400, {"error": "invalid input type"})
            return
        started = time.perf_counter_ns()
        vectors, counts = self.server.embedder.embed(texts)
        if body.get("truncate", True) is False and any(c > MAX_TOKENS for c in counts):
            self.send_json(400, {"error": "input exceeds maximum context length"})
            return
        # Ollama L2-normalizes every vector, after cutting it to ``dimensions`` if asked.
        dimensions = body.get("dimensions")
        if isinstance(dimensions, int) and dimensions > 0:
            vectors = [v[:dimensions] for v in vectors]
        vectors = [normalized(v) for v in vectors]
        if fault == "base64":
            encoded: list[Any] = [_b64(v) for v in vectors]
        else:
            encoded = vectors
        obj = {
            "model": model,
            "embeddings": encoded,
            "total_duration": time.perf_counter_ns() - started,
            "load_duration": 1042,
            "prompt_eval_count": sum(counts),
        }
        self._answer(fault, obj, encoded)


class TEIHandler(_EmbedHandler):
    def _error(self, status: int, message: str, kind: str) -> None:
        self.send_json(status, {"error": message, "error_type": kind})

    def do_POST(self) -> None:
        if self.path != "/embed":
            self.send_json(404, {"error": "Not Found"})
            return
        body = self.read_json()
        fault = self._fault()
        if fault == "429":
            self._error(429, "Model is overloaded", "overloaded")
            return
        texts = self._inputs(body.get("inputs"))
        if texts is None:
            self.send_json(422, {"error": "Failed to deserialize the JSON body", "error_type": ""})
            return
        if not texts:
            self._error(400, "`inputs` cannot be empty", "empty")
            return
        if fault == "413" or len(texts) > TEI_MAX_BATCH:
            limit = len(texts) - 1 if fault == "413" else TEI_MAX_BATCH
            message = f"batch size {len(texts)} > maximum allowed batch size {limit}"
            self._error(413, message, "validation")
            return
        vectors, counts = self.server.embedder.embed(texts)
        if not body.get("truncate", False):
            for count in counts:
                if count > MAX_TOKENS:
                    message = f"`inputs` must have less than {MAX_TOKENS} tokens. Given: {count}"
                    self._error(413, message, "validation")
                    return
        if body.get("normalize", True):
            vectors = [normalized(v) for v in vectors]
        dimensions = body.get("dimensions")
        if isinstance(dimensions, int) and dimensions > 0:
            vectors = [normalized(v[:dimensions]) for v in vectors]
        self._answer(fault, vectors, vectors)


def _b64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def go_bytes(obj: Any) -> bytes:
    """Compact JSON, as Go's ``json.Marshal`` and Rust's ``serde_json`` write it."""
    return json.dumps(obj, separators=(",", ":")).encode()


class EmbedServer(LoopbackServer):
    """A running emulator; queue faults with ``server.faults.append("count")``."""

    def __init__(self, handler: type[_EmbedHandler], embedder: Embedder) -> None:
        self.embed_httpd = EmbedHTTPServer(handler, embedder)
        self.httpd = self.embed_httpd
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def faults(self) -> deque[str]:
        return self.embed_httpd.faults


@contextlib.contextmanager
def serve_ollama(embedder: Embedder) -> Iterator[EmbedServer]:
    """An Ollama ``/api/embed`` emulator on 127.0.0.1 (``base_url`` is its root)."""
    server = EmbedServer(OllamaEmbedHandler, embedder)
    with server:
        yield server


@contextlib.contextmanager
def serve_tei(embedder: Embedder) -> Iterator[EmbedServer]:
    """A TEI ``/embed`` emulator on 127.0.0.1 (``base_url`` is its root)."""
    server = EmbedServer(TEIHandler, embedder)
    with server:
        yield server
