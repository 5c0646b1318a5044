"""The policy carried out against a real registry: retrain, a bad candidate refused, rollback, fallback and back.

Monitoring is given here (a `Health` per task) so each decision can be
provoked on purpose; `jobs.monitor` measures it for real in its own tests.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers import NOW
from serving import SERVE_FAST, SERVE_FAST_STOCKOUT

from shelfcast.io.policy_log import read_events, read_state
from shelfcast.io.registry import CHAMPION, PREVIOUS, PROMOTED_AT, Registry
from shelfcast.jobs.score import run_score
from shelfcast.models.train import ForecastConfig
from shelfcast.settings import Settings
from shelfcast.types import Task
from shelfcast.workflows.retrain import run_policy
from shelfcast.workflows.training import run_train

pytestmark = pytest.mark.integration
BROKEN = ForecastConfig(n_origins=30, n_estimators=1, learning_rate=0.01, num_leaves=2, strategy="direct")


@dataclass
class Seen:
    drift_alarm: bool = False
    drifted_features: list[str] = field(default_factory=list)
    prediction_drift_alarm: bool = False
    degraded: bool = False
    live_value: float | None = None
    backtest_value: float | None = None
    evaluated_rows: int = 0
    evaluated_days: int = 0
    live_by_version: Mapping[str, float] = field(default_factory=dict)
    rows_by_version: Mapping[str, int] = field(default_factory=dict)
    live_relative: float | None = None
    relative_by_version: Mapping[str, float] = field(default_factory=dict)


def _trainer(config: ForecastConfig) -> Any:
    def train(settings: Settings, task: Task, tags: Mapping[str, str]) -> Any:
        return run_train(
            settings,
            task=task,
            folds=1,
            horizon=14,
            forecast_config=config,
            stockout_config=SERVE_FAST_STOCKOUT,
            tags=tags,
        )

    return train


@pytest.fixture
def ws(serving_workspace: Settings, tmp_path: Path) -> Settings:
    shutil.copytree(serving_workspace.workspace, tmp_path / "ws")
    return Settings(workspace=tmp_path / "ws")


def test_a_healthy_model_is_left_alone(ws: Settings) -> None:
    report = run_policy(ws, {"demand": Seen(), "stockout": Seen()}, now=NOW, trainer=_trainer(SERVE_FAST))
    assert [o.decision.action for o in report.outcomes] == ["ok", "ok"]
    events = read_events(ws)
    assert events.height == 2 and set(events["outcome"]) == {"nothing to do"}
    assert Registry(ws).client.get_registered_model("shelfcast-demand").tags["shelfcast.last_decision"] == "ok"


def test_drift_retrains_and_a_passing_model_is_promoted(ws: Settings) -> None:
    drift = Seen(drift_alarm=True, drifted_features=["lag_1", "mean_7"])
    report = run_policy(ws, {"demand": drift}, now=NOW, tasks=("demand",), trainer=_trainer(SERVE_FAST))
    outcome = report.outcomes[0]
    assert outcome.decision.action == "retrain" and "data drift on 2 feature(s)" in outcome.decision.reason
    assert outcome.new_version == "2"
    state = read_state(ws)
    assert state.retrains == 1 and state.last_retrain_at is not None
    # The same configuration on the same data scores as v1 did, which passed its gates: v2 passes them too.
    assert outcome.outcome == "v2 trained and promoted"
    assert Registry(ws).alias("demand", CHAMPION).version == "2"  # type: ignore[union-attr]
    run = Registry(ws).client.get_run(Registry(ws).version("demand", "2").run_id)
    assert run.data.tags["shelfcast.trigger"] == "retrain"
    # Promoted at the job's time, not the wall clock's: a replay's rollback rule counts days in its own time.
    assert Registry(ws).version("demand", "2").tags[PROMOTED_AT] == NOW.isoformat(timespec="seconds")
    # Within the cooldown, the same drift does not start another retrain.
    again = run_policy(ws, {"demand": drift}, now=NOW + dt.timedelta(hours=1), tasks=("demand",))
    assert again.outcomes[0].decision.action == "ok" and "cooldown" in again.outcomes[0].decision.reason


def test_a_bad_candidate_is_refused_and_the_champion_kept(ws: Settings) -> None:
    degraded = Seen(degraded=True, live_value=0.9, backtest_value=0.4, evaluated_rows=500, evaluated_days=28)
    report = run_policy(ws, {"demand": degraded}, now=NOW, tasks=("demand",), trainer=_trainer(BROKEN))
    outcome = report.outcomes[0]
    assert outcome.decision.action == "retrain"
    assert "refused by the gates" in outcome.outcome and "champion v1 kept" in outcome.outcome
    assert Registry(ws).alias("demand", CHAMPION).version == "1"  # type: ignore[union-attr]
    assert read_events(ws)["outcome"][0] == outcome.outcome


def test_a_fresh_champion_worse_live_than_the_previous_is_rolled_back(ws: Settings) -> None:
    from shelfcast.jobs.promote import promote_version

    trained = run_train(ws, task="demand", folds=1, horizon=14, forecast_config=SERVE_FAST, promote=False)
    promote_version(ws, "demand", trained.version, force=True)
    seen = Seen(
        live_value=0.62,
        evaluated_rows=400,
        live_by_version={"2": 0.62, "1": 0.35},
        rows_by_version={"2": 400, "1": 700},
    )
    now = dt.datetime.now(dt.UTC)
    report = run_policy(ws, {"demand": seen}, now=now, tasks=("demand",))
    outcome = report.outcomes[0]
    assert outcome.decision.action == "rollback", outcome.decision.reason
    assert outcome.outcome == "restored v1, demoted v2"
    registry = Registry(ws)
    assert registry.alias("demand", CHAMPION).version == "1"  # type: ignore[union-attr]
    assert registry.alias("demand", PREVIOUS) is None
    assert registry.version("demand", "1").tags[PROMOTED_AT] == now.isoformat(timespec="seconds")


def test_no_model_and_no_registry_falls_back_then_recovers(ws: Settings) -> None:
    shutil.rmtree(ws.workspace / "models")  # no local copy either
    lost = Settings(workspace=ws.workspace, mlflow_tracking_uri="http://127.0.0.1:9")
    report = run_policy(lost, {}, now=NOW)
    assert [o.decision.action for o in report.outcomes] == ["fallback", "fallback"]
    assert set(read_state(ws).fallback) == {"demand", "stockout"}
    scored = run_score(ws, horizon=5, now=NOW)  # the registry is back, but the policy's fallback holds
    assert (scored.model_version, scored.stockout_version) == ("rule-baseline", "rule-baseline")
    assert scored.note is not None and "in fallback since" in scored.note

    # The registry answers again and its champions are healthy: the fallback ends at the next decision.
    healthy = run_policy(ws, {"demand": Seen(), "stockout": Seen()}, now=NOW + dt.timedelta(days=1))
    assert {o.outcome for o in healthy.outcomes} == {"fallback ended: champion v1 is healthy"}
    assert read_state(ws).fallback == {}
    assert run_score(ws, horizon=5, now=NOW).model_version == "1"


def test_an_unreachable_registry_keeps_the_local_champion_and_does_not_retrain(ws: Settings) -> None:
    from shelfcast.workflows.retrain import act_on_monitoring

    lost = Settings(workspace=ws.workspace, mlflow_tracking_uri="http://127.0.0.1:9")
    report = act_on_monitoring(lost, now=NOW, trainer=_trainer(SERVE_FAST))
    for outcome in report.outcomes:
        # Monitored from the local copy; nothing to do, or a retrain that must wait for the registry.
        assert outcome.decision.action in ("ok", "retrain"), outcome.decision.reason
        assert outcome.outcome in ("nothing to do", "needs a retrain, but the registry is unreachable: v1 kept")
    assert any("local copy serves" in o.decision.reason for o in report.outcomes if o.decision.action == "ok")
    assert read_state(ws).fallback == {} and read_state(ws).retrains == 0
    assert run_score(lost, horizon=5, now=NOW).model_version == "1"  # scoring goes on with the local copy
