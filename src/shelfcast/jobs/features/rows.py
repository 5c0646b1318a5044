"""The feature rows of a set of series: the one function both engines run (locally on every series, on Spark on
each group of series), so the two give the same rows."""

from __future__ import annotations

import datetime as dt

import polars as pl

from shelfcast.errors import DataValidationError
from shelfcast.features.labels import StockoutDefinition, definition_for, stockout_labels
from shelfcast.features.panel import SERIES, Panel
from shelfcast.models.data import ModelData
from shelfcast.models.stockout import ORIGIN, StockoutConfig, stockout_features

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
