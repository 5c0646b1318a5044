"""An executor killed (kill -9 of its JVM) in the middle of a job on a standalone cluster: Spark runs the lost
tasks again, the worker starts a new executor, and the written result is complete, each series once.

The job runs a Polars function per group of series (`io.spark.groups.map_groups`) that sleeps, so the kill
lands while groups are running, and writes the result as Parquet through Spark's commit protocol.
The same kill in the middle of `shelfcast score --engine spark` (the scoring job, once on this branch): every
prediction written once.
"""

from __future__ import annotations

import inspect
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
from spark_cluster import Cluster, cmdline, descendants, driver, finish, standalone_cluster, stop_group
from spark_support import require_spark

from shelfcast.cli import modelling
from shelfcast.data.simulator import SimConfig
from shelfcast.io.lake import Lake

pytestmark = [pytest.mark.integration, pytest.mark.spark]
GROUPS = 8


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_spark()
    with standalone_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


def test_an_executor_killed_mid_job_loses_no_group_and_doubles_none(cluster: Cluster, tmp_path: Path) -> None:
    settings = ingest_chain(tmp_path, SimConfig(n_stores=4, n_items=6, n_days=90, seed=11))
    marks, out, log = tmp_path / "marks", tmp_path / "out", tmp_path / "driver.log"
    marks.mkdir()
    args = ["--workspace", str(settings.workspace), "--out", str(out), "--marks", str(marks)]
    job = driver("slow", *args, "--groups", str(GROUPS), "--sleep", "6", cluster=cluster, log=log)
    deadline = time.monotonic() + 400
    while not list(marks.iterdir()):  # a group is running on an executor
        assert job.poll() is None, log.read_text(errors="replace")
        assert time.monotonic() < deadline, "no group started in 400 s"
        time.sleep(0.2)
    first = next(marks.iterdir()).name.split("@")
    executors = cluster.executors()
    assert len(executors) == 2, executors
    # The executor whose Python worker runs the group that started first.
    victim = next(e for e in executors if int(first[1]) in descendants(e))
    launched = _launched(cluster)
    os.kill(victim, signal.SIGKILL)
    assert job.poll() is None  # the kill landed while the job ran

    finish(job, log, timeout=600)
    got = pl.read_parquet(out / "*.parquet")
    want = (
        Lake(settings.workspace)
        .scan("sales")
        .group_by("store_id", "item_id")
        .agg(pl.len().alias("rows"), pl.col("units").sum())
        .collect()
    )
    assert got.height == want.height == 24  # every series once: none lost with the executor, none twice
    assert got.select("store_id", "item_id").n_unique() == got.height
    joined = want.join(got, on=["store_id", "item_id"], suffix="_got")
    assert (joined["rows"] == joined["rows_got"]).all()
    assert (joined["units"] - joined["units_got"]).abs().max() < 1e-6  # type: ignore[operator]
    # The group running on the dead executor ran again (elsewhere): two attempts or more.
    attempts = [m.name.split("@")[0] for m in marks.iterdir()]
    assert attempts.count(first[0]) >= 2, attempts
    assert not Path(f"/proc/{victim}").exists()
    # The worker of the dead executor started a new one for the application (3 launches in all).
    assert _launched(cluster) > launched, cluster.log_tail()


def _launched(cluster: Cluster) -> int:
    return sum(
        "Asked to launch executor" in line
        for worker_log in cluster.root.glob("worker-*.log")
        for line in worker_log.read_text(errors="replace").splitlines()
    )


@pytest.mark.xfail(
    "engine" not in inspect.signature(modelling.score).parameters,
    reason="`shelfcast score --engine spark` is not on this branch yet; this runs for real once it is",
    strict=False,
    run=False,
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
