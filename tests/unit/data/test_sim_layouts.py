"""Tests of the branch-csv and wide layouts of a simulation."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from shelfcast.data.sim_layouts import BRANCH_CSV_TABLES, branch_csv_tables, wide_table
from shelfcast.data.simulator import SimConfig, SimResult, simulate

CONFIG = SimConfig(seed=5, n_stores=4, n_items=12, n_days=120)
DAY_FIRST = r"^\d{2}/\d{2}/\d{4}$"


@pytest.fixture(scope="module")
def result() -> SimResult:
    return simulate(CONFIG)


@pytest.fixture(scope="module")
def tables(result: SimResult) -> dict[str, pl.DataFrame]:
    return branch_csv_tables(result)


def test_branch_csv_has_the_six_tables_and_their_columns(tables: dict[str, pl.DataFrame]) -> None:
    assert tuple(tables) == BRANCH_CSV_TABLES
    assert tables["stock_movement"].columns == [
        "MovementID", "Date", "FromBranchID", "FromBranchName", "ToBranchID", "ToBranchName",
        "ItemCode", "ItemName", "QuantityMoved",
    ]  # fmt: skip
    assert tables["stock_current"].columns == [
        "BranchID", "BranchName", "ItemCode", "ItemName", "CurrentQuantity", "ReservedQuantity",
        "SafetyStockLevel", "LastUpdatedAt",
    ]  # fmt: skip
    assert tables["sales_transactions"].columns == [
        "Date", "BranchID", "BranchName", "InvoiceNumber", "ItemCode", "ItemName", "QuantitySold",
    ]  # fmt: skip
    assert tables["item_master"].columns == ["ItemCode", "ArabicName", "EnglishName", "BrandOnBox"]
    assert tables["employees"].columns == ["EmployeeID", "FullName", "Department", "BranchID"]
    assert tables["branches"].columns == ["BranchID", "BranchName", "OpeningDate"]


def test_invoice_lines_sum_to_daily_sales(result: SimResult, tables: dict[str, pl.DataFrame]) -> None:
    lines = tables["sales_transactions"]
    assert (lines["QuantitySold"] > 0).all()
    per_day = lines.group_by(
        pl.col("Date").str.to_date("%d/%m/%Y").alias("date"),
        pl.col("BranchID").alias("store_id"),
        pl.col("ItemCode").alias("item_id"),
    ).agg(pl.col("QuantitySold").sum().cast(pl.Float64).alias("units"))
    sold = result.sales.filter(pl.col("units") > 0).select("date", "store_id", "item_id", "units")
    assert per_day.sort("date", "store_id", "item_id").equals(sold.sort("date", "store_id", "item_id"))


def test_an_item_appears_once_per_invoice(tables: dict[str, pl.DataFrame]) -> None:
    lines = tables["sales_transactions"]
    assert not lines.select("InvoiceNumber", "ItemCode").is_duplicated().any()
    assert lines["InvoiceNumber"].n_unique() < lines.height  # invoices hold several items


def test_snapshot_equals_the_last_days_stock(result: SimResult, tables: dict[str, pl.DataFrame]) -> None:
    snap = tables["stock_current"]
    last = result.inventory.filter(pl.col("date") == CONFIG.end_date).sort("store_id", "item_id")
    assert snap.height == CONFIG.n_series
    assert snap["CurrentQuantity"].cast(pl.Float64).equals(last["on_hand"], check_names=False)
    assert snap["SafetyStockLevel"].cast(pl.Float64).equals(last["safety_stock"], check_names=False)
    assert (snap["ReservedQuantity"] >= 0).all()
    assert (snap["ReservedQuantity"] <= snap["CurrentQuantity"]).all()
    stamps = snap["LastUpdatedAt"].str.to_datetime("%d/%m/%Y %H:%M")
    assert (stamps.dt.date() == CONFIG.end_date).all()


def test_dates_are_day_first(tables: dict[str, pl.DataFrame]) -> None:
    for name, column in [("stock_movement", "Date"), ("sales_transactions", "Date"), ("branches", "OpeningDate")]:
        values = tables[name][column]
        assert values.str.contains(DAY_FIRST).all(), name
        assert values.str.to_date("%d/%m/%Y").is_not_null().all(), name
    # 03/01/2022 is the first simulated day: 3 January, not 1 March.
    assert tables["sales_transactions"]["Date"][0] == CONFIG.start_date.strftime("%d/%m/%Y") == "03/01/2022"


def test_movements_keep_ids_and_supplier_receipts(result: SimResult, tables: dict[str, pl.DataFrame]) -> None:
    moves = tables["stock_movement"]
    assert moves.height == result.movements.height
    receipts = moves.filter(pl.col("FromBranchID").is_null())
    assert (receipts["FromBranchName"] == "Supplier").all()
    assert moves["QuantityMoved"].sum() == result.movements["quantity"].sum()
    assert moves["MovementID"].is_unique().all()


def test_master_tables(result: SimResult, tables: dict[str, pl.DataFrame]) -> None:
    assert tables["item_master"]["ItemCode"].equals(result.items["item_id"], check_names=False)
    branches = tables["branches"]
    assert branches["BranchID"].equals(result.stores["store_id"], check_names=False)
    opening = branches["OpeningDate"].str.to_date("%d/%m/%Y")
    assert opening.equals(result.stores["opening_date"], check_names=False)
    employees = tables["employees"]
    assert set(employees["BranchID"]) == set(result.stores["store_id"])
    assert employees["EmployeeID"].is_unique().all()


def test_layouts_are_deterministic(result: SimResult, tables: dict[str, pl.DataFrame]) -> None:
    again = branch_csv_tables(simulate(CONFIG))
    for name, frame in tables.items():
        assert frame.equals(again[name]), name


def test_wide_has_one_row_per_store_item_day(result: SimResult) -> None:
    wide = wide_table(result)
    assert wide.columns == ["store", "product", "date", "price", "promo", "daily_sales", "inventory"]
    assert wide.height == CONFIG.n_series * CONFIG.n_days
    assert not wide.select("store", "product", "date").is_duplicated().any()
    assert wide["date"].min() == CONFIG.start_date and wide["date"].max() == CONFIG.end_date
    joined = wide.join(
        result.inventory.select(
            pl.col("store_id").alias("store"), pl.col("item_id").alias("product"), "date", "on_hand"
        ),
        on=["store", "product", "date"],
    )
    assert (joined["inventory"].cast(pl.Float64) == joined["on_hand"]).all()
    assert wide["daily_sales"].sum() == result.sales["units"].sum()


def test_max_invoice_lines_is_checked(result: SimResult) -> None:
    with pytest.raises(ValueError, match="max_invoice_lines"):
        branch_csv_tables(result, max_invoice_lines=0)


def test_weekly_results_have_layouts_too() -> None:
    weekly = simulate(CONFIG.model_copy(update={"freq": "W"}))
    wide = wide_table(weekly)
    assert (wide["date"].dt.weekday() == 1).all()
    lines = branch_csv_tables(weekly)["sales_transactions"]
    assert lines["QuantitySold"].sum() == weekly.sales["units"].sum()
    assert lines["Date"].str.to_date("%d/%m/%Y").min() >= dt.date(2021, 12, 27)
