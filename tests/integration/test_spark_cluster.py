"""A real standalone Spark cluster (a master and two workers on loopback), started once for this file: the CLI's
Spark engine trains and scores on it, an executor killed mid-scoring loses and doubles nothing, the groups of
series run on its executors give the panel the local build gives, and nothing outlives it once stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
from helpers import run_cli
from polars.testing import assert_frame_equal
from serving import ingest_chain
from spark_cluster import Cluster, alive, cmdline, descendants, driver, standalone_cluster, stop_group
from spark_support import require_spark

from shelfcast.data.simulator import SimConfig
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.spark]
CHAIN = SimConfig(n_stores=3, n_items=5, n_days=120, seed=3)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_spark()
    with standalone_cluster(tmp_path_factory.mktemp("cluster")) as running:
        yield running


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return ingest_chain(tmp_path_factory.mktemp("chain"), CHAIN)


def test_two_workers_registered_with_one_core_each(cluster: Cluster) -> None:
    state = cluster.state()
    assert state["status"] == "ALIVE" and state["aliveworkers"] == 2 and state["cores"] == 2
    assert {w["host"] for w in state["workers"]} == {"127.0.0.1"}


def _cli(workspace: Path, cluster: Cluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`shelfcast ARGS -w WORKSPACE` with the settings that put the Spark engine on the cluster (environment)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = cluster.driver_env() | {"SHELFCAST_SPARK__GROUPS": "2"}  # one group per core: small data, few tasks
        return run_cli(*args, "-w", str(workspace), cwd=workspace.parent, env=env, drop=("SHELFCAST_",), columns=200)

    return run


def _predictions(workspace: Path, horizon: int) -> pl.DataFrame:
    rows = pl.read_parquet(next((workspace / "predictions").glob("scored_on=*/part*.parquet")))
    assert rows.height == CHAIN.n_stores * CHAIN.n_items * horizon
    assert rows.select("store_id", "item_id", "date").n_unique() == rows.height
    return rows


def test_train_and_score_with_the_spark_engine_on_the_cluster(cluster: Cluster, tmp_path: Path) -> None:
    workspace = ingest_chain(tmp_path, CHAIN).workspace  # a workspace of its own: training registers models in it
    run = _cli(workspace, cluster)
    before = len(cluster.state()["completedapps"])
    trained = run("train", "--engine", "spark", "--folds", "1", "--horizon", "14")
    assert trained.returncode == 0 and "Traceback" not in trained.stderr, trained.stdout + trained.stderr
    # Spark's own log keeps to errors (io/spark/log4j2.properties): none of its start-up notices on stderr.
    assert "log4j" not in trained.stderr and " WARN " not in trained.stderr, trained.stderr
    if "stays `challenger`" in trained.stdout:  # the gates refused it on this small chain: the champion anyway
        promoted = run("models", "promote", "--task", "demand", "--version", "1", "--force")
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    scored = run("score", "--engine", "spark", "--horizon", "7")
    assert scored.returncode == 0 and "Traceback" not in scored.stderr, scored.stdout + scored.stderr
    assert "no demand champion" not in scored.stdout  # the model trained on the cluster scored
    _predictions(workspace, 7)
    assert len(cluster.state()["completedapps"]) >= before + 2  # both ran as applications of the cluster


def _launched(cluster: Cluster) -> int:
    return sum(
        "Asked to launch executor" in line
        for worker_log in cluster.root.glob("worker-*.log")
        for line in worker_log.read_text(errors="replace").splitlines()
    )


def test_an_executor_killed_mid_scoring_writes_every_prediction_once(cluster: Cluster, tmp_path: Path) -> None:
    """kill -9 of an executor's JVM in the middle of `shelfcast score --engine spark`: Spark runs the lost tasks
    again, the worker starts a new executor, and every prediction is written once."""
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


def test_groups_give_the_local_panel_and_stopping_leaves_no_process_behind(
    cluster: Cluster, chain: Settings, tmp_path: Path
) -> None:
    """Last in this file: it stops the module's cluster. One driver builds the lake's panel per group of series on
    the executors (it must equal the local build), then runs groups that sleep; the cluster is stopped while they
    run, and none of its processes outlive it, the executors and their Python workers included."""
    panel, marks, log = tmp_path / "panel.parquet", tmp_path / "marks", tmp_path / "driver.log"
    marks.mkdir()
    args = ["--workspace", str(chain.workspace), "--out", str(tmp_path / "out"), "--marks", str(marks)]
    before = len(cluster.state()["completedapps"])
    job = driver("slow", *args, "--panel", str(panel), "--groups", "5", "--sleep", "60", cluster=cluster, log=log)
    try:
        deadline = time.monotonic() + 600
        while not list(marks.iterdir()):  # the panel is written and a slow group runs: executor and Python are up
            assert job.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, "no slow group started in 600 s"
            time.sleep(0.5)
        executors = cluster.executors()
        assert executors and set(executors) <= set(cluster.tree())
        python = [p for e in executors for p in descendants(e) if "python" in cmdline(p)]
        assert python, "no Python worker under the executors"
        # The work runs on the cluster's executors (an application of the cluster), not in a local session.
        state = cluster.state()
        assert len(state["completedapps"]) == before and [a["name"] for a in state["activeapps"]] == ["shelfcast"]
        cluster.stop()
    finally:
        stop_group(job)
    assert cluster.leftovers() == []
    assert all(p.poll() is not None for p in cluster.processes.values())
    # Gone or a zombie (dead, its exit not yet collected: an orphan waits for the machine's init to reap it).
    assert alive(executors + python) == []
    want = load_model_data(Lake(chain.workspace)).panel.frame
    got = pl.read_parquet(panel).sort("store_id", "item_id", "date").select(want.columns)
    assert_frame_equal(got, want, check_dtypes=False)
