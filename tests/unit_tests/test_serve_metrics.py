"""``/metrics`` across workers: each worker's snapshot in a shared directory, summed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from langchain_customllm.serve.metrics import Metrics, WorkerFiles
from tests.unit_tests._serve_helpers import USER, gateway
from tests.unit_tests.fakes import FakeServer, chat_body
from tests.unit_tests.test_serve_chat import _chat


def _observe(metrics: Metrics, model: str, status: int, seconds: float, **extra: object) -> None:
    metrics.observe(
        model=model, route="/v1/chat/completions", status=status, seconds=seconds, **extra
    )  # type: ignore[arg-type]


def _fill(one: Metrics, two: Metrics, both: Metrics) -> None:
    # Sums of binary fractions: exact in any order, so the renders compare as text.
    for target in (one, both):
        _observe(target, "m", 200, 1 / 64, prompt_tokens=10, completion_tokens=4, cost=0.5)
        _observe(target, "", 404, 1 / 1024, error_type="invalid_request_error")
    for target in (two, both):
        _observe(target, "m", 200, 3.0, prompt_tokens=1, completion_tokens=2, cost=0.25)
        _observe(target, "m", 502, 0.75, error_type="api_error")


def test_snapshots_add_up_to_one_process_that_saw_everything() -> None:
    one, two, both = Metrics(), Metrics(), Metrics()
    _fill(one, two, both)
    total = Metrics()
    for part in (one, two):
        total.add(json.loads(json.dumps(part.snapshot())))  # as a file carries it
    assert total.render() == both.render()
    assert 'customllm_tokens_total{model="m",kind="prompt"} 11' in total.render()


def test_worker_files_sum_every_worker_and_keep_a_dead_ones_counts(tmp_path: Path) -> None:
    one, two, both = Metrics(), Metrics(), Metrics()
    _fill(one, two, both)
    first, second = WorkerFiles(tmp_path, one), WorkerFiles(tmp_path, two)
    assert first.path != second.path
    second.write()
    assert first.combined().render() == both.render()  # its own counts written first
    second.path.rename(tmp_path / "worker-999-dead0000.json")  # a worker that is gone
    (tmp_path / "worker-1-broken00.json").write_text("{not json")  # half-written by hand
    assert first.combined().render() == both.render()
    written = first.path.stat().st_mtime_ns
    first.write()  # nothing new counted: not rewritten
    assert first.path.stat().st_mtime_ns == written


async def test_the_writer_writes_while_running_and_when_stopped(tmp_path: Path) -> None:
    metrics = Metrics()
    files = WorkerFiles(tmp_path, metrics, interval=0.01)
    task = asyncio.ensure_future(files.run())
    _observe(metrics, "m", 200, 0.1)
    for _ in range(100):
        await asyncio.sleep(0.01)
        if files.path.exists():
            break
    assert json.loads(files.path.read_text())["requests"] == [
        ["m", "/v1/chat/completions", "200", 1]
    ]
    _observe(metrics, "m", 200, 0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert json.loads(files.path.read_text())["requests"][0][-1] == 2  # the last counts too


async def test_two_workers_answer_metrics_for_both(server: FakeServer, tmp_path: Path) -> None:
    for _ in range(3):
        server.json(chat_body(usage={"prompt_tokens": 10, "completion_tokens": 4}))
    request = {"model": "m", "messages": USER}
    async with (
        gateway({"m": _chat(server)}, metrics_dir=str(tmp_path)) as first,
        gateway({"m": _chat(server)}, metrics_dir=str(tmp_path)) as second,
    ):
        for client in (first, second, second):
            assert (await client.post("/v1/chat/completions", json=request)).status_code == 200
        # The second worker's writer runs every second; here it is asked directly.
        second_app = second._transport.app  # type: ignore[attr-defined]
        second_app.state.gateway.worker_files.write()
        answer = await first.get("/metrics")
    lines = set(answer.text.splitlines())
    assert (
        'customllm_requests_total{model="m",route="/v1/chat/completions",status="200"} 3' in lines
    )
    assert 'customllm_tokens_total{model="m",kind="prompt"} 30' in lines
    assert len(list(tmp_path.glob("worker-*.json"))) == 2
