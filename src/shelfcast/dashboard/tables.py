"""The frames the pages show, from what the adapters read: joins and sorts only, no modelling."""

from __future__ import annotations

import polars as pl

from shelfcast.features.panel import SERIES
from shelfcast.io.stores.day import ScoringDay

ORDER_COLUMNS = ("store_id", "item_id", "order_quantity", "on_hand", "reorder_point", "order_up_to", "stockout_risk")


def store_items(
    day: ScoringDay, store_id: str, *, on_hand: pl.DataFrame | None, attributes: pl.DataFrame | None
) -> pl.DataFrame:
    """A store's series of the scoring: risk, advice, the latest count and the category, riskiest first."""
    rows = day.series.filter(pl.col("store_id") == store_id)
    if on_hand is not None:
        rows = rows.join(on_hand, on=list(SERIES), how="left")
    else:
        rows = rows.with_columns(pl.lit(None, pl.Float64).alias("on_hand"), pl.lit(None, pl.Date).alias("counted_on"))
    if attributes is not None and "category" in attributes.columns:
        rows = rows.join(attributes.select("item_id", pl.col("category").cast(pl.String)), on="item_id", how="left")
    columns = [
        "store_id",
        "item_id",
        *(["category"] if "category" in rows.columns else []),
        "stockout_risk",
        "stockout_label",
        "threshold",
        "forecast_7",
        "on_hand",
        "counted_on",
        "reorder_point",
        "order_up_to",
        "order_quantity",
    ]
    return rows.select(columns).sort(
        ["stockout_risk", "forecast_7", "item_id"], descending=[True, True, False], nulls_last=True
    )


def order_list(items: pl.DataFrame) -> pl.DataFrame:
    """What to order today: the items with an order quantity above zero, largest first, in figures a person reads
    (units to a tenth, the risk to a thousandth)."""
    units = [c for c in ("order_quantity", "on_hand", "reorder_point", "order_up_to") if c in items.columns]
    return (
        items.filter(pl.col("order_quantity") > 0)
        .select([c for c in ORDER_COLUMNS if c in items.columns])
        .sort(["order_quantity", "item_id"], descending=[True, False])
        .with_columns(pl.col(units).round(1), pl.col("stockout_risk").round(3))
    )
