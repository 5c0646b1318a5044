from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from helpers import write

from shelfcast.io.lake import Lake
from shelfcast.jobs.ingest import IngestReport

Ingest = Callable[..., IngestReport]
HEADER = "date,store,item,sales\n"


def test_every_row_is_kept_quarantined_or_merged(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    path = write(
        tmp_path / "train.csv",
        HEADER + "2024-01-01,1,1,5\n2024-01-01,1,1,2\n2024-01-02,1,1,x\n2024-01-03,1,1,-1\n2024-01-04,1,1,3\n",
    )
    report = ingest(path)
    (part,) = report.parts
    assert (part.read, part.kept, part.quarantined, part.merged) == (5, 2, 2, 1)
    sales = Lake(workspace).read("sales")
    assert sales["units"].to_list() == [7.0, 3.0]
    quarantine = Lake(workspace).read("quarantine")
    assert quarantine.select("line", "rule").rows() == [(4, "invalid_units"), (5, "negative_units")]


def test_reingest_is_idempotent_and_new_days_append(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    first = write(tmp_path / "a.csv", HEADER + "2024-01-01,1,1,5\n2024-01-02,1,1,x\n")
    r1 = ingest(first)
    r2 = ingest(first)
    assert r1.tables["sales"].content_hash == r2.tables["sales"].content_hash
    assert Lake(workspace).read("quarantine").height == 1  # replaced, not doubled
    later = write(tmp_path / "b.csv", HEADER + "2024-01-02,1,1,4\n2024-01-03,1,1,6\n")
    ingest(later)
    assert Lake(workspace).read("sales")["units"].to_list() == [5.0, 4.0, 6.0]
    assert Lake(workspace).read("quarantine").height == 1


def test_reject_policy(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    path = write(tmp_path / "a.csv", HEADER + "2024-01-01,1,1,5\n2024-01-01,1,1,2\n2024-01-02,1,1,1\n")
    report = ingest(path, settings={"duplicates": "reject"})
    assert (report.parts[0].kept, report.parts[0].quarantined) == (1, 2)
    assert report.quarantine_by_rule == {"duplicate_key": 2}


def test_masters_are_derived_from_facts_and_grow(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    ingest(write(tmp_path / "a.csv", HEADER + "2024-01-01,1,1,5\n"))
    report = ingest(write(tmp_path / "b.csv", HEADER + "2024-01-02,2,7,5\n"))
    assert report.derived_tables == ("stores", "items")
    assert Lake(workspace).read("stores")["store_id"].to_list() == ["1", "2"]
    assert Lake(workspace).table_info("stores")["origin"] == "derived"  # type: ignore[index]


def test_canonical_masters_check_references(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    folder = tmp_path / "canon"
    write(folder / "stores.csv", "store_id,region\nS1,N\n")
    write(folder / "items.csv", "item_id\nI1\n")
    write(folder / "sales.csv", "date,store_id,item_id,units\n2024-01-01,S1,I1,1\n2024-01-01,S2,I1,1\n")
    report = ingest(folder, "canonical")
    assert report.quarantine_by_rule == {"unknown_store": 1}
    # A later ingest of facts alone is still checked against the stored master.
    write(tmp_path / "more" / "sales.csv", "date,store_id,item_id,units\n2024-01-02,S3,I1,1\n")
    assert ingest(tmp_path / "more", "canonical").quarantine_by_rule == {"unknown_store": 1}


def test_gaps_and_frequency_are_reported(tmp_path: Path, ingest: Ingest) -> None:
    report = ingest(write(tmp_path / "a.csv", HEADER + "2024-01-01,1,1,5\n2024-01-04,1,1,5\n2024-01-05,1,1,5\n"))
    assert report.tables["sales"].frequency == "D"
    assert report.gaps["sales"].missing_periods == 2


def test_header_only_file_is_an_error(tmp_path: Path, ingest: Ingest) -> None:
    from shelfcast.errors import InputFileError

    with pytest.raises(InputFileError, match=r"a.csv: no data rows \(only a header\)"):
        ingest(write(tmp_path / "a.csv", HEADER))


def test_exogenous_roles_default_to_past_only(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    folder = tmp_path / "canon"
    write(folder / "exogenous.csv", "date,cpi,planned_promo\n2024-01-01,1.5,0\n")
    write(folder / "exogenous_roles.json", '{"planned_promo": "known_in_advance"}')
    ingest(folder, "canonical")
    roles = Lake(workspace).table_info("exogenous")["column_roles"]  # type: ignore[index]
    assert roles == {"cpi": "past_only", "planned_promo": "known_in_advance"}


@pytest.mark.parametrize("bad_roles", ['{"cpi": "sometimes"}', "not json"])
def test_bad_roles_file_is_an_error(tmp_path: Path, ingest: Ingest, bad_roles: str) -> None:
    from shelfcast.errors import InputFileError

    folder = tmp_path / "canon"
    write(folder / "exogenous.csv", "date,cpi\n2024-01-01,1.5\n")
    write(folder / "exogenous_roles.json", bad_roles)
    with pytest.raises(InputFileError, match=r"exogenous_roles\.json"):
        ingest(folder, "canonical")


def test_parquet_input(tmp_path: Path, ingest: Ingest, workspace: Path) -> None:
    frame = pl.DataFrame({"date": ["2024-01-01"], "store": [1], "item": [2], "sales": [3]})
    frame = frame.with_columns(pl.col("date").str.to_date())
    frame.write_parquet(tmp_path / "train.parquet")
    ingest(tmp_path)
    assert Lake(workspace).read("sales").row(0)[1:] == ("1", "2", 3.0)
