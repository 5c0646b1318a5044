"""The service's monitoring gauges, read from the workspace's files at each scrape."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from shelfcast.service.metrics import MonitoringCollector


def _scrape(folder: Path) -> str:
    registry = CollectorRegistry()
    registry.register(MonitoringCollector(folder))
    return generate_latest(registry).decode()


def test_gauges_follow_the_latest_summary_and_the_state(tmp_path: Path) -> None:
    latest = {
        "created_at": "2026-11-24T04:00:00+00:00",
        "tasks": {
            "demand": {
                "model_version": "3",
                "drift_alarm": True,
                "degraded": False,
                "features": {"lag_1": {"effect": 0.41}, "mean_7": {"effect": 0.05}},
                "prediction_drift": {"effect": 0.3},
                "live_metric": "wape",
                "live_value": 0.52,
                "backtest_value": 0.48,
                "live_relative": 0.9,
            },
            "stockout": {"model_version": None, "status": "no_champion"},
        },
    }
    (tmp_path / "latest.json").write_text(json.dumps(latest))
    (tmp_path / "state.json").write_text(json.dumps({"fallback": {}, "retrains": 4, "last_retrain_at": None}))
    text = _scrape(tmp_path)
    assert 'shelfcast_drift_alarm{task="demand"} 1.0' in text
    assert 'shelfcast_feature_drift{feature="lag_1",task="demand"} 0.41' in text
    assert 'shelfcast_prediction_drift{task="demand"} 0.3' in text
    assert 'shelfcast_live_accuracy{metric="wape",task="demand"} 0.52' in text
    assert 'shelfcast_backtest_accuracy{metric="wape",task="demand"} 0.48' in text
    assert 'shelfcast_live_relative_wape{task="demand"} 0.9' in text
    assert 'shelfcast_accuracy_degraded{task="demand"} 0.0' in text
    assert 'task="stockout"} 1' not in text  # no champion: nothing to report for it
    assert "shelfcast_retrains 4.0" in text and "shelfcast_last_retrain_timestamp_seconds 0.0" in text
    assert "shelfcast_monitoring_timestamp_seconds 1.7954928e+09" in text


def test_missing_or_broken_files_give_the_defaults(tmp_path: Path) -> None:
    assert "shelfcast_retrains 0.0" in _scrape(tmp_path / "nothing")
    (tmp_path / "latest.json").write_text("{not json")
    (tmp_path / "state.json").write_text('["a list"]')
    text = _scrape(tmp_path)
    assert "shelfcast_retrains 0.0" in text and "shelfcast_drift_alarm" not in text
