"""The policy's decisions, one rule at a time, and their order."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfcast.monitoring.policy import PolicyConfig, TaskState, decide
from shelfcast.settings import Settings

HEALTHY = TaskState(task="demand", champion="3", metric="wape", live=0.30, backtest=0.28)


def _state(**changes: object) -> TaskState:
    return TaskState(**(HEALTHY.__dict__ | changes))  # type: ignore[arg-type]


def test_a_healthy_champion_is_ok() -> None:
    decision = decide(HEALTHY)
    assert decision.action == "ok" and "v3 is healthy" in decision.reason


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"champion": None, "registry_ok": False}, "the registry is unreachable and there is no local copy"),
        ({"champion": None}, "the registry has none"),
        ({"floor_problem": "wape 0.71 above gate_demand_max_wape=0.5"}, "is below a floor: wape 0.71 above"),
    ],
)
def test_no_trustworthy_model_falls_back(changes: dict[str, object], needle: str) -> None:
    decision = decide(_state(**changes, drift_alarm=True, drifted=["lag_1"]))
    assert decision.action == "fallback" and needle in decision.reason


def test_an_unreachable_registry_with_a_local_copy_keeps_serving_it() -> None:
    decision = decide(_state(registry_ok=False))
    assert decision.action == "ok" and "local copy serves" in decision.reason


def test_drift_or_degradation_asks_for_a_retrain() -> None:
    drift = decide(_state(drift_alarm=True, drifted=[f"f{k}" for k in range(7)]))
    assert drift.action == "retrain" and "7 feature(s): f0, f1, f2, f3, f4 ..." in drift.reason
    degraded = decide(_state(degraded=True, live=0.40, live_rows=900, live_days=21))
    assert degraded.action == "retrain"
    assert "live wape 0.4000 against the backtest's 0.2800 over 21 days" in degraded.reason


def test_noise_alone_does_not_retrain() -> None:
    """A few days of live accuracy, or outputs that moved with the season, are reported, not acted on."""
    short = decide(_state(degraded=True, live=0.40, live_rows=200, live_days=6))
    assert short.action == "ok" and "over only 6 days" in short.reason
    outputs = decide(_state(prediction_drift=True))
    assert outputs.action == "ok" and "predictions drifted (reported; not acted on alone)" in outputs.reason


def test_a_recent_retrain_holds_the_next_one() -> None:
    decision = decide(_state(drift_alarm=True, drifted=["lag_1"], hours_since_retrain=2.0))
    assert decision.action == "ok" and "cooldown" in decision.reason
    assert decide(_state(drift_alarm=True, drifted=["lag_1"], hours_since_retrain=30.0)).action == "retrain"


def test_a_fresh_champion_worse_than_the_previous_is_rolled_back() -> None:
    fresh = {"previous": "2", "promoted_days_ago": 3.0, "live_rows": 500, "previous_rows": 500}
    worse = decide(_state(**fresh, live=0.40, previous_live=0.30, degraded=True, live_days=20))
    assert worse.action == "rollback" and "against 0.3000 for v2" in worse.reason
    # Within the margin, or measured on too few rows, or promoted long ago: no rollback.
    assert decide(_state(**fresh, live=0.31, previous_live=0.30)).action == "ok"
    assert decide(_state(**fresh | {"live_rows": 10}, live=0.40, previous_live=0.30)).action == "ok"
    assert decide(_state(**fresh | {"promoted_days_ago": 40.0}, live=0.40, previous_live=0.30)).action == "ok"
    # Higher is better (PR-AUC): lower live is worse.
    stockout = TaskState(
        task="stockout",
        champion="5",
        metric="pr_auc",
        higher_is_better=True,
        live=0.20,
        previous_live=0.35,
        previous="4",
        promoted_days_ago=1.0,
        live_rows=300,
        previous_rows=300,
    )
    assert decide(stockout).action == "rollback"
    assert decide(stockout, PolicyConfig(rollback_margin=0.9)).action == "ok"


def test_a_champion_worse_live_than_the_naive_falls_back_and_stays_until_a_new_one() -> None:
    worse = decide(_state(live_relative=1.45, live_days=21))
    assert worse.action == "fallback" and worse.retry
    assert "1.45 times the seasonal naive's on the same rows over 21 days" in worse.reason
    # Below the setting, or measured over too few days: no fallback (the edge of a model varies with the season).
    assert decide(_state(live_relative=1.1, live_days=21)).action == "ok"
    assert decide(_state(live_relative=1.45, live_days=7)).action == "ok"
    assert decide(_state(live_relative=1.1, live_days=21), PolicyConfig(fallback_relative=1.05)).action == "fallback"
    # In fallback for this champion: stays there (a retrain is tried, but not within the cooldown) ...
    fell = {"fallback": "worse than the naive", "fallback_version": "3"}
    stay = decide(_state(**fell))
    assert stay.action == "fallback" and stay.retry and "champion v3 unchanged" in stay.reason
    held = decide(_state(**fell, hours_since_retrain=3.0))
    assert held.action == "fallback" and not held.retry and "cooldown" in held.reason
    # ... until another version is champion.
    assert decide(_state(**fell | {"fallback_version": "2"})).action == "ok"


def test_a_fresh_champion_is_rolled_back_rather_than_replaced_by_the_naive() -> None:
    fresh = {"previous": "2", "promoted_days_ago": 3.0, "live_rows": 500, "previous_rows": 500, "live_days": 21}
    assert decide(_state(**fresh, live=0.40, previous_live=0.30, live_relative=1.5)).action == "rollback"


def test_the_policy_reads_its_settings(tmp_path: Path) -> None:
    settings = Settings(
        workspace=tmp_path,
        policy_min_live_days=21,
        policy_cooldown_hours=2.0,
        policy_fresh_days=7.0,
        policy_rollback_margin=0.2,
        policy_fallback_relative=1.5,
    )
    assert settings.policy == PolicyConfig(
        fresh_days=7.0, rollback_margin=0.2, min_live_days=21, cooldown_hours=2.0, fallback_relative=1.5
    )
    with pytest.raises(ValueError, match="policy_fallback_relative"):
        Settings(workspace=tmp_path, policy_fallback_relative=0.9)


def test_a_task_the_data_cannot_support_is_not_applicable_before_any_other_rule() -> None:
    decision = decide(_state(champion=None, drift_alarm=True, drifted=["lag_1"], not_applicable="sales-only data"))
    assert decision.action == "not_applicable" and not decision.retry
    assert decision.reason == "not applicable: sales-only data"
