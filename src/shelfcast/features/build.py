"""One feature builder for training, backtests, batch scoring and serving.

A model row is (series, origin, horizon h): the forecast made at the end of
`origin` for the period `origin + h` (the *target*; the grid: `features.frames`).
Origin features (`features.origin`) are computed on the panel cut at the
origin, so they can only see the past; target features come from the
calendar and from columns known in advance (here).
`tests/unit/features/test_leakage.py` proves it by changing every value after
an origin and checking the features do not move.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import polars as pl

from shelfcast.features.frames import HORIZON, ORIGIN, TARGET, blocks, history, keyed, steps_since_epoch
from shelfcast.features.origin import demand, origin_features, origin_rows_at
from shelfcast.features.panel import KEYS, SERIES, Panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.types import Freq


def phase_features(panel: Panel, spec: FeatureSpec) -> pl.DataFrame:
    """Seasonal profiles: the mean demand at this date and the k-1 same-phase dates before it."""
    frame, by = keyed(panel.frame)
    return _phase_table(frame, panel, spec, by)


def phase_features_at(panel: Panel, spec: FeatureSpec, origin: dt.date) -> pl.DataFrame:
    """The rows of `phase_features` that forecasts from `origin` read: the last full season up to the origin.

    A target's profile is taken at the latest same-phase date at or before the
    origin, so one season of dates ending at the origin covers every horizon.
    Bit-identical to `phase_features` on those dates, for the reasons given in `origin_features_at`.
    """
    return _phase_at(*history(panel, origin), panel, spec, origin)


def _phase_at(
    frame: pl.DataFrame, by: str | list[str], panel: Panel, spec: FeatureSpec, origin: dt.date
) -> pl.DataFrame:
    step = Freq(spec.freq).step
    last_season = pl.col("date") > origin - step * spec.season
    parts = [_phase_table(block, panel, spec, by).filter(last_season) for block in blocks(frame, by)]
    return pl.concat(parts) if parts else _phase_table(frame, panel, spec, by)


def _phase_table(frame: pl.DataFrame, panel: Panel, spec: FeatureSpec, by: str | list[str]) -> pl.DataFrame:
    phase = steps_since_epoch("date", spec.freq) % spec.season
    frame = frame.with_columns(demand(panel, spec).alias("__d"), phase.alias("__phase"))
    # The same groups as (series, phase), as one integer: cheaper to group on.
    keys: str | list[str] = [*by, "__phase"] if isinstance(by, list) else "__group"
    if isinstance(keys, str):
        frame = frame.with_columns((pl.col(by).cast(pl.Int64) * spec.season + pl.col("__phase")).alias(keys))
    exprs = [
        pl.col("__d").rolling_mean(k, min_samples=1).over(keys).alias(f"season_mean_{k}")
        for k in spec.seasonal_profiles
    ]
    return frame.with_columns(exprs).select(*KEYS, *[f"season_mean_{k}" for k in spec.seasonal_profiles])


def attribute_features(panel: Panel, spec: FeatureSpec) -> pl.DataFrame:
    """One row per series with its item and store attributes that the spec lists as categorical (category, type)."""
    columns = _attribute_columns(panel, spec)
    return panel.frame.group_by(SERIES).agg([pl.col(c).drop_nulls().first() for c in columns])


def _attribute_columns(panel: Panel, spec: FeatureSpec) -> list[str]:
    return [c for c in spec.categorical if c not in SERIES and c in panel.frame.columns]


def build_features(
    panel: Panel,
    spec: FeatureSpec,
    rows: pl.DataFrame,
    *,
    calendar: pl.DataFrame | None = None,
    origin_table: pl.DataFrame | None = None,
    phase_table: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Features for (series, origin, h) rows; pass the origin/phase tables to reuse them across calls.

    Rows from a single origin (batch scoring) get the origin and phase tables
    computed at that origin only (`origin_features_at`, `phase_features_at`):
    the same values, without computing them for every date of the history.
    """
    origins = rows[ORIGIN].unique()
    if origins.len() == 1 and (origin_table is None or phase_table is None):
        cut = history(panel, origins[0])
        if origin_table is None:
            origin_table = origin_rows_at(*cut, panel, spec, origins[0])
        if phase_table is None:
            phase_table = _phase_at(*cut, panel, spec, origins[0])
    origin_table = origin_features(panel, spec) if origin_table is None else origin_table
    phase_table = phase_features(panel, spec) if phase_table is None else phase_table
    step_days = Freq(spec.freq).days
    # The rows sorted once, by the order the output has; every join below keeps the left rows' order.
    out = _sorted_rows(rows)
    # Tables for every date of the history are cut to the dates some row looks up before joining: the join
    # keeps nothing else, and hashing the whole table cost more than the rest of the build.
    known_at = _on_dates(origin_table, out[ORIGIN]).rename({"date": ORIGIN})
    out = out.join(known_at, on=[*SERIES, ORIGIN], how="left", maintain_order="left")
    # The latest date at or before the origin in the target's phase: its
    # seasonal profile is the last one known when the forecast is made.
    back = ((pl.col(HORIZON) + spec.season - 1) // spec.season) * spec.season
    out = out.with_columns((pl.col(TARGET) - pl.duration(days=back * step_days)).alias("__anchor"))
    phases = _on_dates(phase_table, out["__anchor"]).rename({"date": "__anchor"})
    out = out.join(phases, on=[*SERIES, "__anchor"], how="left", maintain_order="left")
    # The same period a year before the target, when it is not after the origin.
    out = out.with_columns((pl.col(TARGET) - pl.duration(days=spec.year * step_days)).alias("__year"))
    wanted = _on_dates(panel.frame, out["__year"])
    past_y = wanted.select(*SERIES, pl.col("date").alias("__year"), demand(panel, spec).alias("year_ago"))
    out = out.join(past_y, on=[*SERIES, "__year"], how="left", maintain_order="left").with_columns(
        pl.when(pl.col("__year") <= pl.col(ORIGIN)).then(pl.col("year_ago")).alias("year_ago")
    )
    out = out.drop("__anchor", "__year")
    if _attribute_columns(panel, spec):  # else the join adds nothing, after a group-by over the whole panel
        out = out.join(attribute_features(panel, spec), on=list(SERIES), how="left", maintain_order="left")
    out = add_hashed(_target_features(out, panel, spec, calendar), spec)
    return out.with_columns(pl.col(HORIZON).cast(pl.Float64).alias("horizon"))


def _sorted_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """`rows` sorted by series, origin and h, so the same inputs give the same rows in the same order.

    Sorting on the two string ids encodes every row's strings; ranking the
    few distinct series once and sorting on the rank gives the same order
    (nulls first, as the sort puts them) several times faster.
    """
    ranks = rows.select(SERIES).unique().sort(SERIES).with_row_index("__series_rank")
    ranked = rows.join(ranks, on=list(SERIES), how="left", nulls_equal=True, maintain_order="left")
    return ranked.sort("__series_rank", ORIGIN, HORIZON).drop("__series_rank")


def _on_dates(frame: pl.DataFrame, dates: pl.Series) -> pl.DataFrame:
    """The rows of `frame` on any of `dates`."""
    return frame.filter(pl.col("date").is_in(dates.unique().drop_nulls().implode()))


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
        future = _on_dates(panel.frame, out[TARGET]).select(
            *SERIES, pl.col("date").alias(TARGET), *[pl.col(c).alias(f"t_{c}") for c in [*planned, *known]]
        )
        out = out.join(future, on=[*SERIES, TARGET], how="left", maintain_order="left")
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
    return out.join(table, on=TARGET, how="left", maintain_order="left")
