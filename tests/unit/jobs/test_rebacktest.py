"""The champion's configuration read back from its run's params, and when it is re-backtested (a real MLflow
registry in a temporary folder answers the champion alias and its run)."""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shelfcast.errors import RebacktestError
from shelfcast.features.labels import StockoutDefinition
from shelfcast.io.registry import CHAMPION, MODEL_NAMES, Registry, VersionInfo
from shelfcast.io.tracking import CUTOFF_PARAM, experiment_id
from shelfcast.jobs.train.rebacktest import config_from_params, rebacktest_champion
from shelfcast.models.stockout import StockoutConfig
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings

CUTOFFS = [dt.date(2024, 3, 1), dt.date(2024, 3, 15)]


def logged(config: Any, prefix: str = "") -> dict[str, str]:
    """Params as `log_training_run` stores them: `str` of every value."""
    return {f"{prefix}{k}": str(v) for k, v in config.model_dump().items()}


def test_configs_round_trip_through_logged_params() -> None:
    demand = ForecastConfig(n_estimators=7, learning_rate=0.3, num_leaves=2, target="raw", strategy="recursive")
    assert config_from_params(ForecastConfig, {**logged(demand), "horizon": "14"}) == demand
    stockout = StockoutConfig(reweight=False, minority_weighting=0.1)
    assert config_from_params(StockoutConfig, logged(stockout)) == stockout
    for definition in (StockoutDefinition(window=5), StockoutDefinition(min_hours=6.5, use_on_hand=False)):
        params = logged(definition, "definition.")
        assert config_from_params(StockoutDefinition, params, "definition.") == definition


def test_a_run_without_every_field_or_with_a_bad_value_cannot_be_rebuilt() -> None:
    params = logged(ForecastConfig())
    del params["strategy"]
    with pytest.raises(RebacktestError, match="its run has no param strategy"):
        config_from_params(ForecastConfig, params)
    with pytest.raises(RebacktestError, match="num_leaves"):
        config_from_params(ForecastConfig, {**logged(ForecastConfig()), "num_leaves": "many"})


ROWS = pl.DataFrame({"model": ["gbm", "gbm", "gbm"], "window": ["1", "2", "all"], "wape": [0.3, 0.4, 0.35]})


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace whose MLflow store (SQLite) is created and migrated once: seconds, which each test copies."""
    workspace = tmp_path_factory.mktemp("registry") / "ws"
    Registry(Settings(workspace=workspace))
    return workspace


@pytest.fixture
def registry(empty_store: Path, tmp_path: Path) -> Registry:
    """A real MLflow registry (SQLite) in a temporary workspace, with no model yet."""
    shutil.copytree(empty_store, tmp_path / "ws")
    return Registry(Settings(workspace=tmp_path / "ws"))


def crown(registry: Registry, cutoffs: list[str]) -> VersionInfo:
    """A new demand version whose run was backtested on `cutoffs` (ISO dates), made champion.

    The run holds only params, as `log_training_run` stores them: the re-backtest reads nothing else.
    """
    from mlflow.entities import Param

    client, name = registry.client, MODEL_NAMES["demand"]
    windows = {CUTOFF_PARAM.format(k + 1): c for k, c in enumerate(cutoffs)}
    params = {**logged(ForecastConfig(strategy="direct")), **windows}
    run = client.create_run(experiment_id(registry.settings, "demand"))
    client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
    client.set_terminated(run.info.run_id)
    if not registry.versions("demand"):
        client.create_registered_model(name)
    created = client.create_model_version(name, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_registered_model_alias(name, CHAMPION, created.version)
    return registry.version("demand", str(created.version))


def test_rebacktested_only_when_a_champion_shares_no_window(registry: Registry) -> None:
    calls: list[Mapping[str, str]] = []

    def rerun(params: Mapping[str, str]) -> tuple[list[dt.date], pl.DataFrame]:
        calls.append(params)
        return CUTOFFS, ROWS

    assert rebacktest_champion(registry, "demand", CUTOFFS, rerun) is None  # no model yet
    crown(registry, ["2024-02-15", "2024-03-01"])  # v1 shares one window
    assert rebacktest_champion(registry, "demand", CUTOFFS, rerun) is None
    crown(registry, [c.isoformat() for c in CUTOFFS])  # v2 shares both
    assert rebacktest_champion(registry, "demand", CUTOFFS, rerun) is None
    assert not calls
    labels: list[str] = []
    moved = crown(registry, ["2024-02-01", "2024-02-15"])  # v3 shares none
    found = rebacktest_champion(registry, "demand", CUTOFFS, rerun, progress=lambda label, i, n: labels.append(label))
    assert found is not None and (found.version, found.run_id) == ("3", moved.run_id)
    assert found.metrics["model"].to_list() == ["champion"] * 3 and found.metrics["wape"].to_list() == [0.3, 0.4, 0.35]
    assert calls[0]["strategy"] == "direct"
    assert labels == ["score champion v3 on the new windows"]


def test_a_champion_that_cannot_be_rebacktested_is_a_warning_never_a_failure(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    for cutoffs in (["2024-01-18"], ["2024-01-25"], ["2024-02-01"]):  # v3, the champion, shares no window
        crown(registry, cutoffs)

    def old_run(params: Mapping[str, str]) -> tuple[list[dt.date], pl.DataFrame]:
        raise RebacktestError("its run has no param strategy (logged by an older shelfcast?)")

    def broken(params: Mapping[str, str]) -> tuple[list[dt.date], pl.DataFrame]:
        raise RuntimeError("boom")

    def elsewhere(params: Mapping[str, str]) -> tuple[list[dt.date], pl.DataFrame]:
        return [dt.date(2024, 1, 1)], ROWS

    with caplog.at_level(logging.WARNING, logger="shelfcast.jobs.train.rebacktest"):
        for rerun in (old_run, broken, elsewhere):
            assert rebacktest_champion(registry, "demand", CUTOFFS, rerun) is None
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3 and all("the demand champion v3 could not be re-backtested" in m for m in messages)
    assert "logged by an older shelfcast" in messages[0] and "boom" in messages[1]
    assert "are not the challenger's" in messages[2]
