"""The reorder points and order-up-to levels of the policies `policy_eval` replays, day by day.

- `advice`: shelfcast's advice, `replenish.lead_time_demand` and
  `replenish.replenishment` on the forecast quantiles issued before each
  day: every `review_days` days an order up to the order-up-to level, and on
  the days between an order whenever the position falls to the reorder point
  (the advice's `reorder_now`).
- `moving_average`: the classic (s, S) policy from the mean and standard
  deviation of the last `window` days of sales, with a normal safety factor.
- `chain_rule`: the chain's own fixed rule, days of cover of its average sales.

Pure: frames and arrays in, `Levels` out.
"""

from __future__ import annotations

import datetime as dt
from statistics import NormalDist

import numpy as np
import polars as pl

from shelfcast.features.panel import SERIES
from shelfcast.models.policy_eval import Levels
from shelfcast.models.replenish import lead_time_demand, replenishment

_NORMAL = NormalDist()
_STATS = ("lt_mean", "lt_std", "ltr_mean", "ltr_std")


def lead_time_stats(
    forecasts: pl.DataFrame,
    *,
    keys: pl.DataFrame,
    dates: list[dt.date],
    lead_time: pl.DataFrame,
    review_days: int,
) -> pl.DataFrame:
    """Lead-time demand (`replenish.lead_time_demand`) at each review date, from the forecast issued latest before it.

    `forecasts` has store_id, item_id, date, forecast, p10, p90 and `issued`
    (the cutoff it was made at); a review on date t (after t's sales) uses
    the forecast issued on or before t, for the days after t. `keys` orders
    the series; returns day (index into `dates`), store_id, item_id, lt_mean,
    lt_std, ltr_mean, ltr_std.
    """
    issued = forecasts["issued"].unique().sort().to_list()
    longest = int(lead_time["lead_time_days"].max()) + review_days  # type: ignore[arg-type]
    parts = []
    for day, date in enumerate(dates):
        made = [c for c in issued if c <= date]
        if not made:
            raise ValueError(f"no forecast issued on or before the review date {date}")
        window = forecasts.filter(
            (pl.col("issued") == made[-1])
            & (pl.col("date") > date)
            & (pl.col("date") <= date + dt.timedelta(days=longest))
        )
        stats = lead_time_demand(window.drop("issued"), lead_time_days=lead_time, review_period_days=review_days)
        parts.append(stats.with_columns(pl.lit(day, pl.Int32).alias("day")))
    frame = pl.concat(parts)
    return keys.select(SERIES).join(frame, on=list(SERIES), how="left", maintain_order="left")


def _matrix(frame: pl.DataFrame, column: str, days: int, series: int) -> np.ndarray:
    """A (days, series) array from a frame sorted by series then day."""
    return frame[column].to_numpy().reshape(series, days).T.copy()


def advice(
    stats: pl.DataFrame,
    *,
    service_level: float,
    review_days: int,
    days: int,
    series: int,
    first_review: int = 0,
    z: np.ndarray | None = None,
    cover_days: int | None = None,
) -> Levels:
    """Shelfcast's advice each day (`replenish.replenishment` at `service_level`) from `lead_time_stats`.

    On review days (every `review_days` from `first_review`) the order tops
    the position up to the order-up-to level; on the others it is placed only
    when the position is at or below the reorder point. `z` (days, 2,
    series; series sorted by store_id, item_id), if given, replaces the
    normal quantile of `service_level` by calibrated ones for the sums over L
    and L + R (`calibrated_z`): the standard deviations are scaled by
    z / z_normal, so `replenishment` puts the levels at mean + z * std.
    `cover_days` is the review period `stats` were summed over (default
    `review_days`).
    """
    normal = _NORMAL.inv_cdf(service_level)
    cover = review_days if cover_days is None else cover_days
    frames = []
    for (day,), part in stats.partition_by("day", as_dict=True, maintain_order=True).items():
        demand = part.drop("day")
        if z is not None:
            scale_lt, scale_ltr = np.clip(z[int(day)], 0.0, None) / normal
            demand = demand.sort(SERIES).with_columns(pl.col("lt_std") * scale_lt, pl.col("ltr_std") * scale_ltr)
        advised = replenishment(demand, service_level=service_level, review_period_days=cover).with_columns(
            pl.lit(day, pl.Int32).alias("day")
        )
        frames.append(advised.select(*SERIES, "day", "reorder_point", "order_up_to"))
    ordered = stats.select(*SERIES, "day").join(
        pl.concat(frames), on=[*SERIES, "day"], how="left", maintain_order="left"
    )
    ordered = ordered.sort(pl.col("store_id"), pl.col("item_id"), pl.col("day"), maintain_order=True)
    reorder = _matrix(ordered, "reorder_point", days, series)
    upto = _matrix(ordered, "order_up_to", days, series)
    review = (np.arange(days) - first_review) % review_days == 0
    reorder[review] = np.inf
    return Levels(reorder, upto)


