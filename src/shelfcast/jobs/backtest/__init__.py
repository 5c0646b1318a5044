"""The backtest job: rolling-origin scores of the models and baselines on the lake's data."""

from __future__ import annotations

from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.models.backtest import BacktestConfig, DemandBacktest, Progress, backtest_demand
from shelfcast.settings import Engine, Settings


def run_backtest(
    settings: Settings,
    *,
    folds: int,
    horizon: int,
    gap: int = 0,
    progress: Progress | None = None,
    engine: Engine = "local",
) -> DemandBacktest:
    """Backtest the demand forecaster against the baselines on the workspace's lake (on Spark: the direct XGBoost
    forecaster, every baseline and the blend, `io.spark.forecast`)."""
    config = BacktestConfig(folds=folds, horizon=horizon, gap=gap)
    lake = Lake(settings.workspace)
    if engine == "spark":
        from shelfcast.io.spark.forecast import backtest_demand_spark, open_lake

        on_spark = open_lake(settings.spark, lake)
        return backtest_demand_spark(
            on_spark, on_spark.shape.config, config, selection=settings.selection, progress=progress
        )
    data = load_model_data(lake)
    return backtest_demand(data.panel, data.spec, data.config, config, calendar=data.calendar, progress=progress)
