"""Baseline forecasts (naive, seasonal naive, moving average) and empirical seasonal-naive quantiles.

Every baseline sees the panel only as it was at the end of `cutoff` (it calls
`Panel.until` itself, so no later value can leak in) and returns one row per
series and future period, `store_id, item_id, date, forecast`, the dates
stepping by `panel.step` from the cutoff: cutoff + 1 step .. cutoff + horizon
steps. Every series with history at the cutoff gets a forecast. A series whose
last period is before the cutoff (the panel keeps no rows after a series' last
sale) is forecast from its own last values, for the same future dates as the
others; a series that starts after the cutoff gets none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

import polars as pl

from shelfcast.features.panel import SERIES, Panel

OUTPUT = (*SERIES, "date", "forecast")
# Moving-average windows in steps: 28 days, which is 4 steps on weekly data.
DEFAULT_WINDOW = {"D": 28, "W": 4}
# Seasons of residuals behind the quantiles: about 50 residuals per series either
# way (8 weeks of days, or one year of weeks).
DEFAULT_RESIDUAL_SEASONS = {"D": 8, "W": 1}
DEFAULT_LEVELS = (0.1, 0.5, 0.9)


class Baseline(Protocol):
    """A forecast from the panel as known at `cutoff`, `horizon` steps ahead."""

    def __call__(self, panel: Panel, *, cutoff: dt.date, horizon: int) -> pl.DataFrame: ...


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")


def _history(panel: Panel, cutoff: dt.date) -> pl.DataFrame:
    """The target as known at the end of `cutoff`, with each series' last period and last value."""
    if isinstance(cutoff, dt.datetime) or not isinstance(cutoff, dt.date):
        raise TypeError(f"`cutoff` must be a datetime.date, got {cutoff!r}")
    frame = panel.until(cutoff).frame.select(*SERIES, "date", pl.col("y").cast(pl.Float64)).sort(*SERIES, "date")
    return frame.with_columns(
        pl.col("date").last().over(SERIES).alias("last"),
        pl.col("y").last().over(SERIES).alias("last_y"),
    )


def _future(panel: Panel, history: pl.DataFrame, cutoff: dt.date, horizon: int) -> pl.DataFrame:
    """One row per series with history and future step h = 1..horizon, dated cutoff + h steps."""
    series = history.select(*SERIES, "last", "last_y").unique(SERIES, keep="last")
    steps = pl.DataFrame({"h": pl.int_range(1, horizon + 1, eager=True)})
    days = panel.step.days
    return series.join(steps, how="cross").with_columns(
        (pl.lit(cutoff) + pl.duration(days=pl.col("h") * days)).alias("date")
    )


def _finish(frame: pl.DataFrame, *extra: str) -> pl.DataFrame:
    return frame.select(*OUTPUT, *extra).sort(*SERIES, "date")


def naive(panel: Panel, *, cutoff: dt.date, horizon: int) -> pl.DataFrame:
    """Each series' last known value, repeated over the horizon."""
    _check_positive("horizon", horizon)
    history = _history(panel, cutoff)
    return _finish(_future(panel, history, cutoff, horizon).with_columns(pl.col("last_y").alias("forecast")))


