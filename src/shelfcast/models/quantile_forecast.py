"""The best candidate's forecasts from a cutoff, with quantiles calibrated on the window before it."""

from __future__ import annotations

import datetime as dt
import logging

import polars as pl

from shelfcast.features.frames import HORIZON
from shelfcast.models.backtest import (
    BacktestConfig,
    Progress,
    add_quantiles,
    backtest_demand,
    candidates,
    conformal_scores,
    quantile_table,
)
from shelfcast.models.checkpoint import Checkpoints
from shelfcast.models.data import ModelData

log = logging.getLogger(__name__)


def forecast_with_quantiles(
    data: ModelData,
    *,
    cutoff: dt.date,
    horizon: int,
    checkpoints: Checkpoints | None = None,
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
        BacktestConfig(folds=1, horizon=horizon),
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
        checkpoints=checkpoints,
        only=chosen,
    )[chosen]
    forecast = forecast.with_columns(
        ((pl.col("date") - pl.lit(cutoff)).dt.total_days() // known.step.days).cast(pl.Int32).alias(HORIZON)
    )
    table = quantile_table(conformal_scores(check.forecasts.filter(pl.col("model") == chosen)))
    return add_quantiles(forecast, table).with_columns(pl.lit(chosen).alias("model"))
