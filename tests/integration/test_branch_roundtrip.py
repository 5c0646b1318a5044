"""Simulate a chain, write it as a branch-csv export, ingest it: the canonical tables come back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from shelfcast.data.simulator import SimConfig
from shelfcast.data.sources.branch_onhand import daily_net
from shelfcast.io.lake import Lake
from shelfcast.jobs.ingest import IngestReport
from shelfcast.jobs.simulate import run_simulate

pytestmark = pytest.mark.integration
KEYS = ["date", "store_id", "item_id"]
CONFIG = SimConfig(seed=11, n_stores=3, n_items=10, n_days=60)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    run_simulate(CONFIG, out, layouts=("canonical", "branch-csv"))
    return out


@pytest.fixture
def ingested(simulated: Path, ingest: Callable[..., IngestReport], workspace: Path) -> tuple[IngestReport, Lake]:
    return ingest(simulated / "branch-csv", "branch-csv"), Lake(workspace)


def canonical(simulated: Path, table: str) -> pl.DataFrame:
    return pl.read_parquet(simulated / "canonical" / f"{table}.parquet")


def test_simulator_keeps_the_balance_identity(simulated: Path) -> None:
    inv = canonical(simulated, "inventory").sort("store_id", "item_id", "date")
    net = daily_net(canonical(simulated, "sales"), canonical(simulated, "movements")).collect()
    check = (
        inv.with_columns(pl.col("on_hand").shift(1).over("store_id", "item_id").alias("prev"))
        .join(net, on=KEYS, how="left")
        .with_columns(pl.col("net").fill_null(0.0))
        .drop_nulls("prev")
        .filter(pl.col("prev") + pl.col("net") != pl.col("on_hand"))
    )
    assert check.is_empty(), f"on_hand(d) != on_hand(d-1) + net(d) on {check.height} rows:\n{check.head()}"


def test_every_row_is_accounted_for_and_none_quarantined(ingested: tuple[IngestReport, Lake]) -> None:
    report, _ = ingested
    assert all(p.read == p.kept + p.quarantined + p.merged for p in report.parts)
    assert report.quarantine_by_rule == {}
    assert sum(p.read for p in report.parts if p.derived) == CONFIG.n_series * (CONFIG.n_days - 1)


def test_sales_come_back(simulated: Path, ingested: tuple[IngestReport, Lake]) -> None:
    # Days without sales have no invoice lines: the layout can only express the others.
    expected = canonical(simulated, "sales").filter(pl.col("units") > 0).select(*KEYS, "units").sort(KEYS)
    assert_frame_equal(ingested[1].read("sales").sort(KEYS), expected)


def test_movements_come_back(simulated: Path, ingested: tuple[IngestReport, Lake]) -> None:
    expected = canonical(simulated, "movements").sort("movement_id")
    assert_frame_equal(ingested[1].read("movements").select(expected.columns).sort("movement_id"), expected)


def test_on_hand_of_every_day_comes_back(simulated: Path, ingested: tuple[IngestReport, Lake]) -> None:
    expected = canonical(simulated, "inventory").select(*KEYS, "on_hand", "safety_stock").sort(KEYS)
    got = ingested[1].read("inventory").sort(KEYS)
    assert got.height == CONFIG.n_days * CONFIG.n_series
    assert_frame_equal(got.select(*KEYS, "on_hand"), expected.select(*KEYS, "on_hand"))
    last = CONFIG.end_date
    assert_frame_equal(
        got.filter(pl.col("date") == last).select(*KEYS, "safety_stock"),
        expected.filter(pl.col("date") == last).select(*KEYS, "safety_stock"),
    )


def test_masters_come_back(simulated: Path, ingested: tuple[IngestReport, Lake]) -> None:
    lake = ingested[1]
    items = canonical(simulated, "items").select("item_id", "name_ar", "name_en", "brand").sort("item_id")
    assert_frame_equal(lake.read("items").select(items.columns).sort("item_id"), items)
    stores = canonical(simulated, "stores").select("store_id", "name", "opening_date").sort("store_id")
    assert_frame_equal(lake.read("stores").select(stores.columns).sort("store_id"), stores)
