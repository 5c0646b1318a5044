"""Typed Parquet columns: used when their type fits what they map to, refused by name when it would make up values."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shelfcast.data.sources.generic import load_mapping
from shelfcast.errors import InputFileError
from shelfcast.io.lake import Lake
from shelfcast.jobs.ingest import IngestReport

Ingest = Callable[..., IngestReport]
DAYS = [dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)]


def _file(tmp_path: Path, **columns: Any) -> Path:
    frame = pl.DataFrame({"day": DAYS, "shop": ["a", "a", "b"], "sku": ["x", "x", "x"], "qty": [1.0, 2.0, 3.0]})
    path = tmp_path / "typed.parquet"
    frame.with_columns(**{k: pl.Series(k, v) for k, v in columns.items()}).write_parquet(path)
    return path


def _mapping(**columns: str) -> Any:
    return load_mapping(columns={"date": "day", "store_id": "shop", "item_id": "sku", "units": "qty", **columns})


@pytest.mark.parametrize(
    "case",
    [
        ("when", DAYS, "column 'when' (mapped to units) holds dates (Date), but units needs numbers"),
        ("span", [dt.timedelta(days=30)] * 3, "column 'span' (mapped to units) holds durations (Duration("),
        ("lst", [[1, 2]] * 3, "column 'lst' (mapped to units) holds lists (List(Int64)), but units needs numbers"),
        ("st", [{"a": 1}] * 3, "column 'st' (mapped to units) holds structs (Struct({'a': Int64}))"),
    ],
)
def test_a_typed_column_that_cannot_be_units_is_refused_by_name(
    tmp_path: Path, ingest: Ingest, workspace: Path, case: tuple[str, list[Any], str]
) -> None:
    column, values, message = case
    path = _file(tmp_path, **{column: values})
    with pytest.raises(InputFileError, match=f"^{path}: ") as error:
        ingest(path, "generic", mapping=_mapping(units=column))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not Lake(workspace).has("sales")


def test_a_number_as_the_date_is_refused(tmp_path: Path, ingest: Ingest) -> None:
    path = _file(tmp_path, stamp=[20240101, 20240102, 20240103])
    message = "column 'stamp' (mapped to date) holds whole numbers (Int64), but date needs dates"
    with pytest.raises(InputFileError, match=re.escape(message)):
        ingest(path, "generic", mapping=_mapping(date="stamp"))


def test_list_and_struct_columns_are_refused_as_exogenous(tmp_path: Path, ingest: Ingest) -> None:
    path = _file(tmp_path, weather=[{"t": 1.5}] * 3)
    mapping = load_mapping(
        columns={"date": "day", "store_id": "shop", "item_id": "sku", "units": "qty"},
        exogenous={"weather": "past_only"},
    )
    message = "column 'weather' holds structs (Struct({'t': Float64})), but shelfcast needs numbers"
    with pytest.raises(InputFileError, match=re.escape(message)):
        ingest(path, "generic", mapping=mapping)


def test_decimal_ids_are_refused_and_whole_ones_lose_their_point(
    tmp_path: Path, ingest: Ingest, workspace: Path
) -> None:
    path = _file(tmp_path, store=[1.0, 2.5, 1.0])
    with pytest.raises(
        InputFileError,
        match=r"column 'store' \(mapped to store_id\) holds decimal numbers \(Float64, e\.g\. 2\.5 at row 2\)",
    ):
        ingest(path, "generic", mapping=_mapping(store_id="store"))
    path = _file(tmp_path, store=[1.0, 2.0, None])
    report = ingest(path, "generic", mapping=_mapping(store_id="store"))
    assert sorted(Lake(workspace).read("sales")["store_id"].to_list()) == ["1", "2"]
    assert report.total("quarantined") == 1  # the missing id, as in a CSV


def test_fitting_types_are_used_as_they_are(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    path = _file(tmp_path, store=[7, 7, 8], n=[1, 2, 3], cat=pl.Series(["a", "a", "b"], dtype=pl.Categorical))
    ingest(path, "generic", mapping=_mapping(store_id="store", units="n", item_id="cat"))
    sales = Lake(workspace).read("sales").sort("date")
    assert sales.select("store_id", "item_id", "units").rows() == [("7", "a", 1.0), ("7", "a", 2.0), ("8", "b", 3.0)]


def test_canonical_parquet_with_a_date_as_units_is_refused(tmp_path: Path, ingest: Ingest) -> None:
    folder = tmp_path / "canon"
    folder.mkdir()
    pl.DataFrame({"date": DAYS, "store_id": ["a"] * 3, "item_id": ["x"] * 3, "units": DAYS}).write_parquet(
        folder / "sales.parquet"
    )
    message = "sales.parquet: column 'units' holds dates (Date), but shelfcast needs numbers"
    with pytest.raises(InputFileError, match=re.escape(message)):
        ingest(folder, "canonical")
