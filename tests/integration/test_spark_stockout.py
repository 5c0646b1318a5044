"""The stockout classifier trained and backtested on Spark equals the local XGBoost one (`io.spark.stockout`).

With one XGBoost worker the Spark fits see the local fits' rows in the local
order: the same boosters, so the same held-out scores, calibration map and
alert threshold (float tolerance only). The backtest gives the same cutoffs
and the same classifier and rule metrics per window; `train --task stockout
--engine spark` registers a classifier the gates promote and local scoring serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from helpers import NOW, run_cli
from polars.testing import assert_frame_equal
from serving import ingest_chain

from shelfcast.data.simulator import SimConfig
from shelfcast.features.labels import definition_for
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data, load_shape
from shelfcast.io.registry import Registry
from shelfcast.io.spark.forecast import spark_data
from shelfcast.io.spark.stockout import backtest_risk_spark, fit_stockout_spark
from shelfcast.jobs.promote import promote_version
from shelfcast.jobs.score import run_score
from shelfcast.models.data import ModelData
from shelfcast.models.risk import backtest_risk
from shelfcast.models.stockout import StockoutConfig, fit_stockout, stockout_features_at
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings, SparkConfig
from shelfcast.types import Task
from shelfcast.workflows.training import run_train

pytestmark = [pytest.mark.integration, pytest.mark.spark]
# A low safety stock: stockouts happen (positives in every window).
CHAIN = SimConfig(
    n_stores=3, n_items=4, n_days=200, seed=8, min_base_demand=1.0, max_base_demand=30.0, safety_factor=0.25
)
FAST = StockoutConfig(engine="xgboost", n_origins=21, n_estimators=30, num_leaves=15)
# The demand forecaster behind the quantile risk: what the Spark engine trains (direct XGBoost), small.
DEMAND = ForecastConfig(engine="xgboost", strategy="direct", n_estimators=30, num_leaves=15)
ONE = SparkConfig(master="local[2]", groups=3, workers=1)
RISK_DAYS = 7


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return ingest_chain(tmp_path_factory.mktemp("spark-stockout"), CHAIN)


@pytest.fixture(scope="module")
def local(chain: Settings) -> ModelData:
    return load_model_data(Lake(chain.workspace))


def _on_spark(spark: Any, chain: Settings, config: SparkConfig) -> Any:
    lake = Lake(chain.workspace)
    return spark_data(spark, config, lake, load_shape(lake))


def test_one_worker_fits_the_local_classifier(spark: Any, chain: Settings, local: ModelData) -> None:
    definition = definition_for(local.panel, risk_days=RISK_DAYS, min_hours=None)
    cutoff = local.last_date - local.panel.step * RISK_DAYS
    on_spark = fit_stockout_spark(_on_spark(spark, chain, ONE), FAST, definition, cutoff=cutoff)
    alone = fit_stockout(local.panel, local.spec, FAST, definition, cutoff=cutoff)
    assert on_spark.model.encoder_.columns_ == alone.model.encoder_.columns_
    assert on_spark.model.encoder_.vocab_ == alone.model.encoder_.vocab_
    assert on_spark.positive_rate == pytest.approx(alone.positive_rate, abs=1e-12)
    assert 0 < alone.positive_rate < 1  # the chain has stockouts to learn from
    assert on_spark.holdout is not None and alone.holdout is not None
    np.testing.assert_allclose(on_spark.holdout.raw, alone.holdout.raw, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(on_spark.holdout.label, alone.holdout.label)
    np.testing.assert_allclose(on_spark.holdout.current_final, alone.holdout.current_final, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(on_spark.calibration_x, alone.calibration_x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(on_spark.calibration_y, alone.calibration_y, rtol=1e-5, atol=1e-6)
    assert on_spark.threshold == pytest.approx(alone.threshold, abs=1e-6)
    rows = stockout_features_at(local.panel, local.spec, cutoff, window=RISK_DAYS)
    np.testing.assert_allclose(on_spark.predict_proba(rows), alone.predict_proba(rows), rtol=1e-5, atol=1e-6)


def test_the_backtest_on_spark_scores_as_the_local_one(spark: Any, chain: Settings, local: ModelData) -> None:
    """Every model's metrics, the quantile risk's too: per window, a Spark demand backtest before the cutoff
    chooses the candidate whose forecasts it compares with the stock, as the local one does."""
    on_spark = backtest_risk_spark(
        _on_spark(spark, chain, ONE), folds=2, risk_days=RISK_DAYS, min_hours=None, config=FAST, forecast_config=DEMAND
    )
    alone = backtest_risk(local, folds=2, risk_days=RISK_DAYS, min_hours=None, config=FAST, forecast_config=DEMAND)
    assert on_spark.cutoffs == alone.cutoffs and on_spark.selected == alone.selected
    key = ["model", "window"]
    assert set(on_spark.metrics["model"]) == {"classifier", "rule", "quantile_risk"}
    assert_frame_equal(on_spark.metrics.sort(key), alone.metrics.sort(key), rel_tol=1e-5, abs_tol=1e-6)
    assert on_spark.scored is not None and alone.scored is not None
    assert on_spark.scored["quantile_risk"].is_not_null().all()
    columns = [
        *("store_id", "item_id", "origin", "window", "risk", "threshold", "label", "rule_score", "label_true"),
        "quantile_risk",
    ]
    assert_frame_equal(
        on_spark.scored.select(columns).sort("window", "store_id", "item_id"),
        alone.scored.select(columns).sort("window", "store_id", "item_id"),
        rel_tol=1e-5,
        abs_tol=1e-6,
    )


def test_train_stockout_on_spark_registers_a_classifier_the_local_jobs_serve(spark: Any, tmp_path: Path) -> None:
    settings = ingest_chain(tmp_path, CHAIN).model_copy(update={"spark": ONE})
    report = run_train(settings, task="stockout", folds=1, stockout_config=FAST, forecast_config=DEMAND, engine="spark")
    assert report.version == "1" and report.promotion is not None, report
    params = Registry(settings).client.get_run(report.run.run_id).data.params
    assert params["engine.name"] == "spark" and params["engine"] == "xgboost"
    assert params["definition.window"] == str(RISK_DAYS)
    assert params["forecast.engine"] == "xgboost" and params["forecast.n_estimators"] == "30"
    metrics = Registry(settings).client.get_run(report.run.run_id).data.metrics
    assert 0 <= metrics["pr_auc.quantile_risk"] <= 1, metrics  # the backtest compared it, on Spark
    if not report.promotion.promoted:  # the gates may refuse a 30-tree model on 12 series: serve it anyway
        promote_version(settings, Task.STOCKOUT, report.version, force=True)
    native = settings.workspace / "models" / "stockout" / "champion" / "artifacts" / "native"
    assert (native / "reference.parquet").exists()
    reference = pl.read_parquet(native / "reference.parquet")
    assert reference.height and reference["prediction"].is_between(0, 1).all()
    scored = run_score(settings, horizon=7, now=NOW)
    assert scored.stockout_version == "1", scored


def test_backtest_stockout_on_spark_from_the_command_line(spark: Any, chain: Settings, tmp_path: Path) -> None:
    """`shelfcast backtest --task stockout --engine spark` (in this process: its Spark session is the tests')."""
    from typer.testing import CliRunner

    from shelfcast.cli import app

    out = tmp_path / "scores.json"
    args = ["backtest", "--task", "stockout", "--engine", "spark", "--folds", "1", "--json", str(out)]
    # One selection window for the quantile risk's demand forecast: two Spark fits, not four.
    result = CliRunner().invoke(app, [*args, "-w", str(chain.workspace)], env={"SHELFCAST_SELECTION__WINDOWS": "1"})
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert "classifier" in said and "rule" in said and "quantile_risk" in said, said
    assert out.exists()


@pytest.mark.parametrize(
    ("sales_only", "extra", "said"),
    [
        (True, [], "stockout risk needs stock data, and the lake has sales only"),
        (False, ["--min-hours", "2"], "`--min-hours` 2 needs stockout hours, but the inventory has on_hand only"),
    ],
    ids=["sales-only-lake", "min-hours-without-hours"],
)
def test_stockout_on_spark_refuses_data_without_its_signal_in_one_line(
    tmp_path: Path, sales_only: bool, extra: list[str], said: str
) -> None:
    """`train` and `backtest --task stockout --engine spark` as a user runs them: the local engine's checks, made
    on the driver before Spark starts; one line naming what is missing, no traceback, nothing registered."""
    small = SimConfig(n_stores=2, n_items=2, n_days=60, seed=3)
    settings = ingest_chain(tmp_path, small, sales_only=sales_only, drop=("stockout_hours",))
    for command in ("train", "backtest"):
        args = [command, "--task", "stockout", "--engine", "spark", "--folds", "1", *extra]
        done = run_cli(*args, "-w", str(settings.workspace), cwd=tmp_path, timeout=300)
        assert done.returncode != 0, done.stdout + done.stderr
        said_err = " ".join(done.stderr.split())
        assert said in said_err and "Traceback" not in done.stderr, done.stderr
    assert Registry(settings).versions(Task.STOCKOUT) == []
