"""The frames and charts of the Models, Monitoring and Data pages: shaping only, checked on small inputs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from shelfcast.dashboard import charts, lake_data, models_data, monitor_data
from shelfcast.io.policy_log import EVENT_SCHEMA
from shelfcast.io.registry import VersionInfo
from shelfcast.types import Task

AT = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


def _version(version: str, aliases: list[str], **tags: str) -> VersionInfo:
    return VersionInfo(Task.DEMAND, "shelfcast-demand", version, f"run{version}", aliases, tags, 1_700_000_000_000, "")


def test_scores_keep_overall_metrics_with_each_models_role() -> None:
    metrics = {
        "wape.gbm": 0.5,
        "wape.gbm.w1": 0.4,  # a window: not overall
        "wape.naive": 0.7,
        "wape.blend_gbm_seasonal_naive": 0.45,
        "mape_skipped_zeros.gbm": 12.0,  # a count: not shown
        "wape": 0.5,  # the gate's primary figure: no model
    }
    frame = models_data.scores_frame(metrics, task=Task.DEMAND, candidate="gbm")
    assert dict(zip(frame["model"], frame["role"], strict=True)) == {
        "gbm": "served",
        "naive": "baseline",
        "blend_gbm_seasonal_naive": "other candidate",
    }
    assert frame.filter(pl.col("model") == "naive")["value"].item() == 0.7


def test_versions_frame_reads_gates_and_promotions_from_the_tags() -> None:
    models = models_data.TaskModels(
        Task.DEMAND,
        [
            _version("1", ["previous_champion"], **{"gate.passed": "true", "shelfcast.promoted_at": AT.isoformat()}),
            _version("2", ["champion"], **{"gate.passed": "false", "gate.reason": "worse", "gate.wape": "0.61"}),
        ],
    )
    frame = models_data.versions_frame(models)
    assert frame["version"].to_list() == [2, 1]
    assert frame["gate_passed"].to_list() == [False, True]
    assert frame["promoted_at"].to_list() == [None, AT]
    assert models.aliased("champion") is not None and models.aliased("champion").version == "2"  # type: ignore[union-attr]
    assert models_data.gate_values(models.versions[1]) == {"wape": 0.61}


def test_events_are_named_by_what_happened() -> None:
    rows = [
        ("retrain", "v2 trained and promoted", "2"),
        ("retrain", "champion v1 kept", None),
        ("rollback", "restored v1", "1"),
        ("fallback", "in fallback", None),
        ("ok", "nothing to do", None),
    ]
    events = pl.DataFrame(
        [
            {"at": AT + dt.timedelta(hours=k), "task": "demand", "action": a, "reasons": "", "champion_version": "1"}
            | {"outcome": o, "new_version": n, "trigger": "monitor"}
            for k, (a, o, n) in enumerate(rows)
        ],
        schema=EVENT_SCHEMA,
    )
    frame = models_data.events_frame(events)
    assert frame["event"].to_list() == ["ok", "fallback", "rollback", "refusal", "promotion"]  # newest first
    spec = charts.events_timeline(frame).to_dict()
    # Readable without colour: the event is a shape as well as a colour.
    assert spec["encoding"]["shape"]["field"] == spec["encoding"]["color"]["field"] == "event"


def _summary(created: str, effects: dict[str, tuple[str, float, bool]]) -> dict[str, Any]:
    features = {
        name: {"kind": kind, "effect": effect, "p_value": 0.01, "alarm": alarm}
        for name, (kind, effect, alarm) in effects.items()
    }
    task = {"features": features, "drift_alarm": any(a for _, _, a in effects.values()), "degraded": False}
    return {"created_at": created, "tasks": {"demand": task | {"drifted_features": []}}}


def test_drift_frames_take_the_report_and_the_settings_thresholds() -> None:
    old = _summary(
        "2026-11-22T12:00:00+00:00", {"lag_1": ("numeric", 0.05, False), "store_id": ("categorical", 0, False)}
    )
    new = _summary(
        "2026-11-23T12:00:00+00:00", {"lag_1": ("numeric", 0.31, True), "store_id": ("categorical", 0.02, False)}
    )
    frame = monitor_data.with_thresholds(monitor_data.drift_frame(new, "demand"), psi=0.2, js=0.1)
    assert frame.rows() == [
        ("lag_1", "numeric", "PSI", 0.31, 0.2, 0.01, True),
        ("store_id", "categorical", "JS distance", 0.02, 0.1, 0.01, False),
    ]
    trend = monitor_data.trend_frame([old, new], "demand").filter(pl.col("feature") == "lag_1")
    assert trend["effect"].to_list() == [0.05, 0.31]
    alarms = monitor_data.alarms_frame([old, new])
    assert alarms["drift_alarm"].to_list() == [False, True]
    assert charts.drift_bars(frame).to_dict()["layer"][1]["mark"]["type"] == "tick"  # the threshold


def test_quarantine_counts_and_samples_by_rule() -> None:
    rows = pl.DataFrame(
        {
            "source": ["a.csv"] * 4,
            "line": [2, 3, 4, 5],
            "table": ["sales", "sales", "inventory", "sales"],
            "rule": ["negative_units", "invalid_date", "negative_units", "negative_units"],
            "detail": ["d2", "d3", "d4", "d5"],
            "raw": ["{}"] * 4,
        }
    )
    counts = lake_data.rule_counts(rows)
    assert counts.rows() == [("negative_units", 3, "inventory, sales"), ("invalid_date", 1, "sales")]
    assert lake_data.rule_sample(rows, "negative_units", n=2)["detail"].to_list() == ["d2", "d4"]


@pytest.mark.parametrize("info", [{"tables": {}}, {"tables": {}, "ingests": []}])
def test_an_empty_manifest_gives_empty_frames(info: dict[str, Any]) -> None:
    assert lake_data.tables_frame(info).is_empty() and lake_data.ingests_frame(info).is_empty()
