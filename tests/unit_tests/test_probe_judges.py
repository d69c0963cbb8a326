"""`customllm probe` pure parts: the judges, profile scoring, recommendation, rendering."""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

import pytest

from langchain_customllm import probe
from langchain_customllm.probe import (
    Exchange,
    ProfileMatch,
    image_data_url,
    judge_errors,
    judge_image,
    judge_json_schema,
    judge_max_tokens,
    judge_seed,
    judge_stop,
    judge_stream,
    judge_tools,
    parse_sse,
    pick_stop,
    recommend,
    render_json,
    render_text,
    score_profiles,
    tiny_png,
)
from langchain_customllm.profiles import ServerProfile
from tests.unit_tests._probe_helpers import (
    LLAMACPP_PLAIN,
    probe_sim,
)

# --------------------------------------------------------------------------- pure parts


def ex(status: int | None = 200, body: Any = None, text: str | None = None, **kw: Any) -> Exchange:
    content = text if text is not None else json.dumps(body) if body is not None else ""
    return Exchange("POST", "/chat/completions", None, status=status, text=content, **kw)


def answer(
    content: str | None, finish: str = "stop", usage: tuple[int, int] | None = (10, 5)
) -> Exchange:
    body: dict[str, Any] = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ]
    }
    if usage:
        body["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1]}
    return ex(200, body)


def test_tiny_png_is_a_valid_png() -> None:
    data = tiny_png(4, (255, 0, 0))
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    idat_at = data.index(b"IDAT")
    length = int.from_bytes(data[idat_at - 4 : idat_at], "big")
    raw = zlib.decompress(data[idat_at + 4 : idat_at + 4 + length])
    assert raw == (b"\x00" + b"\xff\x00\x00" * 4) * 4
    assert image_data_url().startswith("data:image/png;base64,")
    assert base64.b64decode(image_data_url().split(",", 1)[1]) == tiny_png()


@pytest.mark.parametrize(
    ("text", "stop"),
    [
        ("The capital of France is Paris.", "France"),
        ("L'Étoile, la Cité, le Poulet (The", "Poulet"),
        ("Paris", None),
        ("", None),
        ("a b", None),
    ],
)
def test_pick_stop(text: str, stop: str | None) -> None:
    assert pick_stop(text) == stop


@pytest.mark.parametrize(
    ("got", "finish", "result", "included"),
    [
        ("The capital of ", "stop", "honoured, stop text excluded", False),
        ("The capital of", "stop", "honoured, stop text excluded", False),
        ("The capital of France", "stop", "honoured, stop text included", True),
        ("The capital of France is Paris.", "stop", "ignored", None),
        ("Something else", "stop", "honoured?, stop text excluded", False),
    ],
)
def test_judge_stop(got: str, finish: str, result: str, included: bool | None) -> None:
    rows, facts = judge_stop("The capital of France is Paris.", "France", answer(got, finish))
    assert rows[0].result == result
    assert facts["stop_included"] is included


def test_judge_max_tokens() -> None:
    assert judge_max_tokens(answer("a b c", "length", (9, 3)), 3)[1] == {
        "max_tokens_honoured": True
    }
    assert judge_max_tokens(answer("a b c d e", "stop", (9, 5)), 3)[1] == {
        "max_tokens_honoured": False
    }
    rows, facts = judge_max_tokens(ex(None, error="ReadTimeout: x", error_kind="timeout"), 3)
    assert facts == {"max_tokens_honoured": None}
    assert rows[0].supported is None


@pytest.mark.parametrize(
    ("texts", "verdict"),
    [(("a", "a", "b"), True), (("a", "b", "c"), False), (("a", "a", "a"), None)],
)
def test_judge_seed(texts: tuple[str, str, str], verdict: bool | None) -> None:
    _, facts = judge_seed(*(answer(t) for t in texts))
    assert facts["seed_deterministic"] is verdict


def test_parse_sse_and_stream_usage_comparison() -> None:
    body = (
        'data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'
        ": keep-alive\n\n"
        'data: {"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
        "data: not json\n\n"
        'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
        'data: {"choices":[],"usage":{"prompt_tokens":8,"completion_tokens":1}}\n\n'
        "data: [DONE]\n\n"
    )
    stream = parse_sse(body)
    assert (stream.text(), stream.done, stream.bad, stream.finish_reason()) == (
        "Hi",
        True,
        1,
        "stop",
    )
    streamed = ex(200, text=body, content_type="text/event-stream")
    rows, facts = judge_stream(streamed, answer("Hi", usage=(8, 1)))
    assert facts == {"streaming": True, "stream_usage": True, "usage_estimated": False}
    assert "choices []" in rows[1].evidence
    _, facts = judge_stream(streamed, answer("Hi", usage=(11, 1)))
    assert facts["usage_estimated"] is True


@pytest.mark.parametrize(
    ("content", "finish", "verdict", "result"),
    [
        ('{"city": "Paris"}', "stop", True, "yes"),
        ('{ "name": "Paris", "population": 1, "capital_', "length", True, "probably"),
        ("Paris is the capital.", "stop", False, "ignored"),
    ],
)
def test_judge_json_mode(content: str, finish: str, verdict: bool, result: str) -> None:
    rows, facts = probe.judge_json_mode(answer(content, finish))
    assert facts == {"json_mode": verdict}
    assert rows[0].result.startswith(result)


def test_judge_json_schema_unknown_when_no_answer() -> None:
    lost = ex(None, error="ConnectError", error_kind="connect")
    _, facts = judge_json_schema(lost, answer('{"city": "Paris"}'))
    assert facts["json_schema"] is None
    _, facts = judge_json_schema(ex(500, {"error": {"message": "no"}}), answer('{"city": "Paris"}'))
    assert facts["json_schema"] == "json_object_schema"
    _, facts = judge_json_schema(answer('{"city": "Paris"}'), answer("{}"))
    assert facts["json_schema"] == "native"
    _, facts = judge_json_schema(answer("Paris"), answer("Paris"))
    assert facts["json_schema"] == "none"


def tool_answer(arguments: str) -> Exchange:
    call = {
        "id": "c",
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments},
    }
    body = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ]
    }
    return ex(200, body)


