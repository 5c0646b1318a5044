"""Stockout jobs: risk and reorder advice at a cutoff, and a rolling-origin backtest against the rule."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

from shelfcast.features.labels import definition_for
from shelfcast.features.panel import SERIES
from shelfcast.io.checkpoint import FileCheckpoints
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.models.backtest import Progress
from shelfcast.models.data import ModelData, parse_cutoff
from shelfcast.models.quantile_forecast import forecast_with_quantiles
from shelfcast.models.replenish import reorder_advice
from shelfcast.models.risk import StockoutBacktest, backtest_risk, score_stockout
from shelfcast.models.stockout import StockoutConfig, window_steps
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Engine, Settings


@dataclass(frozen=True)
class StockoutReport:
    path: Path
    rows: int
    alerts: int
    threshold: float
    cutoff: dt.date
    seconds: float


def run_stockout(
    settings: Settings, *, cutoff: str | dt.date | None, risk_days: int, min_hours: float | None, out: Path
) -> StockoutReport:
    started = time.perf_counter()
    data = load_model_data(Lake(settings.workspace))
    cutoff = parse_cutoff(cutoff, data)
    definition = definition_for(data.panel, risk_days=risk_days, min_hours=min_hours)
    # The demand forecast covers the risk window and the lead time plus review period of the advice.
    days = max(risk_days, settings.lead_time_days + 7)
    steps = window_steps(data.panel, days)
    checkpoints = FileCheckpoints(settings.workspace / "checkpoints")
    forecast = forecast_with_quantiles(
        data, cutoff=cutoff, horizon=steps, selection=settings.selection, checkpoints=checkpoints
    )
    scored = score_stockout(data, cutoff=cutoff, definition=definition, forecast=forecast, checkpoints=checkpoints)
    advice = reorder_advice(
        data.panel,
        forecast,
        cutoff=cutoff,
        lead_time_days=settings.lead_time_days,
        service_level=settings.service_level,
    )
    result = scored.join(advice, on=list(SERIES), how="left").drop("origin").sort("risk", descending=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    result.write_parquet(out)
    return StockoutReport(
        out,
        result.height,
        int(result["label"].sum()),
        float(result["threshold"][0]),
        cutoff,
        time.perf_counter() - started,
    )


def backtest_stockout(
    settings: Settings,
    *,
    folds: int,
    risk_days: int,
    min_hours: float | None,
    progress: Progress | None = None,
    config: StockoutConfig | None = None,
    forecast_config: ForecastConfig | None = None,
    data: ModelData | None = None,
    quantile_risk: bool = True,
    engine: Engine = "local",
) -> StockoutBacktest:
    """`models.risk.backtest_risk` on the workspace's lake (or on `data`, already loaded from it); on Spark, its
    twin `io.spark.stockout.backtest_risk_spark` (XGBoost, the demand forecasts of the quantile risk too)."""
    if engine == "spark":
        from shelfcast.io.spark.forecast import open_lake
        from shelfcast.io.spark.stockout import backtest_risk_spark, definition_check

        check = definition_check(risk_days=risk_days, min_hours=min_hours)
        on_spark = open_lake(settings.spark, Lake(settings.workspace), check=check)
        return backtest_risk_spark(
            on_spark,
            folds=folds,
            risk_days=risk_days,
            min_hours=min_hours,
            config=config,
            progress=progress,
            forecast_config=forecast_config,
            quantile_risk=quantile_risk,
            selection=settings.selection,
        )
    return backtest_risk(
        data or load_model_data(Lake(settings.workspace)),
        folds=folds,
        risk_days=risk_days,
        min_hours=min_hours,
        progress=progress,
        config=config,
        forecast_config=forecast_config,
        quantile_risk=quantile_risk,
        selection=settings.selection,
    )
