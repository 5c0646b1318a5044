"""MLflow tracking and the registry with SQLite in a temporary workspace: runs, gates, promotion, rollback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest
from helpers import NOW, TODAY

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.data.sources import get_source
from shelfcast.errors import ModelNotFoundError, PromotionError, TrackingError
from shelfcast.features.frames import HORIZON
from shelfcast.io.champion import champion_dir
from shelfcast.io.model_files import load_forecaster, load_quantiles
from shelfcast.io.registry import CHALLENGER, CHAMPION, PREVIOUS, Registry
from shelfcast.io.tracking import EXPERIMENTS, connect, fluent, named_experiment, tracking_uri
from shelfcast.jobs.ingest import run_ingest
from shelfcast.jobs.promote import promote_version, rollback
from shelfcast.jobs.train import TrainReport
from shelfcast.models.backtest import add_quantiles
from shelfcast.models.stockout import StockoutConfig
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings
from shelfcast.workflows.training import run_train

pytestmark = pytest.mark.integration

# On this chain (fixed seeds, deterministic boosters) the GBM beats every baseline by a few points of WAPE.
FAST = ForecastConfig(n_origins=40, n_estimators=80, learning_rate=0.1, num_leaves=15, strategy="direct")
FAST_STOCKOUT = StockoutConfig(n_origins=20, n_estimators=30, learning_rate=0.2, num_leaves=7)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated chain ingested into a workspace (copied per test)."""
    root = tmp_path_factory.mktemp("chain")
    sim = simulate(SimConfig(n_stores=2, n_items=8, n_days=300, seed=2))
    raw = root / "raw"
    raw.mkdir()
    for name, frame in sim.tables().items():
        frame.write_parquet(raw / f"{name}.parquet")
    (raw / "exogenous_roles.json").write_text(json.dumps(sim.exogenous_roles))
    workspace = root / "ws"
    run_ingest(get_source("canonical"), raw, settings=Settings(workspace=workspace), today=TODAY, now=NOW)
    return workspace


@pytest.fixture
def settings(lake: Path, tmp_path: Path) -> Settings:
    import shutil

    workspace = tmp_path / "ws"
    shutil.copytree(lake, workspace)
    return Settings(workspace=workspace)


def train(settings: Settings, config: ForecastConfig = FAST) -> TrainReport:
    return run_train(settings, task="demand", folds=2, horizon=14, forecast_config=config)


def test_tracking_uri_defaults_to_sqlite_in_the_workspace(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert tracking_uri(settings) == f"sqlite:///{(settings.workspace / 'mlflow' / 'mlflow.db').resolve()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.invalid:5000")
    assert tracking_uri(settings) == "http://example.invalid:5000"
    explicit = Settings(workspace=settings.workspace, mlflow_tracking_uri="http://127.0.0.1:9")
    assert tracking_uri(explicit) == "http://127.0.0.1:9"
    with pytest.raises(TrackingError, match=r"MLflow tracking server http://127\.0\.0\.1:9 is unreachable"):
        connect(explicit)


def test_a_uri_mlflow_wrote_to_the_environment_does_not_follow_into_another_workspace(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    other = Settings(workspace=tmp_path / "other")
    connect(settings)
    with fluent(tracking_uri(settings)):  # mlflow.set_tracking_uri writes MLFLOW_TRACKING_URI, for the block only
        assert os.environ.get("MLFLOW_TRACKING_URI") == tracking_uri(settings)
        named_experiment(settings, "shelfcast-test")
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ
    assert mlflow.get_tracking_uri() != tracking_uri(settings)
    assert tracking_uri(other) == f"sqlite:///{(other.workspace / 'mlflow' / 'mlflow.db').resolve()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.invalid:5000")  # the user's own choice still wins
    assert tracking_uri(other) == "http://example.invalid:5000"


