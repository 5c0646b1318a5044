from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from helpers import write

from shelfcast.data.sources import get_source
from shelfcast.data.sources.branch_csv import BranchCsvSource
from shelfcast.errors import AmbiguousDateError, ConfigError, InputFileError
from shelfcast.io.lake import Lake
from shelfcast.jobs.ingest import IngestReport

Ingest = Callable[..., IngestReport]
D1, D2, D3 = dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 3)
# Every date below is ambiguous except the opening dates (day 15 and 23), which
# settle the whole export as day-first.
FILES = {
    "branches": "BranchID,BranchName,OpeningDate\nB1,Downtown,15/01/2020\nB2,Airport,23/02/2021\n",
    "item_master": "ItemCode,ArabicName,EnglishName,BrandOnBox\nI1,حليب,Milk,Almarai\nI2,خبز,Bread,Lusine\n",
    "employees": (
        "EmployeeID,FullName,Department,BranchID\nE1,Ann Ali,Sales,B1\nE2,Bob Bakr,Stock,B1\nE3,Cy Cole,Sales,B2\n"
    ),
    "sales_transactions": (
        "Date,BranchID,BranchName,InvoiceNumber,ItemCode,ItemName,QuantitySold\n"
        "01/03/2024,B1,Downtown,INV1,I1,Milk,2\n"
        "01/03/2024,B1,Downtown,INV2,I1,Milk,1\n"
        "02/03/2024,B1,Downtown,INV3,I1,Milk,4\n"
        "03/03/2024,B1,Downtown,INV4,I1,Milk,1\n"
        "03/03/2024,B1,Downtown,INV5,I1,Milk,1\n"
        "03/03/2024,B2,Airport,INV6,I2,Bread,2\n"
        "01/03/2024,B1,Downtown,INV7,I2,Bread,1\n"
    ),
    "stock_movement": (
        "MovementID,Date,FromBranchID,FromBranchName,ToBranchID,ToBranchName,ItemCode,ItemName,QuantityMoved\n"
        "M1,01/03/2024,,Supplier,B1,Downtown,I1,Milk,10\n"
        "M2,02/03/2024,B1,Downtown,B2,Airport,I1,Milk,3\n"
        "M3,03/03/2024,B2,Airport,,,I1,Milk,1\n"
    ),
    "stock_current": (
        "BranchID,BranchName,ItemCode,ItemName,CurrentQuantity,ReservedQuantity,SafetyStockLevel,LastUpdatedAt\n"
        "B1,Downtown,I1,Milk,5,1,2,02/03/2024 18:30\n"
        "B2,Airport,I1,Milk,3,0,1,02/03/2024 18:30\n"
        "B2,Airport,I2,Bread,6,0,1,02/03/2024 18:30\n"
    ),
}
# Hand-computed: B1/I1 net = +7, -7, -2; B2/I1 = 0, +3, -1; B2/I2 = 0, 0, -2; snapshot at the end of day 2.
EXPECTED_ON_HAND = {
    ("B1", "I1"): [12.0, 5.0, 3.0],
    ("B2", "I1"): [0.0, 3.0, 2.0],
    ("B2", "I2"): [6.0, 6.0, 4.0],
}


def folder(tmp_path: Path, **changes: str | None) -> Path:
    """The export above, with files replaced (text) or left out (None)."""
    out = tmp_path / "export"
    for stem, text in {**FILES, **changes}.items():
        if text is not None:
            write(out / f"{stem}.csv", text)
    return out


def append(stem: str, *lines: str) -> str:
    return FILES[stem] + "".join(f"{line}\n" for line in lines)


def by_part(report: IngestReport) -> dict[str, tuple[int, int, int, int]]:
    return {Path(p.source).name: (p.read, p.kept, p.quarantined, p.merged) for p in report.parts}


