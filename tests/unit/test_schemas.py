"""Row rules of the canonical tables: which apply, in which order (the order a quarantined row lists them)."""

from __future__ import annotations

import polars as pl

from shelfcast.schemas import MOVEMENTS, SALES, row_rule_exprs


def test_column_rules_in_order_for_the_present_columns() -> None:
    rules = row_rule_exprs(SALES, ["date", "units", "price", "promo"])
    assert [(r.name, r.column) for r in rules] == [
        ("missing_date", "date"),
        ("missing_units", "units"),
        ("non_finite_units", "units"),
        ("negative_units", "units"),
        ("non_finite_price", "price"),
        ("negative_price", "price"),
        ("negative_promo", "promo"),
        ("above_maximum_promo", "promo"),
    ]
    assert [r.detail for r in rules][-2:] == ["promo < 0", "promo > 1"]


def test_table_rules_follow_the_column_rules() -> None:
    rules = row_rule_exprs(MOVEMENTS, list(MOVEMENTS.column_names))
    assert [r.name for r in rules][-3:] == ["invalid_kind", "movement_without_store", "movement_to_itself"]
    frame = pl.DataFrame(
        {"from_store_id": ["a", None, "a"], "to_store_id": ["b", None, "a"], "kind": ["transfer", "sale", "receipt"]}
    )
    failing = {r.name: frame.select(r.failing.fill_null(False)).to_series().to_list() for r in rules[-3:]}
    assert failing == {
        "invalid_kind": [False, True, False],
        "movement_without_store": [False, True, False],
        "movement_to_itself": [False, False, True],
    }
