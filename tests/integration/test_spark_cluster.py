"""A real standalone Spark cluster (a master and two workers on loopback): the groups of series run on its
executors give the panel the local build gives, the CLI's Spark engine runs on it, and nothing outlives it."""

from __future__ import annotations

import inspect
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from helpers import run_cli
from polars.testing import assert_frame_equal
from serving import ingest_chain
from spark_cluster import Cluster, cmdline, descendants, driver, finish, standalone_cluster, stop_group
from spark_support import require_spark

from shelfcast.cli import modelling
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
    job = driver("panel", "--workspace", str(chain.workspace), "--out", str(out), "--groups", "5", cluster=cluster, log=log)
    finish(job, log, timeout=600)
    want = load_model_data(Lake(chain.workspace)).panel.frame
    got = pl.read_parquet(out).sort("store_id", "item_id", "date").select(want.columns)
    assert_frame_equal(got, want, check_dtypes=False)
    # The work ran on the cluster's executors (one application, two executors), not in a local session.
    apps = cluster.state()["completedapps"]
    assert [a["name"] for a in apps] == ["shelfcast"], apps


def _wired(command: str) -> bool:
    """Whether the CLI command has the `--engine` option yet (the lead wires train, another helper score)."""
    return "engine" in inspect.signature(getattr(modelling, command)).parameters


@pytest.mark.xfail(
    not (_wired("train") and _wired("score")),
    reason="`shelfcast train|score --engine spark` are not wired yet; this runs for real once they are",
    strict=False,
    run=False,
)
def test_train_and_score_with_the_spark_engine_on_the_cluster(cluster: Cluster, chain: Settings, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    ingest_chain(tmp_path, CHAIN)  # a workspace of its own: training registers models in it
    env = cluster.driver_env()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "-w", str(workspace), cwd=tmp_path, env=env, drop=("SHELFCAST_",), columns=200)

    trained = run("train", "--engine", "spark", "--folds", "1")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    scored = run("score", "--engine", "spark", "--horizon", "7")  # the champion, or the rule baseline without one
    assert scored.returncode == 0, scored.stdout + scored.stderr
    assert "Traceback" not in trained.stderr + scored.stderr
    rows = pl.read_parquet(next((workspace / "predictions").glob("scored_on=*/part*.parquet")))
    series = CHAIN.n_stores * CHAIN.n_items
    assert rows.height == series * 7
    assert rows.select("store_id", "item_id", "date").n_unique() == rows.height
    # Both ran as applications of the cluster, not in a local session of the CLI's process.
    assert len(cluster.state()["completedapps"]) >= 3


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
