"""An OpenAI images API emulator on loopback that draws real, small PNGs.

Written from OpenAI's API reference for ``POST /v1/images/generations`` (openai-python
``types/image_generate_params.py``, ``types/images_response.py``, ``resources/images.py``)
and its error shape (``{"error": {"message", "type", "param", "code"}}``). Two models, as
the two generations of OpenAI's image models behave:

- ``tiny-dalle`` (the DALL-E way): ``response_format`` ``url`` (the default) or
  ``b64_json``; every image has a ``revised_prompt``; no ``usage``.
- ``tiny-gpt-image`` (the GPT image way): always ``b64_json``, and a ``response_format``
  is a 400 (``Unknown parameter``); ``usage`` with ``input_tokens`` (one per prompt word),
  ``output_tokens`` (one per 16 pixels of each image) and ``input_tokens_details``; the
  answer echoes ``size``, ``quality``, ``output_format`` and ``background``. Only ``png``
  is drawn here: another ``output_format`` is a 400.

Each image is a solid colour from a hash of the prompt and the image's index
(`colour_of`), ``size`` pixels (``16x16`` to ``64x64``, ``auto`` and the default are
``32x32``; any other size is a 400 as OpenAI words it). URL images are served by the same
server (``GET /images/<id>.png``). A wrong key is a 401, an unknown model a 404, a bad
``n`` (1 to 10) or an empty prompt a 400.

An in-house variant for custom YAML mappings: ``POST /inhouse/render`` with ``x-api-key``,
``{"text", "width", "height", "count", "encoding": "base64" | "link"}`` in,
``{"job": {"id", "outputs": [{"png" | "link", "prompt_used"}]}, "meta": {"tokens_in",
"tokens_out"}}`` out, and ``{"fault": {"reason"}}`` with a 400 or 401 for errors.

Faults (`ImagesServer.faults`, one per generation request): ``429`` (with
``Retry-After: 0``), ``500``, ``cut`` (half the body, then the connection closes),
``count`` (one image too few), and on OpenAI's route only ``garbage`` (base64 of an
HTML page), ``not_base64``, ``ftp_url`` (an ``ftp://`` URL), ``no_data`` (an answer
without ``data``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from typing import Any

from tests.servers.base import Handler, LoopbackHTTPServer, LoopbackServer

DALLE = "tiny-dalle"
GPT_IMAGE = "tiny-gpt-image"
KEY = "sk-images-test-key-1357"
SIZES = ("16x16", "32x32", "48x48", "64x64", "64x32", "32x64")
DEFAULT_SIZE = "32x32"
HTML = b"<html><body>502 Bad Gateway</body></html>"


def colour_of(prompt: str, index: int = 0) -> tuple[int, int, int]:
    """The colour of image ``index`` for ``prompt``."""
    digest = hashlib.sha256(f"{prompt}\n{index}".encode()).digest()
    return digest[0], digest[1], digest[2]


def png(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    """A solid-colour 8-bit RGB PNG (PNG spec: signature, IHDR, one IDAT, IEND)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\x00" + bytes(colour) * width  # filter type 0 (None) before each scanline
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def read_png(data: bytes) -> tuple[int, int, tuple[int, int, int]]:
    """Width, height and the first pixel's colour of a PNG `png` drew (for the tests)."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), data[:16]
    width, height = struct.unpack(">II", data[16:24])
    length = struct.unpack(">I", data[33:37])[0]
    pixels = zlib.decompress(data[41 : 41 + length])
    return width, height, (pixels[1], pixels[2], pixels[3])


def openai_error(
    message: str, kind: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error body."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class ImagesHTTPServer(LoopbackHTTPServer):
    """The HTTP server: the key it wants, the images it serves, the queued faults."""

    def __init__(self, key: str | None) -> None:
        super().__init__(ImagesHandler, None)
        self.key = key
        self.faults: deque[str] = deque()
        self.stored: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def store(self, data: bytes) -> str:
        """Keep an image to serve; its path."""
        with self.lock:
            name = f"{len(self.stored)}-{hashlib.sha256(data).hexdigest()[:12]}.png"
            self.stored[name] = data
        return f"/images/{name}"


class ImagesHandler(Handler):
    server: ImagesHTTPServer

    def _url(self, path: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def do_GET(self) -> None:
        name = self.path.removeprefix("/images/")
        data = self.server.stored.get(name) if self.path.startswith("/images/") else None
        if data is None:
            self.send_json(404, openai_error(f"No image at {self.path}", "invalid_request_error"))
            return
        self.send_response(200)
        self.send_header("content-type", "image/png")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = self.read_json()
        if self.path == "/inhouse/render":
            self._inhouse(body)
        elif self.path == "/v1/images/generations":
            self._generations(body)
        else:
            self.send_json(
                404, openai_error(f"Unknown request URL: POST {self.path}", "invalid_request_error")
            )

    # ---------------------------------------------------------------- faults

    def _fault(self) -> str | None:
        return self.server.faults.popleft() if self.server.faults else None

    def _status_fault(self, fault: str | None) -> bool:
        if fault == "429":
            message = "Rate limit reached for images per minute. Please try again in 0s."
            self.send_json(
                429, openai_error(message, "requests", "rate_limit_exceeded"), {"retry-after": "0"}
            )
            return True
        if fault == "500":
            self.send_json(500, openai_error("The server had an error.", "server_error"))
            return True
        return False

    def _send(self, fault: str | None, obj: dict[str, Any]) -> None:
        if fault == "cut":
            self.send_cut(json.dumps(obj).encode())
        else:
            self.send_json(200, obj)

    # ---------------------------------------------------------------- OpenAI's API

    def _refuse(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        """The error answer for a request OpenAI would refuse, or None."""
        if self.server.key and self.headers.get("authorization") != f"Bearer {self.server.key}":
            message = "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."
            return 401, openai_error(message, "invalid_request_error", "invalid_api_key")
        model = body.get("model", DALLE)
        if model not in (DALLE, GPT_IMAGE):
            message = f"The model '{model}' does not exist or you do not have access to it."
            return 404, openai_error(message, "invalid_request_error", "model_not_found")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return 400, openai_error(
                "Missing required parameter: 'prompt'.",
                "invalid_request_error",
                "missing_required_parameter",
                "prompt",
            )
        n = body.get("n", 1)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
            message = f"Invalid 'n': integer must be between 1 and 10, got {n!r}."
            return 400, openai_error(message, "invalid_request_error", "invalid_value", "n")
        size = body.get("size", "auto")
        if size != "auto" and size not in SIZES:
            message = f"{size!r} is not one of {list(SIZES)} - 'size'"
            return 400, openai_error(message, "invalid_request_error", None, None)
        if model == GPT_IMAGE and "response_format" in body:
            return 400, openai_error(
                "Unknown parameter: 'response_format'.",
                "invalid_request_error",
                "unknown_parameter",
                "response_format",
            )
        if body.get("response_format", "url") not in ("url", "b64_json"):
            wrong = body["response_format"]
            message = f"Invalid value: {wrong!r}. Supported values are: 'url' and 'b64_json'."
            return 400, openai_error(
                message, "invalid_request_error", "invalid_value", "response_format"
            )
        if body.get("output_format", "png") != "png":
            return 400, openai_error(
                "This emulator draws png only.",
                "invalid_request_error",
                "invalid_value",
                "output_format",
            )
        return None

    def _generations(self, body: dict[str, Any]) -> None:
        fault = self._fault()
        if self._status_fault(fault):
            return
        refused = self._refuse(body)
        if refused is not None:
            self.send_json(*refused)
            return
        model, prompt, n = body.get("model", DALLE), body["prompt"], body.get("n", 1)
        size = DEFAULT_SIZE if body.get("size", "auto") == "auto" else body["size"]
        width, height = (int(part) for part in size.split("x"))
        count = n - 1 if fault == "count" else n
        drawn = [png(width, height, colour_of(prompt, i)) for i in range(count)]
        as_url = model == DALLE and body.get("response_format", "url") == "url"
        data: list[dict[str, Any]] = []
        for index, image in enumerate(drawn):
            if fault == "garbage":
                image = HTML
            entry: dict[str, Any] = {}
            if fault == "ftp_url":
                entry["url"] = f"ftp://127.0.0.1/{index}.png"
            elif as_url:
                entry["url"] = self._url(self.server.store(image))
            elif fault == "not_base64":
                entry["b64_json"] = "this is not base64!"
            else:
                entry["b64_json"] = base64.b64encode(image).decode()
            if model == DALLE:
                entry["revised_prompt"] = f"A detailed picture of {prompt}"
            data.append(entry)
        answer: dict[str, Any] = {"created": int(time.time()), "data": data}
        if fault == "no_data":
            del answer["data"]
        if model == GPT_IMAGE:
            words = len(prompt.split())
            answer.update(
                size=size,
                quality=body.get("quality", "auto"),
                output_format="png",
                background=body.get("background", "opaque"),
            )
            output = count * (width * height // 16)
            answer["usage"] = {
                "input_tokens": words,
                "input_tokens_details": {"text_tokens": words, "image_tokens": 0},
                "output_tokens": output,
                "total_tokens": words + output,
            }
        self._send(fault, answer)

    # ---------------------------------------------------------------- in-house variant

    def _inhouse(self, body: dict[str, Any]) -> None:
        fault = self._fault()
        if fault == "429":
            self.send_json(429, {"fault": {"reason": "busy"}}, {"retry-after": "0"})
            return
        if fault == "500":
            self.send_json(500, {"fault": {"reason": "renderer crashed"}})
            return
        if self.server.key and self.headers.get("x-api-key") != self.server.key:
            self.send_json(401, {"fault": {"reason": "unknown api key"}})
            return
        text, count = body.get("text"), body.get("count", 1)
        width, height = body.get("width", 32), body.get("height", 32)
        if not isinstance(text, str) or not text:
            self.send_json(400, {"fault": {"reason": "text is required"}})
            return
        if not all(isinstance(v, int) and 16 <= v <= 64 for v in (width, height)):
            self.send_json(
                400, {"fault": {"reason": f"width and height are 16 to 64, not {width}x{height}"}}
            )
            return
        outputs = []
        for index in range(count - 1 if fault == "count" else count):
            image = png(width, height, colour_of(text, index))
            output = {"prompt_used": text.upper()}
            if body.get("encoding", "base64") == "link":
                output["link"] = self._url(self.server.store(image))
            else:
                output["png"] = base64.b64encode(image).decode()
            outputs.append(output)
        answer = {
            "job": {
                "id": f"job-{hashlib.sha256(text.encode()).hexdigest()[:8]}",
                "outputs": outputs,
            },
            "meta": {"tokens_in": len(text.split()), "tokens_out": len(outputs) * 10},
        }
        self._send(fault, answer)


class ImagesServer(LoopbackServer):
    """A running emulator; queue faults with ``server.faults.append("429")``."""

    def __init__(self, key: str | None = KEY) -> None:
        self.images_httpd = ImagesHTTPServer(key)
        self.httpd = self.images_httpd
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def faults(self) -> deque[str]:
        return self.images_httpd.faults

    @property
    def stored(self) -> dict[str, bytes]:
        return self.images_httpd.stored


@contextlib.contextmanager
def serve_images(key: str | None = KEY) -> Iterator[ImagesServer]:
    """The emulator on 127.0.0.1 (OpenAI's ``base_url`` is its ``/v1``)."""
    with ImagesServer(key) as server:
        yield server
