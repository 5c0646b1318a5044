"""`shelfcast score --engine spark`: the rows local scoring writes, in every store, the day replaced whole."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from helpers import run_cli
from polars.testing import assert_frame_equal
from serving import ingest_chain, make_champion
from spark_support import LOCAL

from shelfcast.data.simulator import SimConfig
from shelfcast.errors import ConfigError, DataValidationError, StoreError
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_shape
from shelfcast.io.spark.write import write_batches
from shelfcast.io.stores import PREDICTION_KEY, PredictionStore
from shelfcast.io.stores.delta import DeltaStore
from shelfcast.io.stores.parquet import ParquetStore
from shelfcast.io.stores.postgres import PostgresStore
from shelfcast.jobs.score import run_score
from shelfcast.models.stockout import StockoutConfig
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings
from shelfcast.workflows.training import run_train

pytestmark = [pytest.mark.integration, pytest.mark.spark]

PG_URL = os.environ.get("SHELFCAST_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
NOW = dt.datetime(2026, 12, 3, 6, 30, tzinfo=dt.UTC)
DAY = NOW.date()
CHAIN = SimConfig(n_stores=3, n_items=4, n_days=160, seed=8, min_base_demand=1.0, max_base_demand=30.0)
FAST = ForecastConfig(n_origins=12, n_estimators=30, learning_rate=0.15, num_leaves=15, strategy="direct")
FAST_STOCKOUT = StockoutConfig(n_origins=12, n_estimators=20, learning_rate=0.2, num_leaves=7)
FLOATS = ("forecast", "p10", "p50", "p90", "stockout_risk", "threshold")


def _spark(settings: Settings) -> Settings:
    return settings.model_copy(update={"spark": LOCAL})


@pytest.fixture(scope="module")
def champions(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A small chain with LightGBM demand and stockout champions trained locally (scoring does not care where)."""
    settings = ingest_chain(tmp_path_factory.mktemp("chain"), CHAIN)
    make_champion(settings, run_train(settings, task="demand", folds=1, horizon=14, forecast_config=FAST))
    make_champion(
        settings,
        run_train(settings, task="stockout", folds=1, stockout_config=FAST_STOCKOUT, forecast_config=FAST),
    )
    return _spark(settings)


def _local(settings: Settings, root: Path) -> pl.DataFrame:
    store = ParquetStore(root / "local")
    report = run_score(settings, now=NOW, store=store)
    assert report.engine == "local"
    return store.read(scored_on=DAY)