def moving_average(
    sales: np.ndarray,
    *,
    lead_time: np.ndarray,
    safety_factor: float,
    review_days: int,
    window: int = 28,
) -> Levels:
    """The classic (s, S): s = m * L + k * sd * sqrt(L), S = m * (L + R) + k * sd * sqrt(L + R).

    `sales` (window + days, series) is what the chain recorded: the `window`
    days before the replay, then the replay's days; the review on replay day
    d uses the `window` days up to and including d. Returns `days` rows.
    """
    if sales.shape[0] <= window:
        raise ValueError(f"`sales` needs more than `window` ({window}) days, got {sales.shape[0]}")
    cum = np.vstack([np.zeros((1, sales.shape[1])), np.cumsum(sales, axis=0)])
    cum2 = np.vstack([np.zeros((1, sales.shape[1])), np.cumsum(sales.astype(np.float64) ** 2, axis=0)])
    ends = np.arange(window + 1, sales.shape[0] + 1)  # windows ending on days window .. last
    mean = (cum[ends] - cum[ends - window]) / window
    var = np.clip((cum2[ends] - cum2[ends - window]) / window - mean**2, 0.0, None) * window / (window - 1)
    sd = np.sqrt(var)
    lead = np.maximum(lead_time.astype(np.float64), 0.0)[None, :]
    reorder = mean * lead + safety_factor * sd * np.sqrt(lead)
    upto = mean * (lead + review_days) + safety_factor * sd * np.sqrt(lead + review_days)
    return Levels(reorder, upto)


def chain_rule(
    average_sales: np.ndarray, *, lead_time: np.ndarray, days: int, buffer_days: float = 2.0, review_days: int = 7
) -> Levels:
    """The chain's fixed rule: reorder at (L + buffer) days of average sales, order up to R days more."""
    reorder = average_sales * (lead_time.astype(np.float64) + buffer_days)
    upto = reorder + average_sales * review_days
    return Levels(np.tile(reorder, (days, 1)), np.tile(upto, (days, 1)))


def safety_factor(service_level: float) -> float:
    """z for a cycle service level: the normal quantile, as `replenish` uses."""
    if not 0.0 < service_level < 1.0:
        raise ValueError(f"`service_level` must be in (0, 1), got {service_level!r}")
    return _NORMAL.inv_cdf(service_level)


def span_sums(values: np.ndarray, lead_time: np.ndarray, extra: int = 0) -> np.ndarray:
    """Per day d and series n, the sum of `values` over days d + 1 .. d + L_n + extra (cut at the last day)."""
    days, series = values.shape
    cum = np.vstack([np.zeros((1, series)), np.cumsum(values, axis=0)])
    start = np.arange(days)[:, None] + 1
    end = np.minimum(start + lead_time[None, :] + extra, days)
    cols = np.arange(series)[None, :]
    sums: np.ndarray = cum[end, cols] - cum[start, cols]
    return sums


def lead_time_scores(stats: pl.DataFrame, actual_lt: np.ndarray, actual_ltr: np.ndarray) -> np.ndarray:
    """(2, days, series) standardised errors (actual - mean) / std of the lead-time sums: over L, then over L + R.

    `stats` is `lead_time_stats` for the same days and series; a sum with no
    spread scores 0 when the actual is at most its mean, else +inf.
    """
    days, series = actual_lt.shape
    ordered = stats.sort(pl.col("store_id"), pl.col("item_id"), pl.col("day"), maintain_order=True)
    out = np.empty((2, days, series))
    for k, (mean, std, actual) in enumerate((("lt_mean", "lt_std", actual_lt), ("ltr_mean", "ltr_std", actual_ltr))):
        mu, sd = _matrix(ordered, mean, days, series), _matrix(ordered, std, days, series)
        gap = actual - mu
        with np.errstate(divide="ignore", invalid="ignore"):
            out[k] = np.where(sd > 0, gap / sd, np.where(gap <= 0, 0.0, np.inf))
    return out


def velocity_groups(rate: np.ndarray, groups: int) -> np.ndarray:
    """Each series' group (0 = slowest) when series are split into `groups` of equal count by `rate`."""
    ranks = np.argsort(np.argsort(rate, kind="stable"), kind="stable")
    return np.minimum(ranks * groups // max(rate.size, 1), groups - 1)


def calibrated_z(scores: np.ndarray, service_level: float, *, groups: np.ndarray | None = None) -> np.ndarray:
    """(2, series) the `service_level` quantile of the scores over L and over L + R, within each series' group.

    Quantiles are the next higher score, as in conformal prediction; groups
    (e.g. `velocity_groups`) calibrate slow and fast movers apart, since a
    pooled quantile is set by the many slow series.
    """
    if scores.shape[1] == 0:
        raise ValueError("no lead-time scores to calibrate on")
    series = scores.shape[2]
    groups = np.zeros(series, dtype=np.int64) if groups is None else groups
    z = np.empty((2, series))
    for group in np.unique(groups):
        members = groups == group
        for k in range(2):
            z[k, members] = np.quantile(scores[k][:, members].reshape(-1), service_level, method="higher")
    return z
