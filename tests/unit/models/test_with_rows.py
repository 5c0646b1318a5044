"""Live days joined to the lake's tables: a row replaces the one with its key, others are kept, in key order."""

from __future__ import annotations

import datetime as dt

import polars as pl

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.models.data import model_data, with_rows
from shelfcast.schemas import SALES, replace_rows

D = dt.date(2024, 1, 1)


def test_a_row_replaces_the_one_with_its_key_and_new_keys_are_added() -> None:
    old = pl.DataFrame({"date": [D, D], "store_id": ["s", "s"], "item_id": ["a", "b"], "units": [1.0, 2.0]})
    new = pl.DataFrame({"item_id": ["b", "c"], "units": [5.0, 7.0], "date": [D, D], "store_id": ["s", "s"]})
    merged = replace_rows(SALES, old, new)
    assert merged.columns == ["date", "store_id", "item_id", "units"]
    assert merged.rows() == [(D, "s", "a", 1.0), (D, "s", "b", 5.0), (D, "s", "c", 7.0)]
    assert replace_rows(SALES, None, new)["item_id"].to_list() == ["b", "c"]


def test_tables_with_their_own_later_days_give_the_same_panel() -> None:
    """The lake up to day T plus days T+1.. as extra rows builds the panel the whole lake builds."""
    tables = simulate(SimConfig(n_stores=2, n_items=3, n_days=90, seed=4)).tables()
    cut = tables["sales"]["date"].max() - dt.timedelta(days=5)  # type: ignore[operator]
    early = {t: f.filter(pl.col("date") <= cut) if t in ("sales", "inventory") else f for t, f in tables.items()}
    late = {t: tables[t].filter(pl.col("date") > cut) for t in ("sales", "inventory")}  # type: ignore[index]
    joined = model_data(with_rows(early, late), freq="D")  # type: ignore[arg-type]
    whole = model_data(tables, freq="D")  # type: ignore[arg-type]
    assert joined.panel.frame.equals(whole.panel.frame)
    assert with_rows(early, {"sales": late["sales"].clear()})["sales"].height == early["sales"].height  # type: ignore[index]
