"""Non-canonical layouts of a simulation, as raw files a retailer might hand over.

- "branch-csv": six tables of a branch ERP export (stock movements, current
  stock, sales invoice lines, item master, employees, branches) with
  day-first dates, for testing ingestion of messy sources;
- "wide": one daily row per store and product with price, promotion, sales
  and end-of-day stock.

Pure: frames in, frames out; randomness (invoice splits, reserved stock,
employees) comes from the simulation's seed.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from shelfcast.data.simulator import SimResult

DAY_FIRST = "%d/%m/%Y"
DAY_FIRST_TIME = "%d/%m/%Y %H:%M"
BRANCH_CSV_TABLES = (
    "stock_movement",
    "stock_current",
    "sales_transactions",
    "item_master",
    "employees",
    "branches",
)
_LAYOUT_STREAM = 7_919  # keeps layout randomness apart from the simulation's own streams
_FIRST_NAMES = (
    "Ahmed", "Fatima", "Omar", "Layla", "Yousef", "Mariam", "Khalid", "Noura", "Hassan", "Sara",
    "Ali", "Huda", "Tariq", "Rania", "Sami", "Dina", "Faisal", "Amal", "Karim", "Salma",
)  # fmt: skip
_LAST_NAMES = (
    "Al-Harbi", "Haddad", "Nasser", "Khoury", "Al-Qahtani", "Mansour", "Saleh", "Barakat",
    "Al-Otaibi", "Darwish", "Hamdan", "Aziz", "Farouk", "Ibrahim", "Jaber", "Rahman",
)  # fmt: skip
_DEPARTMENTS = ("Store Management", "Cashier", "Warehouse", "Fresh Food", "Customer Service")


def _rng(result: SimResult) -> np.random.Generator:
    return np.random.default_rng([result.config.seed, _LAYOUT_STREAM])


def _names(result: SimResult) -> tuple[pl.DataFrame, pl.DataFrame]:
    stores = result.stores.select(pl.col("store_id"), pl.col("name").alias("store_name"))
    items = result.items.select(pl.col("item_id"), pl.col("name_en").alias("item_name"))
    return stores, items


def _sales_transactions(
    result: SimResult, rng: np.random.Generator, *, max_lines: int, stores: pl.DataFrame, items: pl.DataFrame
) -> pl.DataFrame:
    """Each store-item-day's units split into invoice lines that sum exactly to it."""
    sold = result.sales.filter(pl.col("units") > 0).select(
        "date", "store_id", "item_id", pl.col("units").cast(pl.Int64)
    )
    units = sold["units"].to_numpy()
    # Roughly 2.5 units per basket line, capped so fast movers stay readable.
    lines = np.minimum(np.minimum(units, 1 + rng.binomial(units - 1, 0.4)), max_lines)
    sold = sold.with_columns(pl.Series("n", lines), pl.Series("h", rng.random(units.size)))
    # Each store-day has a pool of invoices; an item's lines land on distinct ones.
    sold = sold.with_columns((pl.col("n").max().over("date", "store_id") * 3).alias("pool"))
    out = sold.with_columns(pl.int_ranges(0, pl.col("n")).alias("j")).explode("j")
    qty = pl.col("units") // pl.col("n") + (pl.col("j") < pl.col("units") % pl.col("n")).cast(pl.Int64)
    invoice_idx = ((pl.col("h") * pl.col("pool")).cast(pl.Int64) + pl.col("j")) % pl.col("pool") + 1
    invoice = pl.concat_str(
        pl.lit("INV-"),
        pl.col("store_id"),
        pl.lit("-"),
        pl.col("date").dt.strftime("%Y%m%d"),
        pl.lit("-"),
        invoice_idx.cast(pl.String).str.zfill(4),
    )
    out = out.with_columns(qty.alias("QuantitySold"), invoice.alias("InvoiceNumber"))
    out = out.join(stores, on="store_id", how="left").join(items, on="item_id", how="left")
    return out.sort("date", "store_id", "InvoiceNumber", "item_id").select(
        pl.col("date").dt.strftime(DAY_FIRST).alias("Date"),
        pl.col("store_id").alias("BranchID"),
        pl.col("store_name").alias("BranchName"),
        "InvoiceNumber",
        pl.col("item_id").alias("ItemCode"),
        pl.col("item_name").alias("ItemName"),
        "QuantitySold",
    )


