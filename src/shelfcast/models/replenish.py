"""Replenishment advice per store x item from lead-time demand: safety stock, reorder point, order-up-to, order.

A periodic-review order-up-to policy with a reorder-point check, demand over a
span taken as normal and days as independent:

    safety_stock  = z * sigma_L
    reorder_point = mu_L + safety_stock
    order_up_to   = mu_(L+R) + z * sigma_(L+R)
    order         = max(0, order_up_to - (on_hand + on_order))

with z = Phi^-1(service_level) (a cycle service level), L the lead time and R
the review period in days. Quantities are in units and left unrounded: pack
sizes and minimum orders are business rules applied downstream.
"""

from __future__ import annotations

import datetime as dt
import reprlib
from statistics import NormalDist

import polars as pl

from shelfcast.errors import DataValidationError
from shelfcast.features.panel import SERIES, Panel
from shelfcast.types import Freq

# The standard normal's inverse CDF: equal to scipy.stats.norm.ppf to 1e-15, without
# the 1.5 s import of scipy.stats (or its missing type stubs) on every CLI or API start.
_NORMAL = NormalDist()
# p90 - p10 of a normal spans 2 * Z90 standard deviations (Z90 = 1.2816).
Z90 = _NORMAL.inv_cdf(0.9)
DEFAULT_REVIEW_PERIOD_DAYS = 7
DEFAULT_SERVICE_LEVEL = 0.95
_MEAN_FORMS = (("lt_mean", "lt_std"), ("lt_p10", "lt_p50", "lt_p90"))


def _check_days(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"`{name}` must be a whole number of days >= 0, got {value!r}")


def _check_service_level(service_level: float) -> None:
    if not 0.5 < service_level < 1.0:
        raise ValueError(f"`service_level` must be in (0.5, 1), got {service_level!r}; e.g. 0.95 for 95%")


def _fail_where(frame: pl.DataFrame, bad: pl.Expr | pl.Series, problem: str) -> None:
    """Raise naming up to three series where `bad` holds."""
    hits = frame.filter(bad)
    if not hits.is_empty():
        examples = [f"{s}/{i}" for s, i in hits.select(SERIES).head(3).iter_rows()]
        raise DataValidationError(f"{problem} for {hits.height} series (e.g. {reprlib.repr(examples)})")