def _seasonal(panel: Panel, history: pl.DataFrame, cutoff: dt.date, horizon: int) -> pl.DataFrame:
    """The seasonal naive with `k`, the number of seasons back its value comes from."""
    season_days = panel.season * panel.step.days
    future = _future(panel, history, cutoff, horizon)
    # The fewest whole seasons back that land on or before the series' last period:
    # one season for the first `season` steps, then the last season again, and so on.
    ahead = (pl.col("date") - pl.col("last")).dt.total_days()
    future = future.with_columns(((ahead + season_days - 1) // season_days).alias("k"))
    future = future.with_columns((pl.col("date") - pl.duration(days=pl.col("k") * season_days)).alias("source"))
    source = history.select(*SERIES, pl.col("date").alias("source"), pl.col("y").alias("seasonal"))
    future = future.join(source, on=[*SERIES, "source"], how="left")
    # A series shorter than a season has no value a season back: it falls back on its last value.
    return future.with_columns(pl.coalesce("seasonal", "last_y").alias("forecast"))


def seasonal_naive(panel: Panel, *, cutoff: dt.date, horizon: int) -> pl.DataFrame:
    """The value one season earlier (a week of days, a year of weeks); past one season, the last season repeats."""
    _check_positive("horizon", horizon)
    history = _history(panel, cutoff)
    return _finish(_seasonal(panel, history, cutoff, horizon))


def moving_average(panel: Panel, *, cutoff: dt.date, horizon: int, window: int | None = None) -> pl.DataFrame:
    """The mean of each series' last `window` steps (default 28 days: 28 daily or 4 weekly steps)."""
    _check_positive("horizon", horizon)
    window = DEFAULT_WINDOW.get(panel.freq, 28) if window is None else window
    _check_positive("window", window)
    history = _history(panel, cutoff)
    span = pl.duration(days=window * panel.step.days)
    means = (
        history.filter(pl.col("date") > pl.col("last") - span)
        .group_by(SERIES)
        .agg(pl.col("y").mean().alias("forecast"))
    )
    return _finish(_future(panel, history, cutoff, horizon).join(means, on=list(SERIES), how="left"))


def quantile_column(level: float) -> str:
    """The column name of a quantile level: 0.1 -> "p10", 0.025 -> "p2.5"."""
    return f"p{level * 100:g}"


def _check_levels(levels: Sequence[float]) -> None:
    if not levels or any(not 0.0 < q < 1.0 for q in levels):
        raise ValueError(f"`levels` must be quantile levels strictly between 0 and 1, got {list(levels)!r}")
    if len(set(levels)) != len(levels):
        raise ValueError(f"`levels` must not repeat a level, got {list(levels)!r}")


def seasonal_naive_quantiles(
    panel: Panel,
    *,
    cutoff: dt.date,
    horizon: int,
    levels: Sequence[float] = DEFAULT_LEVELS,
    n_seasons: int | None = None,
) -> pl.DataFrame:
    """The seasonal naive plus empirical quantiles of its own residuals on each series' recent history.

    A forecast `k` seasons back is widened by the quantiles of the residuals
    y(t) - y(t - k seasons) over the series' last `n_seasons` seasons (default
    8 for daily data, 1 for weekly: about 50 residuals), so intervals grow with
    the horizon. Quantiles are clipped at 0 (demand is never negative) and are
    null where the series has no residual of that kind (history too short).
    Columns: store_id, item_id, date, forecast, then one per level (p10, p50, p90).
    """
    _check_positive("horizon", horizon)
    _check_levels(levels)
    n_seasons = DEFAULT_RESIDUAL_SEASONS.get(panel.freq, 1) if n_seasons is None else n_seasons
    _check_positive("n_seasons", n_seasons)
    history = _history(panel, cutoff)
    point = _seasonal(panel, history, cutoff, horizon)
    season_days = panel.season * panel.step.days

    recent = history.filter(pl.col("date") > pl.col("last") - pl.duration(days=n_seasons * season_days))
    lags = point.select(pl.col("k").unique())
    source = history.select(*SERIES, pl.col("date").alias("source"), pl.col("y").alias("y_source"))
    residuals = (
        recent.join(lags, how="cross")
        .with_columns((pl.col("date") - pl.duration(days=pl.col("k") * season_days)).alias("source"))
        .join(source, on=[*SERIES, "source"], how="inner")
        .with_columns((pl.col("y") - pl.col("y_source")).alias("residual"))
    )
    names = [quantile_column(q) for q in levels]
    spread = residuals.group_by(*SERIES, "k").agg(
        pl.col("residual").quantile(q, interpolation="linear").alias(name)
        for q, name in zip(levels, names, strict=True)
    )
    out = point.join(spread, on=[*SERIES, "k"], how="left").with_columns(
        (pl.col("forecast") + pl.col(name)).clip(lower_bound=0.0).alias(name) for name in names
    )
    return _finish(out, *names)


BASELINES: dict[str, Baseline] = {
    "naive": naive,
    "seasonal_naive": seasonal_naive,
    # The default window: the last 28 days (28 daily steps, or 4 weekly steps).
    "moving_average_28": moving_average,
}
