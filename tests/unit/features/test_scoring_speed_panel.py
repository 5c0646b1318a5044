"""The panel places rows by arithmetic (`_placed`) instead of joins (`_joined`): the frames must be identical."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features import panel as panel_module
from shelfcast.features.panel import INVENTORY_COLUMNS, _join_exogenous, _joined, _placed, build_panel


def _awkward(freq: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Sales and stock with missing rows, a late and a stopping series, and stock rows the grid must ignore."""
    result = simulate(SimConfig(n_stores=3, n_items=6, n_days=200, seed=5, freq=freq))  # type: ignore[arg-type]
    sales, stock = result.sales, result.inventory
    items = sales["item_id"].unique().sort()
    start = sales["date"].min()
    assert isinstance(start, dt.date)
    late = (pl.col("item_id") == items[0]) & (pl.col("date") < start + dt.timedelta(days=70))
    stops = (pl.col("item_id") == items[1]) & (pl.col("date") > start + dt.timedelta(days=120))
    # Only positive sales recorded for one item: its last sale comes before the end, its stock runs on.
    sparse = (pl.col("item_id") == items[2]) & (pl.col("units") == 0)
    sales = sales.filter(~late, ~stops, ~sparse).filter((pl.col("units") > 0) | (pl.int_range(pl.len()) % 4 != 0))
    stock = stock.filter(~late, ~(stops & (pl.col("store_id") == "S001")))
    stranger = stock.head(5).with_columns(pl.lit("S999").alias("store_id"))
    # Known ids never sold together (the last store, the last two items), yet stocked: the grid ignores them.
    unsold = (pl.col("store_id") == "S003") & pl.col("item_id").is_in(items[-2:].implode())
    return sales.filter(~unsold), pl.concat([stock, stranger])


@pytest.mark.parametrize(("freq", "dense"), [("D", True), ("W", True), ("D", False)])
def test_placing_rows_gives_the_joined_frame(freq: str, dense: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if not dense:
        monkeypatch.setattr(panel_module, "_DENSE", 0)  # look codes up by binary search
    sales, stock = _awkward(freq)
    step, days = ("1w", 7) if freq == "W" else ("1d", 1)
    columns = [c for c in INVENTORY_COLUMNS if c in stock.columns]
    placed = _placed(sales, stock, columns, days)
    assert placed is not None
    assert_frame_equal(placed.frame, _joined(sales, stock, columns, step), check_exact=True)
    no_stock = _placed(sales, None, [], days)
    assert no_stock is not None
    assert_frame_equal(no_stock.frame, _joined(sales, None, [], step), check_exact=True)


def test_rows_that_are_not_plain_are_left_to_the_joins() -> None:
    sales, stock = _awkward("D")
    columns = [c for c in INVENTORY_COLUMNS if c in stock.columns]
    twice = pl.concat([sales, sales.head(1)])
    assert _placed(twice, stock, columns, 1) is None
    assert _placed(sales, pl.concat([stock, stock.head(1)]), columns, 1) is None
    assert _placed(sales.with_columns(pl.col("store_id").cast(pl.Categorical)), stock, columns, 1) is None
    undated = stock.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise("date").alias("date"))
    assert _placed(sales, undated, columns, 1) is None
    # build_panel still builds them, through the joins.
    panel = build_panel({"sales": twice, "inventory": stock})
    assert panel.frame.height == _joined(twice, stock, columns, "1d").height


def test_the_panel_is_the_one_the_joins_give() -> None:
    """Attributes come by rank instead of a join: the same frame, including an item missing from the master."""
    result = simulate(SimConfig(n_stores=3, n_items=6, n_days=120, seed=6))
    sales, stock = _awkward("D")
    items = result.items.filter(pl.col("item_id") != sales["item_id"].max())
    tables = {
        "sales": sales,
        "inventory": stock,
        "items": items,
        "stores": result.stores,
        "exogenous": result.exogenous,
    }
    columns = [c for c in INVENTORY_COLUMNS if c in stock.columns]
    frame = _joined(sales, stock, columns, "1d")
    frame = frame.with_columns(pl.col("y").fill_null(0.0), pl.col("observed").fill_null(False))
    covariates = [c for c in result.exogenous.columns if c not in ("date", "store_id", "item_id")]
    frame = _join_exogenous(frame, result.exogenous, covariates)
    for attrs, key in ((items, "item_id"), (result.stores, "store_id")):
        extra = [c for c in attrs.columns if c != key and c not in frame.columns]
        frame = frame.join(attrs.select(key, *extra), on=key, how="left")
    panel = build_panel(tables)  # type: ignore[arg-type]
    assert_frame_equal(panel.frame, frame.sort("store_id", "item_id", "date"), check_exact=True)
    # A master with an id twice duplicates that id's rows, as a join does.
    twice = pl.concat([items, items.head(1)])
    doubled = build_panel({**tables, "items": twice})  # type: ignore[arg-type]
    assert (
        doubled.frame.height == panel.frame.height + panel.frame.filter(pl.col("item_id") == items["item_id"][0]).height
    )
