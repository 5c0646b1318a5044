from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from shelfcast.data.sources.walmart import WalmartSource
from shelfcast.errors import ConfigError, InputFileError
from shelfcast.io.lake import QUARANTINE, Lake
from shelfcast.jobs.ingest import IngestReport

Ingest = Callable[..., IngestReport]
D1, D2, D3 = dt.date(2010, 2, 5), dt.date(2010, 2, 12), dt.date(2010, 9, 10)
MARKDOWNS = [f"MarkDown{i}" for i in range(1, 6)]

TRAIN = pl.DataFrame(
    {
        "Store": [1, 1, 1, 1, 2, 2],
        "Dept": [1, 1, 2, 2, 1, 1],
        "Date": [D1, D2, D1, D2, D1, D2],
        "Weekly_Sales": [100.0, 150.5, -20.0, 30.0, 0.0, 75.0],
        "IsHoliday": [False, True, False, True, False, True],
    }
)
FEATURES = pl.DataFrame(
    {
        "Store": [1, 1, 1, 2, 2, 2],
        "Date": [D1, D2, D3] * 2,
        "Temperature": [42.3, 38.5, 80.1, 40.0, 39.0, 79.5],
        "Fuel_Price": [2.57, 2.55, 2.6, 2.57, 2.55, 2.6],
        **{m: [None, None, 10.0 * i, None, None, 5.0] for i, m in enumerate(MARKDOWNS, 1)},
        "CPI": [211.1, 211.2, None, 210.0, 210.1, None],
        "Unemployment": [8.1, 8.1, None, 7.9, 7.9, None],
        "IsHoliday": [False, True, True, False, True, True],
    }
)
STORES = pl.DataFrame({"Store": [1, 2], "Type": ["A", "B"], "Size": [151315, 202307]})


