"""`shelfcast serve` as a user starts it: a real uvicorn process on loopback, with one and with two workers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shelfcast.settings import Settings

pytestmark = pytest.mark.e2e
KEY = "e2e-key"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            raw = answer.read().decode()
            status = answer.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(raw)
    except json.JSONDecodeError:
        return status, raw


def _server(workspace: Path, *args: str) -> Iterator[str]:
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHELFCAST_", "MLFLOW_", "PROMETHEUS_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "shelfcast", "serve", "-w", str(workspace), "--port", str(port), *args],
        env=env | {"SHELFCAST_API_KEY": KEY},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if _call(f"{base}/ready")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            pytest.fail("the service did not become ready in 120 s")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def one_worker(serving_workspace: Settings) -> Iterator[str]:
    yield from _server(serving_workspace.workspace)


def test_serve_answers_every_endpoint(one_worker: str) -> None:
    base = one_worker
    assert _call(f"{base}/health") == (200, {"status": "ok"})
    status, docs = _call(f"{base}/openapi.json")
    assert status == 200 and "/predict" in docs["paths"]
    status, risk = _call(f"{base}/predict", {"store_id": "S001", "item_id": "I0001"})
    assert status == 200 and risk["model_version"] == "1", risk
    status, batch = _call(f"{base}/predict/batch", {"rows": [{"store_id": "S001", "item_id": "I0001"}] * 3})
    assert status == 200 and len(batch["predictions"]) == 3
    assert _call(f"{base}/forecast?store_id=S001&item_id=I0001")[0] == 200
    assert _call(f"{base}/stockout/alerts?store_id=S001&min_risk=0")[0] == 200
    assert _call(f"{base}/reorder?store_id=S001")[0] == 200
    assert _call(f"{base}/models")[1]["stockout"]["champion"]["version"] == "1"
    assert _call(f"{base}/admin/reload", {})[0] == 401
    assert _call(f"{base}/admin/reload", {}, {"X-API-Key": KEY})[0] == 200
    status, text = _call(f"{base}/metrics")
    assert status == 200 and 'route="/predict"' in text
    status, wrong = _call(f"{base}/predict", {"store_id": "S001", "item_id": "I0001", "on_hand": -3})
    assert status == 422 and wrong["detail"].startswith("on_hand:")


def test_two_workers_share_the_load_and_the_metrics(serving_workspace: Settings) -> None:
    server = _server(serving_workspace.workspace, "--workers", "2")
    base = next(server)
    try:
        for _ in range(20):
            assert _call(f"{base}/predict", {"store_id": "S002", "item_id": "I0003"})[0] == 200
        text = _call(f"{base}/metrics")[1]
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("shelfcast_requests_total") and 'route="/predict"' in line and 'status="200"' in line
        )
        assert counted == 20, text
    finally:
        server.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--log-level", "loud"], "`--log-level` must be one of"),
        (["--port", "0"], "Invalid value for '--port': Input should be greater than or equal to 1"),
        (["--workers", "100"], "Invalid value for '--workers': Input should be less than or equal to 64"),
    ],
)
def test_bad_options_are_refused_with_the_reason(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shelfcast", "serve", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
