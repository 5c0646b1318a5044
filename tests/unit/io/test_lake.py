from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl

from shelfcast.io.lake import Lake, content_hash

D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 1, 2), dt.date(2024, 1, 3)
FEB = dt.date(2024, 2, 1)
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


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


def test_content_hash_is_the_same_however_the_frame_is_chunked(tmp_path: Path) -> None:
    """Issue 14: a month read back from disk (one chunk per row group) hashed differently from the same month in
    memory (one chunk), so a lineage said the data had changed after a `touch` or a restore."""
    n = 5_000
    frame = pl.DataFrame(
        {
            "date": [D1 + dt.timedelta(days=i % 28) for i in range(n)],
            "store_id": [f"store-{i % 3}" for i in range(n)],
            "item_id": [f"item-with-a-long-name-{i}" for i in range(n)],
            "units": [float(i % 17) for i in range(n)],
        }
    ).sort("store_id", "item_id", "date")
    pieces = pl.concat([frame.slice(i * 700, 700) for i in range(n // 700 + 1)], rechunk=False)
    frame.write_parquet(tmp_path / "month.parquet", row_group_size=600)
    read_back = pl.read_parquet(tmp_path / "month.parquet")
    assert (frame.n_chunks(), pieces.n_chunks(), read_back.n_chunks()) == (1, 8, 9)
    hashes = {content_hash(f, sorted_by_unique_key=True) for f in (frame, pieces, read_back)}
    assert len(hashes) == 1
    changed = frame.with_columns(pl.when(pl.col("units") == 3.0).then(4.0).otherwise(pl.col("units")).alias("units"))
    assert content_hash(changed, sorted_by_unique_key=True) not in hashes


def test_dated_tables_are_stored_one_file_per_month(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    written = lake.upsert("sales", _sales([D1, FEB], [1.0, 2.0]))
    assert sorted(written) == ["2024-01", "2024-02"]
    assert [f.name for f in lake.files("sales")] == ["2024-01.parquet", "2024-02.parquet"]
    assert lake.read("sales")["units"].to_list() == [1.0, 2.0]


def test_upsert_replaces_same_keys_and_appends_new_ones(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.upsert("sales", _sales([D1, D2], [1.0, 2.0]))
    lake.upsert("sales", _sales([D2, D3], [5.0, 6.0]))
    assert lake.read("sales")["units"].to_list() == [1.0, 5.0, 6.0]
    first = lake.describe("sales").content_hash
    lake.upsert("sales", _sales([D2, D3], [5.0, 6.0]))
    assert lake.describe("sales").content_hash == first


def test_upsert_matches_null_scope_keys(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    exo = pl.DataFrame({"date": [D1], "store_id": [None], "item_id": [None], "cpi": [1.0]}).cast(
        {"store_id": pl.String, "item_id": pl.String}
    )
    lake.upsert("exogenous", exo)
    lake.upsert("exogenous", exo.with_columns(cpi=pl.lit(2.0)))
    assert lake.read("exogenous")["cpi"].to_list() == [2.0]


def test_months_with_different_optional_columns_read_together(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.upsert("sales", _sales([D1], [1.0]))
    lake.upsert("sales", _sales([FEB], [2.0]).with_columns(price=pl.lit(3.5)))
    frame = lake.read("sales")
    assert frame.columns == ["date", "store_id", "item_id", "units", "price"]
    assert frame["price"].to_list() == [None, 3.5]


def test_masters_are_single_files(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.upsert("stores", pl.DataFrame({"store_id": ["S2", "S1"], "region": ["N", "S"]}))
    lake.upsert("stores", pl.DataFrame({"store_id": ["S2"], "region": ["E"]}))
    assert lake.path("stores").name == "stores.parquet"
    assert lake.read("stores").rows() == [("S1", "S"), ("S2", "E")]


def test_quarantine_is_replaced_per_source(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    row = {"source": "a.csv", "line": 2, "table": "sales", "rule": "r", "detail": "d", "raw": "{}"}
    lake.replace_quarantine(["a.csv"], pl.DataFrame([row]))
    lake.replace_quarantine(["b.csv"], pl.DataFrame([row | {"source": "b.csv"}]))
    assert lake.replace_quarantine(["a.csv"], pl.DataFrame([row, row | {"line": 3}])).height == 3


def test_manifest_records_tables_partitions_and_history(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    written = lake.upsert("sales", _sales([D1, D3, FEB], [1.0, 2.0, 3.0]))
    info = lake.describe("sales", partitions=written, frequency="D")
    assert (info.rows, info.series, info.date_min, info.date_max) == (3, 1, "2024-01-01", "2024-02-01")
    assert info.partitions is not None and info.partitions["2024-01"]["rows"] == 2
    lake.update_manifest({"sales": info}, ingest={"source": "x"}, quarantine_rows=0, now=NOW)
    manifest = lake.update_manifest({}, ingest={"source": "y"}, quarantine_rows=1, now=NOW)
    assert manifest["tables"]["sales"]["content_hash"] == info.content_hash
    assert [i["source"] for i in manifest["ingests"]] == ["x", "y"]
    assert Lake(tmp_path).manifest() == manifest


def test_describe_recomputes_months_the_manifest_does_not_know(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.upsert("sales", _sales([D1, FEB], [1.0, 2.0]))
    full = lake.describe("sales")  # no partition entries given: computed from the files
    again = lake.describe("sales", partitions=lake.upsert("sales", _sales([FEB], [2.0])))
    assert full.content_hash == again.content_hash


def test_a_month_changed_behind_the_manifest_is_rehashed(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    info = lake.describe("sales", partitions=lake.upsert("sales", _sales([D1, FEB], [1.0, 2.0])))
    lake.update_manifest({"sales": info}, ingest=None, quarantine_rows=0, now=NOW)
    # Rewrite January directly, as a crash between the file write and the manifest would leave it.
    _sales([D1], [9.0]).write_parquet(lake.path("sales") / "2024-01.parquet")
    assert lake.describe("sales").content_hash != info.content_hash


def test_content_hash_is_the_same_for_nulls_and_booleans_read_back(tmp_path: Path) -> None:
    """Issue 14: bitmaps (validity, booleans) carry arbitrary bits past their last row, so a month with a null
    `from_store_id` hashed differently in memory and read back, and validate saw every such month as changed."""
    n = 1_000
    raw = pl.DataFrame(
        {
            "date": [D1 + dt.timedelta(days=i % 60) for i in range(n)],
            "from_store_id": [None if i % 3 else f"S{i % 7}" for i in range(n)],
            "promo": [i % 5 == 0 for i in range(n)],
            "units": [None if i % 11 == 0 else float(i) for i in range(n)],
        }
    )
    month = raw.filter(pl.col("date") < FEB).sort("date", "from_store_id", "units", nulls_last=False)
    month.write_parquet(tmp_path / "month.parquet")
    read_back = pl.read_parquet(tmp_path / "month.parquet")
    assert read_back.equals(month)
    assert content_hash(month, sorted_by_unique_key=True) == content_hash(read_back, sorted_by_unique_key=True)
    assert content_hash(month) != content_hash(month.with_columns(pl.col("promo").not_()))
    assert content_hash(month) != content_hash(month.with_columns(pl.col("from_store_id").fill_null("")))
