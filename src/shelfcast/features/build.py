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
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from shelfcast.features.panel import KEYS, SERIES, Panel
from shelfcast.features.spec import FeatureSpec
from shelfcast.types import Freq

ORIGIN = "origin"
TARGET = "target_date"
HORIZON = "h"
_EPOCH = dt.date(1970, 1, 5)  # a Monday: phases count from it


def _steps_since_epoch(column: str, freq: str) -> pl.Expr:
    days = (pl.col(column) - pl.lit(_EPOCH)).dt.total_days()
    return days // Freq(freq).days


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
    frame, by = _keyed(panel.frame)
    features = _origin_specs(panel, spec, by)
    out = frame.with_columns(demand(panel, spec).alias(_DEMAND)).with_columns(f.window.alias(f.name) for f in features)
    return out.select(*KEYS, *_new_names(features, frame))


def origin_features_at(panel: Panel, spec: FeatureSpec, origin: dt.date) -> pl.DataFrame:
    """The rows of `origin_features` at one origin (one per series with a row that day), bit for bit, much faster.

    Batch scoring needs the features at one date only. Rows after the origin
    cannot move them, so they are dropped; then most features are a plain
    aggregation over the end of each series' history (a lag is one value, a
    rolling maximum or count the maximum or sum of the last rows), computed
    for all series at once. The rest are running states (rolling sums and
    deviations of fractional values, EWMs): their last bits depend on the
    whole history before the origin, so they are computed by the same window
    expressions as `origin_features`, over each series' whole history, in
    blocks of whole series of which only the origin's rows are kept.
    """
    return _origin_at(*_history(panel, origin), panel, spec, origin)


def _history(panel: Panel, origin: dt.date) -> tuple[pl.DataFrame, str | list[str]]:
    """The panel's rows up to the origin, keyed (see `_keyed`): all that features at the origin read."""
    return _keyed(panel.frame.filter(pl.col("date") <= origin))


def _origin_at(
    frame: pl.DataFrame, by: str | list[str], panel: Panel, spec: FeatureSpec, origin: dt.date
) -> pl.DataFrame:
    frame = frame.with_columns(demand(panel, spec).alias(_DEMAND), pl.int_range(pl.len()).alias(_ROW))
    features = _origin_specs(panel, spec, by)
    names = _new_names(features, frame)
    at_origin = pl.col("date") == origin
    # A NaN could make a rolling and a plain minimum disagree: then every feature takes the window path.
    plain = by == _SERIES_ID and not frame.select(pl.col(_DEMAND).is_nan().any()).item()
    running = [f for f in features if f.last is None or not plain]
    parts = [
        block.with_columns(f.window.alias(f.name) for f in running).filter(at_origin) for block in _blocks(frame, by)
    ]
    out = pl.concat(parts) if parts else frame.with_columns(f.window.alias(f.name) for f in running)
    if plain:
        last = frame.group_by(_SERIES_ID, maintain_order=True).agg(
            pl.col("date").last().alias("__last_date"), *[f.last.alias(f.name) for f in features if f.last is not None]
        )
        out = out.join(last.filter(pl.col("__last_date") == origin), on=_SERIES_ID, how="left", maintain_order="left")
    return out.select(*KEYS, *names)


_DEMAND = "d_y"
_ROW = "__row"  # row number in the frame (for aggregations)
_SERIES_ID = "__series"
# Rows per block when running states are computed for one origin: the overhead
# per block is small, and a block's columns (not the whole panel's) stay in memory.
_BLOCK_ROWS = 250_000


@dataclass(frozen=True)
class _Feature:
    """One origin feature, at every row of a series (`window`) and, where that is exact, at its last row (`last`).

    `last` aggregates a series' history and must give `window`'s value at the
    last row bit for bit. It exists for copied values, minimums, maximums,
    counts, sums of whole numbers (exact in floating point in any order) and
    cumulative sums (the same additions in the same order), not for rolling
    sums of fractional values: the window sum is updated as it slides, so its
    last bits depend on everything before.
    """

    name: str
    window: pl.Expr
    last: pl.Expr | None = None


def _tail_mean(values: pl.Expr, w: int, least: int) -> pl.Expr:
    """Mean of the non-null values among the last `w` (null below `least` of them): `rolling_mean` at the last row."""
    tail = values.tail(w)
    return pl.when(tail.count() >= least).then(tail.sum() / tail.count())


def _tail_extreme(values: pl.Expr, w: int, least: int, *, largest: bool) -> pl.Expr:
    tail = values.tail(w)
    return pl.when(tail.count() >= least).then(tail.max() if largest else tail.min())


