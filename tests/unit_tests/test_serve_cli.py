"""``customllm serve``'s command line: arguments and refusals, before anything is served."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from langchain_customllm.cli import main
from langchain_customllm.serve.cli import (
    SETTINGS_VARIABLE,
    app_from_environment,
    settings_from,
)

MODELS = {"models": {"local": {"model": "smollm2", "base_url": "http://127.0.0.1:8765/v1"}}}


def _serve(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    return main(["serve", *argv], stderr=err), err.getvalue()


@pytest.fixture
def models_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.json"
    path.write_text(json.dumps(MODELS))
    return path


def test_help_lists_serve_beside_probe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "serve" in out
    assert "probe" in out
    assert main(["serve", "--help"]) == 0
    assert "--workers" in capsys.readouterr().out


def test_a_bad_models_file_is_refused_before_serving(tmp_path: Path) -> None:
    code, err = _serve([str(tmp_path / "missing.yaml")])
    assert code == 2
    assert "Cannot read model configuration" in err


def test_a_public_address_needs_client_keys(models_file: Path) -> None:
    code, err = _serve([str(models_file), "--host", "0.0.0.0"])
    assert code == 2
    assert "--api-key-env" in err


def test_an_unset_key_variable_is_named_not_quoted(models_file: Path) -> None:
    code, err = _serve([str(models_file), "--api-key-env", "CUSTOMLLM_TEST_UNSET_KEY_VAR"])
    assert code == 2
    assert "CUSTOMLLM_TEST_UNSET_KEY_VAR" in err


def test_an_adapter_module_that_does_not_import_is_named(models_file: Path) -> None:
    code, err = _serve([str(models_file), "--import", "no_such_adapter_module"])
    assert code == 2
    assert "--import no_such_adapter_module" in err


def test_bad_numbers(models_file: Path) -> None:
    assert _serve([str(models_file), "--workers", "0"])[0] == 2
    assert _serve([str(models_file), "--max-tokens", "many"])[0] == 2


def test_workers_build_the_same_app_from_the_settings_variable(
    models_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    from langchain_customllm.cli import _parser

    args: argparse.Namespace = _parser().parse_args(
        ["serve", str(models_file), "--api-key-env", "GW_TEST_KEYS", "--max-tokens", "none"]
    )
    settings = settings_from(args)
    assert settings.max_tokens is None
    monkeypatch.setenv("GW_TEST_KEYS", "k-123456789")
    monkeypatch.setenv(SETTINGS_VARIABLE, json.dumps(settings.__dict__))
    app = app_from_environment()
    gateway = app.state.gateway
    assert list(gateway.entries) == ["local"]
    assert gateway.options.client_keys.accepts(b"k-123456789")
    assert "k-123456789" not in json.dumps(settings.__dict__)