def _require(frame: pl.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(f"`{name}` lacks column(s) {missing}; it has {frame.columns}")


def _with_lead_time(frame: pl.DataFrame, lead_time_days: int | pl.DataFrame | None) -> pl.DataFrame:
    """Add `lead_time_days` per row: the frame's own column first, then the argument (per series, store or item)."""
    own = "lead_time_days" in frame.columns
    if own:
        frame = frame.rename({"lead_time_days": "_own_lead_time"})
    if isinstance(lead_time_days, pl.DataFrame):
        keys = [c for c in SERIES if c in lead_time_days.columns]
        if not keys or "lead_time_days" not in lead_time_days.columns:
            raise ValueError(
                "`lead_time_days` as a frame needs store_id and/or item_id and a lead_time_days column, "
                f"got columns {lead_time_days.columns}"
            )
        given = lead_time_days.select(*keys, "lead_time_days").unique(keys, keep="first")
        frame = frame.join(given, on=keys, how="left")
    else:
        if lead_time_days is not None:
            _check_days("lead_time_days", lead_time_days)
        frame = frame.with_columns(pl.lit(lead_time_days, pl.Int64).alias("lead_time_days"))
    if own:
        frame = frame.with_columns(pl.coalesce("_own_lead_time", "lead_time_days").alias("lead_time_days"))
        frame = frame.drop("_own_lead_time")
    if not frame.schema["lead_time_days"].is_integer():
        raise DataValidationError(f"lead_time_days must be whole days, got dtype {frame.schema['lead_time_days']}")
    frame = frame.with_columns(pl.col("lead_time_days").cast(pl.Int64))
    _fail_where(frame, pl.col("lead_time_days").is_null(), "no lead time (pass `lead_time_days`)")
    _fail_where(frame, pl.col("lead_time_days") < 0, "a negative lead time")
    return frame


def lead_time_demand(
    forecasts: pl.DataFrame,
    *,
    lead_time_days: int | pl.DataFrame | None = None,
    review_period_days: int = DEFAULT_REVIEW_PERIOD_DAYS,
) -> pl.DataFrame:
    """Demand mean and std over the lead time L and over L + R, summed from daily forecast quantiles.

    `forecasts` has store_id, item_id, date, p10, p90 and a daily mean:
    `forecast` if present, else p50 (the median, a slight underestimate for
    skewed demand). Each day's variance is ((p90 - p10) / (2 * 1.2816))^2, as
    for a normal; days are independent, so means and variances add over the
    first L (and L + R) forecast days of each series. Lead times: a
    `lead_time_days` column of `forecasts`, else the argument (an int, or a
    frame per series, store or item). Returns store_id, item_id,
    lead_time_days, review_period_days, lt_mean, lt_std, ltr_mean, ltr_std.
    """
    _check_days("review_period_days", review_period_days)
    mean = "forecast" if "forecast" in forecasts.columns else "p50"
    _require(forecasts, "forecasts", (*SERIES, "date", "p10", mean, "p90"))
    frame = forecasts.select(
        *SERIES,
        "date",
        pl.col(mean).cast(pl.Float64).alias("_mean"),
        pl.col("p10").cast(pl.Float64),
        pl.col("p90").cast(pl.Float64),
        *(["lead_time_days"] if "lead_time_days" in forecasts.columns else []),
    )
    _fail_where(frame, pl.any_horizontal(pl.col("_mean", "p10", "p90").is_null()), "missing forecasts")
    _fail_where(frame, pl.col("_mean") < 0, f"negative demand ({mean} < 0)")
    _fail_where(frame, pl.col("p90") < pl.col("p10"), "p90 below p10")
    frame = _with_lead_time(frame, lead_time_days).sort(*SERIES, "date")
    frame = frame.with_columns(
        pl.int_range(pl.len()).over(SERIES).alias("_day"),
        ((pl.col("p90") - pl.col("p10")) / (2 * Z90)).pow(2).alias("_var"),
    )
    in_lead = pl.col("_day") < pl.col("lead_time_days")
    in_cover = pl.col("_day") < pl.col("lead_time_days") + review_period_days
    out = frame.group_by(SERIES).agg(
        pl.col("lead_time_days").first(),
        pl.len().alias("_days"),
        pl.col("_mean").filter(in_lead).sum().alias("lt_mean"),
        pl.col("_var").filter(in_lead).sum().sqrt().alias("lt_std"),
        pl.col("_mean").filter(in_cover).sum().alias("ltr_mean"),
        pl.col("_var").filter(in_cover).sum().sqrt().alias("ltr_std"),
    )
    _fail_where(
        out,
        pl.col("_days") < pl.col("lead_time_days") + review_period_days,
        "fewer forecast days than lead time + review period (forecast a longer horizon)",
    )
    return out.select(
        *SERIES,
        "lead_time_days",
        pl.lit(review_period_days, pl.Int64).alias("review_period_days"),
        "lt_mean",
        "lt_std",
        "ltr_mean",
        "ltr_std",
    ).sort(SERIES)


def _demand_stats(demand: pl.DataFrame, review_period_days: int) -> pl.DataFrame:
    """lt_mean, lt_std, ltr_mean, ltr_std per series from whichever form `demand` has."""
    if {"lt_mean", "lt_std"} <= set(demand.columns):
        frame = demand
    elif {"lt_p10", "lt_p50", "lt_p90"} <= set(demand.columns):
        _fail_where(demand, pl.col("lt_p90") < pl.col("lt_p10"), "lt_p90 below lt_p10")
        frame = demand.with_columns(
            pl.col("lt_p50").alias("lt_mean"), ((pl.col("lt_p90") - pl.col("lt_p10")) / (2 * Z90)).alias("lt_std")
        )
    else:
        raise DataValidationError(
            f"`demand` needs lead-time demand as one of {[list(f) for f in _MEAN_FORMS]}; it has {demand.columns}"
        )
    stats = ("lt_mean", "lt_std", "ltr_mean", "ltr_std")
    frame = frame.with_columns(pl.col(c).cast(pl.Float64) for c in stats if c in frame.columns)
    if "review_period_days" in frame.columns and {"ltr_mean", "ltr_std"} <= set(frame.columns):
        _fail_where(
            frame,
            pl.col("review_period_days") != review_period_days,
            f"L + R demand aggregated for another review period than review_period_days={review_period_days}",
        )
    if not {"ltr_mean", "ltr_std"} <= set(frame.columns):
        # Scale a constant daily rate from L days to L + R days (variances add).
        _fail_where(frame, pl.col("lead_time_days") == 0, "a zero lead time and no ltr_mean/ltr_std to scale from")
        ratio = (pl.col("lead_time_days") + review_period_days) / pl.col("lead_time_days")
        frame = frame.with_columns(
            (pl.col("lt_mean") * ratio).alias("ltr_mean"), (pl.col("lt_std") * ratio.sqrt()).alias("ltr_std")
        )
    _fail_where(frame, pl.any_horizontal(pl.col(stats).is_null()), "missing demand statistics")
    _fail_where(frame, pl.any_horizontal(pl.col("lt_mean", "ltr_mean") < 0), "negative demand (mean < 0)")
    _fail_where(frame, pl.any_horizontal(pl.col("lt_std", "ltr_std") < 0), "a negative demand std")
    return frame.select(*SERIES, "lead_time_days", *stats)


def replenishment(
    demand: pl.DataFrame,
    *,
    stock: pl.DataFrame | None = None,
    lead_time_days: int | pl.DataFrame | None = None,
    review_period_days: int = DEFAULT_REVIEW_PERIOD_DAYS,
    service_level: float = DEFAULT_SERVICE_LEVEL,
) -> pl.DataFrame:
    """Safety stock, reorder point, order-up-to level and order quantity per series.

    `demand` gives lead-time demand per series as lt_mean and lt_std, or as
    lt_p10/lt_p50/lt_p90 (normal: mean = p50, std = (p90 - p10) / 2.563), and
    optionally ltr_mean/ltr_std over lead time + review period (as from
    `lead_time_demand`; else scaled from the lead time at a constant daily
    rate). `stock` (store_id, item_id, on_hand, optional on_order) gives the
    inventory position; without on_hand, order_quantity and reorder_now are null.
    """
    _check_service_level(service_level)
    _check_days("review_period_days", review_period_days)
    _require(demand, "demand", SERIES)
    _fail_where(demand, demand.select(SERIES).is_duplicated(), "more than one demand row")
    frame = _demand_stats(_with_lead_time(demand, lead_time_days), review_period_days)

    if stock is None:
        stock = pl.DataFrame(schema={"store_id": pl.String, "item_id": pl.String, "on_hand": pl.Float64})
    _require(stock, "stock", (*SERIES, "on_hand"))
    on_order = pl.col("on_order") if "on_order" in stock.columns else pl.lit(None, pl.Float64)
    stock = stock.select(*SERIES, pl.col("on_hand").cast(pl.Float64), on_order.cast(pl.Float64).alias("on_order"))
    _fail_where(stock, stock.select(SERIES).is_duplicated(), "more than one stock row")
    _fail_where(stock, pl.any_horizontal(pl.col("on_hand", "on_order") < 0), "negative on_hand or on_order")
    frame = frame.join(stock, on=list(SERIES), how="left")

    z = _NORMAL.inv_cdf(service_level)
    position = pl.col("on_hand") + pl.col("on_order").fill_null(0.0)
    return (
        frame.with_columns(
            pl.lit(review_period_days, pl.Int64).alias("review_period_days"),
            pl.lit(service_level).alias("service_level"),
            (z * pl.col("lt_std")).alias("safety_stock"),
            (pl.col("ltr_mean") + z * pl.col("ltr_std")).alias("order_up_to"),
            position.alias("inventory_position"),
        )
        .with_columns((pl.col("lt_mean") + pl.col("safety_stock")).alias("reorder_point"))
        .with_columns(
            (pl.col("order_up_to") - pl.col("inventory_position")).clip(lower_bound=0.0).alias("order_quantity"),
            (pl.col("inventory_position") <= pl.col("reorder_point")).alias("reorder_now"),
        )
        .select(
            *SERIES,
            "lead_time_days",
            "review_period_days",
            "service_level",
            "lt_mean",
            "lt_std",
            "safety_stock",
            "reorder_point",
            "order_up_to",
            "on_hand",
            "on_order",
            "inventory_position",
            "order_quantity",
            "reorder_now",
        )
        .sort(SERIES)
    )


def stock_position(panel: Panel, *, cutoff: dt.date) -> pl.DataFrame:
    """Each series' latest on_hand and on_order up to the cutoff (store_id, item_id, date, on_hand, on_order)."""
    _require(panel.frame, "panel.frame", ("on_hand",))
    on_order = pl.col("on_order") if "on_order" in panel.frame.columns else pl.lit(None, pl.Float64)
    known = panel.until(cutoff).frame.filter(pl.col("on_hand").is_not_null())
    known = known.select(
        *SERIES, "date", pl.col("on_hand").cast(pl.Float64), on_order.cast(pl.Float64).alias("on_order")
    )
    return known.sort(*SERIES, "date").group_by(SERIES).agg(pl.all().last()).sort(SERIES)


def daily_forecast(weekly: pl.DataFrame) -> pl.DataFrame:
    """Each weekly forecast as seven days with the week's mean and variance (the advice counts days).

    A day gets a seventh of the week's forecast, and a seventh of its variance
    (quantile distances from the forecast divided by sqrt(7)), so the seven
    days, summed as independent, give back the week. Only the lead-time sums
    use these days (a day's p10 may fall below zero; its spread is what counts).
    """
    spread = 7.0**0.5
    days = weekly.with_columns(pl.int_ranges(0, 7).alias("__day")).explode("__day")
    return days.with_columns(
        (pl.col("date") + pl.duration(days=pl.col("__day"))).alias("date"),
        (pl.col("forecast") / 7.0).alias("forecast"),
        *[
            (pl.col("forecast") / 7.0 + (pl.col(c) - pl.col("forecast")) / spread).alias(c)
            for c in ("p10", "p50", "p90")
        ],
    ).drop("__day")


def reorder_advice(
    panel: Panel, forecast: pl.DataFrame, *, cutoff: dt.date, lead_time_days: int, service_level: float
) -> pl.DataFrame:
    """Safety stock, reorder point and order quantities from lead-time demand quantiles of the forecast."""
    daily = daily_forecast(forecast) if panel.freq == Freq.WEEKLY else forecast
    demand_lt = lead_time_demand(daily, lead_time_days=lead_time_days)
    stock = None
    if "on_hand" in panel.frame.columns:
        extra = ["on_order"] if "on_order" in panel.frame.columns else []
        stock = stock_position(panel, cutoff=cutoff).select(*SERIES, "on_hand", *extra)
    advice = replenishment(demand_lt, stock=stock, service_level=service_level)
    keep = ["safety_stock", "reorder_point", "order_up_to", "order_quantity", "reorder_now"]
    return advice.select(*SERIES, *[c for c in keep if c in advice.columns])
