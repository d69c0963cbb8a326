"""Pid files and process groups: spawn a server in its own group, poll it, stop it.

POSIX-only (process groups; ``/proc`` where there is one). Every server runs as the
leader of its own session/process group, so a stop signals it and whatever it spawned,
and it survives the exit of the command-line ``start`` that launched it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from scripts._cache import LocalServerError, tail

STOP_TIMEOUT_S = 10.0
POLL_S = 0.25

# urllib honours http_proxy/HTTP_PROXY, and a proxy would turn a loopback health check
# into a request to another host. An opener with an empty ProxyHandler guarantees the
# request goes straight to 127.0.0.1.
NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether ``GET url`` (loopback, no proxy) answers 200."""
    try:
        with NO_PROXY_OPENER.open(url, timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (OSError, ValueError):  # URLError/HTTPError/timeouts are OSError
        return False


def read_pid(pid_file: Path) -> int | None:
    """The pid written in ``pid_file``, or None if it is missing or garbled."""
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def running_pid(pid_file: Path, marker: bytes) -> int | None:
    """The pid in ``pid_file`` if it leads a live process group whose command has ``marker``.

    The pid file can outlive its server (reboot, SIGKILL); checking the command line keeps
    a recycled pid from making us signal an unrelated process group.
    """
    pid = read_pid(pid_file)
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
    return pid  # no /proc (macOS): the pgid check above is the best we have


def remove_pid_file_if(pid_file: Path, pid: int) -> None:
    """Remove ``pid_file`` only if it still names ``pid``.

    A server started meanwhile by someone else keeps its pid file.
    """
    if read_pid(pid_file) == pid:
        pid_file.unlink(missing_ok=True)


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
    # kill() succeeds on zombies too. Once the CLI `start` has exited, the server is
    # init's child, and a container init may reap late or never (Docker without --init),
    # so dead-but-unreaped must count as stopped.
    live = _group_has_live_member(pgid)
    return True if live is None else live


def stop_process_group(
    pgid: int, process: subprocess.Popen[bytes] | None = None, timeout: float = STOP_TIMEOUT_S
) -> None:
    """SIGTERM a process group, escalate to SIGKILL after ``timeout`` seconds.

    Args:
        pgid: The group (its leader's pid).
        process: The leader, if this process started it: polling it reaps it, since an
            unreaped child stays a zombie that would make us wait for the full timeout.
        timeout: Seconds between SIGTERM and SIGKILL.

    """
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        if _gone_within(pgid, process, wait):
            break
    # Reap the leader in every case: a Popen dropped unreaped warns that it still runs.
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1.0)


def _gone_within(pgid: int, process: subprocess.Popen[bytes] | None, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if process is not None:
            process.poll()  # reaps the leader so it does not linger as a zombie
        if not _group_alive(pgid):
            return True
        time.sleep(0.1)
    return False


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
                    f"option?). Log {log_file}:\n{tail(log_file)}"
                )
            if time.monotonic() >= deadline:
                raise LocalServerError(
                    f"{what} was not ready within {wait:g} s. Log {log_file}:\n{tail(log_file)}"
                )
            time.sleep(POLL_S)
    except BaseException:
        # Includes KeyboardInterrupt: never leave a half-started server behind.
        stop_process_group(process.pid, process, timeout=5.0)
        remove_pid_file_if(pid_file, process.pid)
        raise
    return process


def stop_group(
    pid_file: Path, marker: bytes, process: subprocess.Popen[bytes] | None = None
) -> int | None:
    """Stop the process group named by ``pid_file`` (SIGTERM, then SIGKILL after 10 s).

    Returns:
        The pid that was stopped, or None if nothing of ours was running (a stale or
        absent pid file is removed either way).

    """
    pid = running_pid(pid_file, marker)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return None
    stop_process_group(pid, process)
    remove_pid_file_if(pid_file, pid)
    return pid
