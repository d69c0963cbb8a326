"""Property: whatever is done to a used model, it sends what a fresh one with its settings sends.

A used model (its runtime and pools built) is copied, deep-copied, pickled or has settings
reassigned, with random changes; the request it then sends (URL, headers, body, timeouts)
must equal the request of a model built fresh from the resulting settings.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from langchain_customllm import ChatCustomLLM, CustomLLM
from tests.unit_tests.wire import METHODS, Wire, call, wire

__all__ = ["wire"]  # the fixture, imported for pytest

_text = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
_secret = st.text("abcdefghijklmnopqrstuvwxyzABCDEF0123456789", min_size=8, max_size=24)

CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "base_url": st.sampled_from(
            ["https://a.test/v1", "https://b.test:8443/api/v1/", "http://127.0.0.1:9/v1"]
        ),
        "api_key": _secret.map(lambda key: f"sk-{key}"),
        "api_key_header": st.sampled_from(["Authorization", "x-api-key"]),
        "api_key_scheme": st.sampled_from(["Bearer", None]),
        "default_headers": st.dictionaries(_text.map(lambda name: f"x-{name}"), _text, max_size=3),
        "model": _text,
        "temperature": st.none() | st.floats(0, 2, allow_nan=False),
        "max_tokens": st.none() | st.integers(1, 4096),
        "top_p": st.none() | st.floats(0, 1, allow_nan=False),
        "seed": st.none() | st.integers(0, 2**31),
        "stop": st.none() | st.lists(_text, max_size=2),
        "timeout": st.none() | st.floats(0.5, 600, allow_nan=False),
        "extra_body": st.none() | st.dictionaries(_text, st.integers(0, 9), max_size=2),
        "server_profile": st.sampled_from([None, "vllm", "litellm", "ollama"]),
        "stream_usage": st.booleans(),
    },
)

HOW = ["reassign", "model_copy", "model_copy_deep", "copy+reassign", "deepcopy+reassign",
       "pickle+reassign"]  # fmt: skip


def _apply(model: Any, how: str, changes: dict[str, Any]) -> Any:
    if how == "model_copy":
        return model.model_copy(update=changes)
    if how == "model_copy_deep":
        return model.model_copy(update=changes, deep=True)
    if how.startswith("copy"):
        model = copy.copy(model)
    elif how.startswith("deepcopy"):
        model = copy.deepcopy(model)
    elif how.startswith("pickle"):
        model = pickle.loads(pickle.dumps(model))
    for name, value in changes.items():
        setattr(model, name, value)
    return model


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    cls=st.sampled_from([ChatCustomLLM, CustomLLM]),
    how=st.sampled_from(HOW),
    method=st.sampled_from(METHODS),
    changes=CHANGES,
)
def test_a_changed_model_sends_what_a_fresh_one_sends(
    wire: Wire, cls: type, how: str, method: str, changes: dict[str, Any]
) -> None:
    start = {"model": "m", "base_url": "https://start.test/v1", "api_key": "sk-start-12345678"}
    model = cls(**start, temperature=0.5, max_tokens=7)
    call(model, "invoke")  # used: runtime and pools built
    changed = _apply(model, how, changes)
    call(changed, method)
    fresh = cls(**{**start, "temperature": 0.5, "max_tokens": 7, **changes})
    call(fresh, method)
    # The model's own requests: a profile with a tokenizer also counts missing usage at
    # the server's root (/tokenize), cached, so the fresh model may send fewer of those.
    api = [sent for sent in wire.sent if "/v1/" in sent.url]
    sent_by_changed, sent_by_fresh = api[-2], api[-1]
    assert sent_by_changed.comparable() == sent_by_fresh.comparable()


@pytest.mark.parametrize("cls", [ChatCustomLLM, CustomLLM])
def test_the_property_sees_a_difference(wire: Wire, cls: type) -> None:
    # The comparison is not vacuous: two different settings send different requests.
    call(cls(model="m", base_url="https://a.test/v1", temperature=0.1), "invoke")
    call(cls(model="m", base_url="https://a.test/v1", temperature=0.2), "invoke")
    assert wire.sent[0].comparable() != wire.sent[1].comparable()
