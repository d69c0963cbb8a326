"""What the probe sends: the fixed prompts, seed, schema, tool and image."""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

SEED = 42
CHAT_PROMPT = "What is the capital of France? Answer in one sentence."
CHAT_MAX_TOKENS = 16
# vLLM (hermes parser) generates ``<tool_call>\n{"name": "get_weather", "arguments": `` before
# the arguments: about 20 tokens that 24 would cut into a text answer with no tool call.
TOOL_MAX_TOKENS = 64
SEED_PROMPT = "Write one sentence about the sea."
JSON_PROMPT = "Give the capital of France as a JSON object with the key city."
TOOL_PROMPT = "What is the weather in Paris?"
IMAGE_PROMPT = "What colour is this image? Answer with one word."
COMPLETION_PROMPT = "The capital of France is"
UNKNOWN_MODEL = "customllm-probe-no-such-model"
WRONG_KEY = "customllm-probe-wrong-key"
MALFORMED_BODY = b'{"model": "x", "messages": [{"role": "user", "content": "hi"'
CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city."}},
            "required": ["city"],
        },
    },
}
NAMED_CHOICE: dict[str, Any] = {"type": "function", "function": {"name": "get_weather"}}


def tiny_png(size: int = 32, rgb: tuple[int, int, int] = (255, 0, 0)) -> bytes:
    """A solid-colour RGB PNG, made here so the probe needs no image file.

    Args:
        size: Width and height in pixels.
        rgb: The colour.

    Returns:
        The PNG file's bytes.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    row = b"\x00" + bytes(rgb) * size  # filter byte 0, then the pixels
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * size))
        + chunk(b"IEND", b"")
    )


def image_data_url() -> str:
    """The probe's image: a 32x32 red PNG as a base64 data URL."""
    return "data:image/png;base64," + base64.b64encode(tiny_png()).decode()
