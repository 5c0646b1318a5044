"""The forecast job: train on what is known at a cutoff and write forecasts with quantiles."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from shelfcast.features.build import HORIZON
from shelfcast.io.lake import Lake
from shelfcast.jobs.modeling import ModelData, load_model_data
from shelfcast.models.backtest import (
    BacktestConfig,
    Progress,
    add_quantiles,
    backtest_demand,
    candidates,
    conformal_scores,
    quantile_table,
)
from shelfcast.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForecastReport:
    path: Path
    rows: int
    series: int
    cutoff: dt.date
    horizon: int
    model: str
    seconds: float


def forecast_with_quantiles(
    data: ModelData,
    *,
    cutoff: dt.date,
    horizon: int,
    checkpoint_dir: Path | None = None,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """The best candidate's forecasts from `cutoff` with p10/p50/p90 calibrated on the window before it.

    One backtest window ending at the cutoff chooses the candidate (model,
    baseline or blend) and gives the residuals that set its intervals.
    """
    known = data.panel.as_known_at(cutoff)
    check = backtest_demand(
        known.until(cutoff),
        data.spec,
        data.config,
        BacktestConfig(windows=1, horizon=horizon),
        calendar=data.calendar,
        progress=progress,
    )
    chosen = check.selected
    log.info("backtest before %s selected %s", cutoff, chosen)
    if progress:
        progress(f"training {chosen} to {cutoff}", 1, 2)
    forecast = candidates(
        known,
        data.spec,
        data.config,
        cutoff=cutoff,
        steps=horizon,
        calendar=data.calendar,
        checkpoint_dir=checkpoint_dir,
        only=chosen,
    )[chosen]
    forecast = forecast.with_columns(
        ((pl.col("date") - pl.lit(cutoff)).dt.total_days() // known.step.days).cast(pl.Int32).alias(HORIZON)
    )
    table = quantile_table(conformal_scores(check.forecasts.filter(pl.col("model") == chosen)))
    return add_quantiles(forecast, table).with_columns(pl.lit(chosen).alias("model"))


def run_forecast(
    settings: Settings,
    *,
    cutoff: dt.date | None,
    horizon: int,
    out: Path,
    progress: Progress | None = None,
) -> ForecastReport:
    """Pick the best candidate on a backtest window before the cutoff, then forecast from the cutoff."""
    started = time.perf_counter()
    data = load_model_data(Lake(settings.workspace))
    cutoff = cutoff or data.last_date
    # A long final fit checkpoints every 50 rounds and resumes if interrupted.
    forecast = forecast_with_quantiles(
        data, cutoff=cutoff, horizon=horizon, checkpoint_dir=settings.workspace / "checkpoints", progress=progress
    )
    result = forecast.select("date", "store_id", "item_id", "forecast", "p10", "p50", "p90", "model").sort(
        "store_id", "item_id", "date"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    result.write_parquet(out)
    return ForecastReport(
        out,
        result.height,
        result.select("store_id", "item_id").n_unique(),
        cutoff,
        horizon,
        str(result["model"][0]),
        time.perf_counter() - started,
    )
