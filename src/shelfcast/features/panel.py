"""The modelling panel: every series on a complete time grid, with everything known about each period.

One row per (store_id, item_id, date) from a series' first to its last sales
period, or to its last inventory period when stock is recorded later (capped
at the sales table's last date: a series still stocked sold nothing on the
days without a sales row). `y` is the units sold (0 where the sales table has
no row: nothing was sold), `observed` says whether the sales table had the
row. Inventory, prices, promotions, exogenous covariates and item/store
attributes are joined on. Pure: takes the canonical tables, returns frames.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from shelfcast.schemas import TableName

SERIES = ("store_id", "item_id")
KEYS = (*SERIES, "date")
# Sales and inventory columns a retailer plans ahead (prices, promotions):
# their values on future days may be used. Everything else observed is past-only.
PLANNED_SALES_COLUMNS = ("price", "promo")
INVENTORY_COLUMNS = (
    "on_hand",
    "stockout_hours",
    "reserved",
    "on_order",
    "safety_stock",
    "hours_open",
    "hourly_stockout",
)


@dataclass(frozen=True)
class Panel:
    """The grid and what each column may be used for."""

    frame: pl.DataFrame
    freq: str
    known_in_advance: tuple[str, ...] = ()
    past_only: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def step(self) -> dt.timedelta:
        return dt.timedelta(days=7 if self.freq == "W" else 1)

    @property
    def season(self) -> int:
        """Steps in the main seasonal cycle: a week of days, or a year of weeks."""
        return 52 if self.freq == "W" else 7

    @property
    def dates(self) -> pl.Series:
        return self.frame["date"].unique().sort()

    def as_known_at(self, cutoff: dt.date) -> Panel:
        """The panel as a forecaster sees it at the end of `cutoff`.

        Rows after the cutoff stay (their dates, ids and columns known in
        advance, such as planned markdowns), but every other value is blanked.
        """
        return Panel(
            _known_at(self, cutoff), self.freq, self.known_in_advance, self.past_only, self.categorical, self.extra
        )

    def until(self, cutoff: dt.date) -> Panel:
        """The panel as it was known at the end of `cutoff` (rows after it dropped)."""
        return Panel(
            self.frame.filter(pl.col("date") <= cutoff),
            self.freq,
            self.known_in_advance,
            self.past_only,
            self.categorical,
            self.extra,
        )


def _known_at(panel: Panel, cutoff: dt.date) -> pl.DataFrame:
    later = pl.col("date") > cutoff
    hidden = [c for c in panel.frame.columns if c not in (*KEYS, *panel.known_in_advance)]
    return panel.frame.with_columns([pl.when(later).then(None).otherwise(pl.col(c)).alias(c) for c in hidden])


def _grid(sales: pl.DataFrame, step: str, inventory: pl.DataFrame | None = None) -> pl.DataFrame:
    spans = sales.group_by(SERIES).agg(pl.col("date").min().alias("first"), pl.col("date").max().alias("last"))
    if inventory is not None and not inventory.is_empty():
        # Sources that only record positive sales (invoice lines) leave a slow
        # series' last sale days before the end; its stock rows show it is
        # still listed, so it runs on (with zero sales) to the end of the sales.
        stocked = inventory.group_by(SERIES).agg(pl.col("date").max().alias("stocked"))
        end = pl.min_horizontal(pl.col("stocked"), pl.lit(sales["date"].max()))
        spans = spans.join(stocked, on=list(SERIES), how="left").with_columns(
            pl.max_horizontal("last", end).alias("last")
        )
    return (
        spans.with_columns(pl.date_ranges("first", "last", interval=step).alias("date"))
        .explode("date")
        .select(*SERIES, "date")
    )


def build_panel(
    tables: Mapping[TableName, pl.DataFrame],
    *,
    freq: str = "D",
    exogenous_roles: Mapping[str, str] | None = None,
) -> Panel:
    """Join the canonical tables onto one complete grid per series."""
    sales = tables["sales"]
    if sales.is_empty():
        raise ValueError("the sales table is empty: nothing to model")
    step = "1w" if freq == "W" else "1d"
    inventory = tables.get("inventory")
    frame = _grid(sales, step, inventory).join(
        sales.rename({"units": "y"}).with_columns(pl.lit(True).alias("observed")), on=list(KEYS), how="left"
    )
    frame = frame.with_columns(pl.col("y").fill_null(0.0), pl.col("observed").fill_null(False))
    known = [c for c in PLANNED_SALES_COLUMNS if c in frame.columns]
    past = [c for c in ("revenue",) if c in frame.columns]

    if inventory is not None and not inventory.is_empty():
        cols = [c for c in INVENTORY_COLUMNS if c in inventory.columns]
        frame = frame.join(inventory.select(*KEYS, *cols), on=list(KEYS), how="left")
        past += cols

    exogenous = tables.get("exogenous")
    roles = dict(exogenous_roles or {})
    if exogenous is not None and not exogenous.is_empty():
        covariates = [c for c in exogenous.columns if c not in ("date", "store_id", "item_id")]
        frame = _join_exogenous(frame, exogenous, covariates)
        known += [c for c in covariates if roles.get(c) == "known_in_advance"]
        past += [c for c in covariates if roles.get(c) != "known_in_advance"]

    categorical: list[str] = []
    for master, key in (("items", "item_id"), ("stores", "store_id")):
        attrs = tables.get(master)  # type: ignore[call-overload]
        if attrs is None or attrs.is_empty():
            continue
        extra = [c for c in attrs.columns if c != key and c not in frame.columns]
        frame = frame.join(attrs.select(key, *extra), on=key, how="left")
        categorical += [c for c in extra if attrs.schema[c] == pl.String]
    frame = frame.sort(*KEYS)
    return Panel(frame, freq, tuple(known), tuple(past), tuple(categorical))


def _join_exogenous(frame: pl.DataFrame, exogenous: pl.DataFrame, covariates: list[str]) -> pl.DataFrame:
    """Join covariates at their scope: per store x item, per store, or chain-wide (null ids)."""
    scopes: tuple[tuple[list[str], pl.Series], ...] = (
        (["store_id", "item_id"], exogenous["store_id"].is_not_null() & exogenous["item_id"].is_not_null()),
        (["store_id"], exogenous["store_id"].is_not_null() & exogenous["item_id"].is_null()),
        (["item_id"], exogenous["store_id"].is_null() & exogenous["item_id"].is_not_null()),
        ([], exogenous["store_id"].is_null() & exogenous["item_id"].is_null()),
    )
    for i, (keys, mask) in enumerate(scopes):
        part = exogenous.filter(mask).select("date", *keys, *covariates)
        if part.is_empty():
            continue
        # A covariate may be given at several scopes (rare): the most specific wins.
        suffix = f"__scope{i}"
        frame = frame.join(part, on=["date", *keys], how="left", suffix=suffix)
        for c in covariates:
            if f"{c}{suffix}" in frame.columns:
                frame = frame.with_columns(pl.coalesce(c, f"{c}{suffix}").alias(c)).drop(f"{c}{suffix}")
    return frame.with_columns([pl.lit(None, pl.Float64).alias(c) for c in covariates if c not in frame.columns])
