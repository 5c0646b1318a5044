from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from shelfcast.io.lake import Lake, content_hash, describe

D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)


def _sales(dates: list[dt.date], units: list[float]) -> pl.DataFrame:
    n = len(dates)
    return pl.DataFrame({"date": dates, "store_id": ["S1"] * n, "item_id": ["I1"] * n, "units": units})


def test_content_hash_ignores_row_and_column_order() -> None:
    frame = _sales([D1, D2], [1.0, 2.0])
    shuffled = frame.reverse().select(list(reversed(frame.columns)))
    assert content_hash(frame) == content_hash(shuffled)
    assert content_hash(frame) != content_hash(_sales([D1, D2], [1.0, 3.0]))
    # The lake's shortcut (already sorted by a unique key) gives the same hash.
    assert content_hash(frame, sorted_by_unique_key=True) == content_hash(shuffled)


def test_upsert_replaces_same_keys_and_appends_new_ones(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.upsert("sales", _sales([D1, D2], [1.0, 2.0]))
    table = lake.upsert("sales", _sales([D2, D3], [5.0, 6.0]))
    assert table["units"].to_list() == [1.0, 5.0, 6.0]
    again = lake.upsert("sales", _sales([D2, D3], [5.0, 6.0]))
    assert content_hash(again) == content_hash(table)


def test_upsert_matches_null_scope_keys(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    exo = pl.DataFrame({"date": [D1], "store_id": [None], "item_id": [None], "cpi": [1.0]}).cast(
        {"store_id": pl.String, "item_id": pl.String}
    )
    lake.upsert("exogenous", exo)
    assert lake.upsert("exogenous", exo.with_columns(cpi=pl.lit(2.0)))["cpi"].to_list() == [2.0]


def test_quarantine_is_replaced_per_source(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    row = {"source": "a.csv", "line": 2, "table": "sales", "rule": "r", "detail": "d", "raw": "{}"}
    lake.replace_quarantine(["a.csv"], pl.DataFrame([row]))
    lake.replace_quarantine(["b.csv"], pl.DataFrame([row | {"source": "b.csv"}]))
    assert lake.replace_quarantine(["a.csv"], pl.DataFrame([row, row | {"line": 3}])).height == 3


def test_manifest_records_tables_and_keeps_history(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    frame = _sales([D1, D3], [1.0, 2.0])
    info = describe(frame, frequency="D")
    assert (info.rows, info.series, info.date_min, info.date_max) == (2, 1, "2024-01-01", "2024-01-03")
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    lake.update_manifest({"sales": info}, ingest={"source": "x"}, quarantine_rows=0, now=now)
    manifest = lake.update_manifest({}, ingest={"source": "y"}, quarantine_rows=1, now=now)
    assert manifest["tables"]["sales"]["content_hash"] == info.content_hash
    assert [i["source"] for i in manifest["ingests"]] == ["x", "y"]
    assert Lake(tmp_path).manifest() == manifest
