"""TaskState.observe: the one place the policy's view of a task is assembled from what was seen."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shelfcast.monitoring.policy import Registered, TaskState
from shelfcast.types import Task


@dataclass(frozen=True)
class Seen:
    drift_alarm: bool = False
    drifted_features: list[str] = field(default_factory=list)
    prediction_drift_alarm: bool = False
    degraded: bool = False
    live_value: float | None = 0.5
    backtest_value: float | None = 0.4
    evaluated_rows: int = 300
    evaluated_days: int = 21
    live_by_version: Mapping[str, float] = field(default_factory=lambda: {"2": 0.5, "1": 0.45})
    rows_by_version: Mapping[str, int] = field(default_factory=lambda: {"2": 300, "1": 200})
    live_relative: float | None = None
    relative_by_version: Mapping[str, float] = field(default_factory=dict)


def test_without_monitoring_only_the_registry_and_the_fallback_are_known() -> None:
    state = TaskState.observe(
        Task.STOCKOUT,
        Registered("3", previous="2", reachable=False, promoted_days_ago=2.0),
        None,
        hours_since_retrain=5.0,
        fallback=("live accuracy collapsed", "3"),
    )
    assert (state.champion, state.previous, state.registry_ok, state.promoted_days_ago) == ("3", "2", False, 2.0)
    assert (state.metric, state.higher_is_better) == ("pr_auc", True)
    assert (state.fallback, state.fallback_version, state.hours_since_retrain) == ("live accuracy collapsed", "3", 5.0)
    assert (state.live, state.live_rows, state.previous_rows, state.drifted) == (None, 0, 0, [])


def test_monitoring_fills_live_accuracy_and_the_previous_versions_rows() -> None:
    state = TaskState.observe(
        Task.DEMAND, Registered("2", previous="1"), Seen(drift_alarm=True, drifted_features=["lag_7"])
    )
    assert (state.metric, state.live, state.previous_live, state.previous_rows) == ("wape", 0.5, 0.45, 200)
    assert (state.drift_alarm, state.drifted, state.backtest, state.live_days) == (True, ["lag_7"], 0.4, 21)
    assert state.fallback is None


def test_versions_are_compared_relative_to_the_naive_when_both_have_that_ratio() -> None:
    seen = Seen(live_relative=1.1, relative_by_version={"2": 1.1, "1": 0.9})
    state = TaskState.observe(Task.DEMAND, Registered("2", previous="1"), seen)
    assert (state.metric, state.live, state.previous_live) == ("wape / seasonal naive", 1.1, 0.9)
    # Without the previous version's ratio, raw WAPE it is.
    alone = TaskState.observe(Task.DEMAND, Registered("2", previous="0"), seen)
    assert (alone.metric, alone.live, alone.previous_live) == ("wape", 0.5, None)
