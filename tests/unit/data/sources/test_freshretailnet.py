from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from shelfcast.data.sources.freshretailnet import FreshRetailNetSource
from shelfcast.errors import InputFileError
from shelfcast.io.lake import QUARANTINE, Lake
from shelfcast.jobs.ingest import IngestReport

Ingest = Callable[..., IngestReport]
D1, D2 = dt.date(2024, 3, 28), dt.date(2024, 3, 29)
OUT_9_TO_12 = [0] * 9 + [1] * 3 + [0] * 12
ALL_OUT = [1] * 24
NONE_OUT = [0] * 24
BAD_FLAGS = [2] + [0] * 23


def _daily(flags: list[list[int]] | None = None) -> pl.DataFrame:
    """Two stores x two products x two days, shaped like FreshRetailNet's train split."""
    n = 8
    stores, products, days = [0, 0, 0, 0, 2, 2, 2, 2], [10, 10, 11, 11] * 2, [D1, D2] * 4
    flags = flags or [OUT_9_TO_12, NONE_OUT, ALL_OUT, NONE_OUT, NONE_OUT, OUT_9_TO_12, NONE_OUT, ALL_OUT]
    return pl.DataFrame(
        {
            "city_id": [0] * n,
            "store_id": stores,
            "management_group_id": [1] * n,
            "first_category_id": [5] * n,
            "second_category_id": [50] * n,
            "third_category_id": [p * 10 for p in products],
            "product_id": products,
            "dt": days,
            "sale_amount": [0.5, 1.25, 0.0, 2.0, 0.1, 0.2, 0.3, 0.0],
            "hours_sale": [[0.1] * 24] * n,
            "stock_hours": [sum(f) for f in flags],
            "hours_stock_status": flags,
            "discount": [1.0, 0.9, 1.0, 1.0, 0.8, 1.0, 1.0, 1.0],
            "holiday_flag": [0, 0, 0, 0, 0, 0, 0, 0],
            "activity_flag": [0, 1, 0, 0, 1, 0, 0, 0],
            "precpt": [1.7, 3.0] * 4,
            "avg_temperature": [15.5, 15.1] * 4,
            "avg_humidity": [73.5, 76.6] * 4,
            "avg_wind_level": [1.97, 1.71] * 4,
        },
        schema_overrides={"holiday_flag": pl.Int32, "activity_flag": pl.Int32},
    )


def _write(path: Path, frame: pl.DataFrame) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    else:
        # CSV has no list type: lists are written as "[0, 1, ...]", as pandas does.
        lists = [c for c, t in frame.schema.items() if isinstance(t, pl.List)]
        as_text = [("[" + pl.col(c).cast(pl.List(pl.String)).list.join(", ") + "]").alias(c) for c in lists]
        frame.with_columns(as_text).write_csv(path)
    return path


@pytest.mark.parametrize("name", ["train_daily.parquet", "train_daily.csv"])
def test_freshretailnet_maps_onto_canonical_tables(tmp_path: Path, ingest: Ingest, workspace: Path, name: str) -> None:
    daily = _daily()
    _write(tmp_path / "frn" / name, daily)
    report = ingest(tmp_path / "frn", "freshretailnet")
    lake = Lake(workspace)

    sales = lake.read("sales")
    assert sales.columns == ["date", "store_id", "item_id", "units"]
    assert sales.select("store_id", "item_id", "date", "units").rows() == sorted(
        zip(
            daily["store_id"].cast(pl.String),
            daily["product_id"].cast(pl.String),
            daily["dt"],
            daily["sale_amount"],
            strict=True,
        ),
        key=lambda r: (r[2], r[0], r[1]),
    )

    inventory = lake.read("inventory").sort("store_id", "item_id", "date")
    assert inventory.schema["stockout_hours"] == pl.Float64
    assert inventory.schema["hourly_stockout"] == pl.List(pl.Int8)
    assert inventory["hourly_stockout"].to_list() == daily["hours_stock_status"].to_list()
    assert inventory["stockout_hours"].to_list() == [float(h) for h in daily["stock_hours"]]

    exogenous = lake.read("exogenous")
    assert exogenous.height == 8 and exogenous["item_id"].null_count() == 0
    assert lake.table_info("exogenous")["column_roles"] == {  # type: ignore[index]
        "discount": "known_in_advance",
        "holiday_flag": "known_in_advance",
        "activity_flag": "known_in_advance",
        "precpt": "past_only",
        "avg_temperature": "past_only",
        "avg_humidity": "past_only",
        "avg_wind_level": "past_only",
    }

    assert lake.read("items").rows() == [("10", "1", "5", "50", "100"), ("11", "1", "5", "50", "110")]
    assert lake.read("stores").rows() == [("0", "0"), ("2", "0")]
    assert lake.table_info("sales")["frequency"] == "D"  # type: ignore[index]

    counts = [(p.table, p.read, p.kept, p.quarantined, p.merged) for p in report.parts]
    assert counts == [
        ("sales", 8, 8, 0, 0),
        ("inventory", 8, 8, 0, 0),
        ("exogenous", 8, 8, 0, 0),
        # The masters repeat on every row; identical repeats merge.
        ("items", 8, 2, 0, 6),
        ("stores", 8, 2, 0, 6),
    ]


