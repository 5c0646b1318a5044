from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from shelfcast.data.validate import DateBounds, clean_rows, flag_rows, quarantine_rows
from shelfcast.schemas import EXOGENOUS, INVENTORY, MOVEMENTS, SALES, TableSchema

BOUNDS = DateBounds(dt.date(1990, 1, 1), dt.date(2100, 12, 31), dt.date(2026, 11, 24))


def _flag(rows: dict[str, list[object]], schema: TableSchema = SALES) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = pl.DataFrame(rows).with_row_index("_line", offset=2).with_columns(pl.col("_line").cast(pl.Int64))
    flagged = flag_rows(frame.lazy(), schema, date_formats={"date": "%Y-%m-%d"}, bounds=BOUNDS)
    return clean_rows(flagged).collect(), quarantine_rows(flagged, schema.name, "f.csv").collect()


def test_more_than_63_rules_use_several_masks() -> None:
    extra = {f"c{i}": ["x" if i == 70 else "1"] for i in range(80)}
    frame = pl.DataFrame({"date": ["2024-01-01"], "store_id": ["S1"]} | extra).with_row_index("_line", offset=2)
    flagged = flag_rows(frame.lazy(), EXOGENOUS, date_formats={"date": "%Y-%m-%d"}, bounds=BOUNDS)
    assert len(flagged.masks) > 1
    quarantine = quarantine_rows(flagged, "exogenous", "f.csv").collect()
    assert quarantine["rule"].to_list() == ["invalid_c70"]


def _sales(**overrides: list[object]) -> dict[str, list[object]]:
    rows: dict[str, list[object]] = {"date": ["2024-01-01"], "store_id": ["S1"], "item_id": ["I1"], "units": ["3"]}
    rows.update(overrides)
    return rows


@pytest.mark.parametrize(
    ("overrides", "rule", "detail"),
    [
        ({"units": ["-2"]}, "negative_units", "units < 0 (got -2)"),
        ({"units": ["abc"]}, "invalid_units", "units is not a valid number (got abc)"),
        ({"units": [""]}, "missing_units", "units is empty"),
        ({"units": ["nan"]}, "non_finite_units", "units is NaN or infinite (got nan)"),
        ({"date": ["2024-02-30"]}, "invalid_date", "date is not a valid date (got 2024-02-30)"),
        ({"date": ["1970-01-01"]}, "date_out_of_range", "date outside 1990-01-01..2026-11-24 (got 1970-01-01)"),
        ({"date": ["2027-06-01"]}, "date_out_of_range", "date outside 1990-01-01..2026-11-24 (got 2027-06-01)"),
        ({"store_id": ["  "]}, "missing_store_id", "store_id is empty"),
        ({"promo": ["2"]}, "above_maximum_promo", "promo > 1 (got 2)"),
        ({"promo": ["0.5"]}, "invalid_promo", "promo is not a valid number (got 0.5)"),
        ({"price": ["-1"]}, "negative_price", "price < 0 (got -1)"),
    ],
)
def test_each_rule_quarantines_with_its_reason(overrides: dict[str, list[object]], rule: str, detail: str) -> None:
    clean, quarantine = _flag(_sales(**overrides))
    assert clean.height == 0
    assert quarantine.select("source", "line", "table", "rule", "detail").row(0) == ("f.csv", 2, "sales", rule, detail)


def test_clean_rows_are_typed_and_trimmed() -> None:
    clean, quarantine = _flag(_sales(units=[" 3.5 "], promo=["yes"], store_id=[" S1 "]))
    assert quarantine.height == 0
    assert clean.row(0, named=True) == {
        "_line": 2,
        "date": dt.date(2024, 1, 1),
        "store_id": "S1",
        "item_id": "I1",
        "units": 3.5,
        "promo": 1,
    }
    assert clean.schema["promo"] == pl.Int8


def test_every_broken_rule_is_listed_and_raw_values_are_kept() -> None:
    _, quarantine = _flag(_sales(units=["-1"], item_id=[""]))
    row = quarantine.row(0, named=True)
    assert row["rule"] == "missing_item_id;negative_units"
    assert json.loads(row["raw"]) == {"date": "2024-01-01", "store_id": "S1", "item_id": "", "units": "-1"}


def test_inventory_rules() -> None:
    base = {"date": ["2024-01-01"] * 3, "store_id": ["S1"] * 3, "item_id": ["I1", "I2", "I3"]}
    rows = base | {"on_hand": ["-1", "4", "2"], "stockout_hours": ["0", "25", "3"]}
    clean, quarantine = _flag(rows, INVENTORY)
    assert quarantine["rule"].to_list() == ["negative_on_hand", "above_maximum_stockout_hours"]
    assert clean["item_id"].to_list() == ["I3"]


def test_hourly_flags_must_be_24_zeros_or_ones() -> None:
    rows = {
        "date": ["2024-01-01"] * 4,
        "store_id": ["S1"] * 4,
        "item_id": ["I1", "I2", "I3", "I4"],
        "stockout_hours": [1.0, 1.0, 1.0, 1.0],
        "hourly_stockout": [[0] * 23 + [1], [0] * 5, [2] * 24, [None] + [0] * 23],
    }
    frame = pl.DataFrame(rows, schema_overrides={"hourly_stockout": pl.List(pl.Int64)})
    clean, quarantine = _flag(frame.to_dict(as_series=False), INVENTORY)
    assert clean["item_id"].to_list() == ["I1"]
    assert quarantine["rule"].to_list() == ["invalid_hourly_stockout"] * 3


def test_movement_rules_and_missing_scope_columns_are_added() -> None:
    rows = {
        "date": ["2024-01-01"] * 3,
        "item_id": ["I1"] * 3,
        "from_store_id": ["", "S1", "S2"],
        "to_store_id": ["", "S1", "S1"],
        "quantity": ["1", "1", "1"],
        "kind": ["transfer", "transfer", "gift"],
    }
    clean, quarantine = _flag(rows, MOVEMENTS)
    assert quarantine["rule"].to_list() == ["movement_without_store", "movement_to_itself", "invalid_kind"]
    assert clean.height == 0
    assert "movement_id" in clean.columns  # scope column added as null


def test_rows_with_more_fields_than_the_header_are_quarantined() -> None:
    clean, quarantine = _flag(_sales(__extra_0=["9"]))
    assert clean.height == 0
    assert quarantine.row(0, named=True)["detail"] == "row has more fields than the header (extra: 9)"