def test_training_run_is_logged_registered_and_promoted(settings: Settings) -> None:
    import mlflow

    report = train(settings)
    client = Registry(settings).client
    run = client.get_run(report.run.run_id)
    metrics, params = run.data.metrics, run.data.params
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENTS["demand"]
    # The model and every baseline, overall and per window, with each window's cutoff.
    for model in ("gbm", "seasonal_naive", "naive", "moving_average_28"):
        assert f"wape.{model}" in metrics and f"wape.{model}.w1" in metrics and f"wape.{model}.w2" in metrics
    assert metrics["wape"] == metrics["wape.gbm"]
    assert params["model.candidate"] == "gbm" and "backtest.cutoff.w2" in params
    # Lineage: the lake's content hashes, as a logged dataset input.
    inputs = run.inputs.dataset_inputs
    assert [i.dataset.name for i in inputs] == ["lake"]
    tags = {t.key: t.value for t in inputs[0].tags}
    manifest = json.loads((settings.workspace / "lake" / "manifest.json").read_text())
    assert tags["content_hash.sales"] == manifest["tables"]["sales"]["content_hash"]
    assert tags["mlflow.data.context"] == "training"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert {"reports/backtest.json", "reports/backtest.csv", "reports/feature_importance.csv"} <= artifacts
    assert "reports/forecast_vs_actual.png" in artifacts and "reports/feature_importance.png" in artifacts
    # Registered, passed the gates (no champion yet), promoted, cached locally.
    assert report.version == "1" and report.promotion.promoted, report.promotion.gate.reason
    info = Registry(settings).version("demand", "1")
    assert info.aliases == [CHAMPION]
    assert info.tags["gate.passed"] == "true" and "beats the best baseline" in info.tags["gate.reason"]
    cache = champion_dir(settings, "demand")
    assert json.loads((cache / "version.json").read_text())["version"] == "1"
    assert (cache / "artifacts" / "native" / "booster.txt").exists()
    # The pyfunc loads by alias and predicts on feature rows.
    with fluent(tracking_uri(settings)):  # a `models:/` URI is resolved against MLflow's global URI
        pyfunc = mlflow.pyfunc.load_model(f"models:/{EXPERIMENTS['demand']}@{CHAMPION}")
    assert pyfunc.metadata.signature is not None
    example = pyfunc.input_example
    assert isinstance(example, pd.DataFrame)
    predicted = pyfunc.predict(example)
    # The interval too, as scoring and the service give it: the saved quantile table at each row's horizon.
    assert list(predicted.columns) == ["forecast", "p10", "p50", "p90"]
    native = cache / "artifacts" / "native"
    rows = pl.from_pandas(example)
    expected = add_quantiles(
        rows.select(pl.col(HORIZON).cast(pl.Int32), pl.Series("forecast", load_forecaster(native).score(rows))),
        load_quantiles(native),  # type: ignore[arg-type]
    )
    for column in ("forecast", "p10", "p50", "p90"):
        assert predicted[column].to_numpy() == pytest.approx(expected[column].to_numpy())
    assert (predicted["p10"] <= predicted["p50"]).all() and (predicted["p50"] <= predicted["p90"]).all()
    assert (predicted["p10"] < predicted["p90"]).any()
    assert not list(cache.rglob("*.pkl"))


def test_worse_challenger_is_refused_then_rollback_restores(settings: Settings) -> None:
    first = train(settings)
    assert first.promotion.promoted
    # A second, equally good model on the same windows: not worse than the champion, promoted.
    second = train(settings)
    assert second.promotion.promoted and second.promotion.previous == "1"
    registry = Registry(settings)
    assert registry.alias("demand", PREVIOUS).version == "1"  # type: ignore[union-attr]
    # A bad challenger: one tiny step from the global mean in units (no per-series level) learns almost nothing.
    worse = ForecastConfig(target="raw", n_origins=20, n_estimators=1, learning_rate=0.01, strategy="direct")
    bad = train(settings, worse)
    assert not bad.promotion.promoted
    info = registry.version("demand", bad.version)
    assert info.aliases == [CHALLENGER]
    assert info.tags["gate.passed"] == "false"
    assert (
        "does not beat the best baseline" in info.tags["gate.reason"]
        or "worse than the champion" in info.tags["gate.reason"]
    )
    assert float(info.tags["gate.wape"]) > float(info.tags["gate.wape.champion"])
    assert registry.alias("demand", CHAMPION).version == "2"  # type: ignore[union-attr]
    # Promoting it by hand is refused with the reason; rollback restores version 1.
    with pytest.raises(PromotionError, match="refused by the gates"):
        promote_version(settings, "demand", bad.version)
    restored, demoted = rollback(settings, "demand")
    assert restored.version == "1" and demoted is not None and demoted.version == "2"
    assert registry.alias("demand", CHAMPION).version == "1"  # type: ignore[union-attr]
    assert registry.alias("demand", PREVIOUS) is None
    assert registry.version("demand", "2").aliases == [] and registry.version("demand", "2").tags["rolled_back"]
    assert json.loads((champion_dir(settings, "demand") / "version.json").read_text())["version"] == "1"
    with pytest.raises(PromotionError, match="nothing to roll back to"):
        rollback(settings, "demand")
    with pytest.raises(ModelNotFoundError, match="has no version '42'"):
        promote_version(settings, "demand", "42")
    with pytest.raises(PromotionError, match="already the champion"):
        promote_version(settings, "demand", "1")
    forced = promote_version(settings, "demand", bad.version, force=True)
    assert forced.promoted and forced.previous == "1"


