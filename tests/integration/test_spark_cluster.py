"""A real standalone Spark cluster (a master and two workers on loopback): the groups of series run on its
executors give the panel the local build gives, the CLI's Spark engine runs on it, and nothing outlives it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
from helpers import run_cli
from polars.testing import assert_frame_equal
from serving import ingest_chain
from spark_cluster import Cluster, cmdline, descendants, driver, finish, standalone_cluster, stop_group
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


def test_the_groups_run_on_the_cluster_give_the_local_panel(cluster: Cluster, chain: Settings, tmp_path: Path) -> None:
    out, log = tmp_path / "panel.parquet", tmp_path / "driver.log"
    job = driver(
        "panel", "--workspace", str(chain.workspace), "--out", str(out), "--groups", "5", cluster=cluster, log=log
    )
    finish(job, log, timeout=600)
    want = load_model_data(Lake(chain.workspace)).panel.frame
    got = pl.read_parquet(out).sort("store_id", "item_id", "date").select(want.columns)
    assert_frame_equal(got, want, check_dtypes=False)
    # The work ran on the cluster's executors (one application, two executors), not in a local session.
    apps = cluster.state()["completedapps"]
    assert [a["name"] for a in apps] == ["shelfcast"], apps


def _cli(workspace: Path, cluster: Cluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`shelfcast ARGS -w WORKSPACE` with the settings that put the Spark engine on the cluster (environment)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = cluster.driver_env()
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
    if "stays `challenger`" in trained.stdout:  # the gates refused it on this small chain: the champion anyway
        promoted = run("models", "promote", "--task", "demand", "--version", "1", "--force")
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    scored = run("score", "--engine", "spark", "--horizon", "7")
    assert scored.returncode == 0 and "Traceback" not in scored.stderr, scored.stdout + scored.stderr
    assert "no demand champion" not in scored.stdout  # the model trained on the cluster scored
    _predictions(workspace, 7)
    assert len(cluster.state()["completedapps"]) >= before + 2  # both ran as applications of the cluster


def test_stopping_leaves_no_process_behind(tmp_path: Path) -> None:
    """A cluster of its own, stopped while a driver's job runs on it: none of its processes outlive it, the
    executor and its Python workers included."""
    require_spark()
    settings = ingest_chain(tmp_path, SimConfig(n_stores=2, n_items=2, n_days=60, seed=1))
    marks, log = tmp_path / "marks", tmp_path / "driver.log"
    marks.mkdir()
    args = ["--workspace", str(settings.workspace), "--out", str(tmp_path / "out"), "--marks", str(marks)]
    job: subprocess.Popen[bytes] | None = None
    try:
        with standalone_cluster(tmp_path / "cluster", workers=1) as running:
            job = driver("slow", *args, "--groups", "2", "--sleep", "60", cluster=running, log=log)
            deadline = time.monotonic() + 300
            while not list(marks.iterdir()):  # a group is running: executor and Python worker are up
                assert job.poll() is None, log.read_text(errors="replace")
                assert time.monotonic() < deadline, "no group started in 300 s"
                time.sleep(0.5)
            executors = running.executors()
            assert executors and set(executors) <= set(running.tree())
            python = [p for e in executors for p in descendants(e) if "python" in cmdline(p)]
            assert python, "no Python worker under the executor"
    finally:
        if job is not None:
            stop_group(job)
    assert running.leftovers() == []
    assert all(p.poll() is not None for p in running.processes.values())
    assert not [p for p in executors + python if Path(f"/proc/{p}").exists()]
