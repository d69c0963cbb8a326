"""The server scripts: keys stay out of command lines and files; the shared start/stop flow.

No sockets: the flow is driven with a stand-in "server" (a sleeping Python process) whose
readiness is a file it creates.
"""

from __future__ import annotations

import importlib
import json
import os
import pathlib
import sys
from types import ModuleType
from typing import Any

import pytest

KEY = "sk-script-secret-0123456789"


def _script(name: str) -> ModuleType:
    return importlib.import_module(f"scripts.{name}")


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


def test_vllm_embeddings_use_the_pooling_runner_without_chat_options() -> None:
    vllm = _script("vllm_server")
    cmd = vllm._command(8974, embeddings=True)
    assert cmd[cmd.index("--runner") + 1] == "pooling"
    assert cmd[cmd.index("--convert") + 1] == "embed"
    pooler = json.loads(cmd[cmd.index("--pooler-config") + 1])
    assert pooler == {"pooling_type": "MEAN", "use_activation": False}
    assert cmd[cmd.index("--port") + 1] == "8974"
    assert cmd[cmd.index("--served-model-name") + 1] == "smollm2"
    assert cmd[cmd.index("--max-model-len") + 1] == "2048"
    assert "--enforce-eager" in cmd
    assert cmd[cmd.index("--dtype") + 1] == "float32"
    assert "--tool-call-parser" not in cmd
    chat = vllm._command(8970)
    assert "--runner" not in chat
    assert chat[chat.index("--tool-call-parser") + 1] == "hermes"


def test_litellm_embeddings_route_smollm2_embed_to_an_embeddings_backend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    litellm = _script("litellm_server")
    monkeypatch.setenv("CUSTOMLLM_LITELLM_MASTER_KEY", KEY)
    config = litellm.config(8976, embeddings=True)
    (route,) = config["model_list"]
    assert route["model_name"] == "smollm2-embed"
    assert route["litellm_params"]["model"] == "openai/smollm2"
    assert route["litellm_params"]["api_base"] == "http://127.0.0.1:8976/v1"
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}
    assert KEY not in json.dumps(config)
    chat = [m["model_name"] for m in litellm.config(8972)["model_list"]]
    assert chat == ["smollm2", "smollm2-limited", "rate-limited"]
    cmd = litellm._command(8975, 8976, embeddings=True)
    written = json.loads(litellm.LITELLM.run_file(8975, "yaml").read_text())
    assert written == config
    assert cmd[cmd.index("--port") + 1] == "8975"


def test_embeddings_flags_reach_the_starters(monkeypatch: pytest.MonkeyPatch) -> None:
    vllm, litellm = _script("vllm_server"), _script("litellm_server")
    seen: dict[str, Any] = {}
    backends: list[dict[str, Any]] = []
    monkeypatch.setattr(vllm, "start", lambda *a, **k: seen.update(vllm=k))
    assert vllm.main(["start", "--embeddings", "--port", "8974"]) == 0
    assert seen["vllm"]["embeddings"] is True
    # litellm's start brings its backend up through local_server.start(embeddings=...).
    monkeypatch.setattr(litellm, "install", lambda **k: None)
    reused = litellm._server.ServerHandle  # pid None: found running, so nothing to stop
    backend = reused(litellm.local_server.LLAMA_SERVER, 8976, pid=None)
    monkeypatch.setattr(litellm.local_server, "start", lambda **k: backends.append(k) or backend)
    monkeypatch.setattr(
        litellm._server, "start_server", lambda *a, **k: reused(litellm.LITELLM, 8975, pid=None)
    )
    litellm.start(8975, backend_port=8976, embeddings=True, verbose=False)
    assert backends == [{"port": 8976, "wait": 120.0, "embeddings": True, "verbose": False}]


def test_ports_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMLLM_VLLM_PORT", "9001")
    monkeypatch.setenv("CUSTOMLLM_LITELLM_PORT", "9002")
    assert _script("vllm_server").VLLM.port() == 9001
    assert _script("litellm_server").LITELLM.port() == 9002
    monkeypatch.setenv("CUSTOMLLM_VLLM_PORT", "x")
    vllm = _script("vllm_server")
    with pytest.raises(vllm.LocalServerError, match="not an integer"):
        vllm.VLLM.port()


def test_stop_without_a_server_is_a_no_op() -> None:
    assert _script("vllm_server").stop(8999, verbose=False) is False
    assert _script("litellm_server").stop(8998, verbose=False) is False


MARKER = b"customllm-unit-test-server"


def _fake_server(tmp_path: pathlib.Path) -> tuple[ModuleType, object, pathlib.Path]:
    srv = _script("_server")
    flag = tmp_path / "ready"
    server = srv.Server(
        name="fake-server",
        label="fake",
        title="the fake server",
        marker=MARKER,
        port_env="CUSTOMLLM_FAKE_PORT",
        default_port=8999,
        ready=lambda port: flag.exists(),
    )
    return srv, server, flag


def _sleeper(flag: pathlib.Path, code: str = "time.sleep(60)") -> list[str]:
    body = f"import pathlib, sys, time; pathlib.Path(sys.argv[1]).touch(); {code}"
    return [sys.executable, "-c", body, str(flag), MARKER.decode()]


