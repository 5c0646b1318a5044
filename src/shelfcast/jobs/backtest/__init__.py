"""The backtest job: rolling-origin scores of the models and baselines on the lake's data."""

from __future__ import annotations

from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.models.backtest import BacktestConfig, DemandBacktest, Progress, backtest_demand
from shelfcast.settings import Settings


def run_backtest(
    settings: Settings,
    *,
    folds: int,
    horizon: int,
    gap: int = 0,
    progress: Progress | None = None,
) -> DemandBacktest:
    """Backtest the demand forecaster against the baselines on the workspace's lake."""
    data = load_model_data(Lake(settings.workspace))
    config = BacktestConfig(folds=folds, horizon=horizon, gap=gap)
    return backtest_demand(data.panel, data.spec, data.config, config, calendar=data.calendar, progress=progress)
