"""One feature builder for training, backtests, batch scoring and serving.

A model row is (series, origin, horizon h): the forecast made at the end of
`origin` for the period `origin + h` (the *target*). Origin features are
computed on the panel cut at the origin, so they can only see the past;
target features come from the calendar and from columns known in advance.
`tests/unit/features/test_leakage.py` proves it by changing every value after
an origin and checking the features do not move.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

import polars as pl

from shelfcast.features.panel import KEYS, SERIES, Panel
from shelfcast.features.spec import FeatureSpec

ORIGIN = "origin"
TARGET = "target_date"
HORIZON = "h"
_EPOCH = dt.date(1970, 1, 5)  # a Monday: phases count from it


def _steps_since_epoch(column: str, freq: str) -> pl.Expr:
    days = (pl.col(column) - pl.lit(_EPOCH)).dt.total_days()
    return days // 7 if freq == "W" else days


def demand(panel: Panel, spec: FeatureSpec) -> pl.Expr:
    """The demand signal features are built on: sales, or sales scaled up for hours out of stock.

    With `censoring="impute"`, a day with a partial stockout of s hours sold y
    in 24 - s in-stock hours, so demand is estimated as y * 24 / (24 - s)
    (capped at 4x; a full-day stockout gives no information and is left
    missing). This is the principled treatment of censored sales the spec asks for.
    """
    y = pl.col("y")
    if spec.censoring != "impute" or "stockout_hours" not in panel.frame.columns:
        return y
    hours = pl.col("stockout_hours").fill_null(0.0).clip(0.0, 24.0)
    scale = (24.0 / (24.0 - hours)).clip(1.0, 4.0)
    return pl.when(hours >= 24.0).then(None).otherwise(y * scale)


def origin_features(panel: Panel, spec: FeatureSpec) -> pl.DataFrame:
    """Features of every (series, date) as an origin: each uses only rows up to that date."""
    d = "d_"
    frame = panel.frame.with_columns(demand(panel, spec).alias(f"{d}y"))
    s = pl.col(f"{d}y")
    by = list(SERIES)
    exprs: list[pl.Expr] = [s.shift(k - 1).over(by).alias(f"lag_{k}") for k in spec.lags]
    for w in spec.windows:
        least = max(1, w // 4)
        exprs += [
            s.rolling_mean(w, min_samples=least).over(by).alias(f"mean_{w}"),
            s.rolling_std(w, min_samples=least).over(by).alias(f"std_{w}"),
            s.rolling_min(w, min_samples=least).over(by).alias(f"min_{w}"),
            s.rolling_max(w, min_samples=least).over(by).alias(f"max_{w}"),
            (pl.col("y") == 0).cast(pl.Float64).rolling_mean(w, min_samples=least).over(by).alias(f"zero_share_{w}"),
        ]
    exprs += [s.ewm_mean(alpha=a, ignore_nulls=True).over(by).alias(f"ewm_{a:g}") for a in spec.ewm_alphas]
    exprs += [
        # Null, not 0/0 = NaN, until the series has a usable value (it may open with full-day stockouts).
        (s.fill_null(0.0).cum_sum().over(by) / s.is_not_null().cum_sum().over(by))
        .fill_nan(None)
        .alias("expanding_mean"),
        pl.int_range(pl.len()).over(by).alias("age"),
    ]
    if spec.price_promo and "price" in panel.frame.columns:
        price = pl.col("price").forward_fill().over(by)
        exprs += [price.alias("price_now"), price.rolling_mean(28, min_samples=1).over(by).alias("price_mean_28")]
    if spec.price_promo and "promo" in panel.frame.columns:
        promo = pl.col("promo").fill_null(0).cast(pl.Float64)
        exprs += [
            promo.alias("promo_now"),
            promo.rolling_mean(28, min_samples=1).over(by).alias("promo_share_28"),
            _steps_since(pl.col("promo").fill_null(0) > 0).alias("steps_since_promo"),
        ]
    if spec.inventory:
        exprs += _inventory_features(panel)
    exprs += [pl.col(c).alias(f"past_{c}") for c in spec.exogenous_past if c in panel.frame.columns]
    out = frame.with_columns(exprs)
    keep = [c for c in out.columns if c not in panel.frame.columns and c != f"{d}y"]
    return out.select(*KEYS, *keep)


def _steps_since(event: pl.Expr) -> pl.Expr:
    """Steps since the event last happened (up to and including this row), per series; null if never."""
    index = pl.int_range(pl.len()).over(list(SERIES))
    last = pl.when(event).then(index).otherwise(None).forward_fill().over(list(SERIES))
    return (index - last).cast(pl.Float64)


def _inventory_features(panel: Panel) -> list[pl.Expr]:
    cols = panel.frame.columns
    by = list(SERIES)
    exprs: list[pl.Expr] = []
    recent = pl.col("y").rolling_mean(7, min_samples=1).over(by)
    if "on_hand" in cols:
        on_hand = pl.col("on_hand")
        exprs += [on_hand.alias("on_hand_now"), (on_hand / (recent + 0.1)).alias("days_of_cover")]
        if "safety_stock" in cols:
            exprs.append((on_hand - pl.col("safety_stock")).alias("on_hand_minus_safety"))
    if "stockout_hours" in cols:
        hours = pl.col("stockout_hours").fill_null(0.0)
        out_day = (hours > 0).cast(pl.Float64)
        full_day = (hours >= 24).cast(pl.Float64)
        exprs += [
            hours.alias("stockout_hours_now"),
            _steps_since(hours > 0).alias("steps_since_stockout"),
            _steps_since(hours >= 24).alias("steps_since_full_stockout"),
        ]
        for w in (3, 7, 14, 28):
            exprs += [
                hours.rolling_mean(w, min_samples=1).over(by).alias(f"stockout_hours_mean_{w}"),
                out_day.rolling_sum(w, min_samples=1).over(by).alias(f"stockout_days_{w}"),
                full_day.rolling_sum(w, min_samples=1).over(by).alias(f"full_stockout_days_{w}"),
            ]
    if "hourly_stockout" in cols:
        # Hour of the day at which stock first ran out (24 when it did not).
        first_out = pl.col("hourly_stockout").list.eval(pl.element().arg_max()).list.first()
        any_out = pl.col("hourly_stockout").list.max() > 0
        hour = pl.when(any_out).then(first_out).otherwise(24).cast(pl.Float64)
        exprs += [
            hour.alias("stockout_hour_now"),
            hour.rolling_mean(7, min_samples=1).over(by).alias("stockout_hour_7"),
        ]
    return exprs


def phase_features(panel: Panel, spec: FeatureSpec) -> pl.DataFrame:
    """Seasonal profiles: the mean demand at this date and the k-1 same-phase dates before it."""
    phase = _steps_since_epoch("date", spec.freq) % spec.season
    s = demand(panel, spec)
    frame = panel.frame.with_columns(s.alias("__d"), phase.alias("__phase"))
    by = [*SERIES, "__phase"]
    exprs = [
        pl.col("__d").rolling_mean(k, min_samples=1).over(by).alias(f"season_mean_{k}") for k in spec.seasonal_profiles
    ]
    return frame.with_columns(exprs).select(*KEYS, *[f"season_mean_{k}" for k in spec.seasonal_profiles])


def model_rows(
    panel: Panel,
    spec: FeatureSpec,
    origins: Sequence[dt.date],
    horizons: Sequence[int],
    *,
    series: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The (series, origin, h) grid: one row per series alive at each origin and horizon."""
    step_days = 7 if spec.freq == "W" else 1
    alive = panel.frame.group_by(SERIES).agg(pl.col("date").min().alias("__first")).sort(SERIES)
    if series is not None:
        alive = alive.join(series.select(SERIES), on=list(SERIES), how="semi")
    grid = (
        alive.join(pl.DataFrame({ORIGIN: list(origins)}, schema={ORIGIN: pl.Date}), how="cross")
        .filter(pl.col("__first") <= pl.col(ORIGIN))
        .drop("__first")
        .join(pl.DataFrame({HORIZON: list(horizons)}, schema={HORIZON: pl.Int32}), how="cross")
    )
    return grid.with_columns((pl.col(ORIGIN) + pl.duration(days=pl.col(HORIZON) * step_days)).alias(TARGET)).sort(
        *SERIES, ORIGIN, HORIZON
    )


