"""The monitor job on a small simulated chain: champions trained on 300 days, a scoring at the cutoff, then 30
more days ingested, with or without a demand level drift injected by the simulator from the day after."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from helpers import NOW, TODAY

from shelfcast.data.sim_config import DriftSpec
from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.data.sources import get_source
from shelfcast.io.champion import champion_dir
from shelfcast.io.model_files import load_reference
from shelfcast.jobs.ingest import run_ingest
from shelfcast.jobs.monitor import run_monitor
from shelfcast.jobs.promote import promote_version
from shelfcast.jobs.score import run_score
from shelfcast.models.stockout import StockoutConfig
from shelfcast.models.train import ForecastConfig
from shelfcast.monitoring.summary import SUMMARY_KEYS, TASK_KEYS, MonitorReport
from shelfcast.settings import Settings
from shelfcast.workflows.training import run_train

pytestmark = pytest.mark.integration

START = dt.date(2022, 1, 3)
CUTOFF = START + dt.timedelta(days=299)
FAST = ForecastConfig(n_origins=30, n_estimators=60, learning_rate=0.1, num_leaves=15, strategy="direct")
FAST_STOCKOUT = StockoutConfig(n_origins=20, n_estimators=30, learning_rate=0.2, num_leaves=7)


def _chain(drift: float | None) -> SimConfig:
    spec = None if drift is None else DriftSpec(kind="level", start=CUTOFF + dt.timedelta(days=1), magnitude=drift)
    # 24 series, busy enough that a day's sales are not mostly noise; no exogenous table: its covariates
    # (a CPI trend, a fuel-price random walk) move between any two windows, which is drift by design.
    return SimConfig(n_stores=4, n_items=6, n_days=330, seed=5, min_base_demand=20.0, max_base_demand=80.0, drift=spec)


def _ingest(sim: object, folder: Path, settings: Settings, *, until: dt.date) -> None:
    folder.mkdir(parents=True)
    for name, frame in sim.tables().items():  # type: ignore[attr-defined]
        if name == "exogenous":
            continue
        dated = name in ("sales", "inventory", "movements")
        (frame.filter(pl.col("date") <= until) if dated else frame).write_parquet(folder / f"{name}.parquet")
    run_ingest(get_source("canonical"), folder, settings=settings, today=TODAY, now=NOW)


def _monitored(root: Path, drift: float | None) -> tuple[Settings, MonitorReport]:
    """Train both champions at the cutoff, score 14 days, ingest 30 more days, monitor."""
    sim = simulate(_chain(drift))
    settings = Settings(workspace=root / "ws")
    _ingest(sim, root / "raw1", settings, until=CUTOFF)
    for task in ("demand", "stockout"):
        report = run_train(
            settings, task=task, folds=1, horizon=14, forecast_config=FAST, stockout_config=FAST_STOCKOUT
        )
        if report.promotion is None or not report.promotion.promoted:
            promote_version(settings, task, report.version, force=True)
    run_score(settings, horizon=14, now=NOW)
    _ingest(sim, root / "raw2", settings, until=CUTOFF + dt.timedelta(days=30))
    return settings, run_monitor(settings, now=NOW + dt.timedelta(days=30))


def test_same_process_no_feature_drift_and_live_accuracy_per_version(tmp_path: Path) -> None:
    settings, report = _monitored(tmp_path, drift=None)
    reference = load_reference(champion_dir(settings, "demand") / "artifacts" / "native")
    assert reference is not None and "prediction" in reference.columns
    assert reference["origin"].max() == CUTOFF - dt.timedelta(days=1) and reference["origin"].n_unique() == 28
    for task in ("demand", "stockout"):
        monitor = report.tasks[task]
        assert monitor.status == "ok" and monitor.model_version == "1"
        assert not monitor.drift_alarm, monitor.drifted_features
        assert monitor.features and all(f.n_effective >= 24 for f in monitor.features)
        assert monitor.evaluated_rows > 0 and "1" in monitor.live_by_version
        assert monitor.backtest_value is not None and monitor.live_value is not None
    demand = report.tasks["demand"]
    # 14 forecast days of 24 series scored at the cutoff, all known now; the evaluation window (the last 28 days
    # up to cutoff + 30) starts after the first two of them.
    assert demand.evaluated_rows == 24 * 12 and demand.evaluated_days == 12
    assert report.tasks["stockout"].evaluated_rows == 24  # one risk per series, its 7-day window closed
    # The files, and latest.json = the newest summary with its documented keys.
    summary = json.loads(report.summary_path.read_text())
    assert json.loads(report.latest_path.read_text()) == summary
    assert tuple(summary) == SUMMARY_KEYS and tuple(summary["tasks"]["demand"]) == TASK_KEYS
    page = report.report_path.read_text()
    assert "data:image/png;base64" in page and "Feature drift" in page
    # The MLflow run in its own experiment, with the drift scores, live accuracy and both files.
    from mlflow import MlflowClient

    from shelfcast.io.tracking import tracking_uri

    client = MlflowClient(tracking_uri=tracking_uri(settings))
    assert report.mlflow_run_id is not None and summary["mlflow_run_id"] == report.mlflow_run_id
    run = client.get_run(report.mlflow_run_id)
    assert client.get_experiment(run.info.experiment_id).name == "shelfcast-monitoring"
    assert run.data.metrics["demand.live.wape"] == pytest.approx(demand.live_value)
    assert "demand.psi.lag_1" in run.data.metrics
    evidently = {p.name for p in report.evidently_paths}  # with the `reports` extra (installed by `make test`)
    artifacts = {a.path for a in client.list_artifacts(report.mlflow_run_id)}
    assert artifacts == {"drift_summary.json", "report.html", *evidently}


def test_a_level_drift_is_detected_in_features_and_predictions(tmp_path: Path) -> None:
    _, report = _monitored(tmp_path, drift=1.6)
    for task in ("demand", "stockout"):
        monitor = report.tasks[task]
        assert monitor.drift_alarm and {"lag_1", "lag_7"} <= set(monitor.drifted_features)
        assert monitor.prediction_drift_alarm
    assert report.alert


@pytest.mark.slow
def test_evidently_reports_when_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("evidently", reason="the `reports` extra is not installed (`make test` installs it)")
    from shelfcast.io import monitor_report
    from shelfcast.io.registry import Registry

    settings, report = _monitored(tmp_path, drift=1.6)
    assert report.evidently_paths == []  # not asked for: the default (they are large and slow)
    asked = Settings(workspace=settings.workspace, monitor_evidently=True)
    report = run_monitor(asked, now=NOW + dt.timedelta(days=30, hours=1))
    # Both tasks, although `year_ago` has no value yet (Evidently refuses an empty column: it is left out).
    assert sorted(p.name for p in report.evidently_paths) == ["evidently_demand.html", "evidently_stockout.html"]
    for path in report.evidently_paths:
        page = path.read_text()
        assert path.parent == report.folder and "Drift" in page and "lag_1" in page
    assert report.mlflow_run_id is not None
    logged = {a.path for a in Registry(settings).client.list_artifacts(report.mlflow_run_id)}
    assert {"evidently_demand.html", "evidently_stockout.html"} <= logged
    # Asked for without the extra: monitoring goes on and says what to install.
    monkeypatch.setattr(monitor_report, "evidently_installed", lambda: False)
    report = run_monitor(asked, now=NOW + dt.timedelta(days=30, hours=2))
    assert report.evidently_paths == [] and any("uv sync --extra reports" in n for n in report.notes)


def test_live_accuracy_is_degraded_under_a_level_drop(tmp_path: Path) -> None:
    # A drop, not the rise above: these champions over-forecast this chain a little, so demand x1.6 brings the
    # actuals towards the forecasts and WAPE does not worsen; demand x0.5 doubles the error.
    _, report = _monitored(tmp_path, drift=0.5)
    demand = report.tasks["demand"]
    assert demand.drift_alarm and demand.degraded
    assert demand.live_value is not None and demand.backtest_value is not None
    assert demand.live_value > demand.backtest_value * 1.2


def test_without_champion_or_predictions_the_report_says_so(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    _ingest(simulate(_chain(None)), tmp_path / "raw", settings, until=CUTOFF)
    report = run_monitor(settings, now=NOW)
    assert {t: m.status for t, m in report.tasks.items()} == {"demand": "no_champion", "stockout": "no_champion"}
    assert "shelfcast train --task demand" in report.tasks["demand"].notes[0]
    assert not report.alert and report.latest_path.exists()
