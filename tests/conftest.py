"""Shared fixtures: an isolated environment and a one-call ingest helper."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import NOW, TODAY, redis_prefix

from shelfcast.data.sources import get_source
from shelfcast.jobs.ingest import IngestReport, run_ingest
from shelfcast.settings import Settings, get_settings
from shelfcast.threads import available_cpus, thread_env, usable_cpus


def pytest_configure(config: pytest.Config) -> None:
    """The test processes' own thread plan, as the CLI's entry point makes one for its processes: the CPUs shared
    by the pytest-xdist workers, one share each, and OpenMP's short spin; set before LightGBM or XGBoost load.

    Without it every worker ran OpenMP's default (a thread per core, spinning for milliseconds) beside the other
    worker and the Spark JVMs: LightGBM fits ran up to 10x slower on 2 cores (a 16 s test took 155 s on CI).
    The commands the tests start inherit the variables (as a user's own, which `shelfcast.threads` leaves alone).
    """
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None and config.getoption("numprocesses", default=None):
        return  # the xdist controller runs no test: each worker sets its own
    workers = int(workerinput["workercount"]) if workerinput else 1
    os.environ.update(thread_env(max(1, available_cpus(usable_cpus()) // workers), os.environ))


@pytest.fixture(autouse=True, scope="session")
def _mlflow_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No MLFLOW_TRACKING_URI or MLFLOW_REGISTRY_URI from the developer's shell: it would win over every test
    workspace's own SQLite store (the user's choice does, see `tracking_uri`). Session-wide, so the session
    fixtures that train champions get it too, and in a temporary folder, where MLflow's default store
    (`./mlflow.db`) would land if a call ever ran outside `io.tracking.fluent` (each test then changes into its own).
    """
    with pytest.MonkeyPatch.context() as patch:
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            patch.delenv(name, raising=False)
        patch.chdir(tmp_path_factory.mktemp("cwd"))
        yield


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No SHELFCAST_* variables or shelfcast.toml from the developer's machine leak into a test."""
    for key in list(os.environ):
        if key.startswith("SHELFCAST_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / "ws"


@pytest.fixture
def ingest(workspace: Path) -> Callable[..., IngestReport]:
    """Ingest `path` with a named source into the test workspace."""

    def run(
        path: Path, source: str = "store-item", *, settings: dict[str, Any] | None = None, **options: Any
    ) -> IngestReport:
        cfg = Settings(workspace=workspace, **(settings or {}))
        return run_ingest(get_source(source, **options), path, settings=cfg, today=TODAY, now=NOW)

    return run


@pytest.fixture(scope="session")
def serving_workspace(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Champions v1 of both models and one scoring (Parquet) of 7 days; tests that change it work on a copy."""
    from serving import SERVE_HORIZON, ingest_chain, train_both

    from shelfcast.jobs.score import run_score

    settings = ingest_chain(tmp_path_factory.mktemp("serving"))
    train_both(settings)
    run_score(settings, horizon=SERVE_HORIZON, now=NOW)
    return settings


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local[2] Spark session for the whole test process (see `spark_support`)."""
    from spark_support import local_session

    yield from local_session()


@pytest.fixture
def prefix() -> Iterator[str]:
    """A unique key prefix on the shared Redis; its keys are deleted afterwards."""
    yield from redis_prefix()