@pytest.mark.parametrize(("name", "line"), [("train_daily.parquet", 4), ("train_daily.csv", 5)])
def test_bad_hourly_flags_are_quarantined_from_inventory_only(
    tmp_path: Path, ingest: Ingest, workspace: Path, name: str, line: int
) -> None:
    flags = [NONE_OUT] * 8
    flags[3] = BAD_FLAGS
    file = _write(tmp_path / name, _daily(flags))
    report = ingest(file, "freshretailnet")
    quarantine = Lake(workspace).read(QUARANTINE)
    assert quarantine.select("table", "rule", "line").rows() == [("inventory", "invalid_hourly_stockout", line)]
    assert Lake(workspace).read("sales").height == 8
    assert all(p.read == p.kept + p.quarantined + p.merged for p in report.parts)


def test_unreadable_csv_flags_are_quarantined_not_dropped(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    file = _write(tmp_path / "train_daily.csv", _daily([NONE_OUT] * 8))
    text = file.read_text().splitlines()
    text[1] = text[1].replace("[0, 0,", "[x, 0,", 1)
    file.write_text("\n".join(text) + "\n")
    ingest(file, "freshretailnet")
    quarantine = Lake(workspace).read(QUARANTINE)
    assert quarantine.select("table", "rule", "line").rows() == [("inventory", "invalid_hourly_stockout", 2)]


def test_conflicting_item_attributes_are_quarantined(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    daily = _daily().with_columns(
        first_category_id=pl.when(pl.int_range(pl.len()) == 0).then(6).otherwise(pl.col("first_category_id"))
    )
    report = ingest(_write(tmp_path / "train_daily.parquet", daily), "freshretailnet")
    # Product 10's rows disagree, so none is trusted and its facts have no master. Identical
    # rows merge first, so each distinct version (here 2 of the 4 rows) is quarantined once.
    assert report.quarantine_by_rule == {"conflicting_duplicate": 2, "unknown_item": 12}
    assert Lake(workspace).read("items")["item_id"].to_list() == ["11"]
    assert all(p.read == p.kept + p.quarantined + p.merged for p in report.parts)


def test_eval_split_is_read_when_present(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    _write(tmp_path / "frn" / "train_daily.parquet", _daily())
    later = _daily().with_columns(pl.col("dt") + dt.timedelta(days=2))
    _write(tmp_path / "frn" / "eval.parquet", later)
    report = ingest(tmp_path / "frn", "freshretailnet")
    assert [Path(p.source).name for p in report.parts] == ["train_daily.parquet"] * 5 + ["eval.parquet"] * 5
    assert Lake(workspace).read("sales").height == 16
    assert Lake(workspace).read("items").height == 2


def test_missing_column_names_the_file(tmp_path: Path) -> None:
    file = _write(tmp_path / "frn" / "train_daily.parquet", _daily().drop("hours_stock_status"))
    with pytest.raises(InputFileError, match=r"train_daily\.parquet: missing required column\(s\) hours_stock_status"):
        FreshRetailNetSource().load(file.parent)


def test_missing_daily_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "frn").mkdir()
    (tmp_path / "frn" / "README.md").write_text("not data")
    message = "frn: FreshRetailNet daily file not found: looked for train_daily.parquet (or .csv), or a single data "
    with pytest.raises(InputFileError, match=re.escape(message) + "file, but it holds no .parquet or .csv file"):
        FreshRetailNetSource().load(tmp_path / "frn")


def test_a_folder_with_one_daily_file_under_another_name_is_read(
    tmp_path: Path, ingest: Ingest, workspace: Path
) -> None:
    _write(tmp_path / "frn" / "freshretailnet-50k.parquet", _daily())
    _write(tmp_path / "frn" / "eval.parquet", _daily().with_columns(pl.col("dt") + dt.timedelta(days=2)))
    report = ingest(tmp_path / "frn", "freshretailnet")
    assert {Path(p.source).name for p in report.parts} == {"freshretailnet-50k.parquet", "eval.parquet"}
    assert Lake(workspace).read("sales").height == 16


def test_a_folder_with_several_other_files_lists_them(tmp_path: Path) -> None:
    _write(tmp_path / "frn" / "a.parquet", _daily())
    _write(tmp_path / "frn" / "b.parquet", _daily())
    with pytest.raises(
        InputFileError, match=re.escape("but it holds 2 data files (a.parquet, b.parquet); pass the file")
    ):
        FreshRetailNetSource().load(tmp_path / "frn")
