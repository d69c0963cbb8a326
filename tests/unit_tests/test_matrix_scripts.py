"""The matrix's server scripts: keys stay out of command lines and files (no processes run)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys
from types import ModuleType

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEY = "sk-script-secret-0123456789"


def _script(name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _cache(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMLLM_CACHE_DIR", str(tmp_path))


def test_vllm_key_goes_through_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    vllm = _script("vllm_server")
    monkeypatch.setenv("VLLM_API_KEY", "someone-elses")
    cmd = vllm._command(8970)
    env = vllm._server_env(KEY)
    assert KEY not in " ".join(cmd)
    assert env["VLLM_API_KEY"] == KEY
    assert vllm._server_env(None).get("VLLM_API_KEY") is None  # the caller's is not inherited
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert "--enforce-eager" in cmd
    assert cmd[cmd.index("--dtype") + 1] == "float32"


def test_litellm_key_is_never_on_disk_or_in_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    litellm = _script("litellm_server")
    monkeypatch.setenv("CUSTOMLLM_LITELLM_MASTER_KEY", KEY)
    monkeypatch.setenv("DATABASE_URL", "postgres://db.example/x")
    config = json.dumps(litellm.config(8972))
    assert KEY not in config
    assert "os.environ/LITELLM_MASTER_KEY" in config
    assert "http://127.0.0.1:8972/v1" in config
    env = litellm._server_env(litellm.master_key())
    assert env["LITELLM_MASTER_KEY"] == KEY
    assert "DATABASE_URL" not in env  # no database: the gateway as the tests expect it


def test_ports_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMLLM_VLLM_PORT", "9001")
    monkeypatch.setenv("CUSTOMLLM_LITELLM_PORT", "9002")
    assert _script("vllm_server").default_port() == 9001
    assert _script("litellm_server").default_port() == 9002
    monkeypatch.setenv("CUSTOMLLM_VLLM_PORT", "x")
    vllm = _script("vllm_server")
    with pytest.raises(vllm.LocalServerError, match="not an integer"):
        vllm.default_port()


def test_stop_without_a_server_is_a_no_op() -> None:
    assert _script("vllm_server").stop(8999, verbose=False) is False
    assert _script("litellm_server").stop(8998, verbose=False) is False