def test_judge_tools_string_arguments_without_strict_probe() -> None:
    double = tool_answer(json.dumps(json.dumps({"city": "Paris"})))
    empty_stream = ex(200, text="", content_type="text/event-stream")
    rows, facts = judge_tools(answer("no"), double, ex(400, {"error": "x"}), empty_stream, None)
    assert facts["strict_tools"] is True
    assert facts["tool_choice_named"] is True
    assert facts["tool_choice_required"] is False
    assert "JSON string" in rows[1].evidence


def test_judge_tools_invalid_arguments_do_not_count() -> None:
    _, facts = judge_tools(answer("no"), tool_answer("{not json"), answer("no"), answer("no"), None)
    assert facts["tool_choice_named"] is False
    assert facts["tool_calling"] is False


@pytest.mark.parametrize(
    ("image", "verdict", "supported"),
    [
        (answer("Red.", usage=(40, 2)), "read", True),
        (answer("Blue.", usage=(140, 2)), "as_text", False),
        (answer("Blue.", usage=(21, 2)), "ignored", False),
        (answer("Blue.", usage=(900, 2)), "unclear", None),
        (ex(400, {"error": {"message": "no images"}}), "refused", False),
    ],
)
def test_judge_image(image: Exchange, verdict: str, supported: bool | None) -> None:
    rows, facts = judge_image(
        answer("Blue.", usage=(20, 2)), answer("Blue.", usage=(20, 2)), image, "x" * 150
    )
    assert facts["image_verdict"] == verdict
    assert rows[-1].supported is supported
    assert facts["content_parts"] is True


def test_judge_errors_rows() -> None:
    rows, facts = judge_errors(
        ex(404, {"error": {"message": "model not found"}}),
        ex(400, {"error": {"message": "bad json"}}),
        ex(401, {"detail": "Invalid API key"}),
        ex(401, {"detail": "Missing key"}),
    )
    assert [r.supported for r in rows] == [True, True, True]
    assert facts["wrong_key_status"] == 401
    assert "no key: 401" in rows[2].evidence


def test_score_profiles_ignores_unmeasured_and_breaks_ties() -> None:
    profiles = {
        "a": ServerProfile("a", n=False),
        "b": ServerProfile("b", n=False),
        "c": ServerProfile("c"),
    }
    matches = score_profiles({"n": False, "logprobs": None, "chat": True}, profiles)
    assert [m.name for m in matches] == ["a", "b", "c"]
    assert (matches[0].agree, matches[0].compared) == (1, 1)
    assert matches[2].differences == {"n": (True, False)}
    assert score_profiles({"n": False}, profiles, hint="b")[0].name == "b"


def test_recommend_spells_python() -> None:
    best = ProfileMatch("llama-cpp-python", 9, 10, {"n": (False, True)})
    line = recommend("http://h/v1", "m", best, "MY_KEY")
    assert line == (
        'ChatCustomLLM(base_url="http://h/v1", model="m", '
        'server_profile={"base": "llama-cpp-python", "n": True}, api_key=os.environ["MY_KEY"])'
    )
    assert recommend("http://h/v1", "m", ProfileMatch("generic", 3, 3, {})) == (
        'ChatCustomLLM(base_url="http://h/v1", model="m")'
    )
    # The default variable is read by ChatCustomLLM itself.
    assert "api_key" not in recommend("http://h/v1", "m", None, "CUSTOMLLM_API_KEY")


def test_render_json_round_trips() -> None:
    report = probe_sim(LLAMACPP_PLAIN)
    data = json.loads(render_json(report))
    assert data["best_profile"] == "llama-cpp-python"
    assert data["overrides"] == {}
    assert [r["key"] for r in data["rows"]] == [r.key for r in report.rows]
    assert data["profiles"][0]["score"] == 1.0
    assert len(render_text(report).splitlines()) > len(report.rows)