def attribute_features(panel: Panel, spec: FeatureSpec) -> pl.DataFrame:
    """One row per series with its item and store attributes that the spec lists as categorical (category, type)."""
    columns = [c for c in spec.categorical if c not in SERIES and c in panel.frame.columns]
    return panel.frame.group_by(SERIES).agg([pl.col(c).drop_nulls().first() for c in columns])


def build_features(
    panel: Panel,
    spec: FeatureSpec,
    rows: pl.DataFrame,
    *,
    calendar: pl.DataFrame | None = None,
    origin_table: pl.DataFrame | None = None,
    phase_table: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Features for (series, origin, h) rows; pass the origin/phase tables to reuse them across calls."""
    origin_table = origin_features(panel, spec) if origin_table is None else origin_table
    phase_table = phase_features(panel, spec) if phase_table is None else phase_table
    step_days = 7 if spec.freq == "W" else 1
    out = rows.join(origin_table.rename({"date": ORIGIN}), on=[*SERIES, ORIGIN], how="left")
    # The latest date at or before the origin in the target's phase: its
    # seasonal profile is the last one known when the forecast is made.
    back = ((pl.col(HORIZON) + spec.season - 1) // spec.season) * spec.season
    out = out.with_columns((pl.col(TARGET) - pl.duration(days=back * step_days)).alias("__anchor"))
    out = out.join(phase_table.rename({"date": "__anchor"}), on=[*SERIES, "__anchor"], how="left")
    # The same period a year before the target, when it is not after the origin.
    out = out.with_columns((pl.col(TARGET) - pl.duration(days=spec.year * step_days)).alias("__year"))
    past_y = panel.frame.select(*SERIES, pl.col("date").alias("__year"), demand(panel, spec).alias("year_ago"))
    out = out.join(past_y, on=[*SERIES, "__year"], how="left").with_columns(
        pl.when(pl.col("__year") <= pl.col(ORIGIN)).then(pl.col("year_ago")).alias("year_ago")
    )
    out = out.drop("__anchor", "__year")
    out = out.join(attribute_features(panel, spec), on=list(SERIES), how="left")
    out = add_hashed(_target_features(out, panel, spec, calendar), spec)
    # Joins need not keep row order: sort, so the same inputs give the same rows.
    return out.with_columns(pl.col(HORIZON).cast(pl.Float64).alias("horizon")).sort(*SERIES, ORIGIN, HORIZON)


def _target_features(out: pl.DataFrame, panel: Panel, spec: FeatureSpec, calendar: pl.DataFrame | None) -> pl.DataFrame:
    t = pl.col(TARGET)
    if spec.calendar:
        out = out.with_columns(
            t.dt.weekday().alias("t_weekday"),
            t.dt.month().alias("t_month"),
            t.dt.week().alias("t_week"),
            t.dt.ordinal_day().alias("t_day_of_year"),
            t.dt.day().alias("t_day"),
            (t.dt.day() == 1).alias("t_month_start"),
            (t.dt.month_end() == t).alias("t_month_end"),
            (t.dt.year() + t.dt.ordinal_day() / 366.0).alias("t_year"),
        )
    if spec.events and calendar is not None and not calendar.is_empty():
        out = _event_features(out, calendar)
    planned = [
        c for c in ("price", "promo") if spec.future_price_promo and spec.price_promo and c in panel.frame.columns
    ]
    known = [c for c in spec.exogenous_known if c in panel.frame.columns]
    if planned or known:
        future = panel.frame.select(
            *SERIES, pl.col("date").alias(TARGET), *[pl.col(c).alias(f"t_{c}") for c in [*planned, *known]]
        )
        out = out.join(future, on=[*SERIES, TARGET], how="left")
        if "price" in planned and "price_mean_28" in out.columns:
            out = out.with_columns((pl.col("t_price") / pl.col("price_mean_28")).alias("t_relative_price"))
    return out


def stable_bucket(values: pl.Series, buckets: int) -> pl.Series:
    """Bucket of each value by blake2b (stable across runs and versions, unlike Polars' hash)."""
    distinct = values.cast(pl.String).fill_null("").unique()
    codes = [int.from_bytes(hashlib.blake2b(v.encode(), digest_size=8).digest(), "little") % buckets for v in distinct]
    table = pl.DataFrame({"__v": distinct, "__b": pl.Series(codes, dtype=pl.Int64)})
    keyed = values.cast(pl.String).fill_null("").to_frame("__v")
    return keyed.join(table, on="__v", how="left", maintain_order="left")["__b"]


def hashed_columns(spec: FeatureSpec) -> list[str]:
    """Names of the hashed id and cross columns the spec asks for."""
    if spec.hash_buckets is None:
        return []
    return [f"hash_{c}" for c in SERIES] + [f"cross_{a}_{b}" for a, b in spec.crosses]


def add_hashed(frame: pl.DataFrame, spec: FeatureSpec) -> pl.DataFrame:
    """Hashed ids and crosses (e.g. item x store, item x target month) for very high cardinality."""
    if spec.hash_buckets is None:
        return frame
    buckets = spec.hash_buckets
    out = frame.with_columns([stable_bucket(frame[c], buckets).alias(f"hash_{c}") for c in SERIES])
    for a, b in spec.crosses:
        joined = pl.concat_str([pl.col(a).cast(pl.String), pl.col(b).cast(pl.String)], separator="|")
        out = out.with_columns(stable_bucket(out.select(joined).to_series(), buckets).alias(f"cross_{a}_{b}"))
    return out


def _event_features(out: pl.DataFrame, calendar: pl.DataFrame) -> pl.DataFrame:
    """Whether the target is an event day, and the days to the next and since the previous event."""
    events = calendar.select(pl.col("date").alias("__event")).unique().sort("__event")
    targets = out.select(TARGET).unique().sort(TARGET)
    nxt = targets.join_asof(events, left_on=TARGET, right_on="__event", strategy="forward")
    prv = targets.join_asof(events, left_on=TARGET, right_on="__event", strategy="backward")
    table = targets.with_columns(
        (nxt["__event"] - nxt[TARGET]).dt.total_days().alias("t_days_to_event"),
        (prv[TARGET] - prv["__event"]).dt.total_days().alias("t_days_since_event"),
    ).with_columns((pl.col("t_days_to_event") == 0).alias("t_event"))
    return out.join(table, on=TARGET, how="left")
