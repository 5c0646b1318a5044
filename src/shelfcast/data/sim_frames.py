"""Turn the simulator's day-major arrays into canonical Polars frames, daily or weekly."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from shelfcast.data.sim_config import SimConfig
from shelfcast.data.sim_inventory import InventoryPath
from shelfcast.schemas import EXOGENOUS, HOURS_PER_DAY, INVENTORY, MOVEMENTS, SALES

_EPOCH = dt.date(1970, 1, 1)
EXOGENOUS_COLUMNS = ("temperature", "cpi", "fuel_price")


def _date_series(day_index: np.ndarray, start: dt.date) -> pl.Series:
    days = day_index.astype(np.int32) + np.int32((start - _EPOCH).days)
    return pl.Series("date", days).cast(pl.Date)


def _panel(values: np.ndarray, n_stores: int) -> np.ndarray:
    """Broadcast a (days, items) array to the (days * stores * items,) row order."""
    d, m = values.shape
    return np.broadcast_to(values[:, None, :], (d, n_stores, m)).reshape(-1)


def panel_keys(config: SimConfig, *, store_ids: pl.Series, item_ids: pl.Series) -> pl.DataFrame:
    """date, store_id, item_id for every store-item-day, sorted by date, store, item."""
    d, n, m = config.n_days, config.n_stores, config.n_items
    store_idx = np.tile(np.repeat(np.arange(n, dtype=np.uint32), m), d)
    item_idx = np.tile(np.arange(m, dtype=np.uint32), d * n)
    return pl.DataFrame(
        [
            _date_series(np.repeat(np.arange(d), n * m), config.start_date),
            store_ids.gather(store_idx).alias("store_id"),
            item_ids.gather(item_idx).alias("item_id"),
        ]
    )


def fact_frames(
    config: SimConfig,
    path: InventoryPath,
    *,
    keys: pl.DataFrame,
    demand: np.ndarray,
    price: np.ndarray,
    promo: np.ndarray,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The daily sales, inventory and truth frames."""
    n = config.n_stores
    units = path.sales.reshape(-1).astype(np.float64)
    price_rows = _panel(price, n)
    sales = keys.with_columns(
        pl.Series("units", units),
        pl.Series("price", price_rows),
        pl.Series("promo", _panel(promo, n).astype(np.int8)),
        pl.Series("revenue", np.round(units * price_rows, 2)),
    )
    on_hand = path.on_hand.reshape(-1).astype(np.float64)
    wanted = demand.reshape(-1).astype(np.float64)
    available = on_hand + units
    # Demand assumed spread evenly over the day: stock lasts available/demand of it.
    with np.errstate(divide="ignore", invalid="ignore"):
        short = np.where(wanted > available, HOURS_PER_DAY * (1.0 - available / wanted), 0.0)
    hours = np.where(available == 0, float(HOURS_PER_DAY), short)
    inventory = keys.with_columns(
        pl.Series("on_hand", on_hand),
        pl.Series("stockout_hours", hours),
        pl.Series("on_order", path.on_order.reshape(-1).astype(np.float64)),
        pl.Series("safety_stock", path.safety_stock.reshape(-1).astype(np.float64)),
    )
    lost = wanted - units
    truth = keys.with_columns(
        pl.Series("demand", wanted),
        pl.Series("lost_units", lost),
        pl.Series("censored", lost > 0),
    )
    return (
        sales.cast(pl.Schema(SALES.dtypes(sales.columns))),
        inventory.cast(pl.Schema(INVENTORY.dtypes(inventory.columns))),
        truth,
    )


def _movement_ids(n: int) -> pl.Expr:
    width = max(6, len(str(n)))
    return pl.concat_str(pl.lit("M"), (pl.int_range(1, n + 1).cast(pl.String).str.zfill(width)))


