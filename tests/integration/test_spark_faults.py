"""An executor killed (kill -9 of its JVM) in the middle of `shelfcast score --engine spark` on a standalone
cluster: Spark runs the lost tasks again, the worker starts a new executor, and every prediction is written once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from serving import ingest_chain
from spark_cluster import Cluster, cmdline, descendants, standalone_cluster, stop_group
from spark_support import require_spark

from shelfcast.data.simulator import SimConfig

pytestmark = [pytest.mark.integration, pytest.mark.spark]
GROUPS = 8


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_spark()
    with standalone_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


def _launched(cluster: Cluster) -> int:
    return sum(
        "Asked to launch executor" in line
        for worker_log in cluster.root.glob("worker-*.log")
        for line in worker_log.read_text(errors="replace").splitlines()
    )


def test_an_executor_killed_mid_scoring_writes_every_prediction_once(cluster: Cluster, tmp_path: Path) -> None:
    chain = SimConfig(n_stores=4, n_items=6, n_days=200, seed=12)
    workspace = ingest_chain(tmp_path, chain).workspace
    log = tmp_path / "score.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SHELFCAST_", "SPARK_", "PYSPARK_"))}
    command = [sys.executable, "-m", "shelfcast", "score", "--engine", "spark", "--horizon", "7", "-w", str(workspace)]
    # Eight groups on two one-core executors: four rounds of Python work, so the kill lands with groups left to run.
    env = clean | cluster.driver_env() | {"SHELFCAST_SPARK__GROUPS": "8", "COLUMNS": "200"}
    with log.open("wb") as output:
        job = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline, victim = time.monotonic() + 400, None
        while victim is None:  # an executor running Python: a group of series is being scored
            assert job.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "no executor ran Python in 400 s"
            busy = [e for e in cluster.executors() if any("python" in cmdline(p) for p in descendants(e))]
            victim = busy[0] if busy else None
            time.sleep(0.2)
        launched = _launched(cluster)
        os.kill(victim, signal.SIGKILL)
        assert job.poll() is None  # the kill landed while the job ran
        code = job.wait(timeout=600)
    finally:
        stop_group(job)
    said = log.read_text(errors="replace")
    assert code == 0 and "Traceback" not in said, said
    rows = pl.read_parquet(next((workspace / "predictions").glob("scored_on=*/part*.parquet")))
    assert rows.height == chain.n_stores * chain.n_items * 7  # none lost with the executor
    assert rows.select("store_id", "item_id", "date").n_unique() == rows.height  # none twice
    assert _launched(cluster) > launched  # the worker started an executor in place of the killed one
