"""`shelfcast serve --workers 2` keeps its Prometheus folder only while it runs (issue 14)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from serving import call, free_port

pytestmark = pytest.mark.e2e


def test_two_workers_remove_their_metrics_folder_and_stale_ones(tmp_path: Path) -> None:
    """Each `serve --workers 2` left a `/tmp/shelfcast-metrics-*` folder behind."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    dead_pid = subprocess.Popen(["true"])
    dead_pid.wait()
    stale = tmp / f"shelfcast-metrics-{dead_pid.pid}-abc123"
    stale.mkdir()
    (stale / "counter_1.db").write_bytes(b"x")
    foreign = tmp / "shelfcast-metrics-someone-else"  # not named by a pid: left alone
    foreign.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHELFCAST_", "MLFLOW_", "PROMETHEUS_"))}
    server = subprocess.Popen(
        [sys.executable, "-m", "shelfcast", "serve", "-w", str(tmp_path / "ws"), "--port", str(port), "--workers", "2"],
        env=env | {"TMPDIR": str(tmp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
            assert time.monotonic() < deadline, "the service did not answer /health in 120 s"
            try:
                if call(f"http://127.0.0.1:{port}/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        own = sorted(p.name for p in tmp.glob(f"shelfcast-metrics-{server.pid}-*"))
        assert len(own) == 1 and not stale.exists() and foreign.exists()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    assert sorted(p.name for p in tmp.glob("shelfcast-metrics-*")) == [foreign.name]
