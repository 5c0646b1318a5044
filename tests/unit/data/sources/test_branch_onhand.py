from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from shelfcast.data.sources.branch_onhand import daily_net, reconstruct_on_hand
from shelfcast.schemas import INVENTORY, MOVEMENTS, SALES

D = [dt.date(2024, 3, d) for d in range(1, 6)]
KEYS = ["store_id", "item_id", "date"]


def _snapshot(rows: list[tuple[dt.date, str, str, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=INVENTORY.dtypes(["date", "store_id", "item_id", "on_hand"]), orient="row")


def _sales(rows: list[tuple[dt.date, str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SALES.dtypes(["date", "store_id", "item_id", "units"]), orient="row")


def _moves(rows: list[tuple[dt.date, str, str | None, str | None, float, str]]) -> pl.DataFrame:
    cols = ["date", "item_id", "from_store_id", "to_store_id", "quantity", "kind"]
    return pl.DataFrame(rows, schema=MOVEMENTS.dtypes(cols), orient="row")


def _on_hand(frame: pl.DataFrame, store: str, item: str) -> list[float]:
    return frame.filter(store_id=store, item_id=item).sort("date")["on_hand"].to_list()


SALES_ROWS = [(D[0], "A", "x", 3.0), (D[1], "A", "x", 4.0), (D[2], "A", "x", 2.0), (D[2], "B", "y", 2.0)]
MOVE_ROWS: list[tuple[dt.date, str, str | None, str | None, float, str]] = [
    (D[0], "x", None, "A", 10.0, "receipt"),
    (D[1], "x", "A", "B", 3.0, "transfer"),
    (D[2], "x", "B", None, 1.0, "adjustment"),
]


def test_backwards_and_forwards_from_the_snapshot() -> None:
    snapshot = _snapshot([(D[1], "A", "x", 5.0), (D[1], "B", "x", 3.0), (D[1], "B", "y", 6.0)])
    out = reconstruct_on_hand(snapshot, _sales(SALES_ROWS), _moves(MOVE_ROWS))
    # A/x: net = +7, -7, -2; B/x: 0, +3, -1; B/y: 0, 0, -2 (snapshot at the end of day 2).
    assert _on_hand(out.history, "A", "x") == [12.0, 5.0, 3.0]
    assert _on_hand(out.history, "B", "x") == [0.0, 3.0, 2.0]
    assert _on_hand(out.history, "B", "y") == [6.0, 6.0, 4.0]
    assert out.negative == 0
    assert out.without_snapshot.is_empty()


def test_balance_identity_holds_day_by_day() -> None:
    snapshot = _snapshot([(D[2], "A", "x", 4.0), (D[2], "B", "x", 2.0)])
    out = reconstruct_on_hand(snapshot, _sales(SALES_ROWS), _moves(MOVE_ROWS))
    net = daily_net(_sales(SALES_ROWS), _moves(MOVE_ROWS)).collect()
    joined = (
        out.history.sort(KEYS)
        .with_columns(pl.col("on_hand").shift(1).over("store_id", "item_id").alias("prev"))
        .join(net, on=["date", "store_id", "item_id"], how="left")
        .with_columns(pl.col("net").fill_null(0.0))
        .drop_nulls("prev")
    )
    assert (joined["prev"] + joined["net"] - joined["on_hand"]).abs().max() == 0.0


def test_snapshot_before_the_facts_runs_forwards_only() -> None:
    snapshot = _snapshot([(D[0], "A", "x", 0.0)])
    sales = _sales([(D[3], "A", "x", 1.0)])
    moves = _moves([(D[2], "x", None, "A", 5.0, "receipt")])
    out = reconstruct_on_hand(snapshot, sales, moves)
    assert out.history["date"].to_list() == D[:4]
    assert _on_hand(out.history, "A", "x") == [0.0, 0.0, 5.0, 4.0]


def test_series_without_facts_stay_flat_and_facts_without_snapshot_are_reported() -> None:
    snapshot = _snapshot([(D[0], "A", "x", 2.0), (D[0], "C", "z", 7.0), (D[0], "D", "w", None)])
    sales = _sales([(D[2], "A", "x", 1.0), (D[1], "B", "y", 1.0), (D[1], "D", "w", 1.0)])
    out = reconstruct_on_hand(snapshot, sales, _moves([]))
    assert _on_hand(out.history, "C", "z") == [7.0, 7.0, 7.0]
    # D/w has a snapshot row without an on-hand: it cannot anchor a history.
    assert out.without_snapshot.rows() == [("B", "y"), ("D", "w")]
    assert out.history.select("store_id", "item_id").unique().sort("store_id").rows() == [("A", "x"), ("C", "z")]


def test_latest_snapshot_row_anchors_the_series() -> None:
    snapshot = _snapshot([(D[0], "A", "x", 100.0), (D[2], "A", "x", 1.0)])
    out = reconstruct_on_hand(snapshot, _sales([(D[1], "A", "x", 2.0)]), _moves([]))
    assert _on_hand(out.history, "A", "x") == [3.0, 1.0, 1.0]


def test_disagreeing_files_give_negative_on_hand() -> None:
    snapshot = _snapshot([(D[0], "A", "x", 1.0)])
    out = reconstruct_on_hand(snapshot, _sales([(D[2], "A", "x", 5.0)]), _moves([]))
    assert _on_hand(out.history, "A", "x") == [1.0, 1.0, -4.0]
    assert out.negative == 1


@pytest.mark.parametrize("qty", [0.1, 0.3, 1 / 3])
def test_fractional_quantities_do_not_drift_below_zero(qty: float) -> None:
    n = 30
    days = [D[0] + dt.timedelta(days=i) for i in range(n)]
    snapshot = _snapshot([(days[-1], "A", "x", 0.0)])
    sales = _sales([(d, "A", "x", qty) for d in days])
    out = reconstruct_on_hand(snapshot, sales, _moves([]))
    on_hand = _on_hand(out.history, "A", "x")
    assert out.negative == 0
    assert on_hand[-1] == 0.0
    assert on_hand[0] == pytest.approx(qty * (n - 1))


def test_empty_snapshot_gives_empty_history() -> None:
    out = reconstruct_on_hand(_snapshot([]), _sales(SALES_ROWS), _moves(MOVE_ROWS))
    assert out.history.is_empty()
    assert out.without_snapshot.height == 3