@pytest.fixture(scope="module")
def local_rows(champions: Settings, tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    """What local scoring writes for the day, with the champions: every series, risk from the stockout model."""
    want = _local(champions, tmp_path_factory.mktemp("local"))
    assert want["stockout_risk"].is_not_null().all() and "rule-baseline" not in set(want["model_version"])
    assert want.select("store_id", "item_id").n_unique() == CHAIN.n_stores * CHAIN.n_items
    return want


def _same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    """The same series, dates and values (floats to 1e-9 relative: the same code on the same rows)."""
    assert got.height == want.height and not got.select(PREDICTION_KEY).is_duplicated().any()
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


def _spark_score(settings: Settings, store: PredictionStore) -> pl.DataFrame:
    """Score on Spark into `store`; its rows of the day, after checking the report counts what was written."""
    report = run_score(settings, now=NOW, store=store, engine="spark")
    got = store.read(scored_on=DAY)
    first = got.filter(pl.col("horizon") == 1)
    assert report.engine == "spark" and report.rows == got.height and report.series == first.height
    assert (
        report.alerts == first["stockout_label"].sum() and report.stockout_version == got["stockout_model_version"][0]
    )
    return got


def test_spark_writes_the_local_rows_to_parquet_and_replaces_the_day(
    champions: Settings, local_rows: pl.DataFrame, tmp_path: Path, spark: Any
) -> None:
    parquet = ParquetStore(tmp_path / "spark")
    _same(_spark_score(champions, parquet), local_rows)
    # Scoring the day again replaces it: no duplicates; another day (local) sits beside it and both read back.
    _same(_spark_score(champions, parquet), local_rows)
    assert [p.name for p in (tmp_path / "spark").rglob("*") if p.is_file()] == ["part.parquet"]
    run_score(champions, now=NOW + dt.timedelta(days=1), store=parquet)
    assert parquet.read().height == 2 * local_rows.height and parquet.latest_day() == DAY + dt.timedelta(days=1)
    assert not list((champions.workspace / "staging").glob("*"))  # the executors' staging files are gone


def test_spark_writes_the_local_rows_to_delta(
    champions: Settings, local_rows: pl.DataFrame, tmp_path: Path, spark: Any
) -> None:
    delta = DeltaStore(tmp_path / "delta")
    _same(_spark_score(champions, delta), local_rows)
    assert delta.version() == 0 and delta.latest_day() == DAY


def test_spark_writes_the_local_rows_to_postgres(
    champions: Settings, local_rows: pl.DataFrame, spark: Any, postgres_table: str
) -> None:
    store = PostgresStore(PG_URL, table=postgres_table)
    _same(_spark_score(champions, store), local_rows)
    assert store.read().height == local_rows.height  # re-scoring a day: the batch writers' test below


def _batches(frame: pl.DataFrame, size: int) -> list[pl.DataFrame]:
    return [frame.slice(offset, size) for offset in range(0, frame.height, size)]


def test_batch_writers_replace_the_day_and_refuse_a_row_repeated_across_batches(
    local_rows: pl.DataFrame, tmp_path: Path, postgres_table: str
) -> None:
    ordered = local_rows.sort(PREDICTION_KEY)
    repeated = [*_batches(ordered, 50), ordered.slice(ordered.height - 1, 1)]
    stores = [
        ParquetStore(tmp_path / "parquet"),
        DeltaStore(tmp_path / "delta"),
        PostgresStore(PG_URL, table=postgres_table),
    ]
    for store in stores:
        for _ in range(2):
            assert write_batches(store, _batches(ordered, 50), scored_on=DAY) == ordered.height
        _same(store.read(), ordered)
        with pytest.raises((DataValidationError, StoreError), match="more than one row"):
            write_batches(store, repeated, scored_on=DAY)
        _same(store.read(), ordered)  # the failed write changed nothing


def test_without_champions_spark_scores_the_rule_baselines_as_local_does_from_a_cutoff(
    tmp_path: Path, spark: Any
) -> None:
    settings = _spark(ingest_chain(tmp_path, SimConfig(n_stores=2, n_items=3, n_days=120, seed=4)))
    cutoff = load_shape(Lake(settings.workspace)).end - dt.timedelta(days=10)
    local = ParquetStore(tmp_path / "local")
    run_score(settings, now=NOW, store=local, cutoff=cutoff.isoformat(), horizon=7)
    want = local.read(scored_on=DAY)
    assert set(want["model_version"]) == {"rule-baseline"} and set(want["stockout_model_version"]) == {"rule-baseline"}
    assert want["date"].min() == cutoff + dt.timedelta(days=1) and want["horizon"].max() == 7
    spark_store = ParquetStore(tmp_path / "spark")
    report = run_score(settings, now=NOW, store=spark_store, engine="spark", cutoff=cutoff.isoformat(), horizon=7)
    assert report.note and "seasonal-naive" in report.note and report.series == 6 and report.cutoff == cutoff
    _same(spark_store.read(scored_on=DAY), want)
    with pytest.raises(ConfigError, match="`--cutoff` 2001-01-01 must fall after"):
        run_score(settings, now=NOW, store=spark_store, engine="spark", cutoff="2001-01-01")


def test_fit_is_refused_on_spark(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--engine spark"):
        run_score(Settings(workspace=tmp_path / "ws"), fit=True, engine="spark")


def test_a_bogus_engine_is_one_line(tmp_path: Path) -> None:
    result = run_cli("score", "--engine", "bogus", "-w", str(tmp_path / "ws"), cwd=tmp_path, timeout=120)
    said = " ".join(result.stderr.replace("│", " ").split())
    assert result.returncode == 2 and not result.stdout, result.stdout
    # Click's usage error, as for every bad option value: the option, the value and the choices on one line.
    assert "Invalid value for '--engine': Value error, 'bogus' is not one of 'local', 'spark'." in said, said
