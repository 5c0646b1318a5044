"""Origin features: what is known of a series at the end of its origin (lags, rolling and seasonal statistics,
steps since events, stock), computed on the panel cut at the origin so they can only see the past.

`tests/unit/features/test_leakage.py` proves it by changing every value after
an origin and checking the features do not move.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from shelfcast.features.frames import ROW, SERIES_ID, blocks, history, keyed
from shelfcast.features.panel import KEYS, SERIES, Panel
from shelfcast.features.spec import FeatureSpec


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
    frame, by = keyed(panel.frame)
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
    return origin_rows_at(*history(panel, origin), panel, spec, origin)


def origin_rows_at(
    frame: pl.DataFrame, by: str | list[str], panel: Panel, spec: FeatureSpec, origin: dt.date
) -> pl.DataFrame:
    """`origin_features_at` on the panel's rows up to the origin, already keyed (`frames.history`)."""
    frame = frame.with_columns(demand(panel, spec).alias(_DEMAND), pl.int_range(pl.len()).alias(ROW))
    features = _origin_specs(panel, spec, by)
    names = _new_names(features, frame)
    at_origin = pl.col("date") == origin
    # A NaN could make a rolling and a plain minimum disagree: then every feature takes the window path.
    plain = by == SERIES_ID and not frame.select(pl.col(_DEMAND).is_nan().any()).item()
    running = [f for f in features if f.last is None or not plain]
    parts = [
        block.with_columns(f.window.alias(f.name) for f in running).filter(at_origin) for block in blocks(frame, by)
    ]
    out = pl.concat(parts) if parts else frame.with_columns(f.window.alias(f.name) for f in running)
    if plain:
        last = frame.group_by(SERIES_ID, maintain_order=True).agg(
            pl.col("date").last().alias("__last_date"), *[f.last.alias(f.name) for f in features if f.last is not None]
        )
        out = out.join(last.filter(pl.col("__last_date") == origin), on=SERIES_ID, how="left", maintain_order="left")
    return out.select(*KEYS, *names)


_DEMAND = "d_y"


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
    if by != SERIES_ID:
        return pl.col(column).forward_fill().over(by)
    source = pl.when(pl.col(column).is_not_null()).then(pl.col(SERIES_ID)).forward_fill()
    return pl.when(source == pl.col(SERIES_ID)).then(pl.col(column).forward_fill())


def _new_names(features: list[_Feature], frame: pl.DataFrame) -> list[str]:
    """Feature names that do not shadow a panel column (as `with_columns` then `select` would keep them)."""
    return [f.name for f in features if f.name not in frame.columns]


def _steps_since(name: str, event: pl.Expr, by: str | list[str]) -> _Feature:
    """Steps since the event last happened (up to and including this row), per series; null if never."""
    index = pl.int_range(pl.len()).over(by)
    last = pl.when(event).then(index).otherwise(None).forward_fill().over(by)
    # Over contiguous series, row numbers differ as positions in the series do.
    at_last = (pl.col(ROW).last() - pl.when(event).then(pl.col(ROW)).max()).cast(pl.Float64)
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
    frame, by = keyed(panel.frame.filter(pl.col("date") <= origin))
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