def movements_frame(
    config: SimConfig, path: InventoryPath, *, store_ids: pl.Series, item_ids: pl.Series
) -> pl.DataFrame:
    """Supplier receipts and store-to-store transfers, one row per document."""
    m = config.n_items
    r_day, r_series = np.nonzero(path.received)
    day = np.concatenate([r_day, path.transfer_day])
    item = np.concatenate([r_series % m, path.transfer_item]).astype(np.uint32)
    to_store = np.concatenate([r_series // m, path.transfer_to]).astype(np.uint32)
    n_receipts = r_day.size
    from_store = pl.Series(np.concatenate([np.zeros(n_receipts), path.transfer_from]).astype(np.uint32))
    qty = np.concatenate([path.received[r_day, r_series], path.transfer_qty]).astype(np.float64)
    is_receipt = np.arange(day.size) < n_receipts
    frame = pl.DataFrame(
        [
            _date_series(day, config.start_date),
            item_ids.gather(item).alias("item_id"),
            store_ids.gather(from_store).alias("from_store_id"),
            store_ids.gather(to_store).alias("to_store_id"),
            pl.Series("quantity", qty),
            pl.Series("kind", np.where(is_receipt, "receipt", "transfer")).cast(pl.String),
        ]
    )
    # Receipts come from outside the chain: no sending store.
    frame = frame.with_columns(
        pl.when(pl.col("kind") == "receipt").then(None).otherwise(pl.col("from_store_id")).alias("from_store_id")
    )
    return with_movement_ids(frame)


def with_movement_ids(frame: pl.DataFrame) -> pl.DataFrame:
    """Sort movements by date, item, kind and stores, then number them M000001, M000002, ..."""
    frame = frame.sort(["date", "item_id", "kind", "to_store_id", "from_store_id"], nulls_last=False)
    return frame.with_columns(_movement_ids(frame.height).alias("movement_id")).cast(pl.Schema(MOVEMENTS.dtypes()))


def exogenous_frame(
    config: SimConfig,
    rng: np.random.Generator,
    *,
    temperature: np.ndarray,
    region: np.ndarray,
    store_ids: pl.Series,
) -> pl.DataFrame:
    """Global CPI and fuel price rows plus per-store temperature rows (the store's region)."""
    d, n = config.n_days, config.n_stores
    cpi = 100.0 * np.exp(np.cumsum(rng.normal(0.03 / 365, 0.0008, size=d)))
    log_fuel = np.empty(d)
    log_fuel[0] = np.log(1.6)
    shocks = rng.normal(0.0, 0.012, size=d)
    for t in range(1, d):  # mean-reverting around 1.60 per litre
        log_fuel[t] = log_fuel[t - 1] + 0.01 * (np.log(1.6) - log_fuel[t - 1]) + shocks[t]
    days = np.arange(d)
    glob = pl.DataFrame(
        [
            _date_series(days, config.start_date),
            pl.Series("store_id", [None] * d, dtype=pl.String),
            pl.Series("temperature", [None] * d, dtype=pl.Float64),
            pl.Series("cpi", np.round(cpi, 3)),
            pl.Series("fuel_price", np.round(np.exp(log_fuel), 3)),
        ]
    )
    per_store = pl.DataFrame(
        [
            _date_series(np.repeat(days, n), config.start_date),
            store_ids.gather(np.tile(np.arange(n, dtype=np.uint32), d)).alias("store_id"),
            pl.Series("temperature", temperature[:, region].reshape(-1)),
            pl.Series("cpi", [None] * (d * n), dtype=pl.Float64),
            pl.Series("fuel_price", [None] * (d * n), dtype=pl.Float64),
        ]
    )
    frame = pl.concat([glob, per_store]).sort(["date", "store_id"], nulls_last=False)
    frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias("item_id"))
    return frame.select("date", "store_id", "item_id", *EXOGENOUS_COLUMNS).cast(
        pl.Schema(EXOGENOUS.dtypes(frame.columns))
    )
