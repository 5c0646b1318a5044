"""The monitoring loop end to end on the simulator: a drift is detected, acted on, and accuracy recovers.

A chain with more than a year of history is replayed week by week from two
weeks before a drift (`workflows.drift_scenario`) with the real monitoring, policy,
gates, registry and prediction store. What was served after the drift is
compared with what the first champion would have forecast on the very same
rows, had nothing been done. `bench/bench_drift_loop.py` prints the same
figures for more drifts. Last, a bad model promoted by hand is rolled back
once monitoring has measured it live against the previous champion.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shelfcast.data.simulator import SimConfig, simulate
from shelfcast.features.labels import RULE_BASELINE
from shelfcast.io.policy_log import read_events, read_state
from shelfcast.io.registry import CHAMPION, Registry
from shelfcast.io.stores import open_store
from shelfcast.jobs.monitor import run_monitor
from shelfcast.jobs.promote import promote_version
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings
from shelfcast.types import Task
from shelfcast.workflows.drift_scenario import FAST, ScenarioResult, run_scenario
from shelfcast.workflows.replay import ingest_until, replay
from shelfcast.workflows.training import run_train

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CHAIN = SimConfig(n_stores=3, n_items=8, n_days=620, seed=3, min_base_demand=2.0, max_base_demand=30.0)
DRIFT_DAY = CHAIN.start_date + dt.timedelta(days=560)
BROKEN = ForecastConfig(n_origins=30, n_estimators=1, learning_rate=0.01, num_leaves=2, strategy="direct")


def test_a_level_drift_is_detected_acted_on_and_accuracy_recovers(tmp_path: Path) -> None:
    result = run_scenario(tmp_path, CHAIN, drift_day=DRIFT_DAY, drift=("level", 0.5), weeks=6)
    before = [s for s in result.steps if s.day < DRIFT_DAY]
    assert before and all(s.actions["demand"] == "ok" and not ScenarioResult.alarmed(s) for s in before)

    # Detected within three weekly steps: the live accuracy first, then the features.
    acted = min(d for d in (result.days_to(result.decided("retrain")), result.days_to(result.decided("fallback"))) if d)
    assert acted <= 21, result.to_json()["decisions"]
    alarm = result.days_to(ScenarioResult.alarmed)
    assert alarm is not None and alarm <= 28
    # The fallback takes the first champion, which now does worse than the rule baseline, off the shelves: the
    # stores get the rule baseline while retrained models are refused by the gates, or at once a retrained model
    # that passed them in the same step ...
    fell = result.days_to(result.decided("fallback"))
    assert fell is not None and fell <= 28
    promoted = result.days_to(ScenarioResult.promoted)
    assert promoted is not None and promoted <= 42
    assert result.scoring_days_by_version.get(RULE_BASELINE, 0) >= 1 or promoted == fell, result.to_json()
    assert result.scoring_days_by_version.get(result.first_version, 0) <= fell // 7 + 1, result.to_json()
    assert read_state(Settings(workspace=tmp_path / "ws")).fallback == {}

    # Accuracy: what was served beats the first champion on the same rows, and after the promotion it is back
    # where it was before the drift.
    served, first = result.after_drift.served_wape, result.after_drift.model_wape
    assert served is not None and first is not None and served < 0.8 * first, result.after_drift
    after = result.after_promotion
    assert after is not None and after.rows > 0
    assert after.served_wape is not None and after.model_wape is not None
    assert after.served_wape < 0.6 * after.model_wape, after
    wape_before = result.wape_before[0]
    assert wape_before is not None and after.served_wape < 1.1 * wape_before

    # Every decision is an event, with its reasons.
    events = read_events(Settings(workspace=tmp_path / "ws"))
    assert events.height == len(result.steps)
    assert events.filter(pl.col("action") == "fallback")["reasons"].str.contains("seasonal naive").all()


def test_no_drift_no_alarm_over_many_windows(tmp_path: Path) -> None:
    result = run_scenario(tmp_path, CHAIN, drift_day=DRIFT_DAY, drift=None, weeks=7)
    assert len(result.steps) == 9
    assert [s.actions["demand"] for s in result.steps] == ["ok"] * 9
    assert not any(ScenarioResult.alarmed(s) for s in result.steps)
    assert result.scoring_days_by_version == {result.first_version: 7}  # the scorings from the drift day on
    # Nothing was done, so what was served is the first champion's forecast, exactly.
    assert result.after_drift.served_wape == result.after_drift.model_wape


def test_a_champion_that_does_worse_live_is_rolled_back(tmp_path: Path) -> None:
    """A bad model promoted by hand over a good one: the live comparison (real monitoring) rolls it back."""
    tables: dict[str, pl.DataFrame] = {k: v for k, v in simulate(CHAIN).tables().items() if k != "exogenous"}
    settings = Settings(workspace=tmp_path / "ws")
    start = DRIFT_DAY - dt.timedelta(days=29)
    ingest_until(settings, tables, {}, after=None, until=start)

    def trainer(config: ForecastConfig) -> Any:
        def train(settings: Settings, task: Task, tags: Mapping[str, str]) -> Any:
            return run_train(settings, task=task, folds=1, horizon=14, forecast_config=config, tags=tags)

        return train

    def monitor(s: Settings, now: dt.datetime) -> Any:
        return run_monitor(s, now=now).tasks

    first = trainer(FAST)(settings, "demand", {})
    if not first.promotion.promoted:
        promote_version(settings, "demand", first.version, force=True)
    middle = start + dt.timedelta(days=14)
    served = replay(settings, tables, {}, start=start, end=middle, monitor=monitor, tasks=("demand",))
    assert [s.actions["demand"] for s in served] == ["ok", "ok"]
    # One tree of two leaves: far worse than v1, forced past the gates.
    bad = trainer(BROKEN)(settings, "demand", {})
    promote_version(settings, "demand", bad.version, force=True)
    steps = replay(
        settings, tables, {}, start=middle, end=middle + dt.timedelta(days=14), monitor=monitor, tasks=("demand",)
    )
    rolled = next(s for s in steps if s.actions["demand"] != "ok")
    assert rolled.actions["demand"] == "rollback", rolled.outcomes
    assert rolled.outcomes["demand"] == f"restored v{first.version}, demoted v{bad.version}"
    health = rolled.health["demand"]
    assert health is not None and health.relative_by_version[bad.version] > health.relative_by_version[first.version]
    registry = Registry(settings)
    assert registry.alias("demand", CHAMPION).version == first.version  # type: ignore[union-attr]
    assert registry.version("demand", bad.version).tags["rolled_back"] == "true"
    # The next scoring is the restored champion's.
    latest = open_store(settings).latest_day()
    assert latest is not None
    assert set(open_store(settings).read(scored_on=latest)["model_version"]) == {first.version}