def _stock_current(
    result: SimResult, rng: np.random.Generator, *, stores: pl.DataFrame, items: pl.DataFrame
) -> pl.DataFrame:
    """The stock snapshot at the end of the last simulated day (period)."""
    last = result.inventory.filter(pl.col("date") == pl.col("date").max())
    current = last["on_hand"].cast(pl.Int64).to_numpy()
    reserved = np.minimum(rng.binomial(current, 0.03), 10)
    minutes = rng.integers(20 * 60, 23 * 60, size=last.height)
    stamp = pl.col("date").cast(pl.Datetime("us")) + pl.duration(minutes=pl.col("_minutes"))
    out = last.with_columns(pl.Series("_reserved", reserved), pl.Series("_minutes", minutes))
    out = out.join(stores, on="store_id", how="left").join(items, on="item_id", how="left")
    return out.sort("store_id", "item_id").select(
        pl.col("store_id").alias("BranchID"),
        pl.col("store_name").alias("BranchName"),
        pl.col("item_id").alias("ItemCode"),
        pl.col("item_name").alias("ItemName"),
        pl.col("on_hand").cast(pl.Int64).alias("CurrentQuantity"),
        pl.col("_reserved").cast(pl.Int64).alias("ReservedQuantity"),
        pl.col("safety_stock").cast(pl.Int64).alias("SafetyStockLevel"),
        stamp.dt.strftime(DAY_FIRST_TIME).alias("LastUpdatedAt"),
    )


def _stock_movement(result: SimResult, *, stores: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """Receipts (from "Supplier") and transfers, one line per movement document."""
    from_names = stores.rename({"store_id": "from_store_id", "store_name": "from_name"})
    to_names = stores.rename({"store_id": "to_store_id", "store_name": "to_name"})
    out = (
        result.movements.join(from_names, on="from_store_id", how="left")
        .join(to_names, on="to_store_id", how="left")
        .join(items, on="item_id", how="left")
    )
    return out.sort("movement_id").select(
        pl.col("movement_id").alias("MovementID"),
        pl.col("date").dt.strftime(DAY_FIRST).alias("Date"),
        pl.col("from_store_id").alias("FromBranchID"),
        pl.col("from_name").fill_null("Supplier").alias("FromBranchName"),
        pl.col("to_store_id").alias("ToBranchID"),
        pl.col("to_name").alias("ToBranchName"),
        pl.col("item_id").alias("ItemCode"),
        pl.col("item_name").alias("ItemName"),
        pl.col("quantity").cast(pl.Int64).alias("QuantityMoved"),
    )


def _employees(result: SimResult, rng: np.random.Generator) -> pl.DataFrame:
    """A few fictitious employees per branch."""
    branch_ids = result.stores["store_id"].to_list()
    per_branch = rng.integers(3, 7, size=len(branch_ids))
    branch = np.repeat(np.arange(len(branch_ids)), per_branch)
    first = rng.integers(0, len(_FIRST_NAMES), size=branch.size)
    last = rng.integers(0, len(_LAST_NAMES), size=branch.size)
    # The first employee of each branch manages it.
    starts = np.concatenate([[0], np.cumsum(per_branch)[:-1]])
    dept = rng.integers(1, len(_DEPARTMENTS), size=branch.size)
    dept[starts] = 0
    return pl.DataFrame(
        {
            "EmployeeID": [f"E{k:05d}" for k in range(1, branch.size + 1)],
            "FullName": [f"{_FIRST_NAMES[f]} {_LAST_NAMES[s]}" for f, s in zip(first, last, strict=True)],
            "Department": [_DEPARTMENTS[d] for d in dept],
            "BranchID": [branch_ids[b] for b in branch],
        }
    )


def branch_csv_tables(result: SimResult, *, max_invoice_lines: int = 20) -> dict[str, pl.DataFrame]:
    """The six tables of the branch-csv layout, keyed by file stem, with day-first dates.

    Args:
        result: The simulation.
        max_invoice_lines: Most invoice lines one store-item-day is split into.
    """
    if max_invoice_lines < 1:
        raise ValueError(f"`max_invoice_lines` must be a positive integer, got {max_invoice_lines}")
    rng = _rng(result)
    stores, items = _names(result)
    return {
        "stock_movement": _stock_movement(result, stores=stores, items=items),
        "stock_current": _stock_current(result, rng, stores=stores, items=items),
        "sales_transactions": _sales_transactions(result, rng, max_lines=max_invoice_lines, stores=stores, items=items),
        "item_master": result.items.select(
            pl.col("item_id").alias("ItemCode"),
            pl.col("name_ar").alias("ArabicName"),
            pl.col("name_en").alias("EnglishName"),
            pl.col("brand").alias("BrandOnBox"),
        ),
        "employees": _employees(result, rng),
        "branches": result.stores.select(
            pl.col("store_id").alias("BranchID"),
            pl.col("name").alias("BranchName"),
            pl.col("opening_date").dt.strftime(DAY_FIRST).alias("OpeningDate"),
        ),
    }


def wide_table(result: SimResult) -> pl.DataFrame:
    """One row per store-product-day (period): price, promo, sales and end-of-day stock."""
    keys = ["date", "store_id", "item_id"]
    stock = result.inventory.select(*keys, "on_hand")
    out = result.sales.join(stock, on=keys, how="left", maintain_order="left")
    return out.select(
        pl.col("store_id").alias("store"),
        pl.col("item_id").alias("product"),
        "date",
        "price",
        "promo",
        pl.col("units").cast(pl.Int64).alias("daily_sales"),
        pl.col("on_hand").cast(pl.Int64).alias("inventory"),
    )
