"""The two llama.cpp starters: command lines, environments, and the C++ build's cache stamp.

No sockets and no compiler: the build is driven with stand-ins for pip, cmake and the built
binary (shell scripts), in a temporary cache.
"""

from __future__ import annotations

import importlib
import json
import pathlib
import tarfile
from types import ModuleType

import pytest


def _script(name: str) -> ModuleType:
    return importlib.import_module(f"scripts.{name}")


@pytest.fixture(autouse=True)
def _cache(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOMLLM_CACHE_DIR", str(tmp_path))


def test_llama_server_command_is_loopback_with_the_tools_template() -> None:
    local = _script("local_server")
    template = local.TOOLS_TEMPLATE
    cmd = local._server_command(8860, template)
    assert cmd[0].endswith("/llama-cpp/0.3.36/bin/llama-server")
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--port") + 1] == "8860"
    assert cmd[cmd.index("--alias") + 1] == "smollm2"
    assert cmd[cmd.index("-c") + 1] == "4096"
    assert cmd[cmd.index("-np") + 1] == "4"
    assert "--jinja" in cmd
    assert cmd[cmd.index("--chat-template-file") + 1] == str(template)
    assert "--chat-template-file" not in local._server_command(8860, None)


def test_an_embeddings_server_pools_mean_on_one_slot_without_chat_options() -> None:
    local = _script("local_server")
    cmd = local._server_command(8862, local.TOOLS_TEMPLATE, embeddings=True)
    joined = " ".join(cmd)
    assert "--embeddings --pooling mean --parallel 1" in joined
    assert cmd[cmd.index("--port") + 1] == "8862"
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--alias") + 1] == "smollm2"
    for chat_only in ("--jinja", "--chat-template-file", "-np"):
        assert chat_only not in cmd
    # The chat server keeps its options, and the two never share run files.
    assert "--embeddings" not in local._server_command(8860, local.TOOLS_TEMPLATE)
    pid = local.LLAMA_SERVER.run_file(8862, "pid")
    assert pid != local.LLAMA_SERVER.run_file(8860, "pid")
    assert pid.name == "llama-server-8862.pid"


def test_extra_args_come_before_the_loopback_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replica tests pass ``--threads``; the address stays the starter's, last on the line."""
    local = _script("local_server")

    def no_build(**_: object) -> None:
        raise AssertionError("refused arguments must be caught before install() builds")

    monkeypatch.setattr(local, "install", no_build)
    for embeddings in (False, True):
        cmd = local._server_command(
            8801, None, embeddings=embeddings, extra_args=("--threads", "1")
        )
        assert cmd[cmd.index("--threads") + 1] == "1"
        assert cmd[-4:] == ["--host", "127.0.0.1", "--port", "8801"]
    with pytest.raises(local.LocalServerError, match="--host or --port"):
        local.start(port=8801, extra_args=("--host", "0.0.0.0"))


def test_the_cli_forwards_embeddings(monkeypatch: pytest.MonkeyPatch) -> None:
    local = _script("local_server")
    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(local, "start", lambda *a, **k: calls.append((a, k)))
    assert local.main(["start", "--embeddings", "--port", "8862"]) == 0
    assert local.main(["start", "--port", "8860"]) == 0
    assert [k["embeddings"] for _, k in calls] == [True, False]
    assert calls[0][0][0] == 8862


def test_the_tools_template_is_committed_and_the_default() -> None:
    local = _script("local_server")
    assert local.TOOLS_TEMPLATE.is_file()
    assert local.DEFAULT_CHAT_TEMPLATE == local.TOOLS_TEMPLATE


def test_a_missing_template_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    local = _script("local_server")
    with pytest.raises(local.LocalServerError, match=r"chat template file .* does not exist"):
        local.start(port=8861, chat_template_file=tmp_path / "nope.jinja", verbose=False)


def test_llama_server_env_cannot_reconfigure_it(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LLAMA_ARG_HOST", "LLAMA_API_KEY", "llama_arg_port", "LLAMA_SERVER_ROUTER_PORT"):
        monkeypatch.setenv(var, "0.0.0.0")
    monkeypatch.setenv("KEEP_ME", "1")
    env = _script("local_server")._server_env()
    assert not [k for k in env if k.upper().startswith("LLAMA")]
    assert env["KEEP_ME"] == "1"


def test_llama_cpp_python_keeps_its_options_and_env_scrubbing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lcp = _script("llama_cpp_python_server")
    paths = _script("_cache").get_paths()
    cmd = lcp._server_command(paths, 8973, "chatml-function-calling")
    assert "llama_cpp.server" in cmd
    assert cmd[cmd.index("--chat_format") + 1] == "chatml-function-calling"
    assert cmd[cmd.index("--interrupt_requests") + 1] == "False"
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert paths.python.parent.parent.name == "llama-server"  # the venv keeps its old name
    for var in ("API_KEY", "HOST", "CONFIG_FILE"):
        monkeypatch.setenv(var, "x")
    assert not {"API_KEY", "HOST", "CONFIG_FILE"} & set(lcp._server_env())
    monkeypatch.delenv("CUSTOMLLM_LLAMA_CPP_PYTHON_PORT", raising=False)
    assert lcp.LLAMA_CPP_PYTHON.port() == 8973
    monkeypatch.setenv("CUSTOMLLM_LLAMA_CPP_PYTHON_PORT", "8974")
    assert lcp.LLAMA_CPP_PYTHON.port() == 8974


def test_both_builds_share_the_instruction_set_options(monkeypatch: pytest.MonkeyPatch) -> None:
    llama, build = _script("_llama"), _script("_llama_cpp")
    monkeypatch.setattr(llama, "_cpu_flags", lambda: {"avx", "avx2", "fma", "amx_int8"})
    options = build.cmake_options()
    assert "-DGGML_NATIVE=OFF" in options  # native would compile the AMX kernels in
    assert "-DGGML_AVX2=ON" in options
    assert not any("AMX" in opt for opt in options)
    assert dict(llama._build()[0])["CMAKE_ARGS"].split() == list(llama.isa_cmake_options())
    assert set(llama.isa_cmake_options()) <= set(options)


def _fake_toolchain(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    """A pip that 'downloads' a tiny sdist, a cmake that 'builds' a binary; returns the log."""
    sdist_dir = tmp_path / "pypi"
    tree = sdist_dir / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp"
    tree.mkdir(parents=True)
    (tree / "CMakeLists.txt").write_text("project(x)\n")
    (sdist_dir / "llama_cpp_python-0.3.36" / "setup.py").write_text("")
    sdist = sdist_dir / "llama_cpp_python-0.3.36.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(sdist_dir / "llama_cpp_python-0.3.36", arcname="llama_cpp_python-0.3.36")
    calls = tmp_path / "calls.log"
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    pip = bindir / "python"
    # `python -m pip download ... -d DEST`: copy the sdist to the last argument.
    pip.write_text(
        f'#!/bin/sh\necho "python $*" >> {calls}\n'
        'for a; do last="$a"; done\n'
        f'mkdir -p "$last" && cp {sdist} "$last"\n'
    )
    cmake = bindir / "cmake"
    # `cmake --build B ...` writes B/bin/llama-server (prints a version) and a library.
    cmake.write_text(
        f'#!/bin/sh\necho "cmake $*" >> {calls}\n'
        'if [ "$1" = "--build" ]; then mkdir -p "$2/bin";\n'
        '  printf "#!/bin/sh\\necho version: 1\\n" > "$2/bin/llama-server";\n'
        '  chmod +x "$2/bin/llama-server"; touch "$2/bin/libllama.so.0";\n'
        '  ln -s libllama.so.0 "$2/bin/libllama.so"; fi\n'
    )
    for f in (pip, cmake):
        f.chmod(0o755)
    build = _script("_llama_cpp")
    monkeypatch.setattr(build, "tools_python", lambda: pip)
    monkeypatch.setattr(build, "_tool", lambda name, say: str(cmake) if name == "cmake" else name)
    return calls


def test_cold_build_installs_then_a_warm_one_only_reads_the_stamp(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_toolchain(tmp_path, monkeypatch)
    build = _script("_llama_cpp")
    said: list[str] = []
    binary = build.ensure_built(said.append)
    assert binary == tmp_path / "llama-cpp" / "0.3.36" / "bin" / "llama-server"
    assert (binary.parent / "libllama.so").is_symlink()
    stamp = json.loads((binary.parent.parent / ".customllm-build.json").read_text())
    assert stamp == {"version": "0.3.36", "cmake_options": list(build.cmake_options())}
    lines = calls.read_text().splitlines()
    assert "--no-binary :all: llama-cpp-python==0.3.36" in lines[0]
    assert "-G Ninja" in lines[1]
    assert "-DLLAMA_BUILD_SERVER=ON" in lines[1]
    assert "--target llama-server" in lines[2]
    assert not list((tmp_path / "llama-cpp").glob(".build-*"))  # the scratch is gone
    build.ensure_built(said.append)
    assert len(calls.read_text().splitlines()) == 3  # warm: nothing ran
    # A cache built with other options is rebuilt, once.
    monkeypatch.setattr(build, "_BASE_OPTIONS", (*build._BASE_OPTIONS, "-DX=1"))
    build.ensure_built(said.append)
    assert len(calls.read_text().splitlines()) == 6
    assert any("options changed" in line for line in said)


def test_a_failed_build_names_its_log(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_toolchain(tmp_path, monkeypatch)
    build = _script("_llama_cpp")
    monkeypatch.setattr(build, "_tool", lambda name, say: "false")  # every cmake run fails
    with pytest.raises(build.LocalServerError, match=r"configuring llama.cpp") as info:
        build.ensure_built(lambda msg: None)
    assert str(build.build_log()) in str(info.value)
    assert not build.install_dir().exists()
