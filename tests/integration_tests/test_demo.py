"""The demo runs against the real server, and never prints the key."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.integration_tests.conftest import ROOT

KEY = "sk-demo-DISTINCTIVE-7f3a9c"


def test_demo_runs_and_keeps_the_key_secret(base_url: str) -> None:
    env = {**os.environ, "CUSTOMLLM_BASE_URL": base_url, "CUSTOMLLM_API_KEY": KEY}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Paris" in output
    assert "finish_reason=" in output
    assert KEY not in output
