"""Train then gate: what `shelfcast train` does (the train job registers a challenger, the promote job gates it)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

from shelfcast.jobs.promote import gate_and_promote
from shelfcast.jobs.train import TrainReport, train_challenger
from shelfcast.models.backtest import Progress
from shelfcast.models.stockout import StockoutConfig
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Engine, Settings
from shelfcast.types import Task


def run_train(
    settings: Settings,
    *,
    task: Task,
    folds: int = 3,
    horizon: int | None = None,
    risk_days: int = 7,
    min_hours: float | None = None,
    forecast_config: ForecastConfig | None = None,
    stockout_config: StockoutConfig | None = None,
    progress: Progress | None = None,
    promote: bool = True,
    tags: Mapping[str, str] | None = None,
    engine: Engine = "local",
) -> TrainReport:
    """Train and register a challenger (`jobs.train`), then with `promote` let the gates decide (`jobs.promote`).

    `tags` go on the MLflow run (the pipeline links its Prefect flow run this way).
    """
    report = train_challenger(
        settings,
        task=task,
        folds=folds,
        horizon=horizon,
        risk_days=risk_days,
        min_hours=min_hours,
        forecast_config=forecast_config,
        stockout_config=stockout_config,
        progress=progress,
        tags=tags,
        engine=engine,
    )
    if not promote:
        return report
    started = time.perf_counter()
    promotion = gate_and_promote(settings, task, report.version)
    return replace(report, promotion=promotion, seconds=report.seconds + time.perf_counter() - started)
