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

import numpy as np
import polars as pl

from shelfcast.schemas import TableName
from shelfcast.types import Freq

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
        return Freq(self.freq).step

    @property
    def season(self) -> int:
        """Steps in the main seasonal cycle: a week of days, or a year of weeks."""
        return Freq(self.freq).season

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


def _spans(
    sales: pl.DataFrame, inventory: pl.DataFrame | None, keys: list[str], end: dt.date | None = None
) -> pl.DataFrame:
    """First and last period of each series (by `keys`), run on to the end of the sales (`end`, else the sales'
    last date) while stock is recorded."""
    spans = sales.group_by(keys).agg(pl.col("date").min().alias("first"), pl.col("date").max().alias("last"))
    if inventory is not None:
        # Sources that only record positive sales (invoice lines) leave a slow
        # series' last sale days before the end; its stock rows show it is
        # still listed, so it runs on (with zero sales) to the end of the sales.
        stocked = inventory.group_by(keys).agg(pl.col("date").max().alias("stocked"))
        until = pl.min_horizontal(pl.col("stocked"), pl.lit(end or sales["date"].max()))
        spans = spans.join(stocked, on=keys, how="left").with_columns(pl.max_horizontal("last", until).alias("last"))
    return spans.select(*keys, "first", "last")


def _grid(
    sales: pl.DataFrame, step: str, inventory: pl.DataFrame | None = None, end: dt.date | None = None
) -> pl.DataFrame:
    return (
        _spans(sales, inventory, list(SERIES), end)
        .with_columns(pl.date_ranges("first", "last", interval=step).alias("date"))
        .explode("date")
        .select(*SERIES, "date")
    )


def _joined(
    sales: pl.DataFrame,
    inventory: pl.DataFrame | None,
    stock: list[str],
    step: str,
    end: dt.date | None = None,
) -> pl.DataFrame:
    """The grid with the sales and stock columns joined on, sorted by series and date."""
    frame = _grid(sales, step, inventory, end).join(
        sales.rename({"units": "y"}).with_columns(pl.lit(True).alias("observed")), on=list(KEYS), how="left"
    )
    if inventory is not None:
        frame = frame.join(inventory.select(*KEYS, *stock), on=list(KEYS), how="left")
    return frame.sort(*KEYS)


@dataclass(frozen=True)
class _Placed:
    """The grid with the sales and stock columns, and for each id column its sorted values and every row's rank."""

    frame: pl.DataFrame
    ranks: dict[str, tuple[pl.Series, np.ndarray]]


