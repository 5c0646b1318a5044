"""The panel's grid: where each series starts and ends."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from shelfcast.features import panel as panel_module
from shelfcast.features.labels import StockoutDefinition, stockout_labels
from shelfcast.features.panel import SERIES, build_panel
from shelfcast.models.baselines import naive

D0 = dt.date(2024, 1, 1)


def day(i: int) -> dt.date:
    return D0 + dt.timedelta(days=i - 1)


def rows(item: str, days: list[int], value: float) -> pl.DataFrame:
    return pl.DataFrame(
        {"date": [day(i) for i in days], "store_id": "S", "item_id": item, "units": value},
        schema_overrides={"units": pl.Float64},
    )


# A sells every day; B's last sale (an invoice line) is on day 5, ten days before the end.
SALES = pl.concat([rows("A", list(range(1, 16)), 3.0), rows("B", [1, 3, 5], 1.0)])


def spans(frame: pl.DataFrame) -> dict[str, tuple[dt.date, dt.date, int]]:
    grouped = frame.group_by(SERIES).agg(pl.col("date").min().alias("a"), pl.col("date").max().alias("b"), pl.len())
    return {r["item_id"]: (r["a"], r["b"], r["len"]) for r in grouped.iter_rows(named=True)}


def test_a_series_ends_at_its_last_sale_when_nothing_else_is_known() -> None:
    panel = build_panel({"sales": SALES})
    assert spans(panel.frame) == {"A": (day(1), day(15), 15), "B": (day(1), day(5), 5)}


def test_a_stocked_series_runs_to_the_end_of_the_sales_with_zero_sales() -> None:
    # Stock is counted every day up to day 17, two days past the last sales date.
    stock = pl.concat(rows(item, list(range(1, 18)), 4.0) for item in ("A", "B")).rename({"units": "on_hand"})
    panel = build_panel({"sales": SALES, "inventory": stock})

    assert spans(panel.frame) == {"A": (day(1), day(15), 15), "B": (day(1), day(15), 15)}
    b = panel.frame.filter(pl.col("item_id") == "B", pl.col("date") > day(5))
    assert b["y"].to_list() == [0.0] * 10 and not b["observed"].any() and b["on_hand"].to_list() == [4.0] * 10
    # At a cutoff after B's last sale, B still has a row: it gets a stockout label and a fresh naive forecast.
    cutoff = day(8)
    labels = stockout_labels(panel, origins=[cutoff], definition=StockoutDefinition(window=3))
    assert set(labels["item_id"]) == {"A", "B"}
    forecast = naive(panel, cutoff=cutoff, horizon=2).filter(pl.col("item_id") == "B")
    assert forecast["forecast"].to_list() == [0.0, 0.0]


@pytest.mark.parametrize("placed", [True, False])
def test_one_series_rows_with_the_sales_end_give_its_rows_of_the_whole_panel(
    placed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`end` is the one thing a series' panel takes from the others (how `jobs.explain` reads one series)."""
    if not placed:  # the joins' path gives the same rows
        monkeypatch.setattr(panel_module, "_placed", lambda *args, **kwargs: None)
    stock = pl.concat(rows(item, list(range(1, 18)), 4.0) for item in ("A", "B")).rename({"units": "on_hand"})
    whole = build_panel({"sales": SALES, "inventory": stock}).frame.filter(pl.col("item_id") == "B")
    only_b = {"sales": SALES.filter(pl.col("item_id") == "B"), "inventory": stock.filter(pl.col("item_id") == "B")}
    assert build_panel(only_b, end=day(15)).frame.equals(whole)
    assert build_panel(only_b).frame.height == 5  # without it, B would end at its own last sale