def on_hand(lake: Lake) -> dict[tuple[str, str], list[float]]:
    inv = lake.read("inventory").sort("store_id", "item_id", "date")
    return {(s, i): g["on_hand"].to_list() for (s, i), g in inv.group_by("store_id", "item_id", maintain_order=True)}


def quarantine(lake: Lake) -> pl.DataFrame:
    return lake.read("quarantine").with_columns(pl.col("source").map_elements(lambda s: Path(s).name, pl.String))


def test_registered_by_name() -> None:
    assert isinstance(get_source("branch-csv", date_format="%d/%m/%Y"), BranchCsvSource)


def test_ingest_maps_every_file_and_counts_add_up(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    report = ingest(folder(tmp_path), "branch-csv")
    assert by_part(report) == {
        "branches.csv": (2, 2, 0, 0),
        "employees.csv": (3, 3, 0, 0),
        "item_master.csv": (2, 2, 0, 0),
        # 7 invoice lines on 5 series-days: 2 lines merged into their day.
        "sales_transactions.csv": (7, 5, 0, 2),
        "stock_movement.csv": (3, 3, 0, 0),
        "stock_current.csv": (3, 3, 0, 0),
        "stock_current.csv (rebuilt on-hand)": (6, 6, 0, 0),
    }
    assert all(p.read == p.kept + p.quarantined + p.merged for p in report.parts)
    assert [(p.derived, p.stored) for p in report.parts if Path(p.source).name == "employees.csv"] == [(False, False)]
    lake = Lake(workspace)
    assert lake.read("sales").sort("date", "store_id", "item_id").rows() == [
        (D1, "B1", "I1", 3.0),
        (D1, "B1", "I2", 1.0),
        (D2, "B1", "I1", 4.0),
        (D3, "B1", "I1", 2.0),
        (D3, "B2", "I2", 2.0),
    ]
    assert lake.read("items").rows() == [("I1", "حليب", "Milk", "Almarai"), ("I2", "خبز", "Bread", "Lusine")]
    assert lake.read("stores").select("store_id", "name", "opening_date", "headcount").rows() == [
        ("B1", "Downtown", dt.date(2020, 1, 15), 2),
        ("B2", "Airport", dt.date(2021, 2, 23), 1),
    ]
    assert lake.read("stores").columns == ["store_id", "opening_date", "name", "headcount"]


def test_names_live_only_in_the_masters(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    ingest(folder(tmp_path), "branch-csv")
    lake = Lake(workspace)
    for table in ("sales", "movements", "inventory"):
        assert not any("name" in c.lower() for c in lake.read(table).columns), table


def test_movement_kinds_follow_the_empty_branch(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    ingest(folder(tmp_path), "branch-csv")
    moves = Lake(workspace).read("movements").sort("movement_id")
    assert moves.select("movement_id", "from_store_id", "to_store_id", "kind", "quantity").rows() == [
        ("M1", None, "B1", "receipt", 10.0),
        ("M2", "B1", "B2", "transfer", 3.0),
        ("M3", "B2", None, "adjustment", 1.0),
    ]


def test_on_hand_history_is_rebuilt_exactly(
    tmp_path: Path, ingest: Ingest, workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        ingest(folder(tmp_path), "branch-csv")
    lake = Lake(workspace)
    assert on_hand(lake) == EXPECTED_ON_HAND
    snapshot_day = lake.read("inventory").filter(pl.col("date") == D2).sort("store_id", "item_id")
    assert snapshot_day.select("reserved", "safety_stock").rows() == [(1.0, 2.0), (0.0, 1.0), (0.0, 1.0)]
    # B1/I2 sells on day 1 but has no stock_current row: no history, and a warning says so.
    assert "1 series have sales or movements but no stock_current row" in caplog.text


def test_negative_rebuilt_on_hand_is_quarantined(
    tmp_path: Path, ingest: Ingest, workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    current = FILES["stock_current"].replace("B2,Airport,I1,Milk,3,", "B2,Airport,I1,Milk,1,")
    with caplog.at_level(logging.WARNING):
        report = ingest(folder(tmp_path, stock_current=current), "branch-csv")
    assert by_part(report)["stock_current.csv (rebuilt on-hand)"] == (6, 5, 1, 0)
    q = quarantine(Lake(workspace)).filter(pl.col("rule") == "negative_on_hand")
    assert q.select("source", "table").rows() == [("stock_current.csv (rebuilt on-hand)", "inventory")]
    assert json.loads(q["raw"][0]) == {"date": "2024-03-01", "store_id": "B2", "item_id": "I1", "on_hand": "-2.0"}
    assert "1 rebuilt on-hand values are negative" in caplog.text
    assert any("1 rebuilt on-hand values are negative" in note for note in report.notes)  # shown to the user
    assert on_hand(Lake(workspace))[("B2", "I1")] == [1.0, 0.0]


def test_unknown_branch_in_a_movement_is_quarantined_with_file_and_line(
    tmp_path: Path, ingest: Ingest, workspace: Path
) -> None:
    moves = append("stock_movement", "M4,03/03/2024,B9,Nowhere,B1,Downtown,I1,Milk,1")
    report = ingest(folder(tmp_path, stock_movement=moves), "branch-csv")
    assert by_part(report)["stock_movement.csv"] == (4, 3, 1, 0)
    q = quarantine(Lake(workspace)).filter(pl.col("rule") == "unknown_store")
    assert q.select("source", "line", "detail").rows() == [
        ("stock_movement.csv", 5, "from_store_id B9 is not in the stores table")
    ]
    # The rejected transfer does not reach the rebuilt history.
    assert on_hand(Lake(workspace)) == EXPECTED_ON_HAND


def test_unknown_branch_in_employees_is_quarantined_without_personal_data(
    tmp_path: Path, ingest: Ingest, workspace: Path
) -> None:
    staff = append("employees", "E4,Dee Dahl,Sales,B9", "E5,Eve Ezz,Sales,B2,Zed")
    report = ingest(folder(tmp_path, employees=staff), "branch-csv")
    assert by_part(report)["employees.csv"] == (5, 3, 2, 0)
    lake = Lake(workspace)
    q = quarantine(lake).filter(pl.col("source") == "employees.csv").sort("line")
    assert q.select("line", "table", "rule").rows() == [
        (5, "stores", "unknown_store"),
        (6, "stores", "too_many_fields"),
    ]
    assert json.loads(q["raw"][0]) == {"store_id": "B9"}
    assert "<redacted>" in q["detail"][1]
    stored = " ".join(str(lake.read(t).rows()) for t in lake.tables()) + str(lake.read("quarantine").rows())
    for personal in ("Ann Ali", "Dee Dahl", "Eve Ezz", "E1", "Sales", "Zed"):
        assert personal not in stored
    assert lake.read("stores")["headcount"].to_list() == [2, 1]


def test_duplicate_movement_ids(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    # M2 exported twice (same line), M1 reused for a second item of the same document.
    moves = append("stock_movement", "M2,02/03/2024,B1,Downtown,B2,Airport,I1,Milk,3", "M1,01/03/2024,,,B1,,I2,Bread,4")
    report = ingest(folder(tmp_path, stock_movement=moves), "branch-csv")
    assert by_part(report)["stock_movement.csv"] == (5, 4, 0, 1)
    moves_out = Lake(workspace).read("movements").sort("movement_id", "item_id")
    assert moves_out.select("movement_id", "item_id", "quantity").rows() == [
        ("M1", "I1", 10.0),
        ("M1", "I2", 4.0),
        ("M2", "I1", 6.0),
        ("M3", "I1", 1.0),
    ]


def test_duplicate_movement_ids_rejected_by_policy(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    moves = append("stock_movement", "M2,02/03/2024,B1,Downtown,B2,Airport,I1,Milk,3")
    report = ingest(folder(tmp_path, stock_movement=moves), "branch-csv", settings={"duplicates": "reject"})
    assert by_part(report)["stock_movement.csv"] == (4, 2, 2, 0)
    # Invoice lines are pieces of one day's sales: summed whatever the policy.
    assert by_part(report)["sales_transactions.csv"] == (7, 5, 0, 2)
    q = quarantine(Lake(workspace)).filter(pl.col("rule") == "duplicate_key")
    assert q["line"].to_list() == [3, 5]


def test_missing_file_is_a_one_line_error(tmp_path: Path, ingest: Ingest) -> None:
    with pytest.raises(InputFileError, match=r"employees\.csv: .*not found") as info:
        ingest(folder(tmp_path, employees=None), "branch-csv")
    assert "\n" not in str(info.value)


def test_a_file_instead_of_a_folder_is_refused(tmp_path: Path, ingest: Ingest) -> None:
    with pytest.raises(ConfigError, match=r"expects a folder holding stock_movement\.csv"):
        ingest(folder(tmp_path) / "branches.csv", "branch-csv")


def test_missing_column_names_the_file(tmp_path: Path, ingest: Ingest) -> None:
    sales = FILES["sales_transactions"].replace("QuantitySold", "Qty")
    with pytest.raises(InputFileError, match=r"sales_transactions\.csv: missing required column\(s\) QuantitySold"):
        ingest(folder(tmp_path, sales_transactions=sales), "branch-csv")


def test_ambiguous_export_needs_a_date_format(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    branches = FILES["branches"].replace("15/01/2020", "05/01/2020").replace("23/02/2021", "03/02/2021")
    export = folder(tmp_path, branches=branches)
    with pytest.raises(AmbiguousDateError, match="--date-format %d/%m/%Y"):
        ingest(export, "branch-csv")
    ingest(export, "branch-csv", date_format="%d/%m/%Y")
    assert on_hand(Lake(workspace)) == EXPECTED_ON_HAND
    assert Lake(workspace).read("stores")["opening_date"].to_list() == [dt.date(2020, 1, 5), dt.date(2021, 2, 3)]


def test_iso_timestamps_in_the_snapshot_mix_with_day_first_files(
    tmp_path: Path, ingest: Ingest, workspace: Path
) -> None:
    current = FILES["stock_current"].replace("02/03/2024 18:30", "2024-03-02T18:30:00")
    ingest(folder(tmp_path, stock_current=current), "branch-csv")
    assert on_hand(Lake(workspace)) == EXPECTED_ON_HAND


def test_names_that_disagree_with_the_masters_are_noted(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    sales = append("sales_transactions", "02/03/2024,B2,Airport Terminal,INV8,I2,Brown Bread,1")
    report = ingest(folder(tmp_path, sales_transactions=sales), "branch-csv")
    assert any(
        n.startswith("item_master.csv: 1 id(s) named differently") and "I2: Brown Bread" in n for n in report.notes
    )
    assert any(n.startswith("branches.csv: 1 id(s)") and "B2: Airport Terminal" in n for n in report.notes)
    assert Lake(workspace).read("items").filter(item_id="I2")["name_en"].item() == "Bread"


def test_reingest_changes_nothing(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    export = folder(tmp_path)
    first = ingest(export, "branch-csv")
    second = ingest(export, "branch-csv")
    assert {t: i.content_hash for t, i in first.tables.items()} == {t: i.content_hash for t, i in second.tables.items()}


def test_unreadable_opening_dates_are_left_empty_with_a_note(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    branches = FILES["branches"].replace("23/02/2021", "soon")
    report = ingest(folder(tmp_path, branches=branches), "branch-csv")
    assert "branches.csv: 1 OpeningDate value(s) not read as %d/%m/%Y (lines [3]); left empty." in report.notes
    assert Lake(workspace).read("stores")["opening_date"].to_list() == [dt.date(2020, 1, 15), None]
    assert on_hand(Lake(workspace)) == EXPECTED_ON_HAND