def _placed(
    sales: pl.DataFrame,
    inventory: pl.DataFrame | None,
    stock: list[str],
    step_days: int,
    end: dt.date | None = None,
) -> _Placed | None:
    """What `_joined` gives, placing each row by arithmetic instead of joins; None when that is not plain.

    Joining millions of rows on two string ids and a date, then sorting them,
    takes seconds per table. Here the ids become integer codes once (ranks in
    the sorted lists of stores and items, so code order is the panel's
    order), each series' first row in the grid follows from the lengths of
    the series before it, and each row's position from its date. Duplicate
    rows, null or non-string ids, null or non-date dates and clashing column
    names are left to the joins (None).
    """
    sales_columns = [c for c in sales.columns if c not in KEYS]
    names = [*KEYS, *("y" if c == "units" else c for c in sales_columns), "observed", *stock]
    tables = [sales] if inventory is None else [sales, inventory]
    if len(set(names)) < len(names) or "units" not in sales_columns:
        return None
    for table in tables:
        schema = table.schema
        if not (schema["store_id"] == pl.String and schema["item_id"] == pl.String and schema["date"] == pl.Date):
            return None
        if table["date"].null_count():
            return None
    if sales.select(pl.col("store_id").null_count() + pl.col("item_id").null_count()).item():
        return None
    stores, items = sales["store_id"].unique().sort(), sales["item_id"].unique().sort()
    # Rank of the store, times the number of items, plus the rank of the item; null when not in the sales.
    code = pl.col("store_id").replace_strict(stores, np.arange(stores.len()), default=None, return_dtype=pl.Int64)
    code = code * items.len() + pl.col("item_id").replace_strict(
        items, np.arange(items.len()), default=None, return_dtype=pl.Int64
    )
    coded = [t.select(code.fill_null(-1).alias("code"), pl.col("date").cast(pl.Int32).alias("day")) for t in tables]
    spans = _series_spans(coded, stores.len() * items.len(), step_days, end)
    grid_series = np.repeat(np.arange(spans.codes.size), spans.counts)
    grid_days = spans.first[grid_series] + step_days * (
        np.arange(spans.rows, dtype=np.int32) - spans.starts[grid_series]
    )
    taken: list[np.ndarray] = []
    for table in coded:
        index = spans.index(table["code"].to_numpy(), table["day"].to_numpy(), step_days)
        if index is None:
            return None
        taken.append(index)

    def gather(table: pl.DataFrame, index: np.ndarray) -> pl.DataFrame:
        at = pl.lit(pl.Series(index))
        return table.select(pl.all().gather(pl.when(at >= 0).then(at)))

    store_rank = (spans.codes // items.len())[grid_series]
    item_rank = (spans.codes % items.len())[grid_series]
    parts = [
        pl.DataFrame([stores.gather(store_rank), items.gather(item_rank), pl.Series("date", grid_days).cast(pl.Date)]),
        gather(sales.select(sales_columns), taken[0]).rename({"units": "y"}),
        pl.select(pl.when(pl.lit(pl.Series(taken[0])) >= 0).then(True).alias("observed")),
    ]
    if inventory is not None:
        parts.append(gather(inventory.select(stock), taken[1]))
    return _Placed(
        pl.concat(parts, how="horizontal"), {"store_id": (stores, store_rank), "item_id": (items, item_rank)}
    )


# Codes are looked up in a dense table while it is at most this many entries per row looked up (else a binary search).
_DENSE = 8


@dataclass(frozen=True)
class _Spans:
    """Where each series (by code, in code order) lies in the grid: its first day, row count and first row.

    Codes run from 0 to `space` - 1 (stores x items), -1 for ids not in the sales.
    """

    space: int
    codes: np.ndarray
    first: np.ndarray
    counts: np.ndarray
    starts: np.ndarray

    @property
    def rows(self) -> int:
        return int(self.starts[-1])

    def index(self, codes: np.ndarray, days: np.ndarray, step_days: int) -> np.ndarray | None:
        """For each grid row, the table row on it (-1: none); None when two rows fall on one."""
        # The position one past the last series stands for "not a series of the grid" (no rows: never on it).
        if self.space <= _DENSE * codes.size:
            lookup = np.full(self.space + 1, self.codes.size)  # dense: one step per row (code -1: the last)
            lookup[self.codes] = np.arange(self.codes.size)
            series = lookup[codes]
        else:
            series = np.searchsorted(self.codes, codes)
            series[self.codes.take(series, mode="clip") != codes] = self.codes.size
        first = np.append(self.first, 0)
        counts = np.append(self.counts, 0)
        offset = days - first[series]
        on_grid = (offset >= 0) & (offset < counts[series] * step_days)
        if step_days > 1:
            on_grid &= offset % step_days == 0
        rows = np.flatnonzero(on_grid)
        position = self.starts[series[rows]] + offset[rows] // step_days
        index = np.full(self.rows, -1, dtype=np.int64)
        index[position] = rows
        return None if np.count_nonzero(index >= 0) < rows.size else index


def _series_spans(coded: list[pl.DataFrame], space: int, step_days: int, end: dt.date | None = None) -> _Spans:
    """The spans of `_spans` (sales first, stock second) for coded tables, as arrays."""
    dated = [t.filter(pl.col("code") >= 0).select("code", pl.col("day").cast(pl.Date).alias("date")) for t in coded]
    spans = _spans(dated[0], dated[1] if len(dated) > 1 else None, ["code"], end).sort("code")
    first = spans["first"].cast(pl.Int32).to_numpy()
    counts = (spans["last"].cast(pl.Int32).to_numpy() - first) // step_days + 1
    return _Spans(space, spans["code"].to_numpy(), first, counts, np.concatenate([[0], np.cumsum(counts)]))


def build_panel(
    tables: Mapping[TableName, pl.DataFrame],
    *,
    freq: str = "D",
    exogenous_roles: Mapping[str, str] | None = None,
    end: dt.date | None = None,
) -> Panel:
    """Join the canonical tables onto one complete grid per series.

    `end`: the last date of the whole sales table when `tables` hold only some series' rows (a series still
    stocked runs on to it), so those series' rows are the ones the whole tables give them.
    """
    sales = tables["sales"]
    if sales.is_empty():
        raise ValueError("the sales table is empty: nothing to model")
    step = Freq(freq).interval
    inventory = tables.get("inventory")
    if inventory is not None and inventory.is_empty():
        inventory = None
    stock = [c for c in INVENTORY_COLUMNS if c in inventory.columns] if inventory is not None else []
    placed = _placed(sales, inventory, stock, Freq(freq).days, end)
    frame = _joined(sales, inventory, stock, step, end) if placed is None else placed.frame
    ranks = {} if placed is None else placed.ranks
    frame = frame.with_columns(pl.col("y").fill_null(0.0), pl.col("observed").fill_null(False))
    known = [c for c in PLANNED_SALES_COLUMNS if c in frame.columns]
    past = [c for c in ("revenue",) if c in frame.columns] + stock

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
        frame = _attach(frame, attrs.select(key, *extra), key, ranks.get(key))
        categorical += [c for c in extra if attrs.schema[c] == pl.String]
    return Panel(frame, freq, tuple(known), tuple(past), tuple(categorical))


def _attach(
    frame: pl.DataFrame, attrs: pl.DataFrame, key: str, ranks: tuple[pl.Series, np.ndarray] | None
) -> pl.DataFrame:
    """`frame` left-joined with `attrs` on `key`, by each row's rank of `key` when known (no hashing of every row).

    The ranks hold while the frame still has the grid's rows: an earlier join
    that repeated some (a covariate or an attribute given twice) sends this one to a join too.
    """
    if ranks is None or frame.height != ranks[1].size:
        return frame.join(attrs, on=key, how="left", maintain_order="left")
    if attrs.schema[key] != frame.schema[key] or attrs[key].is_duplicated().any():
        return frame.join(attrs, on=key, how="left", maintain_order="left")
    values, rank = ranks
    table = values.to_frame(key).join(attrs, on=key, how="left", maintain_order="left").drop(key)
    return pl.concat([frame, table[rank]], how="horizontal")


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
        frame = frame.join(part, on=["date", *keys], how="left", suffix=suffix, maintain_order="left")
        for c in covariates:
            if f"{c}{suffix}" in frame.columns:
                frame = frame.with_columns(pl.coalesce(c, f"{c}{suffix}").alias(c)).drop(f"{c}{suffix}")
    return frame.with_columns([pl.lit(None, pl.Float64).alias(c) for c in covariates if c not in frame.columns])
