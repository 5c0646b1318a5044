"""The feature rows of a set of series: the one function both engines run (locally on every series, on Spark on
each group of series), so the two give the same rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from shelfcast.errors import DataValidationError
from shelfcast.features.frames import HORIZON
from shelfcast.features.labels import StockoutDefinition, definition_for, stockout_labels
from shelfcast.features.panel import SERIES, Panel
from shelfcast.models.data import ModelData
from shelfcast.models.stockout import ORIGIN, StockoutConfig, stockout_features
from shelfcast.models.train import (
    TARGET_COLUMN,
    ForecastConfig,
    keep_share,
    sampled_training_rows,
    training_origins,
)

LABEL = "label"
# The labelled origins of the feature table: the ones the stockout classifier trains on by default.
LABELLED_ORIGINS = StockoutConfig().n_origins


def labelled_origins(cutoff: dt.date, step: dt.timedelta, window: int, count: int = LABELLED_ORIGINS) -> list[dt.date]:
    """The latest `count` origins whose label window (`window` steps) ends on or before the cutoff, oldest first."""
    last = cutoff - step * window
    return sorted(last - step * k for k in range(count))


def stock_definition(panel: Panel, risk_days: int) -> StockoutDefinition | None:
    """The stockout definition of this data, None on sales-only data (no label to give)."""
    try:
        return definition_for(panel, risk_days=risk_days, min_hours=None)
    except DataValidationError:
        return None


def feature_rows(
    data: ModelData,
    *,
    cutoff: dt.date,
    window: int,
    labelled: list[dt.date],
    definition: StockoutDefinition | None,
) -> pl.DataFrame:
    """Each series' features at the cutoff and, with `labelled` origins, at those too with their label.

    The cutoff's rows are what the service scores (label null: its window is
    in the future); the labelled rows are what the stockout classifier
    trains on. The label is null on sales-only data (`definition` None) and
    where the window's stock is not known.
    """
    rows = stockout_features(data.panel.as_known_at(cutoff), data.spec, [*labelled, cutoff], window=window)
    if not labelled:
        return rows
    if definition is None:
        return rows.with_columns(pl.lit(None, pl.Int8).alias(LABEL))
    labels = stockout_labels(data.panel.until(cutoff), origins=labelled, definition=definition)
    keys = [*SERIES, ORIGIN]
    return rows.join(labels.select(*keys, pl.col(LABEL).cast(pl.Int8)), on=keys, how="left").sort(keys)


@dataclass(frozen=True)
class DemandPlan:
    """What every group needs to build the demand training table: the same origins, horizons and sample share."""

    config: ForecastConfig
    cutoff: dt.date
    origins: list[dt.date]
    horizons: list[int]
    keep: float


def demand_plan(
    config: ForecastConfig, *, cutoff: dt.date, firsts: Mapping[dt.date, int], step: dt.timedelta, horizon: int
) -> DemandPlan:
    """The direct forecaster's training origins and horizons at `cutoff` and the share of rows to keep (at most
    `config.max_rows`), from how many series start on each date (`firsts`, over all series)."""
    direct = config.model_copy(update={"strategy": "direct"})
    origins, horizons = training_origins(direct, cutoff=cutoff, first=min(firsts), horizon=horizon, step=step)
    keep = keep_share(firsts, origins, horizons, cutoff=cutoff, step=step, max_rows=config.max_rows)
    return DemandPlan(direct, cutoff, origins, horizons, keep)


def demand_rows(data: ModelData, plan: DemandPlan) -> pl.DataFrame:
    """The demand forecaster's training rows at the plan's cutoff: each (series, origin, h) row's features and the
    demand at its target date (`label`), a seeded hash sample of at most `max_rows` (the rows a Spark fit trains on;
    a local fit draws its own sample of the same size). Per series: a group of series gives its part."""
    rows = sampled_training_rows(
        data.panel.until(plan.cutoff),
        data.spec,
        plan.origins,
        plan.horizons,
        cutoff=plan.cutoff,
        keep=plan.keep,
        seed=plan.config.seed,
        calendar=data.calendar,
    )
    return rows.rename({TARGET_COLUMN: LABEL}).sort(*SERIES, ORIGIN, HORIZON)


def series_starts(panel: Panel) -> dict[dt.date, int]:
    """How many series start on each date."""
    starts = panel.frame.group_by(SERIES).agg(pl.col("date").min().alias("first")).group_by("first").len()
    return {row[0]: row[1] for row in starts.iter_rows()}
