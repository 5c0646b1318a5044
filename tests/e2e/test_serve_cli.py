"""`shelfcast serve` as a user starts it: a real uvicorn process on loopback, with one and with two workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serving import call, check_every_endpoint, serve_process

from shelfcast.settings import Settings

pytestmark = pytest.mark.e2e


@pytest.fixture
def one_worker(serving_workspace: Settings) -> Iterator[str]:
    yield from serve_process(serving_workspace.workspace)


def test_serve_answers_every_endpoint(one_worker: str) -> None:
    check_every_endpoint(one_worker)


def test_two_workers_share_the_load_and_the_metrics(serving_workspace: Settings) -> None:
    server = serve_process(serving_workspace.workspace, "--workers", "2")
    base = next(server)
    try:
        wait_until_loaded(base, workers=2)
        for _ in range(20):
            assert call(f"{base}/predict", {"store_id": "S002", "item_id": "I0003"})[0] == 200
        text = call(f"{base}/metrics")[1]
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("shelfcast_requests_total") and 'route="/predict"' in line and 'status="200"' in line
        )
        assert counted == 20, text
    finally:
        server.close()


def wait_until_loaded(base: str, *, workers: int) -> None:
    """Each worker loads in the background after the first one answers /ready: wait until every one has loaded.

    The kernel hands a connection to any worker, so /ready answering 200 once says only that one of them is ready;
    the reload counter is summed over the workers (one "ok" per worker's first load).
    """
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        text = call(f"{base}/metrics")[1]
        loaded = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("shelfcast_model_reloads_total") and 'outcome="ok"' in line
        )
        if loaded >= workers:
            return
        time.sleep(0.5)
    pytest.fail(f"{workers} workers did not all load in 180 s")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--log-level", "loud"], "`--log-level` must be one of"),
        (["serve", "--port", "0"], "Invalid value for '--port': Input should be greater than or equal to 1"),
        (["serve", "--workers", "100"], "Invalid value for '--workers': Input should be less than or equal to 64"),
        (["dashboard", "--port", "0"], "Invalid value for '--port': Input should be greater than or equal to 1"),
        (["dashboard", "--port", "70000"], "Invalid value for '--port': Input should be less than or equal to 65535"),
        (["dashboard", "-w", "no-such-folder"], "error: no workspace at no-such-folder"),
    ],
)
def test_bad_options_are_refused_with_the_reason(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shelfcast", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
