"""The gates after the data grew: the champion is scored again on the challenger's windows (as served when it was
trained before them, else its configuration refitted), so a worse challenger is still refused and a good one is
still compared (MLflow with SQLite in the workspace)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from helpers import NOW, TODAY

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.data.sources import get_source
from shelfcast.io.champion import NATIVE, fetch_champion
from shelfcast.io.lake import Lake
from shelfcast.io.model_data import load_model_data
from shelfcast.io.model_files import load_forecaster
from shelfcast.io.registry import CHALLENGER, CHAMPION, Registry
from shelfcast.jobs.ingest import run_ingest
from shelfcast.jobs.train import TrainReport
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings
from shelfcast.workflows.training import run_train

pytestmark = pytest.mark.integration

# As in test_registry: on this chain the GBM beats every baseline by a few points of WAPE.
FAST = ForecastConfig(n_origins=40, n_estimators=80, learning_rate=0.1, num_leaves=15, strategy="direct")
# One tiny step from the global mean in units (no per-series level): learns almost nothing.
WORSE = ForecastConfig(target="raw", n_origins=20, n_estimators=1, learning_rate=0.01, num_leaves=2, strategy="direct")
# 40 new days move both cutoffs (14 days apart) past every old one; the GBM beats the baselines on both lakes.
DAYS, NEW_DAYS = 300, 40


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same simulated chain twice: without its last NEW_DAYS days, and whole."""
    root = tmp_path_factory.mktemp("grown")
    sim = simulate(SimConfig(n_stores=2, n_items=8, n_days=DAYS, seed=2))
    tables = sim.tables()
    last = max(f["date"].max() for f in tables.values() if "date" in f.columns)  # type: ignore[type-var]
    cut = last - dt.timedelta(days=NEW_DAYS)  # type: ignore[operator]
    folders = root / "early", root / "all"
    for folder, keep in zip(folders, (cut, last), strict=True):
        folder.mkdir()
        for name, frame in tables.items():
            (frame.filter(frame["date"] <= keep) if "date" in frame.columns else frame).write_parquet(
                folder / f"{name}.parquet"
            )
        (folder / "exogenous_roles.json").write_text(json.dumps(sim.exogenous_roles))
    return folders


def ingest(settings: Settings, folder: Path) -> None:
    run_ingest(get_source("canonical"), folder, settings=settings, today=TODAY, now=NOW)


def train(settings: Settings, config: ForecastConfig) -> TrainReport:
    return run_train(settings, task="demand", folds=2, horizon=14, forecast_config=config)


def test_after_new_days_the_champion_is_scored_as_served_on_the_challengers_windows(
    raw: tuple[Path, Path], tmp_path: Path
) -> None:
    settings = Settings(workspace=tmp_path / "ws")
    early, grown = raw
    ingest(settings, early)
    first = train(settings, FAST)
    assert first.promotion is not None and first.promotion.promoted, first.promotion
    registry = Registry(settings)
    old = registry.client.get_run(first.run.run_id).data.params
    assert "champion.version" not in old  # nothing to score again without a champion

    ingest(settings, grown)
    labels: list[str] = []
    bad = run_train(
        settings,
        task="demand",
        folds=2,
        horizon=14,
        forecast_config=WORSE,
        progress=lambda label, done, total: labels.append(label),
    )
    assert "score champion v1 on the new windows" in labels
    run = registry.client.get_run(bad.run.run_id)
    params, metrics = run.data.params, run.data.metrics
    cutoffs = sorted(dt.date.fromisoformat(params[f"backtest.cutoff.w{k}"]) for k in (1, 2))
    assert not {c.isoformat() for c in cutoffs} & {old["backtest.cutoff.w1"], old["backtest.cutoff.w2"]}
    assert params["champion.version"] == "1" and params["champion.run_id"] == first.run.run_id
    # v1 was trained on data up to before the first new cutoff: the model itself forecasts from each cutoff.
    assert params["champion.scored"] == "as_served"
    assert {"wape.champion", "wape.champion.w1", "wape.champion.w2"} <= set(metrics)
    # Its WAPE per window, worked out here from its own forecasts and the actuals.
    data = load_model_data(Lake(settings.workspace))
    champion = load_forecaster(fetch_champion(settings, "demand") / NATIVE)
    actual = data.panel.frame.select("store_id", "item_id", "date", "y")
    for k, cutoff in enumerate(cutoffs, start=1):
        forecast = champion.predict(data.panel, calendar=data.calendar, origin=cutoff, horizon=14)
        rows = forecast.join(actual, on=["store_id", "item_id", "date"])
        assert rows.height == 16 * 14
        mine = (rows["y"] - rows["forecast"]).abs().sum() / rows["y"].sum()
        assert metrics[f"wape.champion.w{k}"] == pytest.approx(mine, rel=1e-9)
    # Refused by the champion gate, on the challenger's windows, against the champion as served.
    assert bad.promotion is not None and not bad.promotion.promoted
    reason = bad.promotion.gate.reason
    assert "is worse than the champion's" in reason and "the champion as served" in reason, reason
    assert "not compared" not in reason
    champion_wape = (metrics["wape.champion.w1"] + metrics["wape.champion.w2"]) / 2
    values = bad.promotion.gate.values
    assert values["wape.champion"] == pytest.approx(champion_wape) and values["champion_as_served"] == 1.0
    assert values["windows_shared"] == 2 and values["wape"] > values["wape.champion"]
    info = registry.version("demand", bad.version)
    assert info.aliases == [CHALLENGER] and info.tags["gate.passed"] == "false"
    assert float(info.tags["gate.wape.champion"]) == pytest.approx(champion_wape, rel=1e-5)
    assert registry.alias("demand", CHAMPION).version == "1"  # type: ignore[union-attr]

    # The champion's configuration refitted on the new data is compared with the champion as served (not "not
    # compared"); a refit is no better by itself: it is promoted only if it does at least as well.
    again = train(settings, FAST)
    assert again.promotion is not None
    reason, values = again.promotion.gate.reason, again.promotion.gate.values
    assert "champion" in reason and "as served" in reason and "not compared" not in reason, reason
    assert values["wape.champion"] == pytest.approx(champion_wape)  # the same champion on the same windows
    assert again.promotion.promoted == (values["wape"] <= values["wape.champion"]), reason


def test_a_champion_trained_past_the_new_cutoffs_is_refitted_on_them(raw: tuple[Path, Path], tmp_path: Path) -> None:
    """Scored as served, it would be judged on days it learned from: its configuration is backtested instead."""
    settings = Settings(workspace=tmp_path / "ws")
    ingest(settings, raw[1])
    first = train(settings, FAST)  # cutoffs 28 and 14 days before the end; the model saw every day
    assert first.promotion is not None and first.promotion.promoted, first.promotion
    # Another horizon moves the cutoffs (20 and 10 days before the end), before the champion's own cutoff.
    good = run_train(settings, task="demand", folds=2, horizon=10, forecast_config=FAST)
    registry = Registry(settings)
    params = registry.client.get_run(good.run.run_id).data.params
    scores = registry.client.get_run(good.run.run_id).data.metrics
    assert params["champion.version"] == "1" and params["champion.scored"] == "refitted"
    assert good.promotion is not None
    reason = good.promotion.gate.reason
    assert "re-backtested on the challenger's windows" in reason and "not compared" not in reason, reason
    # The same configuration refitted on the same windows scores exactly as the challenger: promoted.
    for k in (1, 2):
        assert scores[f"wape.gbm.w{k}"] == pytest.approx(scores[f"wape.champion.w{k}"])
    assert good.promotion.promoted and good.promotion.previous == "1", reason
