"""A fast OpenAI-compatible stub server for the benchmark (loopback only, stdlib only).

It answers ``POST /v1/chat/completions`` and ``POST /v1/completions`` (also without ``/v1``)
from pre-rendered bytes, so the client under test is the bottleneck, never the server:

- asyncio streams, HTTP/1.1 keep-alive (many requests per connection), no framework;
- whole answers: one cached ``bytes`` object per endpoint (headers + JSON body);
- streams (``"stream": true``): chunked transfer encoding with **one chunk frame per SSE
  event**, as llama.cpp and vLLM send them, pre-rendered and cached per (endpoint, count,
  usage); the event count is the request's ``x-stub-chunks`` header, else ``max_tokens`` /
  ``max_completion_tokens``, else 16. ``x-stub-delay-ms`` delays the answer (to see how many
  requests a client really keeps in flight). Order: a role event (chat only), N content events,
  a finish event, a usage event when ``stream_options.include_usage``, then ``[DONE]``.
- ``POST /v1/embeddings``: one vector of ``EMBED_WIDTH`` floats per input (base64 float32
  when ``encoding_format`` is ``base64``, as OpenAI's SDK asks by default), pre-rendered and
  cached per (count, encoding), with usage; for the embeddings row (``embed_bench.py``).
- ``GET /health`` and ``GET /v1/models`` answer small JSON; ``GET /stats`` the most requests
  in flight at once and the request count since the last ``/stats`` (then resets them).

Run as a separate process: ``python bench/stub_server.py [--port 0]`` prints
``PORT <n>`` on stdout once it listens, then serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import signal
import struct
import sys

HOST = "127.0.0.1"  # loopback only, always
MODEL = "stub-model"
CREATED = 1_700_000_000
DEFAULT_CHUNKS = 16
MAX_CHUNKS = 1_000_000
CONTENT = " tok"  # the text of every streamed content event
ANSWER = "Hello! How can I help you today?"
USAGE = {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18}
_WRITE_BLOCK = 1 << 20  # bytes per write()+drain() of a long stream


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _response(status: str, body: bytes, content_type: bytes = b"application/json") -> bytes:
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\n"
        b"content-type: " + content_type + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: keep-alive\r\n\r\n" + body
    )


_WHOLE = {
    "chat": _response(
        "200 OK",
        _dumps(
            {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": CREATED,
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": ANSWER},
                        "finish_reason": "stop",
                    }
                ],
                "usage": USAGE,
            }
        ),
    ),
    "text": _response(
        "200 OK",
        _dumps(
            {
                "id": "cmpl-stub",
                "object": "text_completion",
                "created": CREATED,
                "model": MODEL,
                "choices": [
                    {"index": 0, "text": ANSWER, "finish_reason": "stop", "logprobs": None}
                ],
                "usage": USAGE,
            }
        ),
    ),
}
_NOT_FOUND = _response("404 Not Found", b'{"error":{"message":"not found","code":404}}')
_BAD_REQUEST = _response("400 Bad Request", b'{"error":{"message":"bad request","code":400}}')
_HEALTH = _response("200 OK", b'{"status":"ok"}')
_MODELS = _response("200 OK", _dumps({"object": "list", "data": [{"id": MODEL}]}))
_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream\r\n"
    b"cache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n"
    b"connection: keep-alive\r\n\r\n"
)


def _frame(obj: object) -> bytes:
    """One SSE event as one HTTP chunk frame."""
    event = b"data: " + (obj if isinstance(obj, bytes) else _dumps(obj)) + b"\n\n"
    return f"{len(event):x}\r\n".encode() + event + b"\r\n"


def _chunk(kind: str, delta: dict[str, object] | None, finish: str | None) -> dict[str, object]:
    if kind == "chat":
        choice: dict[str, object] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "choices": [choice],
        }
    text = (delta or {}).get("content", "")
    return {
        "id": "cmpl-stub",
        "object": "text_completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
    }


_FRAMES = {
    kind: {
        "role": _frame(_chunk("chat", {"role": "assistant", "content": ""}, None)),
        "content": _frame(_chunk(kind, {"content": CONTENT}, None)),
        "finish": _frame(_chunk(kind, {}, "stop")),
        "usage": _frame({**_chunk(kind, None, None), "choices": [], "usage": USAGE}),
        "done": _frame(b"[DONE]") + b"0\r\n\r\n",
    }
    for kind in ("chat", "text")
}
_stream_cache: dict[tuple[str, int, bool], bytes] = {}
# Requests being answered now, and the most at once since the last GET /stats.
_stats = {"inflight": 0, "max_inflight": 0, "requests": 0}


def stream_body(kind: str, count: int, usage: bool) -> bytes:
    """The whole chunked SSE answer (headers included), cached per shape."""
    key = (kind, count, usage)
    body = _stream_cache.get(key)
    if body is None:
        frames = _FRAMES[kind]
        body = b"".join(
            (
                _STREAM_HEAD,
                frames["role"] if kind == "chat" else b"",
                frames["content"] * count,
                frames["finish"],
                frames["usage"] if usage else b"",
                frames["done"],
            )
        )
        if len(_stream_cache) > 32:
            _stream_cache.clear()
        _stream_cache[key] = body
    return body


def _chunk_count(headers: dict[bytes, bytes], req: dict[str, object]) -> int:
    raw = headers.get(b"x-stub-chunks")
    if raw is not None:
        value: object = int(raw)
    else:
        value = req.get("max_tokens") or req.get("max_completion_tokens") or DEFAULT_CHUNKS
    if not isinstance(value, int) or value < 0:
        return DEFAULT_CHUNKS
    return min(value, MAX_CHUNKS)


EMBED_WIDTH = 384
_EMBED_VECTOR = [round(0.001 * (i % 97) - 0.05, 6) for i in range(EMBED_WIDTH)]
_embed_cache: dict[tuple[int, bool], bytes] = {}


def embed_body(count: int, b64: bool) -> bytes:
    """An OpenAI ``/embeddings`` answer for ``count`` inputs (cached)."""
    key = (count, b64)
    cached = _embed_cache.get(key)
    if cached is None:
        vector: object = (
            base64.b64encode(struct.pack(f"<{EMBED_WIDTH}f", *_EMBED_VECTOR)).decode()
            if b64
            else _EMBED_VECTOR
        )
        data = [{"object": "embedding", "index": i, "embedding": vector} for i in range(count)]
        usage = {"prompt_tokens": 4 * count, "total_tokens": 4 * count}
        obj = {"object": "list", "data": data, "model": MODEL, "usage": usage}
        cached = _embed_cache[key] = _response("200 OK", _dumps(obj))
    return cached


def answer(method: bytes, path: bytes, headers: dict[bytes, bytes], body: bytes) -> bytes:
    """The full HTTP response bytes for one request."""
    path = path.split(b"?", 1)[0]
    if path.startswith(b"/v1/"):
        path = path[3:]
    if method == b"GET":
        if path == b"/stats":
            body = _dumps({k: _stats[k] for k in ("max_inflight", "requests")})
            _stats["max_inflight"] = _stats["requests"] = 0
            return _response("200 OK", body)
        if path == b"/models":
            return _MODELS
        return _HEALTH if path == b"/health" else _NOT_FOUND
    if path == b"/chat/completions":
        kind = "chat"
    elif path == b"/completions":
        kind = "text"
    elif path == b"/embeddings":
        kind = "embed"
    else:
        return _NOT_FOUND
    try:
        req = json.loads(body)
    except ValueError:
        return _BAD_REQUEST
    if not isinstance(req, dict):
        return _BAD_REQUEST
    if kind == "embed":
        texts = req.get("input")
        if not isinstance(texts, list):
            return _BAD_REQUEST
        return embed_body(len(texts), req.get("encoding_format") == "base64")
    if not req.get("stream"):
        return _WHOLE[kind]
    options = req.get("stream_options")
    usage = isinstance(options, dict) and bool(options.get("include_usage"))
    return stream_body(kind, _chunk_count(headers, req), usage)


async def _serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            lines = head.split(b"\r\n")
            try:
                method, path, _version = lines[0].split(b" ", 2)
            except ValueError:
                return
            headers: dict[bytes, bytes] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(b":")
                if sep:
                    headers[name.strip().lower()] = value.strip()
            length = int(headers.get(b"content-length", b"0") or 0)
            body = await reader.readexactly(length) if length else b""
            post = method == b"POST"
            if post:
                _stats["inflight"] += 1
                _stats["requests"] += 1
                _stats["max_inflight"] = max(_stats["max_inflight"], _stats["inflight"])
            try:
                out = answer(method, path, headers, body)
                delay = headers.get(b"x-stub-delay-ms")
                if delay:
                    await asyncio.sleep(int(delay) / 1000)
            finally:
                if post:
                    _stats["inflight"] -= 1
            if len(out) <= _WRITE_BLOCK:
                writer.write(out)
                await writer.drain()
            else:
                view = memoryview(out)
                for start in range(0, len(out), _WRITE_BLOCK):
                    writer.write(view[start : start + _WRITE_BLOCK])
                    await writer.drain()
            if headers.get(b"connection", b"").lower() == b"close":
                return
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
        return  # the client left, or the server is shutting down
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(port: int) -> None:
    """Listen on 127.0.0.1:port (0: any free port), print ``PORT <n>``, serve until a signal."""
    server = await asyncio.start_server(_serve_connection, HOST, port, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {bound}\n")
    sys.stdout.flush()
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
