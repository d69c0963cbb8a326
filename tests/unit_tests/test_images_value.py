"""CustomImageGenerator is a value: copies, pickles, reassignment, model files."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import httpx
import pytest

from langchain_customllm import ConfigurationError, CustomImageGenerator, Pricing, load_models
from tests.servers.images import png, read_png
from tests.unit_tests._image_helpers import KEY, URL, ImageServer


def test_copies_and_pickles_are_values() -> None:
    model = CustomImageGenerator(model="painter", base_url=URL, api_key=KEY, size="8x8")
    for other in (copy.copy(model), copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        assert other.model_dump() == model.model_dump()
        assert other._runtime() is not model._runtime()
    revived = pickle.loads(pickle.dumps(model))
    server = ImageServer()
    revived.http_client = httpx.Client(transport=httpx.MockTransport(server._answer))
    revived.invoke("x")
    assert server.bodies[0]["size"] == "8x8"
    assert revived.api_key is not None
    assert revived.api_key.get_secret_value() == KEY


def test_reassignment_is_validated_and_used() -> None:
    server = ImageServer()
    model = server.model()
    model.size = "16x16"
    with pytest.raises(ConfigurationError, match="size"):
        model.size = "huge"
    assert model.size == "16x16"
    copied = model.model_copy(update={"n": 2})
    copied.invoke("x")
    model.invoke("y")
    assert [(b.get("n"), b["size"]) for b in server.bodies] == [(2, "16x16"), (None, "16x16")]


def test_models_yaml_builds_a_generator(tmp_path: Any) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n  painter:\n    type: image\n    model: tiny\n"
        f"    base_url: {URL}\n    size: 32x32\n"
        "    pricing: {input: 0, output: 0, per_image: 0.02}\n"
    )
    model = load_models(path)["painter"]
    assert isinstance(model, CustomImageGenerator)
    assert (model.size, model._runtime().pricing) == (
        "32x32",
        Pricing(input=0, output=0, per_image=0.02),
    )
    assert CustomImageGenerator.from_config(path).model == "tiny"
    path.write_text("models:\n  painter:\n    type: image\n    model: tiny\n    sise: 1x1\n")
    with pytest.raises(ConfigurationError, match="sise"):
        load_models(path)


def test_a_png_of_the_emulator_is_what_the_helpers_read() -> None:
    # The fixtures' own PNG writer and reader agree (the other tests lean on them).
    assert read_png(png(5, 3, (1, 2, 3))) == (5, 3, (1, 2, 3))
