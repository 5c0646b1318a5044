"""The demand forecaster trained and backtested on Spark equals the local one (`io.spark.forecast`, `jobs.train`).

With one XGBoost worker the Spark fit sees the local fit's rows in the local
fit's order, so its trees, forecasts and backtest scores are the same (float
tolerance only); with two workers each sketches its own histograms and
draws its own row sample, so forecasts differ by a stated tolerance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import NOW
from polars.testing import assert_frame_equal
from serving import ingest_chain

from shelfcast.data.simulator import SimConfig
from shelfcast.features.panel import SERIES
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data, load_shape
from shelfcast.io.model_files import load_forecaster
from shelfcast.io.registry import Registry
from shelfcast.io.spark.forecast import (
    backtest_demand_spark,
    fit_forecaster_spark,
    spark_data,
    window_forecasts_spark,
)
from shelfcast.jobs.score import run_score
from shelfcast.models.backtest import BacktestConfig, backtest_demand, cutoffs
from shelfcast.models.data import ModelData
from shelfcast.models.metrics import wape
from shelfcast.models.train import ForecastConfig, fit_forecaster
from shelfcast.settings import Settings, SparkConfig
from shelfcast.workflows.training import run_train

pytestmark = [pytest.mark.integration, pytest.mark.spark]
CHAIN = SimConfig(n_stores=3, n_items=4, n_days=200, seed=11, min_base_demand=1.0, max_base_demand=25.0)
FAST = ForecastConfig(engine="xgboost", strategy="direct", n_origins=15, n_estimators=30, num_leaves=15)
ONE = SparkConfig(master="local[2]", groups=3, workers=1)
TWO = SparkConfig(master="local[2]", groups=5, workers=2)
HORIZON = 14


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return ingest_chain(tmp_path_factory.mktemp("spark-train"), CHAIN)


@pytest.fixture(scope="module")
def local(chain: Settings) -> ModelData:
    return load_model_data(Lake(chain.workspace))


def _on_spark(spark: Any, chain: Settings, config: SparkConfig) -> Any:
    lake = Lake(chain.workspace)
    return spark_data(spark, config, lake, load_shape(lake))


def _forecasts(model: Any, data: ModelData) -> pl.DataFrame:
    return model.predict(data.panel, calendar=data.calendar).sort("store_id", "item_id", "date")


def test_one_worker_trains_the_local_model(spark: Any, chain: Settings, local: ModelData) -> None:
    on_spark = fit_forecaster_spark(_on_spark(spark, chain, ONE), FAST, cutoff=local.last_date, horizon=HORIZON)
    alone = fit_forecaster(
        local.panel, local.spec, FAST, cutoff=local.last_date, horizon=HORIZON, calendar=local.calendar
    )
    assert on_spark.model.encoder_.columns_ == alone.model.encoder_.columns_
    assert on_spark.model.encoder_.vocab_ == alone.model.encoder_.vocab_
    assert on_spark.level_window == alone.level_window
    assert_frame_equal(_forecasts(on_spark, local), _forecasts(alone, local), rel_tol=1e-6, abs_tol=1e-6)


def test_two_workers_forecast_within_the_stated_tolerance(spark: Any, chain: Settings, local: ModelData) -> None:
    """Trained on the first 186 days, scored on the last 14: WAPE within 0.05 of the local model's."""
    cutoff = local.last_date - local.panel.step * HORIZON
    on_spark = fit_forecaster_spark(_on_spark(spark, chain, TWO), FAST, cutoff=cutoff, horizon=HORIZON)
    alone = fit_forecaster(local.panel, local.spec, FAST, cutoff=cutoff, horizon=HORIZON, calendar=local.calendar)
    actual = local.panel.frame.select("store_id", "item_id", "date", "y")
    scores = []
    for model in (on_spark, alone):
        forecast = model.predict(local.panel, calendar=local.calendar, origin=cutoff).join(
            actual, on=["store_id", "item_id", "date"]
        )
        assert forecast.height == 12 * HORIZON
        scores.append(wape(forecast["y"].to_numpy(), forecast["forecast"].to_numpy()))
    assert abs(scores[0] - scores[1]) < 0.05, scores


def test_the_backtest_on_spark_scores_and_chooses_as_the_local_one(
    spark: Any, chain: Settings, local: ModelData
) -> None:
    config = BacktestConfig(folds=2, horizon=HORIZON)
    on_spark = backtest_demand_spark(_on_spark(spark, chain, ONE), FAST, config)
    alone = backtest_demand(local.panel, local.spec, FAST, config, calendar=local.calendar)
    assert on_spark.cutoffs == alone.cutoffs
    assert on_spark.selection is not None and alone.selection is not None
    assert on_spark.selection.candidate == alone.selection.candidate
    assert on_spark.selection.blend_weight == alone.selection.blend_weight
    key = ["model", "window"]
    assert_frame_equal(
        on_spark.metrics.sort(key), alone.metrics.sort(key).select(on_spark.metrics.columns), rel_tol=1e-6
    )
    assert on_spark.segments is not None and alone.segments is not None
    assert_frame_equal(on_spark.segments.sort(pl.all()), alone.segments.sort(pl.all()), rel_tol=1e-6)


def test_window_rows_over_the_driver_cap_are_a_sample_of_whole_series(
    spark: Any, chain: Settings, local: ModelData
) -> None:
    """Above `max_rows` the window rows that come back are the full rows of a hash sample of series, not fewer
    rows per series: the metrics are those of the sampled series, and the selection's note says so."""
    config = BacktestConfig(folds=2, horizon=HORIZON)
    windows = cutoffs(local.last_date, config, local.panel.step)
    model = fit_forecaster(local.panel, local.spec, FAST, cutoff=windows[0], horizon=HORIZON, calendar=local.calendar)
    data, models = _on_spark(spark, chain, ONE), dict.fromkeys(windows, model)
    full = window_forecasts_spark(data, windows, config, models=models)
    half = window_forecasts_spark(data, windows, config, models=models, max_rows=full.frame.height // 2)
    assert full.share == 1.0 and full.note is None
    assert 0 < half.share < 1 and half.note is not None and "hash sample" in half.note
    kept = half.frame.select(SERIES).unique()
    assert 0 < kept.height < 12
    key = [*SERIES, "model", "window", "date"]
    assert_frame_equal(half.frame.sort(key), full.frame.join(kept, on=list(SERIES), how="semi").sort(key))


def test_train_on_spark_registers_a_model_the_local_jobs_serve(spark: Any, chain: Settings, tmp_path: Path) -> None:
    settings = ingest_chain(tmp_path, CHAIN).model_copy(update={"spark": ONE})
    report = run_train(settings, task="demand", folds=1, horizon=HORIZON, forecast_config=FAST, engine="spark")
    assert report.version == "1" and report.promotion is not None and report.promotion.promoted
    params = Registry(settings).client.get_run(report.run.run_id).data.params
    assert params["engine.name"] == "spark" and params["engine"] == "xgboost"
    native = settings.workspace / "models" / "demand" / "champion" / "artifacts" / "native"
    model = load_forecaster(native)
    assert model.model.engine == "xgboost" and model.horizon == HORIZON
    assert (native / "reference.parquet").exists()
    scored = run_score(settings, horizon=7, now=NOW)
    assert scored.model_version == "1" and scored.series == 12 and scored.rows == 12 * 7
