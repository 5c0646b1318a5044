"""Spark's groups of series give the panel one build over every series gives (`io.spark.groups`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from serving import ingest_chain

from shelfcast.data.simulator import SimConfig
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data, load_shape
from shelfcast.io.spark.groups import first_series, map_groups, read_table, spark_schema, to_polars
from shelfcast.models.data import group_data

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def test_every_group_builds_the_panel_the_whole_data_builds(tmp_path: Path, spark: Any) -> None:
    settings = ingest_chain(tmp_path, SimConfig(n_stores=3, n_items=5, n_days=120, seed=3))
    lake = Lake(settings.workspace)
    shape = load_shape(lake)
    data = load_model_data(lake)
    assert shape.spec == data.spec and shape.end == data.last_date

    def panel(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
        return group_data(shape, {t: f for t, f in tables.items() if t in ("sales", "inventory")}).panel.frame

    per_series = {t: read_table(spark, lake, t) for t in ("sales", "inventory")}
    schemas = {t: lake.scan(t).collect_schema() for t in per_series}
    schema = spark_schema(panel(first_series(lake)).schema)
    for groups in (1, 4, 7):
        got = to_polars(map_groups(spark, per_series, panel, schema, groups=groups, schemas=schemas))
        want = data.panel.frame
        assert_frame_equal(got.sort("store_id", "item_id", "date").select(want.columns), want, check_dtypes=False)


def test_a_sales_only_lake_runs_on_one_table(tmp_path: Path, spark: Any) -> None:
    settings = ingest_chain(tmp_path, SimConfig(n_stores=2, n_items=3, n_days=60, seed=5), sales_only=True)
    lake = Lake(settings.workspace)
    shape = load_shape(lake)

    def series(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
        frame = group_data(shape, {"sales": tables["sales"]}).panel.frame
        return frame.group_by("store_id", "item_id").agg(pl.len().alias("rows"))

    schema = spark_schema(series(first_series(lake)).schema)
    got = to_polars(map_groups(spark, {"sales": read_table(spark, lake, "sales")}, series, schema, groups=3))
    assert got.height == 6 and got["rows"].sum() == load_model_data(lake).panel.frame.height


def test_a_group_of_series_without_stock_rows_has_the_stock_columns(tmp_path: Path) -> None:
    """Series with no inventory row have null stock columns in the whole panel: a group of only them too."""
    settings = ingest_chain(tmp_path, SimConfig(n_stores=2, n_items=3, n_days=60, seed=5))
    lake = Lake(settings.workspace)
    whole = load_model_data(lake).panel
    shape = load_shape(lake)
    one = whole.frame.filter(pl.col("store_id") == whole.frame["store_id"][0]).select("store_id", "item_id")
    sales = lake.read("sales").join(one.unique(), on=["store_id", "item_id"], how="semi")
    group = group_data(shape, {"sales": sales}).panel
    want = whole.frame.join(one.unique(), on=["store_id", "item_id"], how="semi")
    assert group.frame.columns == want.columns
    assert group.past_only == whole.past_only
    stock = [c for c in shape.stock]
    assert stock and group.frame.select(stock).null_count().row(0) == (group.frame.height,) * len(stock)
