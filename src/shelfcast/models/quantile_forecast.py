"""The best candidate's forecasts from a cutoff, with quantiles calibrated on the window before it."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import polars as pl

from shelfcast.features.frames import HORIZON
from shelfcast.features.panel import Panel
from shelfcast.models.backtest import (
    RECURSIVE,
    BacktestConfig,
    DemandBacktest,
    Progress,
    add_quantiles,
    backtest_demand,
    candidate_forecast,
    conformal_scores,
    gbm_config,
    quantile_table,
)
from shelfcast.models.baselines import BASELINES
from shelfcast.models.checkpoint import Checkpoints
from shelfcast.models.data import ModelData
from shelfcast.models.selection import Selection, SelectionConfig, selection_windows
from shelfcast.models.train import ForecastConfig, TrainedForecaster, fit_forecaster

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
    gbm = None
    if chosen not in BASELINES:
        config = gbm_config(_blended_strategy(data, check.selection), chosen)
        gbm = fit_forecaster(
            known, data.spec, config, cutoff=cutoff, horizon=horizon, calendar=data.calendar, checkpoints=checkpoints
        )
    candidate = chosen_candidate(check, cutoff=cutoff, steps=horizon, gbm=gbm)
    return ChosenForecast(candidate.forecast(data.panel, calendar=data.calendar), check.selection)


@dataclass(frozen=True)
class ChosenCandidate:
    """The candidate a backtest before `cutoff` chose, its GBM fitted to `cutoff` (None for a baseline) and the
    quantile table of its residuals there: what forecasting any set of series from `cutoff` needs (a group of
    series on Spark, or all of them)."""

    name: str
    cutoff: dt.date
    steps: int
    gbm: TrainedForecaster | None
    blend_weight: float
    table: pl.DataFrame

    def forecast(self, panel: Panel, *, calendar: pl.DataFrame | None) -> pl.DataFrame:
        """The candidate's forecasts of `panel`'s series from the cutoff, as known there, with p10/p50/p90."""
        known = panel.as_known_at(self.cutoff)
        forecast = candidate_forecast(
            known,
            self.name,
            gbm=self.gbm,
            cutoff=self.cutoff,
            steps=self.steps,
            calendar=calendar,
            blend_weight=self.blend_weight,
        )
        forecast = forecast.with_columns(
            ((pl.col("date") - pl.lit(self.cutoff)).dt.total_days() // known.step.days).cast(pl.Int32).alias(HORIZON)
        )
        return add_quantiles(forecast, self.table).with_columns(pl.lit(self.name).alias("model"))


def chosen_candidate(
    check: DemandBacktest, *, cutoff: dt.date, steps: int, gbm: TrainedForecaster | None
) -> ChosenCandidate:
    """The candidate `check` (a backtest of windows ending at `cutoff`) chose, with `gbm` fitted to `cutoff`."""
    assert check.selection is not None
    chosen = check.selected
    weight = check.selection.blend_weight
    table = quantile_table(conformal_scores(check.forecasts.filter(pl.col("model") == chosen)))
    return ChosenCandidate(chosen, cutoff, steps, gbm, weight if weight is not None else 0.5, table)


def _blended_strategy(data: ModelData, selection: Selection) -> ForecastConfig:
    """The configuration to fit: for the blend, the GBM strategy the blend was made of."""
    if selection.blend_gbm is None:
        return data.config
    return data.config.model_copy(update={"strategy": "recursive" if selection.blend_gbm == RECURSIVE else "direct"})
