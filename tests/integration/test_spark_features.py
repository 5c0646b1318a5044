"""The features job on Spark gives the local job's rows, row for row (`jobs.features.spark`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from deltalake import DeltaTable
from polars.testing import assert_frame_equal
from serving import ingest_chain
from spark_support import LOCAL

from shelfcast.data.simulator import SimConfig
from shelfcast.jobs.features import FEATURE_FILE, run_features

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def _delta(path: Path) -> pl.DataFrame:
    frame = pl.from_arrow(DeltaTable(path).to_pyarrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame.sort("store_id", "item_id", "origin")


def test_spark_features_equal_the_local_ones_row_for_row(tmp_path: Path, spark: Any) -> None:
    settings = ingest_chain(tmp_path, SimConfig(n_stores=3, n_items=6, n_days=150, seed=11))
    settings = settings.model_copy(update={"spark": LOCAL})
    local = run_features(settings, table_format="delta")
    want = pl.read_parquet(settings.workspace / FEATURE_FILE)
    want_table = _delta(settings.workspace / "delta" / "features")
    on_spark = run_features(settings, engine="spark", table_format="delta")
    got = pl.read_parquet(settings.workspace / FEATURE_FILE)
    got_table = _delta(settings.workspace / "delta" / "features")

    assert on_spark.engine == "spark" and on_spark.cutoff == local.cutoff
    assert got.height == 18 and got.columns == want.columns
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
    # The Delta feature table: the cutoff's rows and the labelled origins' with their label, the same on both.
    assert want_table.height > want.height and want_table["label"].drop_nulls().n_unique() == 2
    assert_frame_equal(got_table, want_table, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
    assert on_spark.tables["features"] == local.tables["features"] + 1
    # The demand training table: the same rows (the same hash sample) and labels on both engines.
    keys = ["store_id", "item_id", "origin", "h"]
    want_demand = pl.from_arrow(
        DeltaTable(settings.workspace / "delta" / "demand_training", version=0).to_pyarrow_table()
    )
    got_demand = pl.from_arrow(DeltaTable(settings.workspace / "delta" / "demand_training").to_pyarrow_table())
    assert isinstance(want_demand, pl.DataFrame) and isinstance(got_demand, pl.DataFrame)
    assert got_demand.height == want_demand.height > 0
    assert_frame_equal(got_demand.sort(keys), want_demand.sort(keys), check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


def test_a_sales_only_chain_gives_the_same_features_on_spark(tmp_path: Path, spark: Any) -> None:
    settings = ingest_chain(tmp_path, SimConfig(n_stores=2, n_items=4, n_days=90, seed=4), sales_only=True)
    settings = settings.model_copy(update={"spark": LOCAL})
    run_features(settings, cutoff=None)
    want = pl.read_parquet(settings.workspace / FEATURE_FILE)
    report = run_features(settings, engine="spark")
    got = pl.read_parquet(settings.workspace / FEATURE_FILE)
    assert report.delta_tables == [] and not (settings.workspace / "delta").exists()
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