def test_start_server_spawns_then_reuses_then_stops(tmp_path: pathlib.Path) -> None:
    srv, server, flag = _fake_server(tmp_path)
    procs = _script("_procs")
    handle = srv.start_server(
        server, 8999, command=lambda: _sleeper(flag), env=dict(os.environ), wait=30, verbose=False
    )
    pid_file = tmp_path / "run" / "fake-server-8999.pid"
    assert handle.started_by_us
    assert procs.running_pid(pid_file, MARKER) == handle.pid
    assert (tmp_path / "run" / "fake-server-8999.log").read_text().startswith("$ ")
    again = srv.start_server(
        server, 8999, command=lambda: pytest.fail("spawned twice"), env={}, wait=1, verbose=False
    )
    assert not again.started_by_us
    assert again.pid is None
    again.stop()  # not ours: a no-op
    status = srv.server_status(server, 8999)
    assert status.healthy
    assert status.pid == handle.pid
    pid = handle.pid
    handle.stop()
    assert not pid_file.exists()
    assert not procs._group_alive(pid)  # the whole group is gone (or a reaped zombie)
    assert srv.stop_server(server, 8999, verbose=False) is False


def test_a_server_that_exits_early_is_reported_with_its_log(tmp_path: pathlib.Path) -> None:
    srv, server, _ = _fake_server(tmp_path)
    never = tmp_path / "never"
    cmd = _sleeper(tmp_path / "x", "print('boom: no model'); sys.exit(3)")
    server = srv.Server(**{**server.__dict__, "ready": lambda port: never.exists()})
    with pytest.raises(_script("_cache").LocalServerError, match=r"(?s)code 3.*boom: no model"):
        srv.start_server(server, 8998, command=lambda: cmd, env=dict(os.environ), wait=30)
    assert not (tmp_path / "run" / "fake-server-8998.pid").exists()


def _tool_install(**options: Any) -> Any:
    """A pinned ``tool==1.0`` in ``<cache>/tool-server``."""
    return _script("_cache").VenvInstall(
        dirname="tool-server",
        label="tool",
        requirements=("tool==1.0",),
        version="1.0",
        check=options.pop("check", "print('1.0')"),
        note="tiny",
        log_name="tool-install.log",
        **options,
    )


def test_a_stamped_venv_is_not_checked_again(tmp_path: pathlib.Path) -> None:
    inst = _tool_install(check="raise SystemExit(1)", needs=("bin/tool",))
    (tmp_path / "tool-server" / "bin").mkdir(parents=True)
    (tmp_path / "tool-server" / "bin" / "python").touch()
    (tmp_path / "tool-server" / ".customllm-installed").write_text("1.0\n")
    assert inst.installed_version() is None  # bin/tool is missing
    (tmp_path / "tool-server" / "bin" / "tool").touch()
    assert inst.installed_version() == "1.0"
    assert inst.log == tmp_path / "run" / "tool-install.log"


def test_ports_are_checked_and_the_cli_prints_urls(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    local = _script("local_server")
    monkeypatch.setenv("CUSTOMLLM_SERVER_PORT", "70000")
    with pytest.raises(local.LocalServerError, match="out of range"):
        local.default_port()
    assert local.main(["url", "--port", "8080"]) == 0
    assert local.main(["url", "--port", "0"]) == 1
    out = capsys.readouterr()
    assert out.out == "http://127.0.0.1:8080/v1\n"
    assert "port 0 is out of range" in out.err


def test_another_build_is_uninstalled_then_rebuilt_with_the_build_options(
    tmp_path: pathlib.Path,
) -> None:
    # A stand-in venv whose "python" logs its calls; `pip install` changes what the check
    # prints, as a real rebuild would.
    bin_dir = tmp_path / "tool-server" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "version").write_text("1.0+march-native\n")
    fake = bin_dir / "python"
    fake.write_text(
        "#!/bin/sh\n"
        'here="$(dirname "$0")"\n'
        'echo "$* CMAKE_ARGS=${CMAKE_ARGS:-}" >> "$here/calls.log"\n'
        'if [ "$1" = "-c" ]; then cat "$here/version"; fi\n'
        'if [ "$3" = "install" ]; then echo 1.0 > "$here/version"; fi\n'
    )
    fake.chmod(0o755)
    inst = _tool_install(
        stamp=False,
        upgrade_pip=False,
        pip_args=("--no-cache-dir",),
        pip_env=(("CMAKE_ARGS", "-DGGML_NATIVE=OFF"),),
        rebuild=("tool",),
    )
    said: list[str] = []
    inst.ensure(said.append)
    calls = [c for c in (bin_dir / "calls.log").read_text().splitlines() if not c.startswith("-c")]
    assert calls == [
        "-m pip uninstall -y tool CMAKE_ARGS=",
        "-m pip install --no-cache-dir tool==1.0 CMAKE_ARGS=-DGGML_NATIVE=OFF",
    ]
    assert any("found 1.0+march-native" in line for line in said)
    inst.ensure(said.append)  # now the check passes: nothing is installed again
    assert len((bin_dir / "calls.log").read_text().splitlines()) == 5  # 3 checks, the 2 pips
    assert said[-1].startswith("tool: 1.0 already installed")


def test_llama_cpp_is_built_for_the_cpu_without_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    llama = _script("_llama")
    monkeypatch.setattr(llama, "_cpu_flags", lambda: {"avx", "avx2", "fma", "amx_int8"})
    env, wanted = llama._build()
    args = dict(env)["CMAKE_ARGS"].split()
    assert args[0] == "-DGGML_NATIVE=OFF"  # native would compile the AMX kernels in
    assert "-DGGML_AVX2=ON" in args
    assert "-DGGML_AVX512=OFF" in args
    assert not any("AMX" in arg for arg in args)
    assert wanted["AVX2"] is True
    assert wanted["AVX512"] is False
    monkeypatch.setattr(llama, "_cpu_flags", lambda: None)  # not x86 Linux: llama.cpp's default
    assert llama._build() == ((), {})