def _origin_specs(panel: Panel, spec: FeatureSpec, by: str | list[str]) -> list[_Feature]:
    s = pl.col(_DEMAND)
    cols = panel.frame.columns
    features = [
        _Feature(f"lag_{k}", s.shift(k - 1).over(by), pl.when(pl.len() >= k).then(s.tail(k).first())) for k in spec.lags
    ]
    for w in spec.windows:
        least = max(1, w // 4)
        zero = (pl.col("y") == 0).cast(pl.Float64)
        features += [
            _Feature(f"mean_{w}", s.rolling_mean(w, min_samples=least).over(by)),
            _Feature(f"std_{w}", s.rolling_std(w, min_samples=least).over(by)),
            _Feature(
                f"min_{w}", s.rolling_min(w, min_samples=least).over(by), _tail_extreme(s, w, least, largest=False)
            ),
            _Feature(
                f"max_{w}", s.rolling_max(w, min_samples=least).over(by), _tail_extreme(s, w, least, largest=True)
            ),
            _Feature(f"zero_share_{w}", zero.rolling_mean(w, min_samples=least).over(by), _tail_mean(zero, w, least)),
        ]
    features += [_Feature(f"ewm_{a:g}", s.ewm_mean(alpha=a, ignore_nulls=True).over(by)) for a in spec.ewm_alphas]
    features += [
        # Null, not 0/0 = NaN, until the series has a usable value (it may open with full-day stockouts).
        _Feature(
            "expanding_mean",
            (s.fill_null(0.0).cum_sum().over(by) / s.is_not_null().cum_sum().over(by)).fill_nan(None),
            # A cumulative sum adds in row order whatever the context: its last value is the window's.
            (s.fill_null(0.0).cum_sum().last() / s.count()).fill_nan(None),
        ),
        _Feature("age", pl.int_range(pl.len()).over(by), (pl.len() - 1).cast(pl.Int64)),
    ]
    if spec.price_promo and "price" in cols:
        price = _forward_filled("price", by)
        features += [
            _Feature("price_now", price, pl.col("price").drop_nulls().last()),
            _Feature("price_mean_28", price.rolling_mean(28, min_samples=1).over(by)),
        ]
    if spec.price_promo and "promo" in cols:
        # Promotion flags are whole numbers: their rolling share is exact in any order.
        promo = pl.col("promo").fill_null(0).cast(pl.Float64)
        features += [
            _Feature("promo_now", promo, promo.last()),
            _Feature("promo_share_28", promo.rolling_mean(28, min_samples=1).over(by), _tail_mean(promo, 28, 1)),
            _steps_since("steps_since_promo", pl.col("promo").fill_null(0) > 0, by),
        ]
    if spec.inventory:
        features += _inventory_features(panel, by)
    features += [_Feature(f"past_{c}", pl.col(c), pl.col(c).last()) for c in spec.exogenous_past if c in cols]
    return features


def _forward_filled(column: str, by: str | list[str]) -> pl.Expr:
    """`pl.col(column).forward_fill().over(by)`, without the window when the series are contiguous.

    A plain forward fill over the whole frame copies the same values, except
    that it carries the previous series' last value into the next one: those
    rows are nulled again (their value came from another series).
    """
    if by != _SERIES_ID:
        return pl.col(column).forward_fill().over(by)
    source = pl.when(pl.col(column).is_not_null()).then(pl.col(_SERIES_ID)).forward_fill()
    return pl.when(source == pl.col(_SERIES_ID)).then(pl.col(column).forward_fill())


def _new_names(features: list[_Feature], frame: pl.DataFrame) -> list[str]:
    """Feature names that do not shadow a panel column (as `with_columns` then `select` would keep them)."""
    return [f.name for f in features if f.name not in frame.columns]


def _keyed(frame: pl.DataFrame) -> tuple[pl.DataFrame, str | list[str]]:
    """The frame with an integer id per series when its rows come grouped by series, and the key to window over.

    Windows over one integer column are several times faster than over the
    two string ids, and give the same groups with their rows in the same
    order, so the same values. A panel is sorted by series; any other frame
    falls back on the string ids.
    """
    store, item = pl.col("store_id"), pl.col("item_id")
    before_store, before_item = store.shift(), item.shift()
    in_order = (store > before_store) | ((store == before_store) & (item >= before_item))
    # Null ids would pass the order check (comparisons with null are skipped) yet group apart.
    grouped = (store.null_count() + item.null_count() == 0) & in_order.all()
    if frame.height < 2 or not frame.select(grouped).item():
        return frame, list(SERIES)
    return frame.with_columns(pl.struct(*SERIES).rle_id().alias(_SERIES_ID)), _SERIES_ID


def _blocks(frame: pl.DataFrame, by: str | list[str]) -> list[pl.DataFrame]:
    """The frame cut into blocks of about `_BLOCK_ROWS` rows, never inside a series."""
    if by != _SERIES_ID or frame.height <= _BLOCK_ROWS:
        return [frame] if frame.height else []
    ids = frame[_SERIES_ID].to_numpy()
    per_block = max(1, int(ids[-1] + 1) * _BLOCK_ROWS // frame.height)
    starts = np.searchsorted(ids, np.arange(0, int(ids[-1]) + 1, per_block), side="left")
    bounds = [*starts.tolist(), frame.height]
    return [frame.slice(a, b - a) for a, b in itertools.pairwise(bounds) if b > a]


def _steps_since(name: str, event: pl.Expr, by: str | list[str]) -> _Feature:
    """Steps since the event last happened (up to and including this row), per series; null if never."""
    index = pl.int_range(pl.len()).over(by)
    last = pl.when(event).then(index).otherwise(None).forward_fill().over(by)
    # Over contiguous series, row numbers differ as positions in the series do.
    at_last = (pl.col(_ROW).last() - pl.when(event).then(pl.col(_ROW)).max()).cast(pl.Float64)
    return _Feature(name, (index - last).cast(pl.Float64), at_last)


# Days of cover divide the stock by the mean sales of the last rows, plus a floor so that no sales gives a finite value.
_RECENT_ROWS = 7
_COVER_FLOOR = 0.1
ON_HAND_FEATURES = ("on_hand_now", "days_of_cover", "on_hand_minus_safety")


def _recent_sales(by: str | list[str]) -> pl.Expr:
    return pl.col("y").rolling_mean(_RECENT_ROWS, min_samples=1).over(by)


def stock_inputs(panel: Panel, origin: dt.date) -> pl.DataFrame:
    """Per series at `origin`: the recent sales and safety stock that the on-hand features combine with the count.

    With `on_hand_features`, a service recomputes the features a new stock
    count moves without rebuilding the others (`tests/unit/features/
    test_on_hand_override.py` checks they equal this module's features).
    """
    frame, by = _keyed(panel.frame.filter(pl.col("date") <= origin))
    safety = pl.col("safety_stock") if "safety_stock" in frame.columns else pl.lit(None, pl.Float64)
    return (
        frame.with_columns(_recent_sales(by).alias("recent_sales"))
        .filter(pl.col("date") == origin)
        .select(*SERIES, pl.col("recent_sales").cast(pl.Float64), safety.cast(pl.Float64).alias("safety_stock"))
    )


def on_hand_features(on_hand: np.ndarray, recent_sales: np.ndarray, safety_stock: np.ndarray) -> dict[str, np.ndarray]:
    """The features a stock count moves, computed as `origin_features` does (NaN where an input is missing)."""
    return {
        "on_hand_now": on_hand,
        "days_of_cover": on_hand / (recent_sales + _COVER_FLOOR),
        "on_hand_minus_safety": on_hand - safety_stock,
    }


def _inventory_features(panel: Panel, by: str | list[str]) -> list[_Feature]:
    cols = panel.frame.columns
    features: list[_Feature] = []
    recent = _recent_sales(by)
    if "on_hand" in cols:
        on_hand = pl.col("on_hand")
        features += [
            _Feature("on_hand_now", on_hand, on_hand.last()),
            _Feature("days_of_cover", on_hand / (recent + _COVER_FLOOR)),
        ]
        if "safety_stock" in cols:
            gap = on_hand - pl.col("safety_stock")
            features.append(_Feature("on_hand_minus_safety", gap, gap.last()))
    if "stockout_hours" in cols:
        hours = pl.col("stockout_hours").fill_null(0.0)
        out_day = (hours > 0).cast(pl.Float64)
        full_day = (hours >= 24).cast(pl.Float64)
        features += [
            _Feature("stockout_hours_now", hours, hours.last()),
            _steps_since("steps_since_stockout", hours > 0, by),
            _steps_since("steps_since_full_stockout", hours >= 24, by),
        ]
        for w in (3, 7, 14, 28):
            features += [
                _Feature(f"stockout_hours_mean_{w}", hours.rolling_mean(w, min_samples=1).over(by)),
                _Feature(f"stockout_days_{w}", out_day.rolling_sum(w, min_samples=1).over(by), out_day.tail(w).sum()),
                _Feature(
                    f"full_stockout_days_{w}", full_day.rolling_sum(w, min_samples=1).over(by), full_day.tail(w).sum()
                ),
            ]
    if "hourly_stockout" in cols:
        # Hour of the day at which stock first ran out (24 when it did not): a whole number.
        first_out = pl.col("hourly_stockout").list.eval(pl.element().arg_max()).list.first()
        any_out = pl.col("hourly_stockout").list.max() > 0
        hour = pl.when(any_out).then(first_out).otherwise(24).cast(pl.Float64)
        features += [
            _Feature("stockout_hour_now", hour, hour.last()),
            _Feature("stockout_hour_7", hour.rolling_mean(7, min_samples=1).over(by), _tail_mean(hour, 7, 1)),
        ]
    return features


def phase_features(panel: Panel, spec: FeatureSpec) -> pl.DataFrame:
    """Seasonal profiles: the mean demand at this date and the k-1 same-phase dates before it."""
    frame, by = _keyed(panel.frame)
    return _phase_table(frame, panel, spec, by)


def phase_features_at(panel: Panel, spec: FeatureSpec, origin: dt.date) -> pl.DataFrame:
    """The rows of `phase_features` that forecasts from `origin` read: the last full season up to the origin.

    A target's profile is taken at the latest same-phase date at or before the
    origin, so one season of dates ending at the origin covers every horizon.
    Bit-identical to `phase_features` on those dates, for the reasons given in `origin_features_at`.
    """
    return _phase_at(*_history(panel, origin), panel, spec, origin)


def _phase_at(
    frame: pl.DataFrame, by: str | list[str], panel: Panel, spec: FeatureSpec, origin: dt.date
) -> pl.DataFrame:
    step = Freq(spec.freq).step
    last_season = pl.col("date") > origin - step * spec.season
    parts = [_phase_table(block, panel, spec, by).filter(last_season) for block in _blocks(frame, by)]
    return pl.concat(parts) if parts else _phase_table(frame, panel, spec, by)


def _phase_table(frame: pl.DataFrame, panel: Panel, spec: FeatureSpec, by: str | list[str]) -> pl.DataFrame:
    phase = _steps_since_epoch("date", spec.freq) % spec.season
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


def model_rows(
    panel: Panel,
    spec: FeatureSpec,
    origins: Sequence[dt.date],
    horizons: Sequence[int],
    *,
    series: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The (series, origin, h) grid: one row per series alive at each origin and horizon."""
    step_days = Freq(spec.freq).days
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
        history = _history(panel, origins[0])
        if origin_table is None:
            origin_table = _origin_at(*history, panel, spec, origins[0])
        if phase_table is None:
            phase_table = _phase_at(*history, panel, spec, origins[0])
    origin_table = origin_features(panel, spec) if origin_table is None else origin_table
    phase_table = phase_features(panel, spec) if phase_table is None else phase_table
    step_days = Freq(spec.freq).days
    out = rows.join(origin_table.rename({"date": ORIGIN}), on=[*SERIES, ORIGIN], how="left")
    # The latest date at or before the origin in the target's phase: its
    # seasonal profile is the last one known when the forecast is made.
    back = ((pl.col(HORIZON) + spec.season - 1) // spec.season) * spec.season
    out = out.with_columns((pl.col(TARGET) - pl.duration(days=back * step_days)).alias("__anchor"))
    out = out.join(phase_table.rename({"date": "__anchor"}), on=[*SERIES, "__anchor"], how="left")
    # The same period a year before the target, when it is not after the origin.
    out = out.with_columns((pl.col(TARGET) - pl.duration(days=spec.year * step_days)).alias("__year"))
    # Only the dates some row looks up: a join keeps nothing else, and scoring looks up a few of the history's.
    wanted = _on_dates(panel.frame, out["__year"])
    past_y = wanted.select(*SERIES, pl.col("date").alias("__year"), demand(panel, spec).alias("year_ago"))
    out = out.join(past_y, on=[*SERIES, "__year"], how="left").with_columns(
        pl.when(pl.col("__year") <= pl.col(ORIGIN)).then(pl.col("year_ago")).alias("year_ago")
    )
    out = out.drop("__anchor", "__year")
    if _attribute_columns(panel, spec):  # else the join adds nothing, after a group-by over the whole panel
        out = out.join(attribute_features(panel, spec), on=list(SERIES), how="left")
    out = add_hashed(_target_features(out, panel, spec, calendar), spec)
    # Joins need not keep row order: sort, so the same inputs give the same rows.
    return out.with_columns(pl.col(HORIZON).cast(pl.Float64).alias("horizon")).sort(*SERIES, ORIGIN, HORIZON)


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
