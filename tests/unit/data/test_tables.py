from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from shelfcast.data.tables import check_references, detect_frequency, merge_duplicates, series_gaps
from shelfcast.schemas import SALES, STORES

D1, D2 = dt.date(2024, 1, 1), dt.date(2024, 1, 2)
SOURCES = {0: "f.csv"}


def _rows(**cols: list[object]) -> pl.DataFrame:
    n = len(next(iter(cols.values())))
    meta = {"_line": list(range(2, n + 2)), "_part": [0] * n}
    return pl.DataFrame(cols | meta)


def _sales(units: list[float], dates: list[dt.date] | None = None) -> pl.DataFrame:
    n = len(units)
    return _rows(date=dates or [D1] * n, store_id=["S1"] * n, item_id=["I1"] * n, units=units)


def test_duplicate_sales_are_summed_and_counted_as_merged() -> None:
    result = merge_duplicates(_sales([1.0, 2.0, 4.0]), SALES, policy="sum", sources=SOURCES)
    assert result.table["units"].to_list() == [7.0]
    assert result.table["_line"].to_list() == [2]  # traced to the first row
    assert result.merged[0] == 2
    assert result.quarantine.height == 0


def test_reject_policy_quarantines_every_row_of_the_key() -> None:
    rows = _sales([1.0, 2.0, 5.0], dates=[D1, D1, D2])
    result = merge_duplicates(rows, SALES, policy="reject", sources=SOURCES)
    assert result.table["units"].to_list() == [5.0]
    assert result.quarantine["rule"].to_list() == ["duplicate_key", "duplicate_key"]
    assert result.quarantine["line"].to_list() == [2, 3]
    assert result.quarantine["detail"][0] == "key (date, store_id, item_id) = (2024-01-01, S1, I1) appears 2 times"
    assert result.quarantined[0] == 2


def test_aggregate_parts_are_summed_even_under_reject() -> None:
    result = merge_duplicates(
        _sales([1.0, 2.0]), SALES, policy="reject", sources=SOURCES, aggregate_parts=frozenset({0})
    )
    assert result.table["units"].to_list() == [3.0]
    assert result.merged[0] == 1


def test_state_tables_merge_identical_rows_and_quarantine_conflicts() -> None:
    rows = _rows(store_id=["S1", "S1", "S2", "S2", "S3"], region=["N", "N", "N", "S", "E"])
    result = merge_duplicates(rows, STORES, policy="sum", sources=SOURCES)
    assert sorted(result.table["store_id"].to_list()) == ["S1", "S3"]
    assert result.merged[0] == 1
    assert result.quarantine["rule"].to_list() == ["conflicting_duplicate"] * 2
    assert result.quarantine["line"].to_list() == [4, 5]


def test_unknown_ids_are_quarantined_against_the_masters() -> None:
    rows = _rows(date=[D1, D1, D1], store_id=["S1", "S9", "S1"], item_id=["I1", "I1", "I7"], units=[1.0, 1.0, 1.0])
    ok, bad = check_references(rows, table="sales", stores=pl.Series(["S1"]), items=pl.Series(["I1"]), sources=SOURCES)
    assert ok.height == 1
    assert bad.select("line", "rule", "detail").rows() == [
        (3, "unknown_store", "store_id S9 is not in the stores table"),
        (4, "unknown_item", "item_id I7 is not in the items table"),
    ]


def test_no_master_means_no_reference_check() -> None:
    rows = _rows(date=[D1], store_id=["S9"], item_id=["I1"], units=[1.0])
    ok, bad = check_references(rows, table="sales", stores=None, items=None, sources=SOURCES)
    assert ok.height == 1 and bad.height == 0


@pytest.mark.parametrize(("step", "expected"), [(1, "D"), (7, "W"), (14, "14D")])
def test_frequency_is_the_commonest_step(step: int, expected: str) -> None:
    dates = pl.Series([D1 + dt.timedelta(days=step * i) for i in range(10)])
    assert detect_frequency(dates) == expected


def test_gaps_count_missing_periods_inside_each_series() -> None:
    table = pl.DataFrame(
        {
            "date": [D1, D1 + dt.timedelta(days=3), D1, D2],
            "store_id": ["S1", "S1", "S2", "S2"],
            "item_id": ["I1", "I1", "I1", "I1"],
        }
    )
    report = series_gaps(table, "D")
    assert (report.series, report.series_with_gaps, report.missing_periods) == (2, 1, 2)
    assert "S1/I1: 2" in report.examples
