"""The batch scoring job on a small simulated chain: with the registry's champions (loaded, never retrained),
with `fit` (trained at the cutoff), on sales-only data, and when the registry is missing or unreachable."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from helpers import NOW, TODAY
from serving import ingest_chain

from shelfcast.data.simulator import SimConfig
from shelfcast.errors import ConfigError
from shelfcast.io.champion import champion_dir
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.io.model_files import load_forecaster, load_quantiles
from shelfcast.io.stores.parquet import ParquetStore
from shelfcast.jobs.promote import promote_version
from shelfcast.jobs.score import run_score
from shelfcast.jobs.train import TrainReport
from shelfcast.models.stockout import StockoutConfig
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings
from shelfcast.workflows.training import run_train

pytestmark = pytest.mark.integration

CHAIN = SimConfig(n_stores=2, n_items=3, n_days=300, seed=5, min_base_demand=1.0, max_base_demand=30.0)
HORIZON = 5
FAST = ForecastConfig(n_origins=30, n_estimators=60, learning_rate=0.1, num_leaves=15, strategy="direct")
FAST_STOCKOUT = StockoutConfig(n_origins=20, n_estimators=30, learning_rate=0.2, num_leaves=7)


def _lake(root: Path, *, sales_only: bool) -> Settings:
    return ingest_chain(root, CHAIN, sales_only=sales_only)


def _champion(settings: Settings, report: TrainReport) -> str:
    """The trained version made champion; forced past the gates if this tiny chain fails them (the gates have
    their own tests: here only scoring matters)."""
    if not report.promotion.promoted:
        promote_version(settings, report.task, report.version, force=True)
    return report.run.run_id


def _train_demand(settings: Settings) -> str:
    return _champion(settings, run_train(settings, task="demand", folds=1, horizon=14, forecast_config=FAST))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, str, str]:
    """A workspace whose registry has a demand and a stockout champion (run ids returned); copied per test."""
    settings = _lake(tmp_path_factory.mktemp("trained"), sales_only=False)
    demand_run = _train_demand(settings)
    stockout = run_train(settings, task="stockout", folds=1, stockout_config=FAST_STOCKOUT, forecast_config=FAST)
    return settings, demand_run, _champion(settings, stockout)


@pytest.fixture
def champions(trained: tuple[Settings, str, str], tmp_path: Path) -> tuple[Settings, str]:
    settings, demand_run, _ = trained
    # Each test scores in its own copy (the copy's SQLite registry; artifacts stay in the module's workspace).
    workspace = tmp_path / "ws"
    shutil.copytree(settings.workspace, workspace)
    return Settings(workspace=workspace), demand_run


def test_score_uses_the_champions_without_training(champions: tuple[Settings, str]) -> None:
    settings, demand_run = champions
    report = run_score(settings, horizon=HORIZON, now=NOW)
    assert (report.rows, report.series, report.scored_on, report.note) == (6 * HORIZON, 6, TODAY, None)
    assert (report.model_name, report.model_version, report.run_id, report.stockout_version) == (
        "shelfcast-demand",
        "1",
        demand_run,
        "1",
    )
    assert not (settings.workspace / "checkpoints").exists(), "scoring with champions must not train"
    rows = ParquetStore(settings.workspace / "predictions").read(scored_on=TODAY)
    assert rows.height == 6 * HORIZON
    assert rows["horizon"].unique().sort().to_list() == list(range(1, HORIZON + 1))
    assert rows["date"].min() == report.cutoff + dt.timedelta(days=1)
    for column in ("stockout_risk", "stockout_label", "threshold", "order_quantity", "reorder_point"):
        assert rows[column].null_count() == 0, column
    assert rows.select("model_name", "model_version", "run_id", "stockout_model_version").unique().rows() == [
        ("shelfcast-demand", "1", demand_run, "1")
    ]
    # Series-level values repeat on each horizon row.
    assert rows.group_by("store_id", "item_id").agg(pl.col("stockout_risk").n_unique())["stockout_risk"].max() == 1

    # The forecasts are the champion's own, from the saved booster, and its saved quantiles widen them.
    native = champion_dir(settings, "demand") / "artifacts" / "native"
    assert load_quantiles(native) is not None
    data = load_model_data(Lake(settings.workspace))
    expected = load_forecaster(native).predict(data.panel, calendar=data.calendar, origin=report.cutoff, horizon=14)
    joined = rows.join(expected.rename({"forecast": "expected"}), on=["store_id", "item_id", "date"])
    assert joined.height == rows.height
    assert (joined["forecast"] - joined["expected"]).abs().max() < 1e-9  # type: ignore[operator]
    assert (rows["p10"] <= rows["p50"]).all() and (rows["p50"] <= rows["p90"]).all()
    assert (rows["p90"] > rows["p10"]).any()

    # A re-run of the day replaces it, never duplicates.
    again = run_score(settings, horizon=HORIZON, now=NOW)
    assert ParquetStore(settings.workspace / "predictions").read().height == again.rows == rows.height


def test_an_unreachable_registry_scores_with_the_local_copy(champions: tuple[Settings, str]) -> None:
    settings, demand_run = champions
    offline = Settings(workspace=settings.workspace, mlflow_tracking_uri="http://127.0.0.1:9")
    report = run_score(offline, horizon=HORIZON, now=NOW)
    assert (report.model_version, report.run_id, report.stockout_version) == ("1", demand_run, "1")

    # The registry lost and no local copy: both tasks fall back on their rule baselines, and say so.
    shutil.rmtree(settings.workspace / "models")
    lost = run_score(offline, horizon=HORIZON, now=NOW)
    assert (lost.model_name, lost.model_version, lost.stockout_version) == (
        "seasonal_naive",
        "rule-baseline",
        "rule-baseline",
    )
    assert lost.note is not None and "did not answer" in lost.note and "seasonal-naive baseline" in lost.note
    rows = ParquetStore(settings.workspace / "predictions").read(scored_on=TODAY)
    assert set(rows["stockout_risk"].drop_nulls().to_list()) <= {0.0, 1.0}
    assert (rows["p10"] <= rows["p90"]).all() and rows["forecast"].null_count() == 0


def test_a_stale_local_copy_is_replaced_by_the_current_champion(champions: tuple[Settings, str]) -> None:
    settings, _ = champions
    version_file = champion_dir(settings, "demand") / "version.json"
    stale = {**json.loads(version_file.read_text()), "version": "0"}
    version_file.write_text(json.dumps(stale))
    report = run_score(settings, horizon=HORIZON, now=NOW)
    assert report.model_version == "1"
    assert json.loads(version_file.read_text())["version"] == "1"


def test_score_without_champions_falls_back_and_says_what_to_run(tmp_path: Path) -> None:
    settings = _lake(tmp_path, sales_only=False)
    bare = run_score(settings, horizon=HORIZON, now=NOW)
    assert (bare.model_version, bare.stockout_version) == ("rule-baseline", "rule-baseline")
    assert bare.note is not None and "`shelfcast train --task demand`" in bare.note
    baseline = ParquetStore(settings.workspace / "predictions").read(scored_on=TODAY)
    assert baseline["model_name"].unique().to_list() == ["seasonal_naive"]
    assert baseline["horizon"].unique().sort().to_list() == list(range(1, HORIZON + 1))

    # Only a demand champion: its forecasts and advice, and the rule's risk, with a note.
    _train_demand(settings)
    report = run_score(settings, horizon=HORIZON, now=NOW)
    assert report.note is not None and "no stockout champion" in report.note and "rule baseline" in report.note
    assert report.model_version == "1" and report.stockout_version == "rule-baseline"
    rows = ParquetStore(settings.workspace / "predictions").read(scored_on=TODAY)
    assert set(rows["stockout_risk"].drop_nulls().to_list()) <= {0.0, 1.0}
    assert rows["threshold"].drop_nulls().unique().to_list() == [0.5]
    assert rows["order_quantity"].null_count() == 0

    # A champion trained for fewer steps than the advice needs is refused with the fix.
    short = Settings(workspace=settings.workspace, lead_time_days=21)
    with pytest.raises(ConfigError, match=r"forecasts at most 14 steps \(days\) and scoring needs 28 .*--horizon 28"):
        run_score(short, horizon=HORIZON, now=NOW)


def test_score_fit_trains_at_the_cutoff_without_a_registry(tmp_path: Path) -> None:
    settings = _lake(tmp_path, sales_only=False)
    report = run_score(settings, horizon=HORIZON, now=NOW, fit=True)
    assert (report.model_name, report.model_version, report.run_id, report.stockout_version) == (
        "shelfcast_gbm",
        "local",
        None,
        "local",
    )
    rows = ParquetStore(settings.workspace / "predictions").read(scored_on=TODAY)
    assert rows.height == 6 * HORIZON and rows["stockout_risk"].null_count() == 0
    assert not (settings.workspace / "mlflow").exists(), "--fit must not touch the registry"


def test_score_on_sales_only_data_leaves_stockout_columns_null(tmp_path: Path) -> None:
    settings = _lake(tmp_path, sales_only=True)
    _train_demand(settings)
    report = run_score(settings, horizon=HORIZON, now=NOW)
    assert report.note is not None and "sales-only" in report.note
    assert report.alerts is None
    rows = ParquetStore(settings.workspace / "predictions").read(scored_on=TODAY)
    assert rows.height == 6 * HORIZON
    for column in ("stockout_risk", "stockout_label", "threshold", "order_quantity", "stockout_model_version"):
        assert rows[column].null_count() == rows.height, column
    assert rows["safety_stock"].null_count() == 0
