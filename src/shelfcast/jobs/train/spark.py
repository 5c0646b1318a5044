"""The train job's Spark engine: the demand forecaster and the stockout classifier backtested, fitted and
referenced on Spark.

What the gates read is the same as a local run's (the backtest's metrics per
window against every baseline, the champion scored on the challenger's
windows); only where the rows are computed changes. The model folder, the
MLflow run and the registry entry are those of a local XGBoost model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from shelfcast.errors import RebacktestError
from shelfcast.io.model_files import load_forecaster
from shelfcast.io.plots import feature_importance_png, forecast_vs_actual_png
from shelfcast.io.spark.forecast import (
    SparkData,
    backtest_demand_spark,
    fit_forecaster_spark,
    reference_spark,
    score_fitted_spark,
)
from shelfcast.io.spark.session import worker_count
from shelfcast.io.spark.stockout import backtest_risk_spark, definition_on, fit_stockout_spark
from shelfcast.io.tracking import CANDIDATE_PARAM
from shelfcast.jobs.train.fitted import Fitted, stockout_fitted
from shelfcast.jobs.train.rebacktest import FORECAST_PREFIX, AsServed, Rerun, config_from_params, stockout_rerun
from shelfcast.models.backtest import (
    MODEL,
    BacktestConfig,
    Progress,
    conformal_scores,
    cutoffs,
    quantile_table,
)
from shelfcast.models.data import group_data
from shelfcast.models.gates import RULES
from shelfcast.models.selection import Selection, SelectionConfig
from shelfcast.models.stockout import StockoutConfig, stockout_features, window_steps
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings
from shelfcast.types import Freq, Task

EXAMPLE_ROWS = 5


def demand_on_spark(
    settings: Settings,
    data: SparkData,
    config: ForecastConfig | None,
    *,
    folds: int,
    horizon: int,
    out: Path,
    progress: Progress | None,
    mix_of: Any,
) -> tuple[Fitted, pl.DataFrame]:
    """Backtest on Spark, choose, fit on everything on Spark, and the drift reference: what `_demand` does locally."""
    shape = data.shape
    config = (config or shape.config).model_copy(update={"engine": "xgboost", "strategy": "direct"})
    bt = backtest_demand_spark(
        data, config, BacktestConfig(folds=folds, horizon=horizon), selection=settings.selection, progress=progress
    )
    selection: Selection | None = bt.selection
    assert selection is not None
    candidate = selection.candidate
    if progress:
        progress(f"final fit on Spark ({candidate})", 1, 2)
    model = replace(fit_forecaster_spark(data, config, cutoff=shape.end, horizon=horizon), mix=mix_of(selection))
    calendar = shape.shared.get("calendar")
    example = model.feature_rows(group_data(shape, data.sample).panel, calendar=calendar).head(EXAMPLE_ROWS)
    baselines = list(RULES[Task.DEMAND].baselines)
    best_baseline = str(
        bt.metrics.filter((pl.col("window") == "all") & pl.col("model").is_in(baselines)).sort(selection.metric)[
            "model"
        ][0]
    )
    importance = model.model.feature_importance()
    reports = [
        feature_importance_png(importance, out / "feature_importance.png"),
        forecast_vs_actual_png(bt.forecasts, out / "forecast_vs_actual.png", models=[candidate, best_baseline]),
    ]
    importance.write_csv(out / "feature_importance.csv")
    params = {
        **config.model_dump(),
        "horizon": horizon,
        "windows": folds,
        "cutoff": shape.end,
        "engine.name": "spark",
        "engine.master": settings.spark.master,
        "engine.xgboost_workers": worker_count(data.session, settings.spark),
        **{f"selection.{k}": v for k, v in settings.selection.model_dump().items()},
        "selection.blend_weight": selection.blend_weight,
    }
    quantiles = quantile_table(conformal_scores(bt.forecasts.filter(pl.col("model") == candidate)))
    reference = reference_spark(data, model, end=shape.end, days=settings.monitor.lookback_days)
    fitted = Fitted(candidate, model, bt.metrics, bt.cutoffs, params, example, reports, bt, quantiles)
    return fitted, reference


def stockout_on_spark(
    settings: Settings,
    data: SparkData,
    config: StockoutConfig,
    *,
    folds: int,
    risk_days: int,
    min_hours: float | None,
    out: Path,
    progress: Progress | None,
    forecast_config: ForecastConfig | None = None,
) -> tuple[Fitted, pl.DataFrame]:
    """The stockout classifier backtested and fitted on Spark, and its drift reference: what `_stockout` does
    locally (the quantile-risk comparison's demand forecasts by XGBoost on Spark too)."""
    shape = data.shape
    config = config.model_copy(update={"engine": "xgboost"})
    demand = (forecast_config or shape.config).model_copy(update={"engine": "xgboost", "strategy": "direct"})
    bt = backtest_risk_spark(
        data,
        folds=folds,
        risk_days=risk_days,
        min_hours=min_hours,
        config=config,
        progress=progress,
        forecast_config=demand,
        selection=settings.selection,
    )
    if progress:
        progress("final fit on Spark (classifier)", 1, 2)
    definition = definition_on(data, risk_days=risk_days, min_hours=min_hours)
    model = fit_stockout_spark(data, config, definition, cutoff=shape.end)
    sample = group_data(shape, data.sample).panel
    steps = window_steps(sample, risk_days)
    example = stockout_features(sample.as_known_at(shape.end), shape.spec, [shape.end], window=steps)
    params = {
        # The demand forecast behind the backtest's quantile_risk model.
        **{f"{FORECAST_PREFIX}{k}": v for k, v in demand.model_dump().items()},
        "windows": folds,
        "cutoff": shape.end,
        "engine.name": "spark",
        "engine.master": settings.spark.master,
        "engine.xgboost_workers": worker_count(data.session, settings.spark),
    }
    fitted = stockout_fitted(bt, model, example.head(EXAMPLE_ROWS), out=out, params=params)
    return fitted, reference_spark(data, model, end=shape.end, days=settings.monitor.lookback_days)


def stockout_rerun_spark(data: SparkData, *, folds: int, risk_days: int, min_hours: float | None) -> Rerun:
    """The stockout champion's config backtested on Spark on the challenger's windows (`rebacktest.Rerun`)."""
    return stockout_rerun(
        lambda config: backtest_risk_spark(
            data, folds=folds, risk_days=risk_days, min_hours=min_hours, config=config, quantile_risk=False
        ),
        risk_days=risk_days,
        min_hours=min_hours,
    )


def spark_rerun(data: SparkData, *, folds: int, horizon: int, selection: SelectionConfig) -> Rerun:
    """The champion's ForecastConfig backtested on Spark on the challenger's windows (`rebacktest.Rerun`)."""

    def rerun(params: Mapping[str, str]) -> tuple[list[dt.date], pl.DataFrame]:
        config = config_from_params(ForecastConfig, params)
        if config.strategy == "recursive":
            raise RebacktestError("its model is recursive, which the Spark engine does not train")
        backtest = BacktestConfig(folds=folds, horizon=horizon)
        result = backtest_demand_spark(data, config, backtest, selection=selection)
        name, served = MODEL, params.get(CANDIDATE_PARAM)
        if served is not None and served in set(result.metrics["model"].to_list()):
            name = served
        return result.cutoffs, result.metrics.filter(pl.col("model") == name)

    return rerun


def spark_as_served(data: SparkData, *, folds: int, horizon: int) -> AsServed:
    """The champion's fitted forecaster as it serves, scored on Spark on the challenger's windows (`AsServed`)."""

    def score(folder: Path) -> tuple[list[dt.date], pl.DataFrame] | None:
        model = load_forecaster(folder)
        backtest = BacktestConfig(folds=folds, horizon=horizon)
        first = cutoffs(data.shape.end, backtest, Freq(data.shape.freq).step)[0]
        if model.cutoff > first or (not model.recursive and horizon > model.horizon):
            return None
        return score_fitted_spark(data, model, backtest, name=MODEL)

    return score
