"""Aggregate the simulator's daily frames to weeks (dated by the week's Monday).

Partial weeks at either end hold only the simulated days. Per table:
- sales: units and revenue summed, price = revenue / units (the mean shelf
  price when nothing sold), promo = 1 if any day was on promotion;
- inventory: on_hand, on_order and safety_stock at the end of the week;
  stockout_hours is the mean per day, so it stays within 0..24;
- movements: summed per week, item, stores and kind, then renumbered, so the
  balance on_hand(w) = on_hand(w-1) + receipts + transfers in - out - units
  still holds exactly;
- truth: demand and lost units summed, censored if any day was;
- calendar: each event dated by its week; exogenous: weekly means.
"""

from __future__ import annotations

import polars as pl

from shelfcast.data.sim_frames import EXOGENOUS_COLUMNS, with_movement_ids

_KEYS = ("date", "store_id", "item_id")


def _week(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("date").dt.truncate("1w"))


def weekly_sales(sales: pl.DataFrame) -> pl.DataFrame:
    """Weekly sales: summed units and revenue, average price paid, any promotion."""
    out = (
        _week(sales)
        .group_by(_KEYS)
        .agg(
            pl.col("units").sum(),
            pl.col("revenue").sum().round(2),
            pl.col("price").mean().alias("_mean_price"),
            pl.col("promo").max(),
        )
    )
    price = pl.when(pl.col("units") > 0).then((pl.col("revenue") / pl.col("units")).round(4))
    out = out.with_columns(price.otherwise(pl.col("_mean_price").round(4)).alias("price"))
    return out.select(*_KEYS, "units", "price", "promo", "revenue").sort(_KEYS)


def weekly_inventory(inventory: pl.DataFrame) -> pl.DataFrame:
    """Weekly stock: end-of-week position, mean daily stockout hours."""
    # Rows are sorted by date, and group_by keeps the row order within a group.
    out = (
        _week(inventory)
        .group_by(_KEYS)
        .agg(
            pl.col("on_hand").last(),
            pl.col("stockout_hours").mean(),
            pl.col("on_order").last(),
            pl.col("safety_stock").last(),
        )
    )
    return out.sort(_KEYS)


def weekly_truth(truth: pl.DataFrame) -> pl.DataFrame:
    """Weekly demand and lost units; censored when any day of the week was."""
    out = _week(truth).group_by(_KEYS).agg(pl.col("demand").sum(), pl.col("lost_units").sum(), pl.col("censored").any())
    return out.sort(_KEYS)


def weekly_movements(movements: pl.DataFrame) -> pl.DataFrame:
    """Movements summed per week, item, stores and kind, renumbered."""
    keys = ("date", "item_id", "from_store_id", "to_store_id", "kind")
    out = _week(movements).group_by(keys).agg(pl.col("quantity").sum())
    return with_movement_ids(out.select(*keys[:4], "quantity", "kind"))


def weekly_calendar(calendar: pl.DataFrame) -> pl.DataFrame:
    """Holidays dated by the Monday of their week."""
    return _week(calendar).sort("date", "event")


def weekly_exogenous(exogenous: pl.DataFrame) -> pl.DataFrame:
    """Weekly means of the covariates."""
    out = _week(exogenous).group_by(_KEYS).agg(pl.col(c).mean() for c in EXOGENOUS_COLUMNS)
    return out.sort(_KEYS, nulls_last=False)


def _number(column: str) -> pl.Expr:
    """S001 -> 1: the integer ids Walmart's files use."""
    return pl.col(column).str.extract(r"(\d+)").cast(pl.Int64)


def walmart_tables(
    sales: pl.DataFrame, exogenous: pl.DataFrame, calendar: pl.DataFrame, stores: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    """Weekly frames (dated by the Monday) laid out as Kaggle's Walmart train, features and stores files.

    Walmart dates a week by its last selling day, the Friday: the rows are
    the same weeks, four days later. Weekly_Sales is the units sold (the
    real file holds dollars); weeks without sales have no row, as in Kaggle's.
    """
    friday = (pl.col("date") + pl.duration(days=4)).alias("Date")
    holidays = calendar.select("date", pl.lit(True).alias("IsHoliday")).unique()
    flagged = pl.col("IsHoliday").fill_null(False)
    train = (
        sales.filter(pl.col("units") > 0)
        .join(holidays, on="date", how="left")
        .select(
            _number("store_id").alias("Store"),
            _number("item_id").alias("Dept"),
            friday,
            pl.col("units").cast(pl.Float64).alias("Weekly_Sales"),
            flagged,
        )
    )
    chain_wide = exogenous.filter(pl.col("store_id").is_null()).select("date", "cpi", "fuel_price")
    features = (
        exogenous.filter(pl.col("store_id").is_not_null())
        .select("date", "store_id", "temperature")
        .join(chain_wide, on="date", how="left")
        .join(holidays, on="date", how="left")
        .select(
            _number("store_id").alias("Store"),
            friday,
            pl.col("temperature").alias("Temperature"),
            pl.col("fuel_price").alias("Fuel_Price"),
            *[pl.lit(None, pl.Float64).alias(f"MarkDown{i}") for i in range(1, 6)],
            pl.col("cpi").alias("CPI"),
            pl.lit(7.5).alias("Unemployment"),
            flagged,
        )
    )
    walmart_stores = stores.select(
        _number("store_id").alias("Store"), pl.col("type").alias("Type"), pl.col("size").cast(pl.Int64).alias("Size")
    )
    return {
        "train": train.sort("Store", "Dept", "Date"),
        "features": features.sort("Store", "Date"),
        "stores": walmart_stores,
    }