def test_a_refused_first_version_leaves_the_folder_of_champions_empty(settings: Settings) -> None:
    # There for pipelines that keep it as an output of the training (dvc.yaml), when no model passed too.
    strict = Settings(workspace=settings.workspace, gates={"demand_max_wape": 0.01})
    report = train(strict)
    assert report.promotion is not None and not report.promotion.promoted
    assert "above the floor gate_demand_max_wape=0.01" in report.promotion.gate.reason
    assert list((settings.workspace / "models").iterdir()) == []


def test_stockout_run_logs_classifier_and_rule(settings: Settings) -> None:
    report = run_train(settings, task="stockout", folds=2, stockout_config=FAST_STOCKOUT, forecast_config=FAST)
    client = Registry(settings).client
    run = client.get_run(report.run.run_id)
    assert "pr_auc.classifier" in run.data.metrics and "pr_auc.rule.w1" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(report.run.run_id, "reports")}
    assert {"reports/confusion_matrix.png", "reports/calibration_curve.png"} <= artifacts
    info = Registry(settings).version("stockout", report.version)
    assert info.tags["gate.passed"] in ("true", "false") and "rule" in info.tags["gate.reason"]
    import mlflow

    with fluent(tracking_uri(settings)):
        model = mlflow.pyfunc.load_model(report.run.model_uri)
    example = model.input_example
    risk = model.predict(example)
    assert list(risk.columns) == ["risk", "alert"] and np.all((risk["risk"] >= 0) & (risk["risk"] <= 1))


def test_a_broken_registry_store_is_a_tracking_error_and_the_local_champion_serves(settings: Settings) -> None:
    from shelfcast.io.champion import load_champion

    broken = settings.workspace / "broken.db"
    broken.write_text("not a database " * 100)
    offline = Settings(workspace=settings.workspace, mlflow_tracking_uri=f"sqlite:///{broken}")
    # SQLAlchemy's DatabaseError, not MLflow's: wrapped at the adapter all the same.
    with pytest.raises(TrackingError, match=r"MLflow at sqlite:///.*broken\.db: .*file is not a database"):
        Registry(offline).alias("demand", CHAMPION)
    with pytest.raises(ModelNotFoundError, match=r"did not answer .* no local copy of the demand champion"):
        load_champion(offline, "demand")
    local = champion_dir(settings, "demand")
    local.mkdir(parents=True)
    (local / "version.json").write_text(json.dumps({"name": "shelfcast-demand", "version": "7", "run_id": "r7"}))
    champion = load_champion(offline, "demand")
    assert (champion.version, champion.from_registry) == ("7", False)


def test_train_checkpoints_its_final_fit_in_the_workspace(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14: `shelfcast train` passed no checkpoint folder, so only forecast, stockout and score --fit resumed."""
    from shelfcast.io import checkpoint

    asked: list[Path] = []
    saved: list[int] = []
    real_at, real_save = checkpoint.FileCheckpoints.at, checkpoint.FileCheckpoint.save

    def at(self: checkpoint.FileCheckpoints, key: str, suffix: str) -> checkpoint.FileCheckpoint:
        asked.append(self.folder)
        return real_at(self, key, suffix)

    def save(self: checkpoint.FileCheckpoint, writer: object, rounds: int) -> None:
        saved.append(rounds)
        real_save(self, writer, rounds)

    monkeypatch.setattr(checkpoint.FileCheckpoints, "at", at)
    monkeypatch.setattr(checkpoint.FileCheckpoint, "save", save)
    run_train(settings, task="demand", folds=1, horizon=14, forecast_config=FAST, promote=False)
    assert asked == [settings.workspace / "checkpoints"]  # the final fit only: backtest fits are short
    assert saved == [50]  # 80 trees: one checkpoint at 50 rounds
    assert not (settings.workspace / "checkpoints").exists()  # nothing left once the fit completed
