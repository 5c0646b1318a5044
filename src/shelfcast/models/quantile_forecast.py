"""The best candidate's forecasts from a cutoff, with quantiles calibrated on the window before it."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import polars as pl

from shelfcast.features.frames import HORIZON
from shelfcast.models.backtest import (
    RECURSIVE,
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
from shelfcast.models.selection import Selection, SelectionConfig, selection_windows
from shelfcast.models.train import ForecastConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChosenForecast:
    """The chosen candidate's forecasts with p10/p50/p90, and the selection that chose it."""

    frame: pl.DataFrame
    selection: Selection


def forecast_with_quantiles(
    data: ModelData,
    *,
    cutoff: dt.date,
    horizon: int,
    selection: SelectionConfig | None = None,
    checkpoints: Checkpoints | None = None,
    progress: Progress | None = None,
) -> pl.DataFrame:
    """The chosen candidate's forecasts (see `chosen_forecast`), without the decision."""
    return chosen_forecast(
        data, cutoff=cutoff, horizon=horizon, selection=selection, checkpoints=checkpoints, progress=progress
    ).frame


def chosen_forecast(
    data: ModelData,
    *,
    cutoff: dt.date,
    horizon: int,
    selection: SelectionConfig | None = None,
    checkpoints: Checkpoints | None = None,
    progress: Progress | None = None,
) -> ChosenForecast:
    """The chosen candidate's forecasts from `cutoff` with p10/p50/p90 calibrated on the windows before it.

    Rolling windows ending at the cutoff (`selection.windows`, placed by
    `selection_windows`) choose the candidate (model, baseline or blend,
    see `shelfcast.models.selection`) and give the residuals that set its
    intervals. Each window's GBMs are fitted on what was known at its cutoff.
    """
    selection = selection or SelectionConfig()
    known = data.panel.as_known_at(cutoff)
    history = known.until(cutoff)
    first = history.frame["date"].min()
    assert isinstance(first, dt.date)
    windows = selection_windows(first, cutoff, horizon=horizon, step=known.step, wanted=selection.windows)
    if windows.note:
        log.info("selection windows before %s: %s", cutoff, windows.note)
    check = backtest_demand(
        history,
        data.spec,
        data.config,
        BacktestConfig(folds=windows.count, horizon=horizon, step=windows.stride),
        calendar=data.calendar,
        progress=progress,
        selection=selection,
        windows_note=windows.note,
    )
    assert check.selection is not None
    chosen = check.selected
    log.info("backtest before %s selected %s", cutoff, chosen)
    if progress:
        progress(f"training {chosen} to {cutoff}", 1, 2)
    forecast = candidates(
        known,
        data.spec,
        _blended_strategy(data, check.selection),
        cutoff=cutoff,
        steps=horizon,
        calendar=data.calendar,
        checkpoints=checkpoints,
        only=chosen,
        blend_weight=check.selection.blend_weight if check.selection.blend_weight is not None else 0.5,
    )[chosen]
    forecast = forecast.with_columns(
        ((pl.col("date") - pl.lit(cutoff)).dt.total_days() // known.step.days).cast(pl.Int32).alias(HORIZON)
    )
    table = quantile_table(conformal_scores(check.forecasts.filter(pl.col("model") == chosen)))
    frame = add_quantiles(forecast, table).with_columns(pl.lit(chosen).alias("model"))
    return ChosenForecast(frame, check.selection)


def _blended_strategy(data: ModelData, selection: Selection) -> ForecastConfig:
    """The configuration to fit: for the blend, the GBM strategy the blend was made of."""
    if selection.blend_gbm is None:
        return data.config
    return data.config.model_copy(update={"strategy": "recursive" if selection.blend_gbm == RECURSIVE else "direct"})