def _write(folder: Path, stem: str, frame: pl.DataFrame, fmt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame.write_parquet(folder / f"{stem}.parquet")
        return
    # Written the way Kaggle ships the files: TRUE/FALSE flags and NA for missing values.
    text = frame.with_columns(pl.col(pl.Boolean).cast(pl.String).str.to_uppercase())
    text.write_csv(folder / f"{stem}.csv", null_value="NA")


def _dataset(folder: Path, fmt: str, *, train: pl.DataFrame = TRAIN, features: pl.DataFrame = FEATURES) -> Path:
    for stem, frame in (("train", train), ("features", features), ("stores", STORES)):
        _write(folder, stem, frame, fmt)
    return folder


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_walmart_maps_onto_canonical_tables(tmp_path: Path, ingest: Ingest, workspace: Path, fmt: str) -> None:
    report = ingest(_dataset(tmp_path / "walmart", fmt), "walmart")
    lake = Lake(workspace)

    sales = lake.read("sales")
    assert sales.height == 5
    assert sales.schema["store_id"] == pl.String and sales.schema["item_id"] == pl.String
    assert sales.filter(store_id="1", item_id="1").select("date", "units").rows() == [(D1, 100.0), (D2, 150.5)]
    assert sorted(lake.read("items")["item_id"].to_list()) == ["1", "2"]
    # Store attributes keep the file's type: numbers in Parquet, text in CSV.
    size = (151315, 202307)  # a number from Parquet and from CSV: the adapter declares its type
    assert lake.read("stores").rows() == [("1", "A", size[0]), ("2", "B", size[1])]

    exogenous = lake.read("exogenous")
    assert exogenous.height == 6
    assert exogenous["item_id"].null_count() == 6
    assert exogenous.filter(store_id="1", date=D3)["MarkDown1"].item() == 10.0
    assert exogenous.filter(store_id="1", date=D1)["MarkDown1"].item() is None
    roles = lake.table_info("exogenous")["column_roles"]  # type: ignore[index]
    assert roles == {
        "Temperature": "past_only",
        "Fuel_Price": "past_only",
        **dict.fromkeys(MARKDOWNS, "known_in_advance"),
        "CPI": "past_only",
        "Unemployment": "past_only",
    }

    calendar = lake.read("calendar")
    assert calendar.select("date", "event", "store_id", "region", "kind").rows() == [
        (D2, "Super Bowl", None, None, "holiday"),
        (D3, "Labor Day", None, None, "holiday"),
    ]
    assert lake.table_info("sales")["frequency"] == "W"  # type: ignore[index]
    assert any("VALUE in dollars" in n for n in report.notes)


@pytest.mark.parametrize(("fmt", "line"), [("parquet", 3), ("csv", 4)])
def test_negative_sales_are_quarantined_with_their_line(
    tmp_path: Path, ingest: Ingest, workspace: Path, fmt: str, line: int
) -> None:
    report = ingest(_dataset(tmp_path / "walmart", fmt), "walmart")
    quarantine = Lake(workspace).read(QUARANTINE)
    assert quarantine.select("table", "rule", "line").rows() == [("sales", "negative_units", line)]
    assert quarantine["source"].item().endswith(f"train.{fmt}")
    assert report.quarantine_by_rule == {"negative_units": 1}


def test_every_part_is_accounted_for(tmp_path: Path, ingest: Ingest) -> None:
    report = ingest(_dataset(tmp_path / "walmart", "parquet"), "walmart")
    counts = [(Path(p.source).name, p.table, p.read, p.kept, p.quarantined, p.merged) for p in report.parts]
    assert counts == [
        ("stores.parquet", "stores", 2, 2, 0, 0),
        ("train.parquet", "sales", 6, 5, 1, 0),
        ("features.parquet", "exogenous", 6, 6, 0, 0),
        # Every store flags the same holiday weeks: one global event per week.
        ("features.parquet", "calendar", 4, 2, 0, 2),
        # train's flags agree with features, so they all merge into its events.
        ("train.parquet", "calendar", 3, 0, 0, 3),
    ]
    assert all(p.read == p.kept + p.quarantined + p.merged for p in report.parts)


def test_a_holiday_flagged_only_in_train_is_kept(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    train = TRAIN.with_columns(IsHoliday=pl.col("Date") != D2)
    report = ingest(_dataset(tmp_path / "walmart", "parquet", train=train), "walmart")
    calendar_from_train = next(p for p in report.parts if p.table == "calendar" and p.source.endswith("train.parquet"))
    assert (calendar_from_train.read, calendar_from_train.kept, calendar_from_train.merged) == (3, 1, 2)
    assert Lake(workspace).read("calendar").select("date", "event").rows() == [
        (D1, "Super Bowl"),
        (D2, "Super Bowl"),
        (D3, "Labor Day"),
    ]


def test_an_unreadable_holiday_flag_is_quarantined(tmp_path: Path, ingest: Ingest) -> None:
    folder = _dataset(tmp_path / "walmart", "csv")
    text = (folder / "features.csv").read_text().splitlines()
    text[1] = text[1].removesuffix("FALSE") + "maybe"
    (folder / "features.csv").write_text("\n".join(text) + "\n")
    report = ingest(folder, "walmart")
    assert report.quarantine_by_rule == {"negative_units": 1, "missing_event": 1}


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_missing_column_names_the_file(tmp_path: Path, fmt: str) -> None:
    folder = _dataset(tmp_path / "walmart", fmt, train=TRAIN.drop("Weekly_Sales"))
    with pytest.raises(InputFileError, match=r"train\.(parquet|csv): missing required column\(s\) Weekly_Sales"):
        WalmartSource().load(folder)


def test_missing_file_is_named(tmp_path: Path) -> None:
    folder = _dataset(tmp_path / "walmart", "parquet")
    (folder / "stores.parquet").unlink()
    with pytest.raises(InputFileError, match=r"stores\.csv: Walmart stores file not found"):
        WalmartSource().load(folder)


def test_a_file_instead_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = _dataset(tmp_path / "walmart", "parquet")
    with pytest.raises(ConfigError, match="expects the folder"):
        WalmartSource().load(folder / "train.parquet")


def test_store_size_is_a_number_from_csv_and_bad_sizes_are_quarantined(
    tmp_path: Path, ingest: Ingest, workspace: Path
) -> None:
    folder = _dataset(tmp_path / "w", "csv")
    stores = folder / "stores.csv"
    lines = stores.read_text().splitlines()
    lines[1] = lines[1].rsplit(",", 1)[0] + ",big"
    stores.write_text("\n".join(lines) + "\n")
    report = ingest(folder, "walmart")
    assert Lake(workspace).read("stores").schema["size"] == pl.Int64
    assert report.quarantine_by_rule.get("invalid_size") == 1
