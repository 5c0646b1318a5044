"""Stockout labels (did a series run out in the days after an origin?) and the rule baseline that predicts them.

A period is a stockout when any signal the panel has says so: observed
stockout hours (`stockout_hours`, else the count of `hourly_stockout` flags) of
at least `min_hours` (a whole day when not set), or, with `use_on_hand`, an
end-of-period `on_hand` of zero (or below `safety_stock` with
`below_safety_stock`). A period is unknown (null) only when none of its
signals is known; otherwise the known ones decide. Windows are given in days
and cover ceil(days / step) periods, so the default 7 days is one period on
weekly data, where stockout_hours is a mean per day.

Both functions are vectorised: cumulative counts per series, looked up at the
window's two ends with as-of joins, so no loop runs over series or origins.
"""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from shelfcast.errors import ConfigError, DataValidationError
from shelfcast.features.panel import SERIES, Panel

HOURS_PER_DAY = 24.0
_COUNTS = ("n_rows", "n_known", "n_events")


class StockoutDefinition(BaseModel):
    """What makes a period a stockout, and how many days after the origin the label looks at."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(default=7, ge=1, description="Days after the origin the label covers.")
    min_hours: float | None = Field(
        default=None, gt=0, le=HOURS_PER_DAY, description="Observed stockout hours that make a day count; None = 24."
    )
    use_on_hand: bool = Field(default=True, description="An on_hand of zero counts as a stockout.")
    below_safety_stock: bool = Field(default=False, description="With use_on_hand: on_hand below safety_stock counts.")


def _periods(panel: Panel, days: int, name: str) -> int:
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise ValueError(f"`{name}` must be a positive number of days, got {days!r}")
    return math.ceil(days / panel.step.days)


def stockout_events(panel: Panel, definition: StockoutDefinition) -> pl.DataFrame:
    """One row per panel row: `stockout` 1/0 by the definition, null where no stock signal is known."""
    columns = panel.frame.columns
    hours: list[pl.Expr] = []
    if "stockout_hours" in columns:
        hours.append(pl.col("stockout_hours").cast(pl.Float64))
    if "hourly_stockout" in columns:
        hours.append(pl.col("hourly_stockout").list.sum().cast(pl.Float64))
    signals: list[pl.Expr] = []
    if hours:
        threshold = HOURS_PER_DAY if definition.min_hours is None else definition.min_hours
        signals.append(pl.coalesce(hours) >= threshold)
    if definition.use_on_hand and "on_hand" in columns:
        out = pl.col("on_hand") <= 0
        if definition.below_safety_stock and "safety_stock" in columns:
            # A null safety stock leaves the on-hand test alone rather than making it unknown.
            out = out | (pl.col("on_hand") < pl.col("safety_stock")).fill_null(False)
        signals.append(out)
    if not signals:
        wanted = "stockout_hours, hourly_stockout" + (" or on_hand" if definition.use_on_hand else "")
        raise DataValidationError(
            f"the panel has no stock signal for this stockout definition: it needs {wanted} "
            f"(columns: {', '.join(columns)}); ingest an inventory table"
        )
    # One true signal decides; otherwise any known signal says no; all unknown stays unknown.
    known = pl.any_horizontal(s.is_not_null() for s in signals)
    stockout = pl.when(known).then(pl.any_horizontal(s.fill_null(False) for s in signals))
    return panel.frame.select(*SERIES, "date", stockout.cast(pl.Int8).alias("stockout"))


def _origins(origins: pl.Series | list[dt.date]) -> pl.DataFrame:
    series = origins if isinstance(origins, pl.Series) else pl.Series(values=origins)
    if series.is_empty():
        raise ValueError("`origins` must hold at least one date, got none")
    if series.dtype != pl.Date:
        raise ValueError(f"`origins` must be dates (pl.Date or datetime.date), got dtype {series.dtype}")
    if series.null_count():
        raise ValueError(f"`origins` must not contain nulls, got {series.null_count()}")
    return series.unique().sort().alias("origin").to_frame()


def _cumulative(events: pl.DataFrame) -> pl.DataFrame:
    """Per series and date: periods, periods with a known stock signal and stockouts up to that date."""
    return (
        events.sort(*SERIES, "date")
        .with_columns(
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over(SERIES).alias("n_rows"),
            pl.col("stockout").is_not_null().cast(pl.Int64).cum_sum().over(SERIES).alias("n_known"),
            pl.col("stockout").fill_null(0).cast(pl.Int64).cum_sum().over(SERIES).alias("n_events"),
        )
        .select(*SERIES, "date", *_COUNTS)
        .sort("date")
    )


def _counts_at(queries: pl.DataFrame, cumulative: pl.DataFrame, at: str, suffix: str) -> pl.DataFrame:
    """Join the counts up to and including date `at` (0 before a series' first period)."""
    right = cumulative.rename({c: f"{c}{suffix}" for c in _COUNTS}).rename({"date": f"_date{suffix}"})
    joined = queries.sort(at).join_asof(
        right, left_on=at, right_on=f"_date{suffix}", by=list(SERIES), strategy="backward", check_sortedness=False
    )
    return joined.drop(f"_date{suffix}").with_columns(pl.col(f"{c}{suffix}").fill_null(0) for c in _COUNTS)


def _windows(panel: Panel, origins: pl.DataFrame, start: pl.Expr, end: pl.Expr) -> pl.DataFrame:
    """Series x origin, with each series' first and last period and the window's (start, end]."""
    spans = panel.frame.group_by(SERIES).agg(pl.col("date").min().alias("first"), pl.col("date").max().alias("last"))
    return spans.join(origins, how="cross").with_columns(start.alias("_start"), end.alias("_end"))


def _window_counts(queries: pl.DataFrame, cumulative: pl.DataFrame) -> pl.DataFrame:
    out = _counts_at(_counts_at(queries, cumulative, "_start", "_0"), cumulative, "_end", "_1")
    return out.with_columns((pl.col(f"{c}_1") - pl.col(f"{c}_0")).alias(c) for c in _COUNTS)


def stockout_labels(
    panel: Panel,
    *,
    origins: pl.Series | list[dt.date],
    definition: StockoutDefinition | None = None,
) -> pl.DataFrame:
    """1 if a stockout happens on any of the `window` days after each origin (origin+1 .. origin+window), else 0.

    The label is null, with the `reason` column saying why, when the window is
    not fully inside the series' data (it runs past the series' last period,
    for instance past the panel's end, or starts before its first), or when no
    stockout was seen and stock is unknown on some period of the window.
    Columns: store_id, item_id, origin, window_end, label (Int8), reason.
    """
    definition = definition or StockoutDefinition()
    periods = _periods(panel, definition.window, "definition.window")
    span = pl.duration(days=periods * panel.step.days)
    queries = _windows(panel, _origins(origins), pl.col("origin"), pl.col("origin") + span)
    counts = _window_counts(queries, _cumulative(stockout_events(panel, definition)))

    partial = pl.col("n_rows") < periods
    reason = (
        pl.when(partial & (pl.col("_end") > pl.col("last")))
        .then(pl.lit("window runs past the series' last period"))
        .when(partial & (pl.col("origin") < pl.col("first")))
        .then(pl.lit("window starts before the series' first period"))
        .when(partial)
        .then(pl.lit("periods missing from the window"))
        .when((pl.col("n_events") == 0) & (pl.col("n_known") < pl.col("n_rows")))
        .then(pl.lit("stock unknown on some periods of the window"))
    )
    label = pl.when(reason.is_null()).then((pl.col("n_events") > 0).cast(pl.Int8))
    return counts.select(
        *SERIES,
        "origin",
        pl.col("_end").alias("window_end"),
        label.alias("label"),
        reason.alias("reason"),
    ).sort(*SERIES, "origin")


# How scoring and serving name the rule when it stands in for a model, and the alert cut on its 0/1 score.
RULE_BASELINE = "rule-baseline"
RULE_THRESHOLD = 0.5


def rule_baseline(
    panel: Panel,
    *,
    origins: pl.Series | list[dt.date],
    window: int = 7,
    definition: StockoutDefinition | None = None,
) -> pl.DataFrame:
    """1 if on hand is below safety stock at the origin or a stockout happened in the last `window` days, else 0.

    Uses only periods up to and including the origin: the stockouts counted are
    those in (origin - window days, origin], the stock position is the latest
    one in that span. The score is null where the series has no period in it.
    Columns: store_id, item_id, origin, score (Int8).
    """
    definition = definition or StockoutDefinition()
    periods = _periods(panel, window, "window")
    span = pl.duration(days=periods * panel.step.days)
    queries = _windows(panel, _origins(origins), pl.col("origin") - span, pl.col("origin"))
    counts = _window_counts(queries, _cumulative(stockout_events(panel, definition)))

    below = pl.lit(False)
    if {"on_hand", "safety_stock"} <= set(panel.frame.columns):
        stock = panel.frame.select(
            *SERIES,
            pl.col("date").alias("_stock_date"),
            (pl.col("on_hand") < pl.col("safety_stock")).fill_null(False).alias("_below"),
        ).sort("_stock_date")
        counts = counts.sort("origin").join_asof(
            stock, left_on="origin", right_on="_stock_date", by=list(SERIES), check_sortedness=False
        )
        below = (pl.col("_stock_date") > pl.col("_start")) & pl.col("_below")
    score = pl.when(pl.col("n_rows") > 0).then(((pl.col("n_events") > 0) | below.fill_null(False)).cast(pl.Int8))
    return counts.select(*SERIES, "origin", score.alias("score")).sort(*SERIES, "origin")


HOURS_SIGNALS = ("stockout_hours", "hourly_stockout")


def definition_for(panel: Panel, *, risk_days: int, min_hours: float | None) -> StockoutDefinition:
    """The stockout definition for this data: on-hand reaching zero where known, else observed stockout hours.

    Checked before any model is trained: data without a stock signal (sales
    only, e.g. Store Item or Walmart) cannot say when a shelf was empty, and
    `min_hours` means nothing without stockout hours.
    """
    columns = panel.frame.columns
    hours = any(c in columns for c in HOURS_SIGNALS)
    if not hours and "on_hand" not in columns:
        raise DataValidationError(
            "stockout risk needs stock data, and the lake has sales only: ingest an inventory table with "
            "on_hand or stockout_hours per day (e.g. `shelfcast ingest FILE --source generic --table inventory "
            "--map on_hand=COLUMN ...`)"
        )
    if min_hours is not None and not hours:
        raise ConfigError(
            f"`--min-hours` {min_hours:g} needs stockout hours, but the inventory has on_hand only; "
            "leave it out (a stockout is then on_hand reaching zero)"
        )
    return StockoutDefinition(window=risk_days, min_hours=min_hours, use_on_hand="on_hand" in columns)
