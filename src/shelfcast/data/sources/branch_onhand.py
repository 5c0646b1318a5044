"""Daily on-hand history rebuilt from one stock snapshot and the flows around it.

A snapshot gives the on-hand at the end of its day; every other day follows
from the balance of the stock that came in and went out:

    net(d)         = moved_in(d) - moved_out(d) - sales(d)
    on_hand(end d) = snapshot + cum_net(d) - cum_net(snapshot day)

which runs backwards before the snapshot and forwards after it. A movement
counts by its stores, not its kind: `to_store_id` receives it (receipts,
transfers in), `from_store_id` sends it (transfers out, adjustments out).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

SERIES = ("store_id", "item_id")
# Sums of fractional quantities drift by ~1e-12; rounding keeps a true zero
# from turning into a tiny negative that the schema would quarantine.
_DECIMALS = 6


@dataclass(frozen=True)
class Reconstruction:
    """The rebuilt history and the series it could not rebuild."""

    # date, store_id, item_id, on_hand for every day of the range and every
    # anchored series, the snapshot day included.
    history: pl.DataFrame
    # store_id, item_id of series with sales or movements but no usable snapshot.
    without_snapshot: pl.DataFrame

    @property
    def negative(self) -> int:
        """Rows whose rebuilt on-hand is below zero: the files disagree there."""
        return self.history.filter(pl.col("on_hand") < 0).height


def daily_net(sales: pl.DataFrame, movements: pl.DataFrame) -> pl.LazyFrame:
    """Net stock change per series and day: units in minus units out, sales included."""
    moves = movements.lazy()
    flows = [
        sales.lazy().select("date", *SERIES, (-pl.col("units")).alias("net")),
        moves.filter(pl.col("to_store_id").is_not_null()).select(
            "date", pl.col("to_store_id").alias("store_id"), "item_id", pl.col("quantity").alias("net")
        ),
        moves.filter(pl.col("from_store_id").is_not_null()).select(
            "date", pl.col("from_store_id").alias("store_id"), "item_id", (-pl.col("quantity")).alias("net")
        ),
    ]
    return pl.concat(flows).group_by("date", *SERIES).agg(pl.col("net").sum())


def _anchors(snapshot: pl.DataFrame) -> pl.LazyFrame:
    """The latest snapshot row with an on-hand per series."""
    return (
        snapshot.lazy()
        .filter(pl.col("on_hand").is_not_null())
        .sort("date")
        .group_by(*SERIES)
        .agg(pl.col("date").last().alias("snapshot_date"), pl.col("on_hand").last().alias("snapshot"))
    )


def reconstruct_on_hand(snapshot: pl.DataFrame, sales: pl.DataFrame, movements: pl.DataFrame) -> Reconstruction:
    """End-of-day on-hand for every snapshot series over the whole date range of the facts.

    Args:
        snapshot: inventory rows (date, store_id, item_id, on_hand); the latest
            row with an on-hand anchors each series.
        sales: daily sales (date, store_id, item_id, units), one row per key.
        movements: date, item_id, from_store_id, to_store_id, quantity.
    """
    net = daily_net(sales, movements)
    anchors = _anchors(snapshot)
    dates = pl.concat(
        [
            snapshot.lazy().select("date"),
            sales.lazy().select("date"),
            movements.lazy().select("date"),
        ]
    ).select(pl.col("date").min().alias("first"), pl.col("date").max().alias("last"))
    calendar = dates.select(pl.date_ranges("first", "last").explode().alias("date"))
    history = (
        anchors.join(calendar, how="cross")
        .join(net, on=["date", *SERIES], how="left")
        .with_columns(pl.col("net").fill_null(0.0))
        .sort(*SERIES, "date")
        .with_columns(pl.col("net").cum_sum().over(SERIES).alias("cum"))
        .with_columns(
            (
                pl.col("snapshot")
                + pl.col("cum")
                - pl.col("cum").filter(pl.col("date") == pl.col("snapshot_date")).first().over(SERIES)
            )
            .round(_DECIMALS)
            .alias("on_hand")
        )
        .select("date", *SERIES, "on_hand")
    )
    without = net.select(SERIES).unique().join(anchors, on=list(SERIES), how="anti").sort(SERIES)
    history_df, without_df = pl.collect_all([history, without])
    return Reconstruction(history_df, without_df)


__all__ = ["Reconstruction", "daily_net", "reconstruct_on_hand"]
