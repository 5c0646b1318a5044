"""The batch scoring job on a small simulated chain: with stock (risk and order quantities) and sales only."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from helpers import NOW, TODAY

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.data.sources import get_source
from shelfcast.io.stores.parquet import ParquetStore
from shelfcast.jobs.ingest import run_ingest
from shelfcast.jobs.score import ModelInfo, run_score
from shelfcast.settings import Settings

pytestmark = pytest.mark.integration

CHAIN = SimConfig(n_stores=2, n_items=3, n_days=300, seed=5, min_base_demand=1.0, max_base_demand=30.0)
HORIZON = 5


def _lake(tmp_path: Path, *, sales_only: bool) -> Settings:
    sim = simulate(CHAIN)
    folder = tmp_path / "raw"
    folder.mkdir()
    for name, frame in sim.tables().items():
        if not (sales_only and name == "inventory"):
            frame.write_parquet(folder / f"{name}.parquet")
    (folder / "exogenous_roles.json").write_text(json.dumps(sim.exogenous_roles))
    settings = Settings(workspace=tmp_path / "ws")
    run_ingest(get_source("canonical"), folder, settings=settings, today=TODAY, now=NOW)
    return settings


def test_score_with_stock_writes_every_series_and_replaces_a_rerun(tmp_path: Path) -> None:
    settings = _lake(tmp_path, sales_only=False)
    report = run_score(settings, horizon=HORIZON, now=NOW)
    assert (report.rows, report.series, report.scored_on, report.note) == (6 * HORIZON, 6, TODAY, None)
    rows = ParquetStore(settings.workspace / "predictions").read(scored_on=TODAY)
    assert rows.height == 6 * HORIZON
    assert rows["horizon"].unique().sort().to_list() == list(range(1, HORIZON + 1))
    assert rows["date"].min() == report.cutoff + dt.timedelta(days=1)
    for column in ("stockout_risk", "stockout_label", "threshold", "order_quantity", "reorder_point"):
        assert rows[column].null_count() == 0, column
    assert (rows["p10"] <= rows["p90"]).all()
    assert rows.select("model_name", "model_version", "run_id").unique().rows() == [("shelfcast_gbm", "local", None)]
    # Series-level values repeat on each horizon row.
    assert rows.group_by("store_id", "item_id").agg(pl.col("stockout_risk").n_unique())["stockout_risk"].max() == 1

    again = run_score(settings, horizon=HORIZON, now=NOW, model=ModelInfo("demand", "3", "abc123"))
    rerun = ParquetStore(settings.workspace / "predictions").read()
    assert rerun.height == again.rows == rows.height
    assert rerun.select("model_name", "model_version", "run_id").unique().rows() == [("demand", "3", "abc123")]


def test_score_on_sales_only_data_leaves_stockout_columns_null(tmp_path: Path) -> None:
    settings = _lake(tmp_path, sales_only=True)
    report = run_score(settings, horizon=HORIZON, now=NOW, cutoff=dt.date(2022, 9, 30))
    assert report.note is not None and "sales-only" in report.note
    assert report.alerts is None
    rows = ParquetStore(settings.workspace / "predictions").read(scored_on=TODAY)
    assert rows.height == 6 * HORIZON
    for column in ("stockout_risk", "stockout_label", "threshold", "order_quantity"):
        assert rows[column].null_count() == rows.height, column
    assert rows["safety_stock"].null_count() == 0
    assert rows["date"].min() == dt.date(2022, 10, 1)
