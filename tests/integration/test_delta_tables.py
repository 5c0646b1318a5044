"""Delta tables on request (`--format delta`): the raw lake tables, the feature table and the predictions, kept
in step with the lake, their versions logged to the training run, and read by Spark at their current version."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from deltalake import DeltaTable
from helpers import NOW, TODAY, run_cli
from polars.testing import assert_frame_equal
from serving import ingest_chain

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.data.sources import get_source
from shelfcast.features.origin import demand
from shelfcast.io.delta_tables import input_versions, read_spark, write_frame
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.io.stores import open_store
from shelfcast.io.tracking import client, connect, delta_lineage, named_experiment
from shelfcast.jobs.features import run_features
from shelfcast.jobs.ingest import run_ingest
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings
from shelfcast.workflows.pipeline import PipelineRequest, run_pipeline

pytestmark = pytest.mark.integration

FAST = ForecastConfig(n_origins=20, n_estimators=40, learning_rate=0.2, num_leaves=7, strategy="direct")
CHAIN = SimConfig(n_stores=2, n_items=4, n_days=150, seed=7, start_date=dt.date(2022, 10, 3))
SPLIT = dt.date(2023, 1, 20)  # the first ingest stops here: a later one changes 2023 only


def _table(path: Path, version: int | None = None) -> pl.DataFrame:
    frame = pl.from_arrow(DeltaTable(path, version=version).to_pyarrow_table())
    assert isinstance(frame, pl.DataFrame)
    return frame


def _same_rows(got: pl.DataFrame, want: pl.DataFrame) -> None:
    got = got.select(want.columns).cast(want.schema)  # Spark gives back its own types
    assert_frame_equal(got.sort(want.columns), want.sort(want.columns))


def _write_raw(folder: Path, tables: dict[str, pl.DataFrame], roles: dict[str, Any]) -> Path:
    folder.mkdir(parents=True)
    for name, frame in tables.items():
        frame.write_parquet(folder / f"{name}.parquet")
    (folder / "exogenous_roles.json").write_text(json.dumps(roles))
    return folder


def test_delta_tables_are_written_on_request_only_and_hold_the_lake(tmp_path: Path) -> None:
    settings = ingest_chain(tmp_path, CHAIN)
    lake = Lake(settings.workspace)
    parquet_only = run_features(settings)
    assert parquet_only.delta_tables == [] and not (settings.workspace / "delta").exists()

    report = run_features(settings, table_format="delta")
    delta = settings.workspace / "delta"
    raw = {f"raw_{t}" for t in lake.tables()}
    assert {"raw_sales", "raw_inventory", "raw_calendar", "raw_items", "raw_stores"} <= raw
    assert set(report.tables) == {*raw, "features", "demand_training"}
    assert all(v == 0 for v in report.tables.values())
    for table in lake.tables():
        _same_rows(_table(delta / f"raw_{table}"), lake.read(table))
    assert DeltaTable(delta / "raw_sales").metadata().partition_columns == ["year"]
    # The feature table: the cutoff's rows (what is scored, label null) and the labelled origins' (trained on).
    features = _table(delta / "features")
    at_cutoff = features.filter(pl.col("origin") == report.cutoff)
    assert at_cutoff.height == report.rows == 8 and at_cutoff["label"].null_count() == 8
    labelled = features.filter(pl.col("origin") < report.cutoff)
    assert labelled.height > 8 * 30 and set(labelled["label"].drop_nulls().unique()) == {0, 1}
    # The demand training table: every row's features at its origin and, as its label, the demand on its target
    # date (what the forecaster learns: units sold, scaled up for hours out of stock), nothing after the cutoff.
    demand_rows = _table(delta / "demand_training")
    assert demand_rows.height > 8 * 20 and demand_rows["target_date"].max() <= report.cutoff
    assert (demand_rows["origin"] < demand_rows["target_date"]).all() and demand_rows["h"].min() == 1
    data = load_model_data(lake)
    truth = data.panel.frame.select(
        "store_id", "item_id", pl.col("date").alias("target_date"), demand(data.panel, data.spec).alias("truth")
    )
    checked = demand_rows.join(truth, on=["store_id", "item_id", "target_date"], how="inner")
    assert checked.height == demand_rows.height
    assert_frame_equal(checked.select(pl.col("label").alias("truth")), checked.select("truth"))


def test_raw_tables_change_where_the_lake_changed_and_versions_increase(tmp_path: Path) -> None:
    sim = simulate(CHAIN)
    tables = sim.tables()
    early = {n: f.filter(pl.col("date") < SPLIT) if "date" in f.columns else f for n, f in tables.items()}
    settings = Settings(workspace=tmp_path / "ws")
    source = get_source("canonical")
    run_ingest(
        source, _write_raw(tmp_path / "early", early, sim.exogenous_roles), settings=settings, today=TODAY, now=NOW
    )
    first = run_features(settings, table_format="delta")
    again = run_features(settings, table_format="delta")
    # Nothing changed in the lake: no new raw versions; the feature table is rewritten each run.
    assert {v.name for v in again.delta_tables if v.written} == {"features", "demand_training"}
    assert again.tables == first.tables | {t: first.tables[t] + 1 for t in ("features", "demand_training")}

    run_ingest(
        source, _write_raw(tmp_path / "all", tables, sim.exogenous_roles), settings=settings, today=TODAY, now=NOW
    )
    # Until the Delta tables are written again, those the ingest changed no longer hold what a model would see.
    assert {"raw_items", "raw_stores"} <= set(input_versions(settings.workspace))
    assert not {"raw_sales", "features", "demand_training"} & set(input_versions(settings.workspace))
    later = run_features(settings, table_format="delta")
    assert {"raw_sales", "features", "demand_training"} <= set(input_versions(settings.workspace))
    lake = Lake(settings.workspace)
    delta = settings.workspace / "delta"
    assert later.tables["raw_sales"] == first.tables["raw_sales"] + 1
    assert later.tables["raw_items"] == first.tables["raw_items"]  # undated and unchanged: no new version
    last = DeltaTable(delta / "raw_sales").history(1)[0]
    assert last["operationParameters"]["predicate"] == "year = 2023"  # 2022's files were left alone
    _same_rows(_table(delta / "raw_sales"), lake.read("sales"))
    old = _table(delta / "raw_sales", version=first.tables["raw_sales"])  # time travel: the first ingest
    assert old["date"].max() < SPLIT and old.height < lake.read("sales").height


def test_the_versions_go_to_the_mlflow_run(tmp_path: Path) -> None:
    settings = ingest_chain(tmp_path, CHAIN)
    run_features(settings, table_format="delta")
    uri = connect(settings)
    tracking = client(uri)
    run_id = tracking.create_run(named_experiment(settings, "lineage-test")).info.run_id
    logged = delta_lineage(settings, run_id)
    assert logged == {n: v.version for n, v in input_versions(settings.workspace).items()}
    assert "raw_sales" in logged and "features" in logged and "predictions" not in logged
    data = tracking.get_run(run_id).data
    assert data.params["delta.raw_sales.version"] == "0" and data.tags["delta.features.version"] == "0"
    assert data.tags["delta.raw_sales.path"] == str((settings.workspace / "delta" / "raw_sales").resolve())
    run_features(settings, table_format="delta")
    delta_lineage(settings, run_id)  # a param stays what the run trained on; the tag follows the table
    data = tracking.get_run(run_id).data
    assert data.params["delta.features.version"] == "0" and data.tags["delta.features.version"] == "1"


def test_the_pipeline_with_delta_logs_lineage_and_writes_the_predictions(tmp_path: Path) -> None:
    settings = ingest_chain(tmp_path, CHAIN)
    request = PipelineRequest(tasks=("demand",), folds=1, horizon=7, forecast_config=FAST, table_format="delta")
    report = run_pipeline(settings, request, today=TODAY, now=NOW)
    assert report.score is not None and settings.prediction_store == "parquet"
    assert report.delta_tables["predictions"] == 0 and report.delta_tables["raw_sales"] == 0
    predictions = _table(settings.workspace / "delta" / "predictions")
    _same_rows(predictions.drop("scored_on"), open_store(settings).read(scored_on=TODAY).drop("scored_on"))
    tracking = client(connect(settings))
    data = tracking.get_run(report.trained["demand"].run.run_id).data
    assert data.params["delta.raw_sales.version"] == "0" and data.params["delta.features.version"] == "0"
    assert data.tags["delta.predictions.version"] == "0" and "delta.predictions.version" not in data.params


@pytest.mark.spark
def test_spark_reads_the_current_version_only(tmp_path: Path, spark: Any) -> None:
    root = tmp_path / "delta"
    write_frame(root, "t", pl.DataFrame({"k": [1, 2, 3], "v": ["old", "old", "old"]}))
    write_frame(root, "t", pl.DataFrame({"k": [7, 8], "v": ["new", "new"]}))
    assert len(list((root / "t").glob("*.parquet"))) == 2  # the old file stays for time travel
    rows = sorted(tuple(r) for r in read_spark(spark, root / "t").collect())
    assert rows == [(7, "new"), (8, "new")]
    assert sorted(tuple(r) for r in read_spark(spark, root / "t", version=0).collect())[0] == (1, "old")
    # A partitioned raw table: the partition column comes back from the folders, every row once.
    settings = ingest_chain(tmp_path / "chain", CHAIN)
    run_features(settings, table_format="delta")
    sales = read_spark(spark, settings.workspace / "delta" / "raw_sales")
    got = pl.from_arrow(sales.toArrow())
    assert isinstance(got, pl.DataFrame) and "year" in got.columns
    _same_rows(got, Lake(settings.workspace).read("sales"))


def test_format_other_than_parquet_or_delta_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_cli("pipeline", "run", "--format", "csv", "-w", str(tmp_path / "ws"), cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "parquet or delta" in lines[0] and "'csv'" in lines[0], result.stderr
