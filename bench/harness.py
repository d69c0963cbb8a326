"""What ``run.py`` and ``prof.py`` share: timing, interleaving, the stub, the results file.

Both compare things measured in the same process, interleaved (A B C D, then B C D A, ...:
the order rotates each round), so load from other processes on a small shared machine hits
every contender alike; both start the stub server (``stub_server.py``) as a separate
process and write their generated block of ``RESULTS.md`` and a JSON file.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS_MD = BENCH / "RESULTS.md"
RAW = "raw httpx"
OURS = "ChatCustomLLM"
OURS_TEXT = "CustomLLM"
OPENAI = "ChatOpenAI"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    """Progress on stderr (stdout stays clean for the child-process protocol)."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------- measuring


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Recorder:
    """Samples per scenario and client: wall, units of work, our CPU, the server's CPU."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.samples: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def _add(self, scenario: str, client: str, sample: dict[str, Any]) -> None:
        self.samples.setdefault(scenario, {}).setdefault(client, []).append(sample)

    def run(self, scenario: str, client: str, rnd: int, units: int, fn: Callable[[], Any]) -> Any:
        """Time one sync measurement."""
        s0, c0, t0 = proc_cpu(self.server_pid), time.process_time(), time.perf_counter()
        out = fn()
        t1, c1, s1 = time.perf_counter(), time.process_time(), proc_cpu(self.server_pid)
        self._add(scenario, client, _sample(rnd, units, t1 - t0, c1 - c0, s1 - s0, out))
        return out

    async def arun(
        self, scenario: str, client: str, rnd: int, units: int, fn: Callable[[], Awaitable[Any]]
    ) -> Any:
        """Time one async measurement."""
        s0, c0, t0 = proc_cpu(self.server_pid), time.process_time(), time.perf_counter()
        out = await fn()
        t1, c1, s1 = time.perf_counter(), time.process_time(), proc_cpu(self.server_pid)
        self._add(scenario, client, _sample(rnd, units, t1 - t0, c1 - c0, s1 - s0, out))
        return out


def _sample(rnd: int, units: int, wall: float, cpu: float, srv: float, out: Any) -> dict[str, Any]:
    sample = {"round": rnd, "units": units, "wall_s": wall, "cpu_s": cpu, "server_cpu_s": srv}
    if isinstance(out, int):
        sample["yielded"] = out
    return sample


def rotated(items: list[Any], rnd: int) -> list[Any]:
    """The round's order: A B C D, B C D A, ..."""
    k = rnd % len(items)
    return items[k:] + items[:k]


def summarize(samples: dict[str, list[dict[str, Any]]], baseline: str | None) -> dict[str, Any]:
    """Medians per client, and the median of per-round cost ratios to ``baseline``."""
    base_by_round = {s["round"]: s for s in samples.get(baseline or "", [])}
    out: dict[str, Any] = {}
    for client, rows in samples.items():
        per_unit = [r["wall_s"] / r["units"] for r in rows]
        cpu_unit = [r["cpu_s"] / r["units"] for r in rows]
        ratios = [
            (r["wall_s"] / r["units"]) / (b["wall_s"] / b["units"])
            for r in rows
            if (b := base_by_round.get(r["round"])) is not None
        ]
        out[client] = {
            "rounds": len(rows),
            "per_unit_us": statistics.median(per_unit) * 1e6,
            "rate_per_s": 1 / statistics.median(per_unit),
            "cpu_per_unit_us": statistics.median(cpu_unit) * 1e6,
            "x_raw": statistics.median(ratios) if ratios else None,
            "x_raw_all": ratios,
            "yielded": rows[0].get("yielded"),
            "units": rows[0]["units"],
            "server_cpu_share": sum(r["server_cpu_s"] for r in rows)
            / sum(r["wall_s"] for r in rows),
            "client_cpu_share": sum(r["cpu_s"] for r in rows) / sum(r["wall_s"] for r in rows),
        }
    return out


def paired_ratio(samples: dict[str, list[dict[str, Any]]], a: str, b: str) -> float | None:
    """Median over rounds of rate(a) / rate(b), both measured in the same round."""
    by_round = {s["round"]: s for s in samples.get(b, [])}
    ratios = [
        (bs["wall_s"] / bs["units"]) / (s["wall_s"] / s["units"])
        for s in samples.get(a, [])
        if (bs := by_round.get(s["round"])) is not None
    ]
    return statistics.median(ratios) if ratios else None


def bytecode_env() -> dict[str, str]:
    """Environment for fresh interpreters: bytecode cached in a private prefix.

    This machine sets PYTHONDONTWRITEBYTECODE=1, which would make an editable install
    (ours) recompile on every import while site-packages have their .pyc: unfair. A
    private PYTHONPYCACHEPREFIX gives every module the same, warm, cache.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "customllm-bench-pycache")
    return env


# --------------------------------------------------------------------------- processes and files


def start_stub() -> tuple[subprocess.Popen[str], str]:
    """Start the stub server process; return it and its base URL.

    Its port is ``CUSTOMLLM_BENCH_STUB_PORT`` when set (engineers sharing a machine keep to
    their own ports), else any free one.
    """
    port = os.environ.get("CUSTOMLLM_BENCH_STUB_PORT", "0")
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, str(BENCH / "stub_server.py"), "--port", port],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"stub server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{int(line.split()[1])}/v1"


def write_generated(json_path: Path, res: dict[str, Any], script: str, body: str) -> None:
    """Save ``res`` as JSON, and ``body`` as ``script``'s generated block of RESULTS.md.

    The block goes between ``<!-- BEGIN/END GENERATED: <script> -->``; a RESULTS.md
    without them gets the block appended under a heading naming the script.
    """
    json_path.parent.mkdir(exist_ok=True)
    json_path.write_text(json.dumps(res, indent=1, default=str) + "\n")
    begin, end = f"<!-- BEGIN GENERATED: {script} -->", f"<!-- END GENERATED: {script} -->"
    block = f"{begin}\n{body}\n{end}"
    text = RESULTS_MD.read_text() if RESULTS_MD.exists() else "# Benchmark results\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text += f"\n## Generated by `{script}`\n\n{block}\n"
    RESULTS_MD.write_text(text)


def machine() -> dict[str, Any]:
    """Cores, CPU model, Python, package versions, commit, load."""
    model = platform.processor() or "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for dist in (
        "langchain-customllm",
        "langchain-core",
        "httpx",
        "httpcore",
        "langchain-openai",
        "openai",
        "httpx2",
        "httpx-aiohttp",
        "aiohttp",
        "pydantic",
        "orjson",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None

    def git(*args: str) -> str:
        cmd = ["git", "-C", str(ROOT), *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()  # noqa: S603

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "langchain_customllm")
        commit += " (+ uncommitted changes in langchain_customllm/)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "?"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "versions": versions,
        "commit": commit,
        "loadavg_start": os.getloadavg(),
    }
