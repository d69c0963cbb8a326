"""The gateway's lifecycle: a client that leaves closes the backend stream; SIGTERM drains.

Each test runs ``customllm serve`` as a subprocess (the real CLI on uvicorn) in front of
`SlowStreamServer`, a backend that streams slowly and records when and how each stream
ended.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration_tests._serve_fixtures import (
    GATEWAY_KEY,
    GATEWAY_PORT,
    GatewayProcess,
    write_models,
)
from tests.servers.slow_stream import SlowStreamServer

pytestmark = pytest.mark.integration

PORT = GATEWAY_PORT + 1
HEADERS = {"authorization": f"Bearer {GATEWAY_KEY}"}
REQUEST = {
    "model": "slow",
    "messages": [{"role": "user", "content": "Count slowly."}],
    "stream": True,
}


def _gateway(
    tmp_path: Path, backend: SlowStreamServer, *args: str, env: dict[str, str] | None = None
) -> GatewayProcess:
    entry = {
        "model": "slow",
        "base_url": backend.url,
        "server_profile": "generic",
        "max_retries": 0,
    }
    config = write_models(tmp_path / "models.yaml", {"slow": entry})
    return GatewayProcess(
        config,
        PORT,
        ("--api-key-env", "CUSTOMLLM_TEST_GATEWAY_KEYS", *args),
        log=tmp_path / "gateway.log",
        env=env,
    )


def _events(lines: Iterator[str]) -> Iterator[Any]:
    for line in lines:
        if line.startswith("data: "):
            data = line[len("data: ") :]
            yield data if data == "[DONE]" else json.loads(data)


def test_a_client_that_leaves_closes_the_backend_stream(tmp_path: Path) -> None:
    with SlowStreamServer(chunks=400, delay=0.05) as backend, _gateway(tmp_path, backend) as gw:
        with httpx.stream(
            "POST", f"{gw.url}/chat/completions", json=REQUEST, headers=HEADERS, timeout=30
        ) as response:
            assert response.status_code == 200
            for seen, _ in enumerate(_events(response.iter_lines()), start=1):
                if seen == 4:
                    break
        left = time.monotonic()
        [outcome] = backend.wait_ended(timeout=10)
        log = gw.output()
    assert outcome["ended"] == "closed", log
    # The backend noticed within a few of its 50 ms writes, not at the end of 400 of them.
    assert outcome["at"] - left < 2.0
    assert outcome["sent"] < 100


def test_a_client_that_leaves_cancels_a_whole_answer_too(tmp_path: Path) -> None:
    with SlowStreamServer(chunks=400, delay=0.05) as backend, _gateway(tmp_path, backend) as gw:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{gw.url}/chat/completions",
                json={**REQUEST, "stream": False},
                headers=HEADERS,
                timeout=httpx.Timeout(30, read=1.0),
            )
        left = time.monotonic()
        [outcome] = backend.wait_ended(timeout=10)
        metrics = httpx.get(
            f"http://127.0.0.1:{PORT}/metrics", headers=HEADERS, trust_env=False
        ).text
    assert outcome["ended"] == "closed"
    assert outcome["at"] - left < 2.0
    assert 'status="499"' in metrics


def test_sigterm_lets_open_streams_finish(tmp_path: Path) -> None:
    backend = SlowStreamServer(chunks=30, delay=0.1)
    with backend, _gateway(tmp_path, backend, "--grace-period", "20") as gw:
        events: list[Any] = []
        refused: list[bool] = []

        def read() -> None:
            with httpx.stream(
                "POST", f"{gw.url}/chat/completions", json=REQUEST, headers=HEADERS, timeout=30
            ) as response:
                for event in _events(response.iter_lines()):
                    events.append(event)

        reader = threading.Thread(target=read)
        reader.start()
        while len(events) < 3:
            time.sleep(0.01)
        gw.terminate()
        time.sleep(0.5)
        try:
            httpx.get(f"http://127.0.0.1:{PORT}/health", timeout=2, trust_env=False)
            refused.append(False)
        except httpx.ConnectError:
            refused.append(True)
        reader.join(timeout=30)
        assert gw.process is not None
        code = gw.process.wait(timeout=30)
        log = gw.output()
    assert refused == [True], "a draining gateway must not take new connections"
    assert events[-1] == "[DONE]", log
    text = "".join(c["delta"].get("content", "") for e in events[:-1] for c in e["choices"])
    assert text == "".join(f"w{i} " for i in range(30))
    assert code in (0, -15)
    assert backend.outcomes[0]["ended"] == "complete"


def test_streams_still_open_after_the_grace_period_end_with_an_error(tmp_path: Path) -> None:
    backend = SlowStreamServer(chunks=400, delay=0.05)
    with backend, _gateway(tmp_path, backend, "--grace-period", "1") as gw:
        events: list[Any] = []
        with httpx.stream(
            "POST", f"{gw.url}/chat/completions", json=REQUEST, headers=HEADERS, timeout=30
        ) as response:
            for event in _events(response.iter_lines()):
                events.append(event)
                if len(events) == 3:
                    gw.terminate()
        ended = time.monotonic()
        assert gw.process is not None
        gw.process.wait(timeout=30)
        [outcome] = backend.wait_ended(timeout=10)
    assert "[DONE]" not in events
    assert events[-1]["error"]["code"] == "shutting_down"
    assert outcome["ended"] == "closed"
    assert outcome["at"] - ended < 2.0


def _served(text: str) -> int:
    return sum(
        int(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('customllm_requests_total{model="slow",route="/v1/chat/completions",')
        and 'status="200"' in line
    )


def test_workers_each_build_the_gateway_from_the_config(tmp_path: Path) -> None:
    backend = SlowStreamServer(chunks=2, delay=0.01)
    temp = tmp_path / "tmp"  # where the run keeps its workers' counts
    temp.mkdir()
    gateway = _gateway(tmp_path, backend, "--workers", "2", env={"TMPDIR": str(temp)})
    with backend, gateway as gw:
        with httpx.Client(headers=HEADERS, trust_env=False, timeout=30) as client:
            answers = []
            for _ in range(8):  # a connection each: the kernel spreads them over the workers
                with httpx.Client(headers=HEADERS, trust_env=False, timeout=30) as one:
                    body = {**REQUEST, "stream": False}
                    answers.append(one.post(f"{gw.url}/chat/completions", json=body).json())
            refused = client.post(
                f"{gw.url}/chat/completions",
                json={**REQUEST, "stream": False},
                headers={"authorization": "Bearer wrong"},
            )
            # Each worker writes its counts at most a second after counting; after that,
            # every scrape (new connections: the kernel picks a worker) sees all 8.
            deadline = time.monotonic() + 10
            while _served(client.get(f"{gw.url.removesuffix('/v1')}/metrics").text) < 8:
                assert time.monotonic() < deadline, "the workers' counts never added up to 8"
                time.sleep(0.2)
            scrapes = []
            for _ in range(6):
                with httpx.Client(headers=HEADERS, trust_env=False, timeout=30) as fresh:
                    scrapes.append(fresh.get(f"{gw.url.removesuffix('/v1')}/metrics").text)
            files = list(temp.glob("customllm-metrics-*/worker-*.json"))
        assert gw.stop() in (0, -15)
        log = gw.output()
    assert all(a["choices"][0]["message"]["content"] == "ok" for a in answers)
    assert refused.status_code == 401
    # Two worker processes started, each loading the models file itself.
    assert log.count("Started server process") == 2, log
    assert [_served(text) for text in scrapes] == [8] * 6
    assert all('status="401"} 1' in text for text in scrapes)
    assert len(files) == 2  # one snapshot per worker ...
    assert not list(temp.iterdir())  # ... in a directory removed at exit
