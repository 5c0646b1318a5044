"""The pipeline's steps run directly (as the demo runs them) on a small simulated chain, with MLflow in the
workspace and each prediction store: every step happens once, in order, and a re-run makes new versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from deltalake import DeltaTable
from helpers import NOW, TODAY

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.io.registry import CHAMPION, PREVIOUS, Registry
from shelfcast.io.stores import open_store
from shelfcast.jobs.features import FEATURE_FILE
from shelfcast.models.stockout import StockoutConfig
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings
from shelfcast.workflows.pipeline import PipelineRequest, run_directly, run_pipeline

pytestmark = pytest.mark.integration

FAST = ForecastConfig(n_origins=40, n_estimators=80, learning_rate=0.1, num_leaves=15, strategy="direct")
FAST_STOCKOUT = StockoutConfig(n_origins=20, n_estimators=30, learning_rate=0.2, num_leaves=7)
SERIES = 40
STEPS = ["ingest", "validate", "features", "train demand", "promote demand", "train stockout", "promote stockout"]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("raw")
    # On this chain (fixed seeds) the GBM beats the baselines and the classifier beats the rule.
    sim = simulate(SimConfig(n_stores=4, n_items=10, n_days=300, seed=1))
    for name, frame in sim.tables().items():
        frame.write_parquet(folder / f"{name}.parquet")
    (folder / "exogenous_roles.json").write_text(json.dumps(sim.exogenous_roles))
    return folder


def _request(raw: Path) -> PipelineRequest:
    return PipelineRequest(
        path=raw,
        folds=2,
        horizon=7,
        forecast_config=FAST,
        stockout_config=FAST_STOCKOUT,
        tags={"prefect.flow_run_id": "test-run"},
    )


def _recording() -> tuple[list[str], Any]:
    ran: list[str] = []

    def runner(name: str, fn: Any, *, io: bool) -> Any:
        ran.append(name)
        return run_directly(name, fn, io=io)

    return ran, runner


@pytest.mark.slow
def test_every_step_runs_once_and_a_rerun_promotes_a_new_version(raw: Path, tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    ran, runner = _recording()
    report = run_pipeline(settings, _request(raw), today=TODAY, now=NOW, runner=runner)
    assert ran == [*STEPS, "score", "monitor"]
    assert report.monitor is not None and report.monitor.latest_path.exists()
    assert set(report.monitor.tasks) == {"demand", "stockout"}
    assert report.validation is not None and report.validation.ok
    assert report.skipped == {}
    assert all(p.promoted for p in report.promotions.values()), {t: p.gate.reason for t, p in report.promotions.items()}

    registry = Registry(settings)
    for task, trained in report.trained.items():
        run = registry.client.get_run(trained.run.run_id)
        assert run.data.tags["prefect.flow_run_id"] == "test-run", task
        champion = registry.alias(task, CHAMPION)
        assert champion is not None and champion.version == trained.version == "1"

    assert report.score is not None and report.score.model_version == "1" and report.score.stockout_version == "1"
    rows = open_store(settings).read(scored_on=TODAY)
    assert rows.height == SERIES * 7 and rows["stockout_risk"].null_count() == 0

    features = pl.read_parquet(settings.workspace / FEATURE_FILE)
    assert features.height == SERIES and features["origin"].unique().to_list() == [report.features.cutoff]  # type: ignore[union-attr]
    summary = report.summary()
    assert summary["versions"] == {"demand": "1", "stockout": "1"} and summary["scored_rows"] == rows.height

    # The same data again: new versions, compared with the champions on the same windows, promoted.
    again = run_pipeline(settings, _request(raw), today=TODAY, now=NOW)
    assert {t: r.version for t, r in again.trained.items()} == {"demand": "2", "stockout": "2"}
    demand_gate = again.promotions["demand"].gate
    assert demand_gate.passed and "vs champion" in demand_gate.reason
    assert registry.alias("demand", PREVIOUS).version == "1"  # type: ignore[union-attr]
    assert open_store(settings).read(scored_on=TODAY).height == rows.height  # replaced, not doubled
    assert again.ingest is not None and again.ingest.total("kept") == report.ingest.total("kept")  # type: ignore[union-attr]


def test_a_refused_first_model_scores_with_the_rule_baseline_and_says_why(raw: Path, tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws", gate_demand_max_wape=0.01)
    request = PipelineRequest(path=raw, tasks=("demand",), folds=1, forecast_config=FAST)
    report = run_pipeline(settings, request, today=TODAY, now=NOW)
    assert not report.promotions["demand"].promoted
    assert "gate_demand_max_wape=0.01" in report.promotions["demand"].gate.reason
    assert report.score is not None and report.score.model_version == "rule-baseline"
    assert report.score.note is not None and "no demand champion" in report.score.note


def test_with_the_delta_store_raw_features_and_predictions_are_delta_tables(raw: Path, tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws", prediction_store="delta")
    request = PipelineRequest(path=raw, tasks=("demand",), folds=1, horizon=7, forecast_config=FAST)
    report = run_pipeline(settings, request, today=TODAY, now=NOW)
    assert report.score is not None, report.skipped
    delta = settings.workspace / "delta"
    sales = pl.from_arrow(DeltaTable(delta / "raw_sales").to_pyarrow_table())
    assert isinstance(sales, pl.DataFrame) and sales.height == report.ingest.tables["sales"].rows  # type: ignore[union-attr]
    assert DeltaTable(delta / "raw_sales").metadata().partition_columns == ["year"]
    features = pl.from_arrow(DeltaTable(delta / "features").to_pyarrow_table())
    assert isinstance(features, pl.DataFrame)  # the cutoff's rows and the labelled origins' (see test_delta_tables)
    assert features.filter(pl.col("origin") == report.features.cutoff).height == SERIES  # type: ignore[union-attr]
    predictions = open_store(settings).read(scored_on=TODAY)
    assert predictions.height == SERIES * 7


def test_a_lake_that_disagrees_with_its_manifest_stops_the_run_and_says_where(raw: Path, tmp_path: Path) -> None:
    from shelfcast.data.sources import get_source
    from shelfcast.errors import DataValidationError
    from shelfcast.io.lake import Lake
    from shelfcast.jobs.ingest import run_ingest

    settings = Settings(workspace=tmp_path / "ws")
    run_ingest(get_source("canonical"), raw, settings=settings, today=TODAY, now=NOW)
    lake = Lake(settings.workspace)
    month = sorted(lake.months("sales"))[-1]
    (lake.path("sales") / f"{month}.parquet").unlink()
    ran, runner = _recording()
    with pytest.raises(DataValidationError, match=rf"the lake failed validation \(.*{month}\.parquet: in the manifest"):
        run_pipeline(settings, PipelineRequest(path=None, folds=2, horizon=7), today=TODAY, now=NOW, runner=runner)
    assert ran == ["validate"]
