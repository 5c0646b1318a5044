"""Weekly data end to end with the default horizons: train, then score, then look a date up."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from helpers import NOW, TODAY, run_cli
from serving import ingest_chain, make_champion

from shelfcast.data.sim_weekly import walmart_tables
from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.data.sources import get_source
from shelfcast.errors import ConfigError
from shelfcast.jobs.ingest import run_ingest
from shelfcast.jobs.score import run_score
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings
from shelfcast.workflows.training import run_train

pytestmark = pytest.mark.integration
WEEKLY = SimConfig(n_stores=2, n_items=3, n_days=560, seed=5, min_base_demand=2.0, max_base_demand=30.0, freq="W")
FAST = ForecastConfig.for_freq("W", n_origins=30, n_estimators=40, learning_rate=0.1, num_leaves=7, strategy="direct")


@pytest.fixture(scope="module")
def weekly(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A sales-only weekly chain with a demand champion trained with the default horizon."""
    settings = ingest_chain(tmp_path_factory.mktemp("weekly"), WEEKLY, sales_only=True)
    make_champion(settings, run_train(settings, task="demand", folds=1, forecast_config=FAST))
    return settings


def test_scoring_with_the_defaults_fits_a_champion_trained_with_the_defaults(weekly: Settings) -> None:
    report = run_score(weekly, now=NOW)
    assert report.horizon == 2 and report.periods == "2 weeks"
    assert report.model_version != "rule-baseline"


def test_too_long_a_horizon_offers_the_command_that_works(weekly: Settings, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        run_score(weekly, horizon=14, now=NOW)
    message = str(caught.value)
    assert "at most 13 steps (weeks)" in message
    assert "`shelfcast score --horizon 13`" in message and "`shelfcast train --task demand --horizon 14`" in message


@pytest.mark.e2e
def test_shelfcast_score_after_shelfcast_train_with_the_defaults(weekly: Settings, tmp_path: Path) -> None:
    scored = run_cli("score", "--workspace", str(weekly.workspace), cwd=tmp_path, columns=200)
    assert scored.returncode == 0, scored.stderr
    assert "2 weeks from" in scored.stdout


@pytest.fixture(scope="module")
def walmart(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The weekly chain as Walmart's files (weeks dated by their Friday), ingested, with a scoring."""
    root = tmp_path_factory.mktemp("walmart")
    sim = simulate(WEEKLY)
    (root / "raw").mkdir()
    for name, frame in walmart_tables(sim.sales, sim.exogenous, sim.calendar, sim.stores).items():
        frame.write_parquet(root / "raw" / f"{name}.parquet")
    settings = Settings(workspace=root / "ws")
    run_ingest(get_source("walmart"), root / "raw", settings=settings, today=TODAY, now=NOW)
    make_champion(settings, run_train(settings, task="demand", folds=1, forecast_config=FAST))
    run_score(settings, now=NOW)
    return settings


def test_a_date_finds_the_week_that_holds_it_on_week_ending_dates(walmart: Settings) -> None:
    from fastapi.testclient import TestClient

    from shelfcast.io.lake import Lake
    from shelfcast.service.app import create_app

    assert Lake(walmart.workspace).table_info("sales")["period_anchor"] == "end"  # type: ignore[index]
    with TestClient(create_app(walmart)) as client:
        whole = client.get("/forecast", params={"store_id": "1", "item_id": "1"}).json()
        weeks = [dt.date.fromisoformat(p["date"]) for p in whole["points"]]
        assert {w.weekday() for w in weeks} == {4}  # Fridays, the weeks' last day
        monday = weeks[0] + dt.timedelta(days=3)  # after the first week ended: in the second
        for day, week in ((monday, weeks[1]), (weeks[0], weeks[0]), (weeks[0] - dt.timedelta(days=6), weeks[0])):
            answer = client.get("/forecast", params={"store_id": "1", "item_id": "1", "date": day.isoformat()})
            assert answer.status_code == 200, answer.text
            assert [p["date"] for p in answer.json()["points"]] == [week.isoformat()], day
        # Outside, the message gives the days the weeks cover (the first week began six days before its date).
        before = weeks[0] - dt.timedelta(days=7)
        answer = client.get("/forecast", params={"store_id": "1", "item_id": "1", "date": before.isoformat()})
        assert answer.status_code == 404
        covered = f"{weeks[0] - dt.timedelta(days=6)} to {weeks[-1]}"
        assert answer.json()["detail"].endswith(covered), answer.json()
